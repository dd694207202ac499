// The safetensors file format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header padded with spaces to a multiple of 8,
// then the tensors' bytes back to back. Files written here load in Python's safetensors and
// torch; files from there load here.
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { endianness } from 'os';
import * as path from 'path';
import { dispose, tensor, type Device, type DType, type Tensor } from '../../tensor';
import { excerpt, quote, showValue } from '../../util/excerpt';

/** safetensors dtype names, ranked as in the reference implementation's Dtype enum (its sort key). */
const FORMAT_DTYPES = {
  float64: { name: 'F64', size: 8, rank: 12 },
  float32: { name: 'F32', size: 4, rank: 11 },
  int64: { name: 'I64', size: 8, rank: 13 },
  int32: { name: 'I32', size: 4, rank: 9 },
  bfloat16: { name: 'BF16', size: 2, rank: 8 },
  float16: { name: 'F16', size: 2, rank: 7 },
  int16: { name: 'I16', size: 2, rank: 5 },
  int8: { name: 'I8', size: 1, rank: 2 },
  uint8: { name: 'U8', size: 1, rank: 1 },
  bool: { name: 'BOOL', size: 1, rank: 0 },
} as const;
type StoredDType = keyof typeof FORMAT_DTYPES;
const BY_FORMAT_NAME = new Map(Object.entries(FORMAT_DTYPES).map(([dtype, f]) => [f.name as string, dtype as StoredDType]));

/** The reference reader refuses larger headers; so do we, before allocating one. */
const MAX_HEADER_BYTES = 100_000_000;
/** fs.writeSync/readSync take at most 2 GiB at a time. */
const IO_CHUNK = 1 << 30;

// ---- float16 / bfloat16 bit conversions ----
// Read-back widens float16/bfloat16 tensors to float32, so their stored bits are recomputed here.
// Both conversions are exact for values that came from those dtypes and round to nearest even
// otherwise, like libtorch.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a value (first rounded to float32), round-to-nearest-even. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // Inf; NaN stays quiet
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand, rounding on the dropped bits.
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e;
    let out = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (out & 1) === 1)) out++;
    return sign | out; // a carry into bit 10 gives the smallest normal, as it should
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1) === 1)) out++; // a carry may reach Inf: correct
  return sign | out;
}

/** The value of IEEE binary16 bits (exact in float32). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) {
    if (mant === 0) return sign * Infinity;
    u32[0] = ((bits & 0x8000) << 16) | 0x7f800000 | (mant << 13); // keep the payload
    return f32[0]!;
  }
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits of a value (first rounded to float32): the upper half, round-to-nearest-even. */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x0040; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; // the carry may reach Inf: correct
}

export function bfloat16BitsToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

// ---- encoding ----

interface Entry {
  name: string;
  tensor: Tensor;
  dtype: StoredDType;
  shape: number[];
  begin: number;
  end: number;
}

function storedDType(name: string, dtype: DType): StoredDType {
  if (!(dtype in FORMAT_DTYPES)) throw new Error(`safetensors: tensor '${name}' has dtype ${dtype}, which the format cannot store`);
  return dtype as StoredDType;
}

/** The tensors in file order, each with its byte range in the data section. */
function layout(tensors: Map<string, Tensor>): Entry[] {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian machines are supported');
  const entries: Entry[] = [];
  for (const [name, t] of tensors) {
    if (typeof name !== 'string' || name === '__metadata__') throw new Error(`safetensors: invalid tensor name ${JSON.stringify(name)}`);
    const dtype = storedDType(name, t.dtype);
    entries.push({ name, tensor: t, dtype, shape: [...t.shape], begin: 0, end: 0 });
  }
  // Like the reference writer: larger dtypes first, so each tensor starts aligned to its element
  // size (the buffer starts at 8 + N, a multiple of 8); then by name (as UTF-8 bytes, like Rust).
  entries.sort(
    (a, b) => FORMAT_DTYPES[b.dtype].rank - FORMAT_DTYPES[a.dtype].rank || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  );
  let offset = 0;
  for (const e of entries) {
    e.begin = offset;
    offset += e.shape.reduce((a, b) => a * b, 1) * FORMAT_DTYPES[e.dtype].size;
    e.end = offset;
  }
  return entries;
}

