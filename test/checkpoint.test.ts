// Checkpoints: safetensors encoding (byte-exact against the reference format), float16/bfloat16
// bit conversions (by hand and against libtorch), every corrupt-file error, atomic saves, and the
// CheckpointStore folder manager with a real model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import * as ckpt from '../lib/train/checkpoint';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-checkpoint-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
function freshDir(): string {
  const dir = path.join(root, String(dirCount++));
  fs.mkdirSync(dir);
  return dir;
}

/** Runs fn and asserts that every tensor it created was freed. */
function noLeak(fn: () => void): void {
  const before = sm.memory().numTensors;
  fn();
  assert.equal(sm.memory().numTensors, before, 'live tensors are back to the baseline');
}

function disposeMap(m: Map<string, sm.Tensor> | undefined): void {
  if (m) sm.dispose([...m.values()]);
}

const bits32 = new Uint32Array(1);
const float32 = new Float32Array(bits32.buffer);
function fromBits(u: number): number {
  bits32[0] = u;
  return float32[0]!;
}

/** mulberry32: deterministic 32-bit words. */
function randomWords(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (t ^ (t >>> 14)) >>> 0;
  }
  return out;
}

/** The raw bytes a tensor reads back as. */
function bytesOf(t: sm.Tensor): Buffer {
  const d = t.dataSync();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

// ---- float16 / bfloat16 conversions ----

test('float16 bits: hand-computed patterns, subnormals, overflow, ties to even, NaN and infinities', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [65519.99, 0x7bff], // just below the tie with 65536
    [65520, 0x7c00], // the tie rounds to even: Inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [1 / 3, 0x3555],
    [0.1, 0x2e66],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // tie between 0x03ff and 0x0400: to even
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 0x0001: to even
    [3 * 2 ** -26, 0x0001], // above that tie
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps: to even
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 ulps: to even
    [1e-7, 0x0002],
    [1e-5, 0x00a8],
    [1e-8, 0x0000], // below half the smallest subnormal
    [-1e-8, 0x8000],
    [1 + 2 ** -11, 0x3c00], // tie: to even
    [1 + 3 * 2 ** -11, 0x3c02], // tie: to even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [NaN, 0x7e00],
  ];
  for (const [value, expected] of cases) {
    const got = ckpt.float32ToFloat16Bits(value);
    assert.equal(got, expected, `float16 bits of ${value}: 0x${got.toString(16)} != 0x${expected.toString(16)}`);
  }
  assert.equal(ckpt.float16BitsToFloat32(0x3c00), 1);
  assert.equal(ckpt.float16BitsToFloat32(0x7bff), 65504);
  assert.equal(ckpt.float16BitsToFloat32(0x0001), 2 ** -24);
  assert.equal(ckpt.float16BitsToFloat32(0x03ff), 1023 * 2 ** -24);
  assert.equal(ckpt.float16BitsToFloat32(0x3555), 0.333251953125);
  assert.equal(ckpt.float16BitsToFloat32(0xfc00), -Infinity);
  assert.ok(Object.is(ckpt.float16BitsToFloat32(0x8000), -0));
  assert.ok(Number.isNaN(ckpt.float16BitsToFloat32(0x7e00)));
  assert.ok(Number.isNaN(ckpt.float16BitsToFloat32(0xfd01)));
  // Every half value decodes and re-encodes to itself; every NaN stays a NaN.
  for (let b = 0; b < 0x10000; b++) {
    const back = ckpt.float32ToFloat16Bits(ckpt.float16BitsToFloat32(b));
    if ((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0) assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, `NaN 0x${b.toString(16)}`);
    else assert.equal(back, b, `0x${b.toString(16)} round trip`);
  }
});

