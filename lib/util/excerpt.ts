// Untrusted text and values as error messages show them: short, on one line, and with nothing a
// terminal would act on (a binary file's bytes, escape sequences, bidirectional overrides).

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional embeddings and isolates.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
}

/** At most `max` characters of text, unprintable ones escaped (\u001b, \n), with "…" where it was cut. */
export function excerpt(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(UNPRINTABLE, escapeChar);
}

/** Text with terminal-controlling characters escaped but its lines kept: for whole messages printed to a terminal. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}

/** A value for a message: strings quoted and excerpted, NaN, Infinity, BigInt and undefined spelled out. */
export function showValue(value: unknown, max = 80): string {
  if (typeof value === 'string') return `'${excerpt(value, max)}'`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value === undefined || value === null) {
    return typeof value === 'bigint' ? `${value}n` : String(value);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  } catch {
    json = undefined; // circular
  }
  return excerpt(json ?? Object.prototype.toString.call(value), max);
}

/** Like showValue, but strings in double quotes (as JSON writes them): `"n/a"`. */
export function quote(value: unknown, max = 80): string {
  if (typeof value !== 'string') return showValue(value, max);
  return `"${excerpt(value.replace(/["\\]/g, (c) => `\\${c}`), max)}"`;
}