/** The 8-byte length and the JSON header, padded with spaces to a multiple of 8. */
function headerBytes(entries: readonly Entry[], metadata: Record<string, string> | undefined): Buffer {
  // Built by hand: a JavaScript object would put integer-like names first and treat
  // "__proto__" specially.
  const fields: string[] = [];
  if (metadata !== undefined) {
    const pairs = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata '${k}' must be a string, got ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    fields.push(`"__metadata__":{${pairs.join(',')}}`);
  }
  for (const e of entries) {
    const info = { dtype: FORMAT_DTYPES[e.dtype].name, shape: e.shape, data_offsets: [e.begin, e.end] };
    fields.push(`${JSON.stringify(e.name)}:${JSON.stringify(info)}`);
  }
  const text = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const padded = Buffer.alloc(Math.ceil(text.length / 8) * 8, 0x20);
  text.copy(padded);
  const header = Buffer.alloc(8 + padded.length);
  header.writeBigUInt64LE(BigInt(padded.length), 0);
  padded.copy(header, 8);
  return header;
}

/** A tensor's bytes in the file: C order, little-endian; float16/bfloat16 re-encoded from float32. */
function tensorBytes(e: Entry): Uint8Array {
  const data = e.tensor.dataSync();
  let bytes: Uint8Array;
  if (e.dtype === 'float16' || e.dtype === 'bfloat16') {
    const wide = data as Float32Array;
    const narrow = new Uint16Array(wide.length);
    const convert = e.dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
    for (let i = 0; i < wide.length; i++) narrow[i] = convert(wide[i]!);
    bytes = new Uint8Array(narrow.buffer);
  } else {
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (bytes.length !== e.end - e.begin) {
    throw new Error(`safetensors: tensor '${e.name}' read back ${bytes.length} bytes, expected ${e.end - e.begin}`);
  }
  return bytes;
}

/**
 * The metadata key under which checksummed files (checkpoints) record the SHA-256 of their data
 * section, in hex. Readers that do not know it see one more string in "__metadata__".
 */
export const DATA_CHECKSUM_KEY = 'data_sha256';

export interface WriteOptions {
  /** Record the data section's SHA-256 in the metadata (DATA_CHECKSUM_KEY), verified on every load. */
  checksum?: boolean;
}

/** What was written: the file's size and the SHA-256 of its header (length field included) and of its data. */
export interface WrittenFile {
  bytes: number;
  headerSha256: string;
  /** Empty unless the file was written with a checksum. */
  dataSha256: string;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function withChecksum(metadata: Record<string, string> | undefined, digest: string): Record<string, string> {
  return { ...metadata, [DATA_CHECKSUM_KEY]: digest };
}

/** A whole safetensors file in memory. metadata goes into "__metadata__" (omitted when undefined). */
export function encodeSafetensors(tensors: Map<string, Tensor>, metadata?: Record<string, string>, options: WriteOptions = {}): Buffer {
  const entries = layout(tensors);
  const data = entries.map(tensorBytes);
  const meta = options.checksum ? withChecksum(metadata, data.reduce((h, b) => h.update(b), createHash('sha256')).digest('hex')) : metadata;
  return Buffer.concat([headerBytes(entries, meta), ...data]);
}

/** Writes all of bytes (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    done += fs.writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done));
  }
}

/** fsync a folder so that a rename in it survives a crash; some platforms cannot (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file so that it is either the complete new content or untouched: write() fills a
 * temporary file in the same folder, which is fsynced and renamed over the target. On any error
 * the temporary file is removed and the error rethrown.
 */
export function writeFileAtomic(file: string, write: (fd: number) => void): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd = fs.openSync(tmp, 'wx');
  try {
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(path.resolve(file)));
}

/**
 * Writes a safetensors file atomically, one tensor in memory at a time. With a checksum, the header
 * first goes out with a placeholder digest of the same length and is rewritten once the data is
 * hashed, so the data is read back from the tensors only once.
 */
export function saveSafetensors(file: string, tensors: Map<string, Tensor>, metadata?: Record<string, string>, options: WriteOptions = {}): WrittenFile {
  let written: WrittenFile | undefined;
  writeFileAtomic(file, (fd) => {
    // Inside the write so that a bad tensor (disposed, unsupported dtype) also cleans up.
    const entries = layout(tensors);
    const placeholder = options.checksum ? withChecksum(metadata, '0'.repeat(64)) : metadata;
    let header = headerBytes(entries, placeholder);
    writeAll(fd, header);
    const hash = createHash('sha256');
    for (const e of entries) {
      const bytes = tensorBytes(e);
      if (options.checksum) hash.update(bytes);
      writeAll(fd, bytes);
    }
    const digest = options.checksum ? hash.digest('hex') : '';
    if (options.checksum) {
      header = headerBytes(entries, withChecksum(metadata, digest));
      for (let done = 0; done < header.length; ) done += fs.writeSync(fd, header, done, header.length - done, done);
    }
    written = { bytes: header.length + (entries.length ? entries[entries.length - 1]!.end : 0), headerSha256: sha256(header), dataSha256: digest };
  });
  return written!;
}

// ---- decoding ----

export interface LoadOptions {
  /** Where the tensors go (default cpu). */
  device?: Device;
}

export interface Safetensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
  /** SHA-256 of the header as stored (length field included), and of the data section. */
  headerSha256: string;
  dataSha256: string;
}