test('bfloat16 bits: hand-computed patterns, ties to even, overflow, subnormals, NaN and infinities', () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-2, 0xc000],
    [1 / 3, 0x3eab], // 0x3eaaaaab rounds up
    [fromBits(0x3f808000), 0x3f80], // tie: to even
    [fromBits(0x3f818000), 0x3f82], // tie: to even
    [fromBits(0x3f808001), 0x3f81], // above the tie
    [fromBits(0x3f807fff), 0x3f80], // below the tie
    [fromBits(0x7f7fffff), 0x7f80], // float32 max rounds to Inf
    [fromBits(0x7f7f7fff), 0x7f7f], // largest finite bfloat16
    [fromBits(0x00008000), 0x0000], // subnormal tie: to even
    [fromBits(0x00018000), 0x0002],
    [fromBits(0x00010001), 0x0001],
    [fromBits(0x807fffff), 0x8080], // largest negative subnormal rounds to the smallest normal
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [NaN, 0x7fc0],
  ];
  for (const [value, expected] of cases) {
    const got = ckpt.float32ToBfloat16Bits(value);
    assert.equal(got, expected, `bfloat16 bits of ${value}: 0x${got.toString(16)} != 0x${expected.toString(16)}`);
  }
  assert.equal(ckpt.bfloat16BitsToFloat32(0x3f80), 1);
  assert.equal(ckpt.bfloat16BitsToFloat32(0xc000), -2);
  assert.ok(Number.isNaN(ckpt.bfloat16BitsToFloat32(0x7fc0)));
  for (let b = 0; b < 0x10000; b++) {
    const back = ckpt.float32ToBfloat16Bits(ckpt.bfloat16BitsToFloat32(b));
    if ((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0) assert.ok((back & 0x7f80) === 0x7f80 && (back & 0x7f) !== 0, `NaN 0x${b.toString(16)}`);
    else assert.equal(back, b, `0x${b.toString(16)} round trip`);
  }
});

test('float16/bfloat16 conversions agree with libtorch on random, near-range and tie values', () => {
  noLeak(() => {
    const n = 1 << 17;
    const words = randomWords(4 * n, 42);
    const inputs = new Uint32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const w = words[i]!;
      inputs[i] = w; // any pattern: NaNs, infinities, subnormals
      inputs[n + i] = (w & 0x807fffff) | ((100 + (w % 46)) << 23); // exponents around the half range
      // Exact half midpoints (subnormal to max) and exact bfloat16 midpoints.
      const h = w & 0x7bfe;
      inputs[2 * n + i] = (w & 0x80000000) | fromBitsOf((ckpt.float16BitsToFloat32(h) + ckpt.float16BitsToFloat32(h + 1)) / 2);
      inputs[3 * n + i] = (w & 0xffff0000) | 0x8000;
    }
    const values = new Float32Array(inputs.buffer);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const [encode, decode] =
        dtype === 'float16'
          ? [ckpt.float32ToFloat16Bits, ckpt.float16BitsToFloat32]
          : [ckpt.float32ToBfloat16Bits, ckpt.bfloat16BitsToFloat32];
      const t = sm.tensor(values, { dtype });
      const torch = t.dataSync() as Float32Array;
      t.dispose();
      let mismatches = 0;
      let first = '';
      for (let i = 0; i < values.length; i++) {
        const ours = decode(encode(values[i]!));
        const theirs = torch[i]!;
        if (Object.is(ours, theirs) || (Number.isNaN(ours) && Number.isNaN(theirs))) continue;
        if (mismatches++ === 0) first = `input 0x${inputs[i]!.toString(16)} (${values[i]}): ours ${ours}, libtorch ${theirs}`;
      }
      assert.equal(mismatches, 0, `${dtype}: ${mismatches} of ${values.length} differ from libtorch; first ${first}`);
    }
  });
});

function fromBitsOf(value: number): number {
  float32[0] = value;
  return bits32[0]!;
}

// ---- encoding and decoding ----

