// Training summaries: CRC-32C, TensorBoard event files (checked by an independent reader defined
// here, so a bug shared by writer and reader cannot hide), metrics.jsonl, and the Summaries class.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c, maskCrc, maskedCrc32c } from '../lib/train/summaries/crc32c';
import { EventFileWriter, MetricsLog, readMetricsLog, Summaries } from '../lib/train/summaries';
import { DataError } from '../lib/data/errors';

const tmpDirs: string[] = [];
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-summaries-'));
  tmpDirs.push(d);
  return d;
}

// ======================= independent reader =======================

/** Bit-at-a-time CRC-32C: deliberately not the writer's table-driven code. */
function refCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

function refMask(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + 0xa282ead8) % 2 ** 32;
}

/** Splits a TFRecord file, verifying both CRCs of every record; throws on a truncated tail. */
function readRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new Error(`truncated record header at byte ${off}`);
    const len = Number(buf.readBigUInt64LE(off));
    assert.equal(buf.readUInt32LE(off + 8), refMask(refCrc32c(buf.subarray(off, off + 8))), `length CRC at ${off}`);
    if (off + 12 + len + 4 > buf.length) throw new Error(`truncated record data at byte ${off}`);
    const data = buf.subarray(off + 12, off + 12 + len);
    assert.equal(buf.readUInt32LE(off + 12 + len), refMask(refCrc32c(data)), `data CRC at ${off}`);
    out.push(data);
    off += 12 + len + 4;
  }
  return out;
}

type Field = { no: number; varint?: bigint; fixed64?: Buffer; fixed32?: Buffer; bytes?: Buffer };

/** Minimal protobuf decoder: the wire-level fields of one message. */
function decodeFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let off = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (off >= buf.length) throw new Error('truncated varint');
      const b = buf[off++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (off < buf.length) {
    const key = Number(readVarint());
    const no = key >> 3;
    switch (key & 7) {
      case 0:
        fields.push({ no, varint: readVarint() });
        break;
      case 1:
        fields.push({ no, fixed64: buf.subarray(off, (off += 8)) });
        break;
      case 2: {
        const n = Number(readVarint());
        fields.push({ no, bytes: buf.subarray(off, (off += n)) });
        break;
      }
      case 5:
        fields.push({ no, fixed32: buf.subarray(off, (off += 4)) });
        break;
      default:
        throw new Error(`unexpected wire type ${key & 7}`);
    }
    if (off > buf.length) throw new Error('field runs past the message');
  }
  return fields;
}

interface ParsedEvent {
  wallTime?: number;
  step: number; // proto3 default 0 when absent
  fileVersion?: string;
  values: { tag: string; value: number }[];
}

function parseEvent(data: Buffer): ParsedEvent {
  const ev: ParsedEvent = { step: 0, values: [] };
  for (const f of decodeFields(data)) {
    if (f.no === 1 && f.fixed64) ev.wallTime = f.fixed64.readDoubleLE(0);
    else if (f.no === 2 && f.varint !== undefined) ev.step = Number(BigInt.asIntN(64, f.varint));
    else if (f.no === 3 && f.bytes) ev.fileVersion = f.bytes.toString('utf8');
    else if (f.no === 5 && f.bytes) {
      for (const v of decodeFields(f.bytes)) {
        assert.ok(v.no === 1 && v.bytes, 'Summary holds only Value entries');
        let tag = '';
        let value = NaN;
        for (const g of decodeFields(v.bytes)) {
          if (g.no === 1 && g.bytes) tag = g.bytes.toString('utf8');
          else if (g.no === 2 && g.fixed32) value = g.fixed32.readFloatLE(0);
        }
        ev.values.push({ tag, value });
      }
    } else assert.fail(`unexpected Event field ${f.no}`);
  }
  return ev;
}

function readEventFile(file: string): ParsedEvent[] {
  return readRecords(fs.readFileSync(file)).map(parseEvent);
}

// ======================= CRC =======================

test('CRC-32C check values and masked CRC', () => {
  assert.equal(crc32c('123456789'), 0xe3069283);
  assert.equal(crc32c(''), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c('6789', crc32c('12345')), 0xe3069283, 'continuation');
  const bytes = Buffer.from('The quick brown fox jumps over the lazy dog');
  assert.equal(crc32c(bytes), refCrc32c(bytes));
  for (const c of [0, 1, 0xe3069283, 0xffffffff, 0x80000000]) assert.equal(maskCrc(c), refMask(c));
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskedCrc32c('123456789'), refMask(0xe3069283));
});