/** Random access to the bytes of a file or a buffer. */
interface Source {
  size: number;
  /** Exactly length bytes at position, in a fresh (so aligned) buffer. */
  read(position: number, length: number): Uint8Array;
}

interface Info {
  name: string;
  dtype: StoredDType;
  shape: number[];
  begin: number;
  end: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The header's tensor entries in file order, checked against each other and the file size. */
function parseHeader(source: Source, fail: (msg: string) => never): { infos: Info[]; metadata: Record<string, string>; dataStart: number; headerSha256: string } {
  if (source.size < 8) fail(`too short (${source.size} bytes) to hold the 8-byte header length`);
  const lengthField = source.read(0, 8);
  const n = Buffer.from(lengthField).readBigUInt64LE(0);
  if (n > BigInt(source.size - 8)) fail(`header length ${n} goes beyond the end of the file (${source.size} bytes)`);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLength = Number(n);
  const headerBytes = source.read(8, headerLength);
  const headerSha256 = createHash('sha256').update(lengthField).update(headerBytes).digest('hex');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    if (!text.startsWith('{')) throw new Error(`it starts with ${JSON.stringify(text.slice(0, 16))}`);
    json = JSON.parse(text);
  } catch (e) {
    fail(`header is not JSON: ${excerpt((e as Error).message, 160)}`);
  }
  if (!isRecord(json)) fail('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const infos: Info[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(value)) fail('"__metadata__" is not an object');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') fail(`"__metadata__" entry '${excerpt(k, 80)}' is not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const where = `tensor '${excerpt(name, 80)}'`;
    if (!isRecord(value)) fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    const stored = typeof dtype === 'string' ? BY_FORMAT_NAME.get(dtype) : undefined;
    if (stored === undefined) fail(`${where}: unknown dtype ${quote(dtype, 40)}; supported: ${[...BY_FORMAT_NAME.keys()].join(', ')}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`${where}: shape ${showValue(shape, 80)} is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(`${where}: data_offsets ${showValue(offsets, 80)} is not a pair of byte offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] are out of order`);
    const bytes = (shape as number[]).reduce((a, b) => a * b, 1) * FORMAT_DTYPES[stored].size;
    if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
      fail(`${where}: shape [${shape}] of ${dtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    infos.push({ name, dtype: stored, shape: shape as number[], begin, end });
  }

  // The tensors must tile the buffer exactly: no overlaps, no gaps, nothing after the last one.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const info of infos) {
    if (info.begin < covered) fail(`tensor '${excerpt(info.name, 80)}': data_offsets [${info.begin}, ${info.end}] overlap the previous tensor (which ends at ${covered})`);
    if (info.begin > covered) fail(`tensor '${excerpt(info.name, 80)}': data_offsets [${info.begin}, ${info.end}] leave a gap after byte ${covered}`);
    covered = info.end;
  }
  const dataStart = 8 + headerLength;
  const available = source.size - dataStart;
  if (available < covered) fail(`truncated: the header describes ${covered} bytes of tensor data but the file holds ${available} (a partial write?)`);
  if (available > covered) fail(`${available - covered} unexpected bytes after the last tensor (the header describes ${covered})`);
  const digest = metadata[DATA_CHECKSUM_KEY];
  if (digest !== undefined && !/^[0-9a-f]{64}$/.test(digest)) fail(`"__metadata__" entry '${DATA_CHECKSUM_KEY}' is not a SHA-256 digest`);
  return { infos, metadata, dataStart, headerSha256 };
}