/** One tensor of every storable dtype, with edge values, plus scalars and empty tensors. */
function everyDtype(): Map<string, sm.Tensor> {
  const specials = Float32Array.from([0, -0, 1, -1.5, 1 / 3, 65504, 1e-6, 2 ** -149, 3.4e38, Infinity, -Infinity, NaN]);
  return new Map<string, sm.Tensor>([
    ['f32', sm.tensor(specials, { shape: [3, 4] })],
    ['f64', sm.tensor(Float64Array.from([Math.PI, -0, 5e-324, 1.7976931348623157e308, NaN, -Infinity]), { shape: [2, 3] })],
    ['f16', sm.tensor(specials, { shape: [4, 3], dtype: 'float16' })],
    ['bf16', sm.tensor(specials, { shape: [12], dtype: 'bfloat16' })],
    ['i64', sm.tensor(BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n]), { shape: [5] })],
    ['i32', sm.tensor(Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, 7]), { shape: [2, 2] })],
    ['i16', sm.tensor(Int16Array.from([-32768, 32767, 0]), { shape: [3] })],
    ['i8', sm.tensor(Int8Array.from([-128, 127, 0, 5]), { shape: [1, 4] })],
    ['u8', sm.tensor(Uint8Array.from([0, 255, 128]), { shape: [3] })],
    ['bool', sm.tensor([true, false, false, true, true])],
    ['f32.transposed', sm.tidy(() => sm.tensor(specials, { shape: [3, 4] }).transpose(0, 1))], // not contiguous
    ['scalar.f32', sm.tensor(Float32Array.from([2.5]), { shape: [] })],
    ['scalar.i64', sm.tensor(BigInt64Array.from([-3n]), { shape: [] })],
    ['scalar.bf16', sm.tensor(Float32Array.from([-0.75]), { shape: [], dtype: 'bfloat16' })],
    ['empty.f32', sm.tensor(new Float32Array(0), { shape: [0] })],
    ['empty.f16', sm.tensor(new Float32Array(0), { shape: [2, 0, 3], dtype: 'float16' })],
    ['empty.bool', sm.tensor(new Uint8Array(0), { shape: [0, 1], dtype: 'bool' })],
  ]);
}

function assertSameTensors(actual: Map<string, sm.Tensor>, expected: Map<string, sm.Tensor>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, `${name}: dtype`);
    assert.deepEqual(a.shape, e.shape, `${name}: shape`);
    assert.ok(bytesOf(a).equals(bytesOf(e)), `${name}: values ${JSON.stringify(a.toArray())} != ${JSON.stringify(e.toArray())}`);
  }
}

test('every dtype, scalars and empty tensors round-trip through a file bit for bit', () => {
  noLeak(() => {
    const original = everyDtype();
    const file = path.join(freshDir(), 'all.safetensors');
    ckpt.saveSafetensors(file, original, { note: 'every dtype', step: '7' });
    const loaded = ckpt.loadSafetensors(file);
    assertSameTensors(loaded.tensors, original);
    assert.deepEqual(loaded.metadata, { note: 'every dtype', step: '7' });
    // Re-encoding gives the same bytes: float16/bfloat16 bits survive exactly.
    assert.ok(ckpt.encodeSafetensors(loaded.tensors, { note: 'every dtype', step: '7' }).equals(fs.readFileSync(file)));
    const fromMemory = ckpt.decodeSafetensors(fs.readFileSync(file));
    assertSameTensors(fromMemory.tensors, original);
    // Every tensor starts at a multiple of its element size, as the reference writer ensures.
    const header = JSON.parse(fs.readFileSync(file).subarray(8, 8 + Number(fs.readFileSync(file).readBigUInt64LE(0))).toString()) as Record<
      string,
      { dtype: string; data_offsets: [number, number] }
    >;
    const sizes: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const [name, info] of Object.entries(header)) {
      if (name !== '__metadata__') assert.equal(info.data_offsets[0] % sizes[info.dtype]!, 0, `${name} is aligned`);
    }
    disposeMap(original);
    disposeMap(loaded.tensors);
    disposeMap(fromMemory.tensors);
  });
});

test('float16/bfloat16 tensors with arbitrary bit patterns load back exactly', () => {
  noLeak(() => {
    const words = randomWords(4096, 7);
    for (const [dtype, decode] of [
      ['float16', ckpt.float16BitsToFloat32],
      ['bfloat16', ckpt.bfloat16BitsToFloat32],
    ] as const) {
      // Every bit pattern but NaNs (libtorch gives NaNs one canonical pattern).
      const values = Float32Array.from(words, (w) => decode(w & 0xffff)).map((v) => (Number.isNaN(v) ? 0 : v));
      const t = sm.tensor(values, { dtype, shape: [64, 64] });
      const bytes = ckpt.encodeSafetensors(new Map([['x', t]]));
      const data = bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
      const stored = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
      const encode = dtype === 'float16' ? ckpt.float32ToFloat16Bits : ckpt.float32ToBfloat16Bits;
      for (let i = 0; i < values.length; i++) assert.equal(stored[i], encode(values[i]!), `${dtype} element ${i}`);
      const back = ckpt.decodeSafetensors(bytes).tensors.get('x')!;
      assert.equal(back.dtype, dtype);
      assert.ok(bytesOf(back).equals(bytesOf(t)));
      sm.dispose([t, back]);
    }
  });
});

