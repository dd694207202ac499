// Creating tensors: from JavaScript data, fills, ranges, random numbers, dtypes, read-back, devices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose, values } from './helpers';

const noCuda = !sm.cuda.isAvailable() && 'no CUDA device';

// ---- tensor() from nested arrays ----

test('tensor() infers int64 for integers and keeps the nested shape', () => {
  sm.tidy(() => {
    const t = sm.tensor([
      [1, 2, 3],
      [4, 5, -6],
    ]);
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.shape, [2, 3]);
    assert.ok(t.dataSync() instanceof BigInt64Array);
    assert.deepEqual(Array.from(t.dataSync() as BigInt64Array), [1n, 2n, 3n, 4n, 5n, -6n]);
  });
});

test('tensor() infers float32 when any value is not an integer', () => {
  sm.tidy(() => {
    const t = sm.tensor([1, 2.5, -3]);
    assert.equal(t.dtype, 'float32');
    assert.ok(t.dataSync() instanceof Float32Array);
    assert.deepEqual(values(t), [1, 2.5, -3]);
    const nested = sm.tensor([[[0.25]], [[2]]]);
    assert.equal(nested.dtype, 'float32');
    assert.deepEqual(nested.shape, [2, 1, 1]);
  });
});

test('tensor() infers bool for booleans and rejects mixing booleans with numbers', () => {
  sm.tidy(() => {
    const t = sm.tensor([
      [true, false],
      [false, true],
    ]);
    assert.equal(t.dtype, 'bool');
    assert.ok(t.dataSync() instanceof Uint8Array);
    assert.deepEqual(values(t), [1, 0, 0, 1]);
    assert.throws(() => sm.tensor([true, 1] as never), TypeError);
  });
});

test('tensor() honours an explicit dtype', () => {
  sm.tidy(() => {
    const t = sm.tensor([1, 2, 3], { dtype: 'float64' });
    assert.equal(t.dtype, 'float64');
    assert.ok(t.dataSync() instanceof Float64Array);
    const i = sm.tensor([1.7, -2.7], { dtype: 'int32' });
    assert.equal(i.dtype, 'int32');
    assert.deepEqual(values(i), [1, -2]); // truncation toward zero, like torch
  });
});

test('tensor() of a number is a rank-0 tensor', () => {
  sm.tidy(() => {
    const i = sm.tensor(7);
    assert.deepEqual(i.shape, []);
    assert.equal(i.rank, 0);
    assert.equal(i.numel, 1);
    assert.equal(i.dtype, 'int64');
    assert.equal(i.item(), 7);
    const f = sm.tensor(0.5);
    assert.equal(f.dtype, 'float32');
    assert.equal(f.item(), 0.5);
  });
});

test('tensor() of an empty array is an empty float32 tensor', () => {
  sm.tidy(() => {
    const t = sm.tensor([]);
    assert.deepEqual(t.shape, [0]);
    assert.equal(t.numel, 0);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.dataSync().length, 0);
  });
});

test('tensor() rejects ragged nested arrays', () => {
  assert.throws(() => sm.tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => sm.tensor([[[1], [2]], [[3], [4, 5]]]), /ragged/);
  assert.throws(() => sm.tensor([[1, 2], 3] as never), /ragged/);
});

test('tensor() rejects a shape with a nested array', () => {
  assert.throws(() => sm.tensor([1, 2], { shape: [2] }), TypeError);
});

// ---- tensor() from typed arrays ----