function makeTensor(info: Info, bytes: Uint8Array, device: Device | undefined): Tensor {
  const options = { shape: info.shape, dtype: info.dtype as DType, device };
  const buffer = bytes.buffer as ArrayBuffer;
  const count = bytes.byteLength / FORMAT_DTYPES[info.dtype].size;
  switch (info.dtype) {
    case 'float16':
    case 'bfloat16': {
      // Decoded values are exact in float32 and libtorch's narrowing gives the same bits back
      // (NaN payloads become libtorch's canonical NaN).
      const bits = new Uint16Array(buffer, bytes.byteOffset, count);
      const decode = info.dtype === 'float16' ? float16BitsToFloat32 : bfloat16BitsToFloat32;
      const wide = new Float32Array(count);
      for (let i = 0; i < count; i++) wide[i] = decode(bits[i]!);
      return tensor(wide, options);
    }
    case 'float32':
      return tensor(new Float32Array(buffer, bytes.byteOffset, count), options);
    case 'float64':
      return tensor(new Float64Array(buffer, bytes.byteOffset, count), options);
    case 'int64':
      return tensor(new BigInt64Array(buffer, bytes.byteOffset, count), options);
    case 'int32':
      return tensor(new Int32Array(buffer, bytes.byteOffset, count), options);
    case 'int16':
      return tensor(new Int16Array(buffer, bytes.byteOffset, count), options);
    case 'int8':
      return tensor(new Int8Array(buffer, bytes.byteOffset, count), options);
    case 'uint8':
    case 'bool':
      return tensor(new Uint8Array(buffer, bytes.byteOffset, count), options);
  }
}

/** A file that is not valid safetensors, or whose data does not match its recorded checksum. */
export class SafetensorsFormatError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`safetensors file ${file}: ${problem}`);
    this.name = 'SafetensorsFormatError';
  }
}

function decode(source: Source, what: string, options: LoadOptions): Safetensors {
  const fail = (msg: string): never => {
    throw new SafetensorsFormatError(what, msg);
  };
  const { infos, metadata, dataStart, headerSha256 } = parseHeader(source, fail);
  const tensors = new Map<string, Tensor>();
  // infos are in file order and tile the data section, so this hashes it from first byte to last.
  const hash = createHash('sha256');
  let dataSha256: string;
  try {
    for (const info of infos) {
      const bytes = source.read(dataStart + info.begin, info.end - info.begin);
      hash.update(bytes);
      tensors.set(info.name, makeTensor(info, bytes, options.device));
    }
    dataSha256 = hash.digest('hex');
    const recorded = metadata[DATA_CHECKSUM_KEY];
    if (recorded !== undefined && recorded !== dataSha256) {
      fail(`the tensor data does not match its checksum (${DATA_CHECKSUM_KEY} ${recorded.slice(0, 12)}…, the bytes hash to ${dataSha256.slice(0, 12)}…): a flipped bit or a damaged copy`);
    }
  } catch (e) {
    dispose([...tensors.values()]);
    throw e;
  }
  return { tensors, metadata, headerSha256, dataSha256 };
}

/** Parses safetensors bytes held in memory; name goes into error messages. */
export function decodeSafetensors(bytes: Uint8Array, options: LoadOptions & { name?: string } = {}): Safetensors {
  const source: Source = { size: bytes.length, read: (position, length) => bytes.slice(position, position + length) };
  return decode(source, options.name ?? '(buffer)', options);
}

/**
 * Reads a safetensors file, checking the header against the file before reading any tensor;
 * every problem is an Error naming the file. The caller disposes the tensors.
 */
export function loadSafetensors(file: string, options: LoadOptions = {}): Safetensors {
  const fd = fs.openSync(file, 'r');
  try {
    const source: Source = {
      size: fs.fstatSync(fd).size,
      read(position, length) {
        const out = new Uint8Array(length);
        for (let done = 0; done < length; ) {
          const got = fs.readSync(fd, out, done, Math.min(IO_CHUNK, length - done), position + done);
          if (got === 0) throw new SafetensorsFormatError(file, `unexpected end of file at byte ${position + done} (changed while reading?)`);
          done += got;
        }
        return out;
      },
    };
    return decode(source, file, options);
  } finally {
    fs.closeSync(fd);
  }
}