// ======================= event files =======================

test('event file: name, framing, CRCs, file_version, scalars in order', () => {
  const dir = tmpDir();
  const before = Math.floor(Date.now() / 1000);
  const w = new EventFileWriter(dir);
  w.addScalars(0, { loss: 2.5, 'lr/group0': 1e-4 }, 1700000000.25);
  w.addScalars(7, { loss: 0.1 }, 1700000001.5);
  w.addScalars(2 ** 40, { bad: NaN, inf: -Infinity });
  w.flush();
  w.close();
  w.close(); // idempotent
  assert.throws(() => w.addScalars(8, { loss: 1 }), /closed/);

  const name = path.basename(w.file);
  const m = /^events\.out\.tfevents\.(\d+)\.(.+)\.(\d+)\.(\d+)$/.exec(name);
  assert.ok(m, name);
  assert.ok(Number(m[1]) >= before && Number(m[1]) <= Date.now() / 1000);
  assert.equal(m[2], os.hostname());
  assert.equal(Number(m[3]), process.pid);
  assert.equal(path.dirname(w.file), dir);

  const buf = fs.readFileSync(w.file);
  const records = readRecords(buf);
  assert.equal(records.length, 4);
  // Framing lengths add up exactly to the file size.
  assert.equal(records.reduce((n, r) => n + 16 + r.length, 0), buf.length);

  const events = records.map(parseEvent);
  assert.equal(events[0].fileVersion, 'brain.Event:2');
  assert.deepEqual(events[0].values, []);
  assert.ok(Math.abs(events[0].wallTime! - Date.now() / 1000) < 60);

  assert.equal(events[1].step, 0);
  assert.equal(events[1].wallTime, 1700000000.25);
  assert.deepEqual(events[1].values, [
    { tag: 'loss', value: 2.5 },
    { tag: 'lr/group0', value: Math.fround(1e-4) },
  ]);
  assert.equal(events[2].step, 7);
  assert.equal(events[2].wallTime, 1700000001.5);
  assert.deepEqual(events[2].values, [{ tag: 'loss', value: Math.fround(0.1) }]);
  assert.equal(events[3].step, 2 ** 40);
  assert.ok(Number.isNaN(events[3].values[0].value));
  assert.deepEqual(events[3].values[1], { tag: 'inf', value: -Infinity });
});

test('event file: a truncated last record is detected, earlier ones survive', () => {
  const dir = tmpDir();
  const w = new EventFileWriter(dir);
  w.addScalars(1, { a: 1 });
  w.addScalars(2, { a: 2 });
  w.close();
  const buf = fs.readFileSync(w.file);
  for (const cut of [1, 5, 10]) {
    assert.throws(() => readRecords(buf.subarray(0, buf.length - cut)), /truncated record data/);
  }
  const lastLen = 16 + readRecords(buf)[2].length;
  assert.throws(() => readRecords(buf.subarray(0, buf.length - lastLen + 6)), /truncated record header/);
  assert.equal(readRecords(buf.subarray(0, buf.length - lastLen)).length, 2);
  // A flipped data byte fails the data CRC.
  const bad = Buffer.from(buf);
  bad[bad.length - 6] ^= 0x01;
  assert.throws(() => readRecords(bad), /data CRC/);
});

test('event file: non-number values throw TypeError naming the tag; nothing is written', () => {
  const dir = tmpDir();
  const w = new EventFileWriter(dir);
  const size = fs.statSync(w.file).size;
  assert.throws(() => w.addScalars(1, { ok: 1, 'acc/top1': '0.5' as unknown as number }), (e: Error) => {
    return e instanceof TypeError && e.message.includes('acc/top1');
  });
  assert.throws(() => w.addScalars(1.5, { ok: 1 }), TypeError);
  assert.equal(fs.statSync(w.file).size, size);
  // Two writers in one folder within the same second get distinct files.
  const w2 = new EventFileWriter(dir);
  assert.notEqual(w2.file, w.file);
  w.close();
  w2.close();
});

// ======================= metrics.jsonl =======================

