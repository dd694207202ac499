// JavaScript source for a value, so that each fuzzed call is a line of code that can be printed,
// run as it is, and pasted into `node -e` to reproduce it.

export function lit(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'Infinity';
    if (value === -Infinity) return '-Infinity';
    if (Object.is(value, -0)) return '-0';
    return String(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  if (Buffer.isBuffer(value)) return `Buffer.from(${JSON.stringify(value.toString('base64'))}, "base64")`;
  if (Array.isArray(value)) return `[${value.map(lit).join(', ')}]`;
  if (value instanceof Code) return value.source;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${lit(v)}`)
      .join(', ')}}`;
  }
  throw new TypeError(`lit: cannot write a ${typeof value}`);
}

/** Source code placed as is inside a literal (e.g. a tensor expression among an options object). */
export class Code {
  constructor(readonly source: string) {}
}

export const code = (source: string): Code => new Code(source);
