// Request bodies of /predict and /embed, in Hugging Face text-embeddings-inference's shapes, checked
// field by field: every error says what is wrong and where.

/** An error answered with an HTTP status and TEI's error body { error, error_type }. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const invalid = (message: string) => new HttpError(422, 'Validation', message);

export interface PredictRequest {
  /** Each input as its list of segments. */
  inputs: string[][];
  /** The body held one input (answer with one list), not a list of them. */
  single: boolean;
  truncate: boolean;
  rawScores: boolean;
}

export interface EmbedRequest {
  inputs: string[][];
  /** The body held one string, not a list (the answer is a list either way, as TEI's). */
  single: boolean;
  truncate: boolean;
  normalize: boolean;
}

/** The JSON body as a value; malformed JSON is a 400 that quotes the parser. */
export function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'Empty', 'the request body is empty; send a JSON object such as {"inputs": "some text"}');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'Validation', `malformed JSON: ${(error as Error).message}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The body's fields, after checking it is an object with only known fields. */
function fields(body: unknown, endpoint: string, known: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(`the body of ${endpoint} must be a JSON object such as {"inputs": "some text"}, got ${describe(body)}`);
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !known.includes(k));
  if (unknown.length) throw invalid(`unknown field '${unknown[0]}' in the body of ${endpoint} (known fields: ${known.join(', ')})`);
  if (!('inputs' in record)) throw invalid(`the body of ${endpoint} has no 'inputs'`);
  return record;
}

function flag(record: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = record[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(`'${name}' must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Inputs are cut at their end, keeping the head, as in training; TEI's 'Right'. */
function checkTruncationDirection(record: Record<string, unknown>): void {
  const value = record['truncation_direction'];
  if (value === undefined || value === null || value === 'Right' || value === 'right') return;
  throw invalid(`truncation_direction ${JSON.stringify(value)} is not supported: inputs are cut at their end ('Right'), as in training`);
}

function checkCount(count: number, maxInputs: number): void {
  if (count === 0) throw new HttpError(400, 'Empty', "'inputs' is an empty list");
  if (count > maxInputs) throw invalid(`'inputs' holds ${count} inputs, more than the ${maxInputs} one request may send (--max-client-batch-size)`);
}

/** One input of a list: a string (one segment) or a list of strings (its segments). */
function segmentsOf(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw invalid(`${where}: expected a string or a list of strings (the segments), got ${describe(value)}`);
  value.forEach((s, k) => {
    if (typeof s !== 'string') throw invalid(`${where}[${k}]: expected a string, got ${describe(s)}`);
  });
  return value as string[];
}

/**
 * POST /predict. `inputs` is a string, one input's list of segments (a list of as many strings as
 * the model takes segments, when that is more than one: TEI's pair), or a list of inputs, each a
 * string or a list of segments.
 */
export function parsePredict(body: unknown, model: { segments: readonly string[] }, maxInputs: number): PredictRequest {
  const record = fields(body, '/predict', ['inputs', 'truncate', 'raw_scores', 'truncation_direction']);
  checkTruncationDirection(record);
  const truncate = flag(record, 'truncate', false);
  const rawScores = flag(record, 'raw_scores', false);
  const raw = record['inputs'];
  const need = model.segments.length;
  let inputs: string[][];
  let single = false;
  if (typeof raw === 'string') {
    inputs = [[raw]];
    single = true;
  } else if (Array.isArray(raw)) {
    if (need > 1 && raw.length === need && raw.every((v) => typeof v === 'string')) {
      inputs = [raw as string[]];
      single = true;
    } else {
      inputs = raw.map((v, i) => segmentsOf(v, `inputs[${i}]`));
    }
  } else {
    throw invalid(`'inputs' must be a string, a list of segments or a list of inputs, got ${describe(raw)}`);
  }
  checkCount(inputs.length, maxInputs);
  inputs.forEach((segments, i) => {
    if (segments.length !== need) {
      const where = single ? 'inputs' : `inputs[${i}]`;
      throw invalid(`${where}: the model takes ${need} segment${need === 1 ? '' : 's'} (${model.segments.join(', ')}), got ${segments.length}`);
    }
  });
  return { inputs, single, truncate, rawScores };
}

/** POST /embed. `inputs` is a string or a list of strings (TEI's shape); the answer is always a list. */
export function parseEmbed(body: unknown, maxInputs: number): EmbedRequest {
  const record = fields(body, '/embed', ['inputs', 'truncate', 'normalize', 'truncation_direction']);
  checkTruncationDirection(record);
  const truncate = flag(record, 'truncate', false);
  const normalize = flag(record, 'normalize', true);
  const raw = record['inputs'];
  let inputs: string[][];
  const single = typeof raw === 'string';
  if (typeof raw === 'string') inputs = [[raw]];
  else if (Array.isArray(raw)) {
    inputs = raw.map((v, i) => {
      if (typeof v !== 'string') throw invalid(`inputs[${i}]: expected a string, got ${describe(v)}`);
      return [v];
    });
  } else throw invalid(`'inputs' must be a string or a list of strings, got ${describe(raw)}`);
  checkCount(inputs.length, maxInputs);
  return { inputs, single, truncate, normalize };
}