test('tensor() takes every typed array kind with a shape', () => {
  sm.tidy(() => {
    const cases: [ArrayBufferView, sm.DType, number[]][] = [
      [new Float32Array([1.5, -2, 3, 4, 5, 6]), 'float32', [1.5, -2, 3, 4, 5, 6]],
      [new Float64Array([0.1, 2, 3, 4, 5, 6]), 'float64', [0.1, 2, 3, 4, 5, 6]],
      [new Int32Array([-1, 2, 3, 4, 5, 2147483647]), 'int32', [-1, 2, 3, 4, 5, 2147483647]],
      [new BigInt64Array([-1n, 2n, 3n, 4n, 5n, 1n << 40n]), 'int64', [-1, 2, 3, 4, 5, 2 ** 40]],
      [new Uint8Array([0, 1, 2, 3, 4, 255]), 'uint8', [0, 1, 2, 3, 4, 255]],
      [new Int8Array([-128, 1, 2, 3, 4, 127]), 'int8', [-128, 1, 2, 3, 4, 127]],
      [new Int16Array([-32768, 1, 2, 3, 4, 32767]), 'int16', [-32768, 1, 2, 3, 4, 32767]],
    ];
    for (const [data, dtype, expected] of cases) {
      const t = sm.tensor(data, { shape: [2, 3] });
      assert.equal(t.dtype, dtype, `dtype of ${data.constructor.name}`);
      assert.deepEqual(t.shape, [2, 3]);
      const back = t.dataSync();
      assert.equal(back.constructor, data.constructor, `read-back type of ${dtype}`);
      assert.deepEqual(values(t), expected, dtype);
      // Without a shape, a typed array is one-dimensional.
      assert.deepEqual(sm.tensor(data).shape, [6]);
    }
  });
});

test('tensor() copies a typed array (later writes do not show) and respects its byte offset', () => {
  sm.tidy(() => {
    const data = new Float32Array([1, 2, 3, 4]);
    const t = sm.tensor(data, { shape: [2, 2] });
    data[0] = 100;
    assert.deepEqual(values(t), [1, 2, 3, 4]);
    const sub = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).subarray(2, 6);
    assert.deepEqual(values(sm.tensor(sub, { shape: [2, 2] })), [3, 4, 5, 6]);
  });
});

test('tensor() converts a typed array to the requested dtype', () => {
  sm.tidy(() => {
    const t = sm.tensor(new Float64Array([1.25, -2.5]), { dtype: 'float32' });
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(values(t), [1.25, -2.5]);
  });
});

test('tensor() rejects a typed array whose length does not match the shape, or an unsupported kind', () => {
  assert.throws(() => sm.tensor(new Float32Array(5), { shape: [2, 3] }), /elements/);
  assert.throws(() => sm.tensor(new Uint16Array(3)), TypeError);
  assert.throws(() => sm.tensor(new Uint8ClampedArray(3)), TypeError);
});

