// TensorBoard event files: TFRecord-framed `Event` protos, encoded by hand so that no protobuf
// dependency is needed. Each record goes out in one synchronous write, so a crash loses at most
// the record in flight (and TensorBoard's reader stops cleanly at a truncated tail).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { maskedCrc32c } from './crc32c';
import { makeDirs } from '../../util/files';

// ---- minimal protobuf encoding (only the wire types Event needs) ----

const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  Fixed32 = 5,
}

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value); // int64 negatives become 10-byte two's complement, as in protobuf
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function key(field: number, wire: Wire): Buffer {
  return varint(BigInt((field << 3) | wire));
}

function bytesField(field: number, data: Uint8Array | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([key(field, Wire.Bytes), varint(BigInt(b.length)), b]);
}

function doubleField(field: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return Buffer.concat([key(field, Wire.Fixed64), b]);
}

function floatField(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  return Buffer.concat([key(field, Wire.Fixed32), b]);
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
// Summary { repeated Value value = 1; }  Summary.Value { string tag = 1; float simple_value = 2; }

function encodeEvent(wallTime: number, step: number | undefined, body: Buffer): Buffer {
  const parts = [doubleField(1, wallTime)];
  if (step !== undefined) parts.push(key(2, Wire.Varint), varint(BigInt(step)));
  parts.push(body);
  return Buffer.concat(parts);
}

function encodeScalarSummary(scalars: [string, number][]): Buffer {
  const values = scalars.map(([tag, v]) => bytesField(1, Buffer.concat([bytesField(1, tag), floatField(2, v)])));
  return bytesField(5, Buffer.concat(values));
}

/** One TFRecord: u64 LE length, masked CRC of the length bytes, data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, data, footer]);
}

// Distinguishes files one process opens within the same second in the same folder.
let fileCounter = 0;

export class EventFileWriter {
  readonly file: string;
  private fd: number | undefined;

  constructor(dir: string) {
    makeDirs(dir);
    const seconds = Math.floor(Date.now() / 1000);
    this.file = path.join(dir, `events.out.tfevents.${seconds}.${os.hostname()}.${process.pid}.${fileCounter++}`);
    this.fd = fs.openSync(this.file, 'wx'); // never append to (or clobber) someone else's file
    this.writeRecord(encodeEvent(Date.now() / 1000, undefined, bytesField(3, 'brain.Event:2')));
  }

  /**
   * Writes one Event holding every scalar in `scalars` (in key order) at `step`. Non-finite values
   * are written as they are (TensorBoard plots NaN/Inf); values are stored as float32.
   */
  addScalars(step: number, scalars: Record<string, number>, wallTime: number = Date.now() / 1000): void {
    if (!Number.isSafeInteger(step)) throw new TypeError(`step must be an integer, got ${String(step)}`);
    if (typeof wallTime !== 'number' || !Number.isFinite(wallTime)) {
      throw new TypeError(`wallTime must be a finite number, got ${String(wallTime)}`);
    }
    const entries = Object.entries(scalars);
    for (const [tag, v] of entries) {
      // Checked before anything is written, so a bad value never leaves a partial event behind.
      if (typeof v !== 'number') throw new TypeError(`scalar '${tag}' must be a number, got ${typeof v}`);
    }
    if (entries.length === 0) return;
    this.writeRecord(encodeEvent(wallTime, step, encodeScalarSummary(entries)));
  }

  /** Forces written records to disk (writes are already unbuffered; this survives power loss too). */
  flush(): void {
    if (this.fd !== undefined) fs.fsyncSync(this.fd);
  }

  /** Closes the file; later closes are no-ops, later writes throw. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }

  private writeRecord(data: Buffer): void {
    if (this.fd === undefined) throw new Error(`event file ${this.file} is closed`);
    const record = frameRecord(data);
    let off = 0; // writeSync may write less than asked (e.g. on a full pipe); finish the record
    while (off < record.length) off += fs.writeSync(this.fd, record, off, record.length - off);
  }
}
