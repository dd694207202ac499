// Typed config schemas: every field has a default, a type and a one-line description; unknown
// keys are rejected with the closest known name.
import { showValue } from './excerpt';

export type FieldType =
  | { kind: 'int'; min?: number; max?: number }
  | { kind: 'number'; min?: number; max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean }
  | { kind: 'boolean' }
  /** pattern, when given, is what the string must match, described by `what` in messages. */
  | { kind: 'string'; pattern?: RegExp; what?: string }
  | { kind: 'enum'; values: readonly string[] };

export interface FieldSpec {
  type: FieldType;
  default: unknown;
  doc: string;
}

export type Schema = Record<string, FieldSpec>;

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The known name closest to an unknown one, if any is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function describeType(t: FieldType): string {
  switch (t.kind) {
    case 'enum':
      return `one of ${t.values.map((v) => `'${v}'`).join(', ')}`;
    case 'int':
      return 'an integer' + (t.min !== undefined ? ` >= ${t.min}` : '') + (t.max !== undefined ? ` <= ${t.max}` : '');
    case 'number':
      return 'a number' + [t.min !== undefined ? ` ${t.exclusiveMin ? '>' : '>='} ${t.min}` : '', t.max !== undefined ? ` ${t.exclusiveMax ? '<' : '<='} ${t.max}` : ''].filter(Boolean).join(' and');
    case 'string':
      return t.what ?? 'a string';
    default:
      return `a ${t.kind}`;
  }
}

/**
 * Checks one value against its type; returns an error message or undefined. `typed` is the text the
 * value was parsed from, quoted instead of the value (so 'abc' rather than NaN).
 */
export function checkValue(value: unknown, t: FieldType, typed?: string): string | undefined {
  const bad = `must be ${describeType(t)}, got ${typed === undefined ? showValue(value) : showValue(typed)}`;
  switch (t.kind) {
    case 'int':
      // Past 2^53 a number is no longer an exact integer (1e300 passes Number.isInteger).
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return bad;
      if ((t.min !== undefined && value < t.min) || (t.max !== undefined && value > t.max)) return bad;
      return undefined;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad;
      if (t.min !== undefined && (t.exclusiveMin ? value <= t.min : value < t.min)) return bad;
      if (t.max !== undefined && (t.exclusiveMax ? value >= t.max : value > t.max)) return bad;
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : bad;
    case 'string':
      return typeof value === 'string' && (t.pattern === undefined || t.pattern.test(value)) ? undefined : bad;
    case 'enum':
      return typeof value === 'string' && t.values.includes(value) ? undefined : bad;
  }
}

/** Parses a command-line string into the field's type ('true', '0.5', 'LINEAR', ...). */
export function parseValue(text: string, t: FieldType): unknown {
  switch (t.kind) {
    case 'int':
    case 'number':
      return text.trim() === '' ? NaN : Number(text);
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    default:
      return text;
  }
}

/**
 * Defaults overlaid with the given values, every key and value checked. `what` names the config
 * in messages (e.g. 'model config').
 */
export function resolve<T>(schema: Schema, values: Record<string, unknown>, what: string): T {
  const known = Object.keys(schema);
  const errors: string[] = [];
  for (const key of Object.keys(values)) {
    if (!(key in schema)) {
      const near = suggest(key, known);
      errors.push(`unknown key ${showValue(key)}${near ? ` (did you mean '${near}'?)` : ''}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const value = key in values && values[key] !== undefined ? values[key] : spec.default;
    const problem = checkValue(value, spec.type);
    if (problem) errors.push(`${key} ${problem}`);
    out[key] = value;
  }
  if (errors.length) throw new Error(`invalid ${what}: ${errors.join('; ')}`);
  return out as T;
}

/** A human-readable table of a schema: name, type, default, description. */
export function describeSchema(schema: Schema): string {
  return Object.entries(schema)
    .map(([k, s]) => `${k} (${describeType(s.type)}, default ${JSON.stringify(s.default)}): ${s.doc}`)
    .join('\n');
}