test('scalar()', () => {
  sm.tidy(() => {
    const f = sm.scalar(3.5);
    assert.deepEqual(f.shape, []);
    assert.equal(f.dtype, 'float32');
    assert.equal(f.item(), 3.5);
    const d = sm.scalar(2, { dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    assert.equal(d.item(), 2);
    const b = sm.scalar(true);
    assert.equal(b.dtype, 'bool');
    assert.equal(b.toArray(), true);
  });
});

// ---- fills ----

test('an integral fill value gives int64 whatever its sign (as torch.full), -0 and fractions float32', () => {
  sm.tidy(() => {
    assert.equal(sm.full([2], 7).dtype, 'int64');
    assert.equal(sm.full([2], -1).dtype, 'int64', 'negative integers were float32 before');
    assert.deepEqual(values(sm.full([2], -3)), [-3, -3]);
    assert.equal(sm.full([1], -0).dtype, 'float32');
    assert.ok(Object.is(values(sm.full([1], -0))[0], -0));
    assert.equal(sm.full([1], -0.5).dtype, 'float32');
    assert.deepEqual(values(sm.tensor([5, 7], { dtype: 'int64' }).add(-2)), [3, 5], 'int64 + a negative integer stays int64');
    assert.equal(sm.tensor([5, 7], { dtype: 'int64' }).add(-2).dtype, 'int64');
  });
});

test('zeros/ones/full/empty have the requested shape, dtype and values', () => {
  sm.tidy(() => {
    const z = sm.zeros([2, 3]);
    assert.deepEqual(z.shape, [2, 3]);
    assert.equal(z.dtype, 'float32');
    assert.deepEqual(values(z), [0, 0, 0, 0, 0, 0]);
    const o = sm.ones([3], { dtype: 'int32' });
    assert.equal(o.dtype, 'int32');
    assert.deepEqual(values(o), [1, 1, 1]);
    const f = sm.full([2, 2], -1.5, { dtype: 'float64' });
    assert.equal(f.dtype, 'float64');
    assert.deepEqual(values(f), [-1.5, -1.5, -1.5, -1.5]);
    const fb = sm.full([2], true);
    assert.equal(fb.dtype, 'bool');
    assert.deepEqual(values(fb), [1, 1]);
    const e = sm.empty([4, 0, 2]);
    assert.deepEqual(e.shape, [4, 0, 2]);
    assert.equal(e.numel, 0);
    const e2 = sm.empty([3, 5], { dtype: 'int64' });
    assert.deepEqual(e2.shape, [3, 5]);
    assert.equal(e2.dtype, 'int64');
    const s = sm.zeros([]);
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 0);
    assert.throws(() => sm.full([2], 'x' as never), TypeError);
  });
});

test('zerosLike/onesLike copy shape and dtype', () => {
  sm.tidy(() => {
    const a = sm.ones([2, 3], { dtype: 'float64' });
    const z = sm.zerosLike(a);
    assert.deepEqual(z.shape, [2, 3]);
    assert.equal(z.dtype, 'float64');
    assert.deepEqual(values(z), [0, 0, 0, 0, 0, 0]);
    const o = sm.onesLike(a, { dtype: 'int32' });
    assert.equal(o.dtype, 'int32');
    assert.deepEqual(values(o), [1, 1, 1, 1, 1, 1]);
  });
});

// ---- ranges ----

test('arange with integers, a start, a step and a negative step', () => {
  sm.tidy(() => {
    assert.deepEqual(values(sm.arange(5)), [0, 1, 2, 3, 4]);
    assert.deepEqual(values(sm.arange(2, 8, 2)), [2, 4, 6]);
    assert.deepEqual(values(sm.arange(2, 9, 3)), [2, 5, 8]);
    assert.deepEqual(values(sm.arange(5, 0, -1)), [5, 4, 3, 2, 1]);
    assert.deepEqual(values(sm.arange(3, -3, -2)), [3, 1, -1]);
    assert.equal(sm.arange(0).numel, 0);
    const typed = sm.arange(4, undefined, 1, { dtype: 'int32' });
    assert.equal(typed.dtype, 'int32');
    assert.deepEqual(values(typed), [0, 1, 2, 3]);
    const long = sm.arange(1, 7, 2, { dtype: 'int64' });
    assert.equal(long.dtype, 'int64');
    assert.deepEqual(Array.from(long.dataSync() as BigInt64Array), [1n, 3n, 5n]);
  });
  assert.throws(() => sm.arange(0, 5, 0), RangeError);
});

test('arange with non-integer arguments is floating point', () => {
  sm.tidy(() => {
    const t = sm.arange(0, 1, 0.25);
    assert.equal(t.dtype, 'float32');
    assertClose(values(t), [0, 0.25, 0.5, 0.75], 0);
    const d = sm.arange(1, 0, -0.5, { dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    assertClose(values(d), [1, 0.5], 0);
  });
});

test('arange with integer arguments is int64 (as its doc comment says)', () => {
  sm.tidy(() => {
    assert.equal(sm.arange(5).dtype, 'int64');
    assert.equal(sm.arange(2, 8, 2).dtype, 'int64');
    assert.equal(sm.arange(5, 0, -1).dtype, 'int64');
    assert.deepEqual(Array.from(sm.arange(3).dataSync() as BigInt64Array), [0n, 1n, 2n]);
    assert.equal(sm.arange(0, 2, 0.5).dtype, 'float32', 'a non-integer step makes it floating point');
    assert.equal(sm.arange(0.5, 2).dtype, 'float32', 'a non-integer start makes it floating point');
  });
});

test('eye, square and rectangular', () => {
  sm.tidy(() => {
    const i3 = sm.eye(3);
    assert.deepEqual(i3.shape, [3, 3]);
    assert.deepEqual(values(i3), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const r = sm.eye(2, 3);
    assert.deepEqual(r.toArray(), [
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const tall = sm.eye(3, 2, { dtype: 'int64' });
    assert.equal(tall.dtype, 'int64');
    assert.deepEqual(tall.toArray(), [
      [1, 0],
      [0, 1],
      [0, 0],
    ]);
  });
});

// ---- random numbers ----

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

test('rand is uniform on [0, 1)', () => {
  sm.tidy(() => {
    const t = sm.rand([4000]);
    assert.equal(t.dtype, 'float32');
    const v = values(t);
    assert.ok(v.every((x) => x >= 0 && x < 1), 'all values in [0, 1)');
    assert.ok(Math.abs(mean(v) - 0.5) < 0.03, `mean ${mean(v)}`);
    assert.ok(v.some((x) => x < 0.1) && v.some((x) => x > 0.9), 'values spread over the interval');
    assert.equal(sm.rand([2, 2], { dtype: 'float64' }).dtype, 'float64');
  });
});

test('randn has mean about 0 and standard deviation about 1', () => {
  sm.tidy(() => {
    const v = values(sm.randn([10000]));
    const m = mean(v);
    const sd = Math.sqrt(mean(v.map((x) => (x - m) ** 2)));
    assert.ok(Math.abs(m) < 0.05, `mean ${m}`);
    assert.ok(Math.abs(sd - 1) < 0.05, `sd ${sd}`);
    assert.ok(v.some((x) => x < -2) && v.some((x) => x > 2), 'tails present');
  });
});

test('randint draws integers in [low, high), int64 by default', () => {
  sm.tidy(() => {
    const t = sm.randint(3, 7, [2000]);
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.shape, [2000]);
    const v = values(t);
    assert.ok(v.every((x) => Number.isInteger(x) && x >= 3 && x < 7));
    assert.deepEqual([...new Set(v)].sort(), [3, 4, 5, 6]);
    const i32 = sm.randint(-2, 2, [3, 4], { dtype: 'int32' });
    assert.equal(i32.dtype, 'int32');
    assert.ok(values(i32).every((x) => x >= -2 && x < 2));
  });
});

test('randperm is a permutation', () => {
  sm.tidy(() => {
    const t = sm.randperm(50);
    assert.equal(t.dtype, 'int64');
    const v = values(t);
    assert.deepEqual(
      [...v].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.notDeepEqual(v, Array.from({ length: 50 }, (_, i) => i), 'not the identity (probability 1/50!)');
  });
});

test('seeded Generators: same seed gives identical values, a different seed differs', () => {
  const g1 = new sm.Generator(1234);
  const g2 = new sm.Generator(1234);
  const g3 = new sm.Generator(4321);
  try {
    sm.tidy(() => {
      const a = values(sm.rand([64], { generator: g1 }));
      const b = values(sm.rand([64], { generator: g2 }));
      const c = values(sm.rand([64], { generator: g3 }));
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
      // The generators advance together.
      assert.deepEqual(values(sm.randn([32], { generator: g1 })), values(sm.randn([32], { generator: g2 })));
      assert.deepEqual(values(sm.randint(0, 1000, [32], { generator: g1 })), values(sm.randint(0, 1000, [32], { generator: g2 })));
      assert.deepEqual(values(sm.randperm(20, { generator: g1 })), values(sm.randperm(20, { generator: g2 })));
      // And a generator's next draw differs from its previous one.
      assert.notDeepEqual(values(sm.rand([64], { generator: g1 })), a);
      // A fresh generator with the first seed starts over.
      const g4 = new sm.Generator(1234);
      assert.deepEqual(values(sm.rand([64], { generator: g4 })), a);
      g4.dispose();
    });
  } finally {
    g1.dispose();
    g2.dispose();
    g3.dispose();
  }
});

test('a disposed Generator cannot be used', () => {
  const g = new sm.Generator(1);
  g.dispose();
  assert.throws(() => sm.rand([2], { generator: g }), /generator/);
});

test('manualSeed makes the global generator reproducible', () => {
  sm.tidy(() => {
    sm.manualSeed(42);
    const a = values(sm.rand([32]));
    const an = values(sm.randn([8]));
    sm.manualSeed(42);
    const b = values(sm.rand([32]));
    const bn = values(sm.randn([8]));
    assert.deepEqual(a, b);
    assert.deepEqual(an, bn);
    sm.manualSeed(43);
    assert.notDeepEqual(values(sm.rand([32])), a);
  });
});

// ---- dtypes ----

test('every dtype round-trips through to(dtype) and dataSync() with its documented array type', () => {
  sm.tidy(() => {
    const cases: { dtype: sm.DType; array: Function; input: number[]; expected: number[] }[] = [
      { dtype: 'float32', array: Float32Array, input: [0.5, -1.25, 3, 100], expected: [0.5, -1.25, 3, 100] },
      { dtype: 'float64', array: Float64Array, input: [0.5, -1.25, 3, 100], expected: [0.5, -1.25, 3, 100] },
      { dtype: 'float16', array: Float32Array, input: [0.5, -1.25, 3, 1024], expected: [0.5, -1.25, 3, 1024] },
      { dtype: 'bfloat16', array: Float32Array, input: [0.5, -1.25, 3, 256], expected: [0.5, -1.25, 3, 256] },
      { dtype: 'int64', array: BigInt64Array, input: [0, -1, 3, 100], expected: [0, -1, 3, 100] },
      { dtype: 'int32', array: Int32Array, input: [0, -1, 3, 100], expected: [0, -1, 3, 100] },
      { dtype: 'bool', array: Uint8Array, input: [0, -1, 0, 2.5], expected: [0, 1, 0, 1] },
      { dtype: 'uint8', array: Uint8Array, input: [0, 1, 3, 200], expected: [0, 1, 3, 200] },
      { dtype: 'int8', array: Int8Array, input: [0, -1, 3, -100], expected: [0, -1, 3, -100] },
      { dtype: 'int16', array: Int16Array, input: [0, -1, 3, -30000], expected: [0, -1, 3, -30000] },
    ];
    for (const { dtype, array, input, expected } of cases) {
      const src = sm.tensor(input, { dtype: 'float64' });
      const t = src.to(dtype);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [4]);
      const data = t.dataSync();
      assert.equal(data.constructor, array, `${dtype} reads back as ${array.name}`);
      assert.equal(data.length, 4, dtype);
      assert.deepEqual(values(t), expected, dtype);
      // And back to float64 without loss.
      assert.deepEqual(values(t.to('float64')), expected, `${dtype} -> float64`);
      // Creating directly in that dtype gives the same.
      assert.deepEqual(values(sm.tensor(input, { dtype })), expected, `tensor(..., {dtype: ${dtype}})`);
    }
  });
});

test('float16 and bfloat16 round to their precision', () => {
  sm.tidy(() => {
    const h = sm.tensor([0.1], { dtype: 'float16' });
    assert.equal(values(h)[0], 0.0999755859375);
    const b = sm.tensor([0.1], { dtype: 'bfloat16' });
    assert.equal(values(b)[0], 0.10009765625);
    assert.equal(values(sm.tensor([257], { dtype: 'bfloat16' }))[0], 256);
  });
});

test('float() and long() convert', () => {
  sm.tidy(() => {
    const l = sm.tensor([1.9, -1.9]).long();
    assert.equal(l.dtype, 'int64');
    assert.deepEqual(values(l), [1, -1]);
    const f = sm.tensor([3, 4]).float();
    assert.equal(f.dtype, 'float32');
    assert.deepEqual(values(f), [3, 4]);
  });
});

// ---- read-back ----

test('await data() equals dataSync() on a large tensor, contiguous or not', async () => {
  const t = sm.rand([1000, 1000]);
  const tt = t.T;
  try {
    const [asyncData, syncData] = [await t.data(), t.dataSync()];
    assert.ok(asyncData instanceof Float32Array);
    assert.equal(asyncData.length, 1_000_000);
    let mismatches = 0;
    for (let i = 0; i < syncData.length; i++) if (asyncData[i] !== syncData[i]) mismatches++;
    assert.equal(mismatches, 0);
    const transposed = (await tt.data()) as Float32Array;
    const s = syncData as Float32Array;
    for (const [i, j] of [
      [0, 1],
      [999, 3],
      [17, 998],
    ] as const) {
      assert.equal(transposed[i * 1000 + j], s[j * 1000 + i]);
    }
    // Concurrent reads resolve with the right values.
    const small = [sm.tensor([1, 2]), sm.tensor([3.5]), sm.tensor([true])];
    const all = await Promise.all(small.map((x) => x.data()));
    assert.deepEqual(Array.from(all[0] as BigInt64Array), [1n, 2n]);
    assert.deepEqual(Array.from(all[1] as Float32Array), [3.5]);
    assert.deepEqual(Array.from(all[2] as Uint8Array), [1]);
    sm.dispose(small);
  } finally {
    sm.dispose([t, tt]);
  }
});

test('dataSync of a non-contiguous view reads the logical order', () => {
  sm.tidy(() => {
    const t = sm.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]).T;
    assert.deepEqual(values(t), [1, 4, 2, 5, 3, 6]);
  });
});

test('toArray() nests like the shape; bool gives booleans; rank 0 gives a number', () => {
  sm.tidy(() => {
    assert.deepEqual(
      sm.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]).toArray(),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
    );
    assert.deepEqual(sm.arange(8, undefined, 1, { dtype: 'float32' }).reshape([2, 2, 2]).toArray(), [
      [
        [0, 1],
        [2, 3],
      ],
      [
        [4, 5],
        [6, 7],
      ],
    ]);
    assert.deepEqual(sm.tensor([true, false]).toArray(), [true, false]);
    assert.equal(sm.tensor(2.5).toArray(), 2.5);
    assert.deepEqual(sm.zeros([2, 0]).toArray(), [[], []]);
    assert.deepEqual(sm.tensor([[1.5], [2.5]]).T.toArray(), [[1.5, 2.5]]);
  });
});

test('item() reads a one-element tensor and rejects more elements', () => {
  sm.tidy(() => {
    assert.equal(sm.tensor([[4.5]]).item(), 4.5);
    assert.equal(sm.tensor([9]).item(), 9);
    assert.throws(() => sm.tensor([1, 2]).item(), /one element/);
  });
});

// ---- metadata ----

test('shape, rank, numel, dtype, device, size() and strides', () => {
  sm.tidy(() => {
    const t = sm.zeros([2, 3, 4]);
    assert.deepEqual(t.shape, [2, 3, 4]);
    assert.ok(Object.isFrozen(t.shape));
    assert.equal(t.rank, 3);
    assert.equal(t.numel, 24);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.device, 'cpu');
    assert.equal(t.size(0), 2);
    assert.equal(t.size(2), 4);
    assert.equal(t.size(-1), 4);
    assert.equal(t.size(-3), 2);
    assert.throws(() => t.size(3), RangeError);
    assert.throws(() => t.size(-4), RangeError);
    assert.deepEqual(t.strides, [12, 4, 1]);
    assert.deepEqual(t.transpose(0, 2).strides, [1, 4, 12]);
    assert.match(t.toString(), /float32\[2, 3, 4\]/);
  });
});