test('the header matches the published format byte for byte', () => {
  noLeak(() => {
    // From huggingface/safetensors' own tests (safetensors/src/tensor.rs).
    const attn = sm.tensor(Float32Array.from([0, 1, 2, 3, 4, 5]), { shape: [1, 1, 2, 3] });
    assert.deepEqual(
      [...ckpt.encodeSafetensors(new Map([['attn0', attn]]))],
      [
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34,
        115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115,
        34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0,
        128, 64, 0, 0, 160, 64,
      ],
    );
    assert.deepEqual([...ckpt.encodeSafetensors(new Map())], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    assert.deepEqual(
      [...ckpt.encodeSafetensors(new Map(), { framework: 'pt' })],
      [
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119,
        111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
      ],
    );
    // Larger dtypes first, then by name; "__metadata__" first; integer-like names keep that order.
    const mixed = new Map<string, sm.Tensor>([
      ['b', sm.tensor([true])],
      ['10', sm.tensor(Float32Array.from([1]), { shape: [1] })],
      ['2', sm.tensor(Float32Array.from([1]), { shape: [1] })],
      ['h', sm.tensor(Float32Array.from([1]), { shape: [1], dtype: 'float16' })],
      ['g', sm.tensor(BigInt64Array.from([1n]), { shape: [1] })],
    ]);
    const bytes = ckpt.encodeSafetensors(mixed, { z: '1' });
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(
      bytes.subarray(8, 8 + n).toString(),
      '{"__metadata__":{"z":"1"},' +
        '"g":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"10":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
        '"2":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},' +
        '"h":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},' +
        '"b":{"dtype":"BOOL","shape":[1],"data_offsets":[18,19]}}' +
        '    ',
    );
    assert.deepEqual([...bytes.subarray(8 + n)], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 128, 63, 0, 60, 1]);
    sm.dispose([attn, ...mixed.values()]);
  });
});

/** A minimal reader written from the format description alone, sharing no code with the library. */
function independentRead(file: string): Map<string, { dtype: string; shape: number[]; values: (number | bigint)[] }> {
  const bytes = fs.readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; values: (number | bigint)[] }>();
  const half = (h: number): number => {
    const e = (h >> 10) & 31;
    const m = h & 1023;
    const s = h >> 15 ? -1 : 1;
    return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
  };
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const values: (number | bigint)[] = [];
    const [begin, end] = info.data_offsets;
    for (let p = 8 + n + begin; p < 8 + n + end; ) {
      switch (info.dtype) {
        case 'F64': values.push(view.getFloat64(p, true)); p += 8; break;
        case 'F32': values.push(view.getFloat32(p, true)); p += 4; break;
        case 'F16': values.push(half(view.getUint16(p, true))); p += 2; break;
        case 'BF16': values.push(new Float32Array(new Uint32Array([view.getUint16(p, true) * 65536]).buffer)[0]!); p += 2; break;
        case 'I64': values.push(view.getBigInt64(p, true)); p += 8; break;
        case 'I32': values.push(view.getInt32(p, true)); p += 4; break;
        case 'I16': values.push(view.getInt16(p, true)); p += 2; break;
        case 'I8': values.push(view.getInt8(p)); p += 1; break;
        case 'U8': case 'BOOL': values.push(view.getUint8(p)); p += 1; break;
        default: throw new Error(`unexpected dtype ${info.dtype}`);
      }
    }
    out.set(name, { dtype: info.dtype, shape: info.shape, values });
  }
  return out;
}