test('metrics.jsonl round trip, appends, non-finite values', () => {
  const file = path.join(tmpDir(), 'metrics.jsonl');
  const log = new MetricsLog(file);
  log.write({ step: 1, split: 'train', loss: 2.25, note: 'warmup' });
  log.write({ step: 2, split: 'eval', loss: NaN, acc: Infinity });
  log.close();
  const again = new MetricsLog(file); // append mode keeps earlier lines
  again.write({ step: 3, split: 'train', loss: 1 });
  again.close();
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text.split('\n').length, 4, 'three lines, each newline-terminated');
  for (const line of text.trim().split('\n')) JSON.parse(line); // every line is valid JSON
  assert.deepEqual(readMetricsLog(file), [
    { step: 1, split: 'train', loss: 2.25, note: 'warmup' },
    { step: 2, split: 'eval', loss: NaN, acc: Infinity },
    { step: 3, split: 'train', loss: 1 },
  ]);
});

test('metrics.jsonl: a malformed line is reported with file:line', () => {
  const file = path.join(tmpDir(), 'metrics.jsonl');
  fs.writeFileSync(file, '{"step":1,"split":"train","loss":1}\n\n{"step":2,"split":"tr\n');
  assert.throws(() => readMetricsLog(file), (e: Error) => {
    return e instanceof DataError && e.file === file && e.line === 3 && e.message.startsWith(`${file}:3: `);
  });
  fs.writeFileSync(file, '{"step":1,"split":"train"}\n[1,2]\n');
  assert.throws(() => readMetricsLog(file), (e: Error) => e instanceof DataError && e.line === 2);
  fs.writeFileSync(file, '{"split":"train","loss":1}\n');
  assert.throws(() => readMetricsLog(file), (e: Error) => e instanceof DataError && /step/.test(e.message));
});

// ======================= Summaries =======================

test('Summaries writes train/ and eval/ event files and metrics.jsonl', () => {
  const workdir = path.join(tmpDir(), 'run');
  const s = new Summaries(workdir);
  s.log('train', 10, { loss: 3, lr: 0.001 });
  s.log('train', 20, { loss: 2 });
  s.log('eval', 20, { loss: 2.5, accuracy: 0.75 });
  assert.throws(() => s.log('eval', 30, { loss: 'x' as unknown as number }), /'loss'/);
  assert.throws(() => s.log('../up', 30, { loss: 1 }), TypeError);
  s.close();

  assert.deepEqual(readMetricsLog(path.join(workdir, 'metrics.jsonl')), [
    { step: 10, split: 'train', loss: 3, lr: 0.001 },
    { step: 20, split: 'train', loss: 2 },
    { step: 20, split: 'eval', loss: 2.5, accuracy: 0.75 },
  ]);
  const only = (split: string): string => {
    const files = fs.readdirSync(path.join(workdir, split));
    assert.equal(files.length, 1, `one event file in ${split}/`);
    assert.match(files[0], /^events\.out\.tfevents\./);
    return path.join(workdir, split, files[0]);
  };
  const train = readEventFile(only('train'));
  assert.equal(train[0].fileVersion, 'brain.Event:2');
  assert.deepEqual(
    train.slice(1).map((e) => [e.step, e.values]),
    [
      [10, [{ tag: 'loss', value: 3 }, { tag: 'lr', value: Math.fround(0.001) }]],
      [20, [{ tag: 'loss', value: 2 }]],
    ],
  );
  const evalEvents = readEventFile(only('eval'));
  assert.deepEqual(
    evalEvents.slice(1).map((e) => [e.step, e.values]),
    [[20, [{ tag: 'loss', value: 2.5 }, { tag: 'accuracy', value: 0.75 }]]],
  );
});

// ======================= TensorBoard's own loader =======================

const PYTHON = '/usr/bin/python3';
const hasTensorBoard = spawnSync(PYTHON, ['-c', 'import tensorboard'], { stdio: 'ignore' }).status === 0;

test('TensorBoard reads the event file', { skip: !hasTensorBoard && `${PYTHON} cannot import tensorboard` }, () => {
  const dir = tmpDir();
  const w = new EventFileWriter(dir);
  w.addScalars(5, { loss: 1.5 });
  w.close();
  const script = [
    'import sys, json',
    'from tensorboard.backend.event_processing.event_file_loader import EventFileLoader',
    'out = []',
    'for ev in EventFileLoader(sys.argv[1]).Load():',
    '    out.append([ev.step, ev.file_version, [[v.tag, v.simple_value if v.HasField("simple_value") else',
    '        float(v.tensor.float_val[0])] for v in ev.summary.value]])',
    'print(json.dumps(out))',
  ].join('\n');
  const out = JSON.parse(execFileSync(PYTHON, ['-c', script, w.file], { encoding: 'utf8' }));
  assert.deepEqual(out, [
    [0, 'brain.Event:2', []],
    [5, '', [['loss', 1.5]]],
  ]);
});