test("device 'cpu': creation on and moving to the cpu", () => {
  sm.tidy(() => {
    const t = sm.ones([2], { device: 'cpu' });
    assert.equal(t.device, 'cpu');
    const moved = t.to('cpu');
    assert.equal(moved.device, 'cpu');
    assert.deepEqual(values(moved), [1, 1]);
    assert.equal(sm.tensor([1, 2], { device: 'cpu' }).device, 'cpu');
    assert.equal(sm.randn([2], { device: 'cpu' }).device, 'cpu');
  });
});

test('cuda.isAvailable() is a boolean and cuda.deviceCount() a count', () => {
  const available = sm.cuda.isAvailable();
  const count = sm.cuda.deviceCount();
  assert.equal(typeof available, 'boolean');
  assert.equal(typeof count, 'number');
  assert.ok(Number.isInteger(count) && count >= 0);
  if (available) assert.ok(count >= 1);
  else assert.equal(count, 0);
});

test('without CUDA, moving to cuda throws an Error rather than crashing', { skip: sm.cuda.isAvailable() && 'CUDA is available' }, () => {
  const t = sm.zeros([2]);
  try {
    assert.throws(() => t.to('cuda'), Error);
  } finally {
    t.dispose();
  }
});

test('without CUDA, cuda.synchronize() is a no-op and memory statistics say there is no CUDA', { skip: sm.cuda.isAvailable() && 'CUDA is available' }, () => {
  sm.cuda.synchronize();
  if (sm.systemInfo().addon.cudaKernels) return; // a CUDA build on a machine without a GPU
  assert.throws(() => sm.cuda.memoryStats(0), /no CUDA support/);
  assert.throws(() => sm.cuda.resetPeakMemory(0), /no CUDA support/);
});