test('an independent reader sees the same names, dtypes, shapes and values', () => {
  noLeak(() => {
    const tensors = everyDtype();
    const file = path.join(freshDir(), 'x.safetensors');
    ckpt.saveSafetensors(file, tensors);
    const read = independentRead(file);
    const names: Record<string, string> = { float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL' };
    for (const [name, t] of tensors) {
      const r = read.get(name)!;
      assert.equal(r.dtype, names[t.dtype], name);
      assert.deepEqual(r.shape, [...t.shape], name);
      const expected = Array.from(t.dataSync() as ArrayLike<number | bigint>);
      assert.deepEqual(r.values, expected, name);
    }
    disposeMap(tensors);
  });
});

test('files from Python safetensors load, and ours load there', (t) => {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import safetensors.torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip(`Python safetensors is not installed here (${(probe.stderr || String(probe.error)).trim().split('\n').pop()}); the independent reader above checks the layout instead`);
    return;
  }
  noLeak(() => {
    const dir = freshDir();
    const ours = path.join(dir, 'ours.safetensors');
    const theirs = path.join(dir, 'theirs.safetensors');
    const tensors = everyDtype();
    ckpt.saveSafetensors(ours, tensors, { from: 'node' });
    const script = [
      'import sys, torch',
      'from safetensors.torch import load_file, save_file',
      'from safetensors import safe_open',
      't = load_file(sys.argv[1])',
      "assert t['i64'].tolist() == [-(2**63), 2**63 - 1, 0, -1, 2**53 + 1], t['i64']",
      "assert t['f16'].dtype == torch.float16 and t['f16'].flatten()[5].item() == 65504",
      "assert t['bf16'].dtype == torch.bfloat16 and t['bool'].tolist() == [True, False, False, True, True]",
      "assert t['empty.f16'].shape == (2, 0, 3) and t['scalar.f32'].shape == ()",
      "assert safe_open(sys.argv[1], 'pt').metadata() == {'from': 'node'}",
      "save_file({'w': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'h': torch.tensor([1.0, -2.5], dtype=torch.float16),",
      "           'b': torch.tensor([1.0, 1/3], dtype=torch.bfloat16), 'i': torch.tensor([-7], dtype=torch.int64)}, sys.argv[2], {'from': 'python'})",
    ].join('\n');
    const run = spawnSync('/usr/bin/python3', ['-c', script, ours, theirs], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const loaded = ckpt.loadSafetensors(theirs);
    assert.deepEqual(loaded.metadata, { from: 'python' });
    assert.deepEqual(loaded.tensors.get('w')!.toArray(), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual(loaded.tensors.get('h')!.toArray(), [1, -2.5]);
    assert.equal(loaded.tensors.get('b')!.dtype, 'bfloat16');
    assert.deepEqual(loaded.tensors.get('b')!.toArray(), [1, ckpt.bfloat16BitsToFloat32(0x3eab)]);
    assert.deepEqual(loaded.tensors.get('i')!.toArray(), [-7]);
    disposeMap(tensors);
    disposeMap(loaded.tensors);
  });
});

// ---- atomic saves ----

test('a save that fails midway leaves the previous file intact and no temporary files', () => {
  noLeak(() => {
    const dir = freshDir();
    const file = path.join(dir, 'model.safetensors');
    const good = sm.tensor(Float32Array.from([1, 2, 3]), { shape: [3] });
    ckpt.saveSafetensors(file, new Map([['a', good]]));
    const before = fs.readFileSync(file);

    // A tensor whose read-back fails after the header and the first tensor are written.
    const failing = sm.tensor(Float32Array.from([4, 5]), { shape: [2] });
    let sawTemp = false;
    failing.dataSync = () => {
      sawTemp = fs.readdirSync(dir).some((f) => f.startsWith('model.safetensors.tmp-'));
      throw new Error('read-back failed');
    };
    assert.throws(() => ckpt.saveSafetensors(file, new Map([['a', good], ['b', failing]])), /read-back failed/);
    assert.ok(sawTemp, 'the failure happened while the temporary file existed');

    // A disposed tensor, and a dtype the format cannot hold.
    const disposed = sm.zeros([2]);
    disposed.dispose();
    assert.throws(() => ckpt.saveSafetensors(file, new Map([['a', good], ['d', disposed]])), /disposed/);
    const complex = sm.zeros([2], { dtype: 'complex64' });
    assert.throws(() => ckpt.saveSafetensors(file, new Map([['c', complex]])), /'c' has dtype complex64, which the format cannot store/);
    assert.throws(() => ckpt.saveSafetensors(file, new Map([['__metadata__', good]])), /invalid tensor name/);
    assert.throws(() => ckpt.saveSafetensors(file, new Map([['a', good]]), { n: 1 as unknown as string }), /metadata 'n' must be a string/);

    assert.ok(fs.readFileSync(file).equals(before), 'the previous file is unchanged');
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors'], 'no temporary files are left');
    assert.throws(() => ckpt.saveSafetensors(path.join(dir, 'missing', 'x.safetensors'), new Map([['a', good]])), /ENOENT/);
    sm.dispose([good, failing, complex]);
  });
});

// ---- corrupt files ----

function craft(header: string | object, data: Uint8Array | number = 0, lengthField?: bigint): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(lengthField ?? BigInt(text.length));
  return Buffer.concat([length, text, typeof data === 'number' ? Buffer.alloc(data) : data]);
}

test('every kind of corrupt file is an error naming the file', () => {
  noLeak(() => {
    const dir = freshDir();
    const f32 = (shape: number[], offsets: number[]) => ({ dtype: 'F32', shape, data_offsets: offsets });
    const valid = ckpt.encodeSafetensors(new Map());
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /too short \(0 bytes\)/],
      ['short', Buffer.from([8, 0, 0, 0]), /too short \(4 bytes\)/],
      ['huge-length', craft('{}', 0, 1n << 40n), /header length 1099511627776 goes beyond the end of the file \(10 bytes\)/],
      ['length-past-end', craft('{}', 0, 3n), /header length 3 goes beyond the end/],
      ['not-json', craft('{"a": tru}'), /header is not JSON/],
      ['not-object', craft('[1, 2]   '), /header is not JSON: it starts with "\[/],
      ['not-utf8', craft('{ab}').fill(0xff, 9, 11), /not valid UTF-8/],
      ['entry-not-object', craft({ a: 1 }), /tensor 'a': entry is not an object/],
      ['unknown-dtype', craft({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), /tensor 'a': unknown dtype "F8_E4M3"/],
      ['missing-dtype', craft({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor 'a': unknown dtype undefined/],
      ['bad-shape', craft({ a: f32([-1], [0, 4]) }, 4), /tensor 'a': shape \[-1\] is not a list of sizes/],
      ['fractional-shape', craft({ a: f32([1.5], [0, 4]) }, 4), /shape \[1.5\] is not a list of sizes/],
      ['bad-offsets', craft({ a: f32([1], [0]) }, 4), /data_offsets \[0\] is not a pair/],
      ['shape-mismatch', craft({ a: f32([2, 3], [0, 20]) }, 20), /tensor 'a': shape \[2,3\] of F32 needs 24 bytes but data_offsets \[0, 20\] hold 20/],
      ['reversed-offsets', craft({ a: f32([0], [8, 0]) }, 8), /tensor 'a': data_offsets \[8, 0\] are out of order/],
      ['overlap', craft({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12), /tensor 'b': data_offsets \[4, 12\] overlap the previous tensor/],
      ['gap', craft({ a: f32([2], [0, 8]), b: f32([2], [12, 20]) }, 20), /tensor 'b': data_offsets \[12, 20\] leave a gap after byte 8/],
      ['not-at-start', craft({ a: f32([1], [4, 8]) }, 8), /tensor 'a': data_offsets \[4, 8\] leave a gap after byte 0/],
      ['beyond-buffer', craft({ a: f32([2], [0, 8]), b: f32([1], [8, 12]) }, 10), /truncated: the header describes 12 bytes of tensor data but the file holds 10/],
      ['trailing', craft({ a: f32([1], [0, 4]) }, 6), /2 unexpected bytes after the last tensor/],
      ['bad-metadata', craft({ __metadata__: { a: 1 } }), /"__metadata__" entry 'a' is not a string/],
      ['metadata-not-object', craft({ __metadata__: 'x' }), /"__metadata__" is not an object/],
      ['truncated-header', valid.subarray(0, 12), /header length 8 goes beyond the end of the file \(12 bytes\)/],
    ];
    // A real file cut short, as a crash during a non-atomic write would leave it.
    const t = sm.tensor(Float32Array.from([1, 2, 3, 4]), { shape: [2, 2] });
    const whole = ckpt.encodeSafetensors(new Map([['w', t]]));
    t.dispose();
    cases.push(['partial', whole.subarray(0, whole.length - 3), /truncated: the header describes 16 bytes of tensor data but the file holds 13 \(a partial write\?\)/]);
    for (const [name, bytes, pattern] of cases) {
      const file = path.join(dir, `${name}.safetensors`);
      fs.writeFileSync(file, bytes);
      assert.throws(
        () => ckpt.loadSafetensors(file),
        (e: Error) => {
          assert.ok(e.message.includes(`safetensors file ${file}: `), `${name}: '${e.message}' names the file`);
          assert.match(e.message, pattern, name);
          return true;
        },
      );
    }
    assert.throws(() => ckpt.loadSafetensors(path.join(dir, 'nope.safetensors')), /ENOENT.*nope\.safetensors/);
  });
});

// ---- CheckpointStore ----

function params(value: number): Map<string, sm.Tensor> {
  return new Map([
    ['w', sm.full([2, 3], value, { dtype: 'float32' })],
    ['b', sm.full([3], value, { dtype: 'bfloat16' })],
    ['n', sm.tensor(BigInt64Array.from([BigInt(value)]), { shape: [] })],
  ]);
}

function valueOf(m: Map<string, sm.Tensor>): number {
  return m.get('w')!.dataSync()[0] as number;
}

test('CheckpointStore: layout, keep-N pruning, load by step, optimizer present or absent', () => {
  noLeak(() => {
    const dir = path.join(freshDir(), 'run');
    const store = new ckpt.CheckpointStore(dir, { keep: 2 });
    assert.deepEqual(store.list(), []);
    assert.equal(store.latest(), undefined);
    assert.throws(() => store.load(), /no checkpoint in .*run/);

    for (const step of [1, 2, 3, 10]) {
      const p = params(step);
      const opt = step % 2 === 0 ? new Map([['m.w', sm.full([2, 3], -step, { dtype: 'float32' })]]) : undefined;
      const saved = store.save(step, { params: p, optimizer: opt, state: { step, lr: 0.1 * step, name: 'run' } });
      assert.equal(saved, path.join(dir, `ckpt-${String(step).padStart(9, '0')}`));
      disposeMap(p);
      disposeMap(opt);
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ckpt-000000003', 'ckpt-000000010']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'ckpt-000000010')).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json']);
    assert.deepEqual(store.list(), [3, 10]);
    assert.deepEqual(store.latest(), { step: 10, dir: path.join(dir, 'ckpt-000000010') });

    const latest = store.load();
    assert.equal(latest.step, 10);
    assert.equal(valueOf(latest.params), 10);
    assert.equal(latest.params.get('b')!.dtype, 'bfloat16');
    assert.equal(latest.params.get('n')!.item(), 10);
    assert.deepEqual(latest.state, { step: 10, lr: 1, name: 'run' });
    assert.deepEqual(latest.optimizer!.get('m.w')!.toArray(), [[-10, -10, -10], [-10, -10, -10]]);
    const third = store.load(3);
    assert.equal(third.step, 3);
    assert.equal(valueOf(third.params), 3);
    assert.equal(third.optimizer, undefined, 'saved without optimizer state');
    assert.throws(() => store.load(2), /checkpoint .*ckpt-000000002 is missing or incomplete: no model\.safetensors/);

    // Saving a step again replaces it.
    const p = params(33);
    store.save(3, { params: p, state: { again: true } });
    const replaced = store.load(3);
    assert.equal(valueOf(replaced.params), 33);
    assert.deepEqual(replaced.state, { again: true });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ckpt-000000003', 'ckpt-000000010']);

    // A custom prefix and keep 1.
    const other = new ckpt.CheckpointStore(dir, { keep: 1, prefix: 'best' });
    other.save(5, { params: p, state: {} });
    other.save(4, { params: p, state: {} });
    assert.deepEqual(other.list(), [5], 'keep counts the highest steps');
    assert.deepEqual(store.list(), [3, 10], 'stores with other prefixes are left alone');
    assert.throws(() => new ckpt.CheckpointStore(dir, { keep: 0 }), /keep must be a positive integer/);
    assert.throws(() => store.save(-1, { params: p, state: {} }), /step must be a non-negative integer/);
    assert.throws(() => store.save(1, { params: p, state: 5 as unknown as object }), /state must be a JSON-serialisable object/);

    disposeMap(p);
    for (const c of [latest, third, replaced]) {
      disposeMap(c.params);
      disposeMap(c.optimizer);
    }
  });
});

test('CheckpointStore: partial and incomplete folders are skipped; failed saves leave nothing; damage is an error', () => {
  noLeak(() => {
    const dir = freshDir();
    const store = new ckpt.CheckpointStore(dir, { keep: 3 });
    const p = params(1);
    store.save(1, { params: p, state: { ok: 1 } });
    store.save(2, { params: p, state: { ok: 2 } });

    // A crashed save of a dead process, a live one in progress, and a folder that lost a file.
    const dead = path.join(dir, 'ckpt-000000009.partial-999999999');
    const live = path.join(dir, `ckpt-000000008.partial-${process.ppid}`);
    for (const d of [dead, live]) fs.cpSync(store.pathFor(2), d, { recursive: true });
    fs.cpSync(store.pathFor(2), store.pathFor(7), { recursive: true });
    fs.rmSync(path.join(store.pathFor(7), 'optimizer.safetensors'));
    assert.deepEqual(store.list(), [1, 2]);
    assert.equal(store.latest()!.step, 2);
    assert.throws(() => store.load(7), /ckpt-000000007 is missing or incomplete: no optimizer\.safetensors/);

    // A save that fails (a disposed tensor) leaves no partial folder and the old checkpoints.
    const bad = params(5);
    bad.get('w')!.dispose();
    assert.throws(() => store.save(5, { params: bad, state: {} }), /disposed/);
    assert.ok(!fs.readdirSync(dir).some((f) => f.includes(`partial-${process.pid}`)));
    assert.deepEqual(store.list(), [1, 2]);
    assert.throws(() => store.save(6, { params: p, state: { big: 1n } as object }), /BigInt/);
    assert.deepEqual(store.list(), [1, 2]);

    // The next successful save removes the dead process's leftovers but not the live one's.
    store.save(3, { params: p, state: {} });
    assert.ok(!fs.existsSync(dead), 'leftover of a dead process removed');
    assert.ok(fs.existsSync(live), 'a live process may still be writing');

    // Damage to the latest checkpoint is reported, naming the file, not skipped.
    const model = path.join(store.pathFor(3), 'model.safetensors');
    fs.truncateSync(model, fs.statSync(model).size - 1);
    assert.equal(store.latest()!.step, 3);
    assert.throws(() => store.load(), (e: Error) => e.message.includes(model) && /truncated/.test(e.message));
    const state = path.join(store.pathFor(2), 'state.json');
    fs.writeFileSync(state, '{"ok": ');
    assert.throws(() => store.load(2), (e: Error) => e.message.includes(state) && /unreadable/.test(e.message));
    const optimizer = path.join(store.pathFor(1), 'optimizer.safetensors');
    fs.writeFileSync(optimizer, Buffer.alloc(3));
    assert.throws(() => store.load(1), (e: Error) => e.message.includes(optimizer) && /too short/.test(e.message));

    disposeMap(p);
    disposeMap(bad);
  });
});

test('CheckpointStore: a model state dictionary round-trips to identical outputs', () => {
  noLeak(() => {
    const config = sm.presetConfig('bert-tiny', { vocab_size: 50 });
    const a = new sm.ClassificationModel(config, 2).eval();
    const b = new sm.ClassificationModel({ ...config, seed: 123 }, 2).eval();
    const g = new sm.Generator(5);
    const batch = {
      input_ids: sm.randint(3, 50, [2, 8], { generator: g }),
      type_ids: sm.zeros([2, 8], { dtype: 'int64' }),
      label: sm.tensor([0, 1]),
    };
    const logits = (m: sm.ClassificationModel): number[] => sm.tidy(() => Array.from(m.forward(batch).logits.dataSync() as Float32Array));
    assert.notDeepEqual(logits(b), logits(a));

    const store = new ckpt.CheckpointStore(freshDir(), { keep: 2 });
    const moments = new Map(a.namedParameters().slice(0, 3).map(([name, p]) => [`exp_avg.${name}`, sm.onesLike(p)] as const));
    store.save(100, { params: a.stateDict(), optimizer: moments, state: { step: 100, config } });
    const loaded = store.load();
    assert.equal(loaded.params.size, a.stateDict().size);
    const result = b.loadStateDict(loaded.params);
    assert.deepEqual(result, { missing: [], unexpected: [], mismatched: [] });
    assert.deepEqual(logits(b), logits(a));
    assert.deepEqual([...loaded.optimizer!.keys()], [...moments.keys()].sort((x, y) => (x < y ? -1 : 1)));
    assert.deepEqual((loaded.state as { config: unknown }).config, JSON.parse(JSON.stringify(config)));

    disposeMap(loaded.params);
    disposeMap(loaded.optimizer);
    disposeMap(moments);
    sm.dispose(batch);
    a.dispose();
    b.dispose();
  });
});
