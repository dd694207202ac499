// What makes a checkpoint trustworthy. state.json carries, under the reserved key "__integrity__",
// the size and SHA-256 of each tensor file (its header and its data separately, so loading hashes
// each byte once, as it reads it) and a digest of every other top-level field of the state, plus a
// digest of the block itself. A damaged or edited checkpoint is then refused naming the file and the
// field, and the tensor files also record their data's digest in their own "__metadata__".
import { createHash } from 'crypto';
import { showValue } from '../../util/excerpt';
import type { WrittenFile } from './safetensors';

export const INTEGRITY_KEY = '__integrity__';

/** A checkpoint file that is damaged, edited or inconsistent: names the file and, where known, the field. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }

  /** "checkpoint file F, field 'x': problem" */
  static at(file: string, problem: string, field?: string): CheckpointError {
    return new CheckpointError(`checkpoint file ${file}${field === undefined ? '' : `, field '${field}'`}: ${problem}`, file, field);
  }
}

export interface TensorFileSums {
  bytes: number;
  header_sha256: string;
  data_sha256: string;
}

export interface Integrity {
  version: 1;
  files: Record<string, TensorFileSums>;
  /** Digest of each other top-level field of state.json (of JSON.stringify of its value). */
  fields: Record<string, string>;
  /** Digest of JSON.stringify({ version, files, fields }): an edit of this block is told from damage elsewhere. */
  self: string;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const DIGEST = /^[0-9a-f]{64}$/;

function fieldDigests(state: object): Record<string, string> {
  return Object.fromEntries(Object.entries(state).filter(([k]) => k !== INTEGRITY_KEY).map(([k, v]) => [k, sha256(JSON.stringify(v) ?? 'undefined')]));
}

function selfDigest(block: Pick<Integrity, 'version' | 'files' | 'fields'>): string {
  return sha256(JSON.stringify({ version: block.version, files: block.files, fields: block.fields }));
}

/** The "__integrity__" block of a checkpoint whose tensor files were written as `tensorFiles`. */
export function integrityFor(tensorFiles: Record<string, WrittenFile>, state: object): Integrity {
  const files: Record<string, TensorFileSums> = {};
  for (const [name, w] of Object.entries(tensorFiles)) files[name] = { bytes: w.bytes, header_sha256: w.headerSha256, data_sha256: w.dataSha256 };
  const block = { version: 1 as const, files, fields: fieldDigests(state) };
  return { ...block, self: selfDigest(block) };
}

/**
 * Checks a parsed state.json against its "__integrity__" block: the block's own shape and digest,
 * then every field. Returns the block, or undefined for a state written before checksums.
 */
export function checkStateIntegrity(file: string, state: Record<string, unknown>, tensorFiles: readonly string[]): Integrity | undefined {
  if (!(INTEGRITY_KEY in state)) return undefined;
  const bad: (field: string, problem: string) => never = (field, problem) => {
    throw CheckpointError.at(file, problem, field);
  };
  const found = state[INTEGRITY_KEY];
  if (typeof found !== 'object' || found === null || Array.isArray(found)) bad(INTEGRITY_KEY, 'is not an object');
  const block = found as Partial<Integrity>;
  const at = (k: string) => `${INTEGRITY_KEY}.${k}`;
  if (block.version !== 1) bad(at('version'), `is ${showValue(block.version)}, expected 1`);
  if (typeof block.files !== 'object' || block.files === null) bad(at('files'), 'is not an object');
  for (const name of tensorFiles) {
    const item = (block.files as Record<string, unknown>)[name];
    if (typeof item !== 'object' || item === null) bad(at(`files.${name}`), 'is missing');
    const entry = item as Record<string, unknown>;
    if (!Number.isSafeInteger(entry['bytes']) || (entry['bytes'] as number) < 0) bad(at(`files.${name}.bytes`), `is ${showValue(entry['bytes'])}, not a size`);
    for (const k of ['header_sha256', 'data_sha256']) {
      if (typeof entry[k] !== 'string' || !DIGEST.test(entry[k] as string)) bad(at(`files.${name}.${k}`), 'is not a SHA-256 digest');
    }
  }
  if (typeof block.fields !== 'object' || block.fields === null || Array.isArray(block.fields)) bad(at('fields'), 'is not an object');
  if (typeof block.self !== 'string' || block.self !== selfDigest(block as Integrity)) bad(at('self'), 'does not match the block: it was edited or damaged');
  const now = fieldDigests(state);
  const recorded = block.fields as Record<string, string>;
  for (const k of new Set([...Object.keys(recorded), ...Object.keys(now)])) {
    if (!(k in now)) bad(k, 'was removed (the checkpoint recorded it)');
    if (!(k in recorded)) bad(k, 'was added after the checkpoint was written');
    if (now[k] !== recorded[k]) bad(k, `does not match the checksum recorded in ${INTEGRITY_KEY}: it was edited or damaged`);
  }
  return block as Integrity;
}

/** Throws unless a safetensors file's size, header and data are the ones recorded. */
export function verifyTensorFile(file: string, name: string, loaded: { bytes: number; headerSha256: string; dataSha256: string }, integrity: Integrity): void {
  const recorded = integrity.files[name]!;
  if (loaded.bytes !== recorded.bytes) throw CheckpointError.at(file, `holds ${loaded.bytes} bytes, ${recorded.bytes} were written (truncated or extended)`);
  if (loaded.headerSha256 !== recorded.header_sha256) throw CheckpointError.at(file, 'does not match the checksum recorded in state.json (edited or damaged)', 'header');
  if (loaded.dataSha256 !== recorded.data_sha256) throw CheckpointError.at(file, 'does not match the checksum recorded in state.json (a flipped bit or a damaged copy)', 'data');
}