function rngRoundTrip(device: sm.Device): void {
  sm.tidy(() => {
    const state = sm.getRngState(device);
    assert.equal(state.dtype, 'uint8');
    const first = values(sm.rand([8], { device }));
    sm.setRngState(state, device);
    assert.deepEqual(values(sm.rand([8], { device })), first, 'the same numbers after restoring the state');
  });
}

test('a default generator state restores the same random numbers', () => rngRoundTrip('cpu'));

test('without CUDA, the CUDA generator state is a clear error', { skip: sm.cuda.isAvailable() && 'CUDA is available' }, () => {
  assert.throws(() => sm.getRngState('cuda'), /getRngState: no CUDA device: cannot use the generator of cuda/);
  assert.throws(() => sm.getRngState('tpu' as sm.Device), TypeError);
});

// ---- CUDA ----

test('CUDA: create on cuda, compute, read back on the cpu', { skip: noCuda }, () => {
  sm.tidy(() => {
    const a = sm.tensor([1, 2, 3], { dtype: 'float32', device: 'cuda' });
    assert.match(a.device, /^cuda/);
    const b = sm.ones([3], { device: 'cuda' });
    const c = a.add(b).mul(2);
    assert.match(c.device, /^cuda/);
    assert.deepEqual(values(c), [4, 6, 8]); // dataSync copies to the host
    const back = c.to('cpu');
    assert.equal(back.device, 'cpu');
    assert.deepEqual(values(back), [4, 6, 8]);
    const m = sm.randn([4, 5], { device: 'cuda' }).matmul(sm.randn([5, 3], { device: 'cuda' }));
    assert.deepEqual(m.shape, [4, 3]);
    assert.equal(sm.zeros([2], { device: 'cuda:0' }).device, 'cuda:0');
    assert.equal(sm.zeros([2]).to('cuda:0').device, 'cuda:0');
  });
});

