// What one fuzzed call is, and how its outcome is judged.

export type Expectation = 'ok' | 'error' | 'any';

export interface FuzzCase {
  /** The area of the public API it exercises (tensor, moe, data, ...). */
  area: string;
  /**
   * The call, as the body of an async function of the scope (see scope.ts); a synchronous body runs
   * inside sm.tidy() so that every tensor it creates is freed.
   */
  code: string;
  /** ok: valid input, must not throw; error: invalid input, must be refused; any: either. */
  expect: Expectation;
  /** Strings an error message must contain (a file name, a field). */
  mentions?: string[];
  /** The body awaits (tokenizer batches, corpus streams): it frees its own tensors. */
  async?: boolean;
}

/** Thrown by check() in a call's code: an oracle inside the call found a wrong result. */
export class OracleFailure extends Error {
  override name = 'OracleFailure';
}

// Messages that come from a bug in our code rather than from a check of the input.
const INTERNAL = /Cannot read propert|is not a function|is not iterable|Cannot destructure|(undefined|null) is not (a function|an object|iterable)|Cannot convert undefined|Maximum call stack|Invalid array length|Invalid typed array length|Array buffer allocation failed/;
// Control characters a terminal would act on (a message may span lines).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const MAX_MESSAGE = 2000;

/** Problems with how a call ended (empty: fine). */
export function judge(c: FuzzCase, threw: boolean, error: unknown): string[] {
  const problems: string[] = [];
  if (!threw) {
    if (c.expect === 'error') problems.push('accepted silently: expected an error');
    return problems;
  }
  if (!(error instanceof Error)) return [`threw a non-Error: ${String(error).slice(0, 200)}`];
  const message = error.message;
  if (error instanceof OracleFailure || error.name === 'OracleFailure') return [`wrong result: ${message}`];
  if (c.expect === 'ok') problems.push(`refused valid input: ${error.name}: ${oneLine(message)}`);
  if (INTERNAL.test(message)) problems.push(`internal error instead of a message: ${error.name}: ${oneLine(message)}`);
  if (message.includes('Exception raised from')) problems.push('C++ backtrace in the message');
  if (CONTROL.test(message)) problems.push(`raw control character in the message: ${JSON.stringify(message.slice(0, 200))}`);
  if (message.length > MAX_MESSAGE) problems.push(`message of ${message.length} characters`);
  for (const m of c.mentions ?? []) {
    if (!message.includes(m)) problems.push(`message does not name ${JSON.stringify(m)}: ${oneLine(message)}`);
  }
  return problems;
}

export function oneLine(s: string, max = 300): string {
  const flat = JSON.stringify(s).slice(1, -1);
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