test('CUDA: seeded generators give the same numbers on cuda and cpu', { skip: noCuda }, () => {
  const g1 = new sm.Generator(7);
  const g2 = new sm.Generator(7);
  try {
    sm.tidy(() => {
      assert.deepEqual(values(sm.randn([16], { generator: g1, device: 'cuda' })), values(sm.randn([16], { generator: g2 })));
    });
  } finally {
    g1.dispose();
    g2.dispose();
  }
});

test('CUDA: the GPU generator state restores the same dropout numbers', { skip: noCuda }, () => rngRoundTrip('cuda'));

test('CUDA: async data() from the device', { skip: noCuda }, async () => {
  const t = sm.arange(1000, undefined, 1, { dtype: 'float32', device: 'cuda' });
  try {
    const d = (await t.data()) as Float32Array;
    assert.equal(d.length, 1000);
    assert.equal(d[999], 999);
  } finally {
    t.dispose();
  }
});

test('CUDA: memory statistics follow allocations, and the peak resets', { skip: noCuda }, () => {
  sm.cuda.resetPeakMemory(0);
  const before = sm.cuda.memoryStats(0);
  const big = sm.zeros([1024, 1024], { device: 'cuda' }); // 4 MiB
  sm.cuda.synchronize();
  const during = sm.cuda.memoryStats(0);
  assert.ok(during.allocatedBytes >= before.allocatedBytes + 4 * 2 ** 20);
  assert.ok(during.peakAllocatedBytes >= during.allocatedBytes);
  big.dispose();
  sm.cuda.resetPeakMemory(0);
  assert.ok(sm.cuda.memoryStats(0).peakAllocatedBytes < during.peakAllocatedBytes);
  assert.throws(() => sm.cuda.memoryStats(99), /does not exist/);
});
