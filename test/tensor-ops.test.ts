// Tensor operations against hand-computed results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose, pseudoRandom, values } from './helpers';

const F = sm.functional;

/** float64 tensor from nested numbers. */
function f64(data: sm.NestedArray<number>): sm.Tensor {
  return sm.tensor(data, { dtype: 'float64' });
}

/** float32 tensor from nested numbers. */
function f32(data: sm.NestedArray<number>): sm.Tensor {
  return sm.tensor(data, { dtype: 'float32' });
}

/** 0, 1, ..., n-1 as float32 in the given shape. */
function seq(shape: number[]): sm.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return sm.tensor(Float32Array.from({ length: n }, (_, i) => i), { shape });
}

/** erf by its Taylor series (accurate to ~1e-12 for |x| < 3). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function logSumExp(xs: number[]): number {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

function rows(flat: number[], cols: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += cols) out.push(flat.slice(i, i + cols));
  return out;
}

// ======================= views and indexing =======================

test('reshape and view', () => {
  sm.tidy(() => {
    const x = seq([6]);
    assert.deepEqual(x.reshape([2, 3]).toArray(), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    const r = x.reshape([-1, 2]);
    assert.deepEqual(r.shape, [3, 2]);
    assert.deepEqual(r.toArray(), [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    assert.deepEqual(x.view([3, 2]).toArray(), r.toArray());
    assert.deepEqual(x.reshape([1, 6, 1]).shape, [1, 6, 1]);
    // view of a non-contiguous tensor is impossible; reshape copies instead.
    const t = x.reshape([2, 3]).T;
    assert.throws(() => t.view([6]), Error);
    assert.deepEqual(values(t.reshape([6])), [0, 3, 1, 4, 2, 5]);
  });
});

test('transpose, T and permute', () => {
  sm.tidy(() => {
    const x = seq([2, 3]);
    const expected = [
      [0, 3],
      [1, 4],
      [2, 5],
    ];
    assert.deepEqual(x.transpose(0, 1).toArray(), expected);
    assert.deepEqual(x.transpose(-1, -2).toArray(), expected);
    assert.deepEqual(x.T.toArray(), expected);
    const b = seq([2, 2, 3]);
    assert.deepEqual(b.T.shape, [2, 3, 2]);
    assert.deepEqual(b.T.toArray(), [
      [
        [0, 3],
        [1, 4],
        [2, 5],
      ],
      [
        [6, 9],
        [7, 10],
        [8, 11],
      ],
    ]);
    const y = seq([2, 3, 4]);
    const p = y.permute([2, 0, 1]);
    assert.deepEqual(p.shape, [4, 2, 3]);
    const pv = values(p);
    for (let k = 0; k < 4; k++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) assert.equal(pv[k * 6 + i * 3 + j], i * 12 + j * 4 + k, `p[${k},${i},${j}]`);
  });
});

test('narrow and slice (negative indices, steps, open ends)', () => {
  sm.tidy(() => {
    const m = seq([2, 3]);
    assert.deepEqual(m.narrow(1, 1, 2).toArray(), [
      [1, 2],
      [4, 5],
    ]);
    assert.deepEqual(m.narrow(0, 1, 1).toArray(), [[3, 4, 5]]);
    assert.deepEqual(m.narrow(-1, 0, 1).toArray(), [[0], [3]]);
    const x = seq([10]);
    assert.deepEqual(values(x.slice(0, 2, 5)), [2, 3, 4]);
    assert.deepEqual(values(x.slice(0, -3)), [7, 8, 9]);
    assert.deepEqual(values(x.slice(0, undefined, -7)), [0, 1, 2]);
    assert.deepEqual(values(x.slice(0, -5, -1, 2)), [5, 7]);
    assert.deepEqual(values(x.slice(0, 1, undefined, 3)), [1, 4, 7]);
    assert.deepEqual(values(x.slice(0, undefined, undefined, 4)), [0, 4, 8]);
    assert.deepEqual(values(x.slice(0)), values(x));
    assert.deepEqual(values(x.slice(0, 8, 100)), [8, 9]);
    assert.deepEqual(x.slice(0, 5, 2).shape, [0]);
    assert.deepEqual(m.slice(1, -2).toArray(), [
      [1, 2],
      [4, 5],
    ]);
    assert.deepEqual(m.slice(-1, 0, 3, 2).toArray(), [
      [0, 2],
      [3, 5],
    ]);
  });
});

test('select, indexSelect and gather', () => {
  sm.tidy(() => {
    const m = seq([3, 2]);
    assert.deepEqual(m.select(0, 1).toArray(), [2, 3]);
    assert.deepEqual(m.select(1, -1).toArray(), [1, 3, 5]);
    assert.deepEqual(m.select(0, -1).shape, [2]);
    assert.deepEqual(m.indexSelect(0, sm.tensor([2, 0, 2])).toArray(), [
      [4, 5],
      [0, 1],
      [4, 5],
    ]);
    assert.deepEqual(m.indexSelect(1, sm.tensor([1])).toArray(), [[1], [3], [5]]);
    assert.deepEqual(m.indexSelect(0, sm.tensor([1, 0], { dtype: 'int32' })).toArray(), [
      [2, 3],
      [0, 1],
    ]);
    const g = f32([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(
      g.gather(
        1,
        sm.tensor([
          [0, 0],
          [1, 0],
        ]),
      ).toArray(),
      [
        [1, 1],
        [4, 3],
      ],
    );
    assert.deepEqual(g.gather(0, sm.tensor([[1, 0]])).toArray(), [[3, 2]]);
  });
});

test('scatter, scatterAdd and indexAdd (out of place)', () => {
  sm.tidy(() => {
    const base = sm.zeros([2, 3]);
    const s = base.scatter(
      1,
      sm.tensor([
        [0, 2],
        [1, 0],
      ]),
      f32([
        [1, 2],
        [3, 4],
      ]),
    );
    assert.deepEqual(s.toArray(), [
      [1, 0, 2],
      [4, 3, 0],
    ]);
    assert.deepEqual(values(base), [0, 0, 0, 0, 0, 0], 'scatter does not modify its input');
    const sa = f32([10, 20, 30]).scatterAdd(0, sm.tensor([0, 1, 0, 2]), f32([1, 2, 3, 4]));
    assert.deepEqual(values(sa), [14, 22, 34]);
    const ia = sm.zeros([3, 2]).indexAdd(
      0,
      sm.tensor([0, 2, 0]),
      f32([
        [1, 1],
        [2, 2],
        [3, 3],
      ]),
    );
    assert.deepEqual(ia.toArray(), [
      [4, 4],
      [0, 0],
      [2, 2],
    ]);
    const ia1 = sm.ones([2, 3]).indexAdd(1, sm.tensor([2]), f32([[5], [6]]));
    assert.deepEqual(ia1.toArray(), [
      [1, 1, 6],
      [1, 1, 7],
    ]);
  });
});

test('maskedFill, with a full and a broadcast mask', () => {
  sm.tidy(() => {
    const x = f32([
      [1, 2],
      [3, 4],
    ]);
    const mask = sm.tensor([
      [true, false],
      [false, true],
    ]);
    assert.deepEqual(x.maskedFill(mask, -1).toArray(), [
      [-1, 2],
      [3, -1],
    ]);
    assert.deepEqual(x.maskedFill(sm.tensor([false, true]), -Infinity).toArray(), [
      [1, -Infinity],
      [3, -Infinity],
    ]);
    assert.deepEqual(values(x), [1, 2, 3, 4], 'input unchanged');
    const b = sm.tensor([true, true]).maskedFill(sm.tensor([false, true]), false);
    assert.deepEqual(b.toArray(), [true, false]);
  });
});

test('cat and stack', () => {
  sm.tidy(() => {
    const a = f32([
      [1, 2],
      [3, 4],
    ]);
    const b = f32([[5, 6]]);
    assert.deepEqual(sm.cat([a, b]).toArray(), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.deepEqual(sm.cat([a, b.T.reshape([2, 1])], 1).toArray(), [
      [1, 2, 5],
      [3, 4, 6],
    ]);
    assert.deepEqual(sm.cat([a, a], -1).shape, [2, 4]);
    const u = f32([1, 2]);
    const v = f32([3, 4]);
    assert.deepEqual(sm.stack([u, v]).toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(sm.stack([u, v], 1).toArray(), [
      [1, 3],
      [2, 4],
    ]);
    assert.deepEqual(sm.stack([u, v, u], -1).shape, [2, 3]);
    assert.deepEqual(sm.functional.cat([u], 0).toArray(), [1, 2]);
  });
});

test('split (equal size and sizes) and chunk', () => {
  sm.tidy(() => {
    const x = seq([5]);
    assert.deepEqual(
      x.split(2).map((t) => t.toArray()),
      [[0, 1], [2, 3], [4]],
    );
    assert.deepEqual(
      x.split([1, 4]).map((t) => t.toArray()),
      [[0], [1, 2, 3, 4]],
    );
    assert.deepEqual(
      x.split([2, 0, 3]).map((t) => t.shape[0]),
      [2, 0, 3],
    );
    assert.throws(() => x.split([2, 2]), Error);
    const m = seq([2, 4]);
    const parts = m.split(2, 1);
    assert.equal(parts.length, 2);
    assert.deepEqual(parts[1]!.toArray(), [
      [2, 3],
      [6, 7],
    ]);
    assert.deepEqual(
      m.split([3, 1], -1).map((t) => t.shape),
      [
        [2, 3],
        [2, 1],
      ],
    );
    assert.deepEqual(
      x.chunk(2).map((t) => t.toArray()),
      [
        [0, 1, 2],
        [3, 4],
      ],
    );
    assert.deepEqual(
      m.chunk(4, 1).map((t) => t.toArray()),
      [[[0], [4]], [[1], [5]], [[2], [6]], [[3], [7]]],
    );
  });
});

test('contiguous keeps values and gives row-major strides', () => {
  sm.tidy(() => {
    const t = seq([2, 3]).T;
    assert.deepEqual(t.strides, [1, 3]);
    const c = t.contiguous();
    assert.deepEqual(c.strides, [2, 1]);
    assert.deepEqual(c.toArray(), t.toArray());
    assert.deepEqual(c.view([6]).toArray(), [0, 3, 1, 4, 2, 5]);
  });
});

test('squeeze, unsqueeze, expand, repeat and flatten', () => {
  sm.tidy(() => {
    const x = sm.zeros([1, 2, 1]);
    assert.deepEqual(x.squeeze().shape, [2]);
    assert.deepEqual(x.squeeze(0).shape, [2, 1]);
    assert.deepEqual(x.squeeze(-1).shape, [1, 2]);
    assert.deepEqual(x.squeeze(1).shape, [1, 2, 1], 'a dim of size 2 is not squeezed');
    const m = seq([2, 3]);
    assert.deepEqual(m.unsqueeze(1).shape, [2, 1, 3]);
    assert.deepEqual(m.unsqueeze(0).shape, [1, 2, 3]);
    assert.deepEqual(m.unsqueeze(-1).shape, [2, 3, 1]);
    assert.deepEqual(values(m.unsqueeze(1)), values(m));
    const col = f32([[1], [2]]);
    const e = col.expand([2, 3]);
    assert.deepEqual(e.toArray(), [
      [1, 1, 1],
      [2, 2, 2],
    ]);
    assert.deepEqual(e.strides, [1, 0], 'expand is a view with stride 0');
    assert.deepEqual(col.expand([2, 2, -1]).shape, [2, 2, 1]);
    assert.deepEqual(f32([1, 2]).repeat([2, 2]).toArray(), [
      [1, 2, 1, 2],
      [1, 2, 1, 2],
    ]);
    assert.deepEqual(f32([1, 2]).repeat([3]).toArray(), [1, 2, 1, 2, 1, 2]);
    const y = seq([2, 3, 4]);
    assert.deepEqual(y.flatten().shape, [24]);
    assert.deepEqual(values(y.flatten()), values(y));
    assert.deepEqual(y.flatten(1).shape, [2, 12]);
    assert.deepEqual(y.flatten(0, 1).shape, [6, 4]);
    assert.deepEqual(y.flatten(-2, -1).shape, [2, 12]);
  });
});

test('tril and triu with diagonals', () => {
  sm.tidy(() => {
    const x = seq([3, 3]).add(1);
    assert.deepEqual(x.tril().toArray(), [
      [1, 0, 0],
      [4, 5, 0],
      [7, 8, 9],
    ]);
    assert.deepEqual(x.tril(-1).toArray(), [
      [0, 0, 0],
      [4, 0, 0],
      [7, 8, 0],
    ]);
    assert.deepEqual(x.tril(1).toArray(), [
      [1, 2, 0],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    assert.deepEqual(x.triu().toArray(), [
      [1, 2, 3],
      [0, 5, 6],
      [0, 0, 9],
    ]);
    assert.deepEqual(x.triu(1).toArray(), [
      [0, 2, 3],
      [0, 0, 6],
      [0, 0, 0],
    ]);
    assert.deepEqual(sm.ones([2, 3]).triu(-1).toArray(), [
      [1, 1, 1],
      [1, 1, 1],
    ]);
    assert.deepEqual(sm.ones([2, 3]).tril().toArray(), [
      [1, 0, 0],
      [1, 1, 0],
    ]);
  });
});

test('flip and roll', () => {
  sm.tidy(() => {
    const m = seq([2, 3]);
    assert.deepEqual(m.flip([0]).toArray(), [
      [3, 4, 5],
      [0, 1, 2],
    ]);
    assert.deepEqual(m.flip([1]).toArray(), [
      [2, 1, 0],
      [5, 4, 3],
    ]);
    assert.deepEqual(m.flip([0, 1]).toArray(), [
      [5, 4, 3],
      [2, 1, 0],
    ]);
    assert.deepEqual(values(seq([4]).roll([1], [0])), [3, 0, 1, 2]);
    assert.deepEqual(values(seq([4]).roll([-1], [0])), [1, 2, 3, 0]);
    assert.deepEqual(values(seq([4]).roll([6], [0])), [2, 3, 0, 1]);
    assert.deepEqual(m.roll([1], [1]).toArray(), [
      [2, 0, 1],
      [5, 3, 4],
    ]);
    assert.deepEqual(m.roll([1, -1], [0, 1]).toArray(), [
      [4, 5, 3],
      [1, 2, 0],
    ]);
  });
});

// ======================= element-wise =======================

test('add/sub/mul/div/pow/remainder with tensors', () => {
  sm.tidy(() => {
    const a = f32([
      [1, 2],
      [3, 4],
    ]);
    const b = f32([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(values(a.add(b)), [6, 8, 10, 12]);
    assert.deepEqual(values(a.sub(b)), [-4, -4, -4, -4]);
    assert.deepEqual(values(a.mul(b)), [5, 12, 21, 32]);
    assertClose(values(a.div(b)), [1 / 5, 2 / 6, 3 / 7, 4 / 8], 1e-7);
    assert.deepEqual(values(f32([2, 3, 4]).pow(f32([3, 2, 0.5]))), [8, 9, 2]);
    assert.deepEqual(values(f32([-3, 5.5, 7]).remainder(f32([2, 2, -2]))), [1, 1.5, -1]);
    // Integer tensors stay integer for integer ops; division is true division.
    const ia = sm.tensor([7, -7]);
    const ib = sm.tensor([2, 2]);
    const s = ia.add(ib);
    assert.equal(s.dtype, 'int64');
    assert.deepEqual(values(s), [9, -5]);
    assert.deepEqual(values(ia.div(ib)), [3.5, -3.5]);
    assert.deepEqual(values(ia.remainder(ib)), [1, 1]);
    // Mixed dtypes promote.
    assert.equal(ia.add(f64([0.5, 0.5])).dtype, 'float64');
  });
});

test('element-wise ops broadcast', () => {
  sm.tidy(() => {
    const a = f32([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(a.add(f32([10, 20])).toArray(), [
      [11, 22],
      [13, 24],
    ]);
    assert.deepEqual(a.mul(f32([[10], [100]])).toArray(), [
      [10, 20],
      [300, 400],
    ]);
    const outer = f32([[1], [2]]).sub(f32([[10, 20, 30]]));
    assert.deepEqual(outer.shape, [2, 3]);
    assert.deepEqual(outer.toArray(), [
      [-9, -19, -29],
      [-8, -18, -28],
    ]);
    assert.deepEqual(a.div(sm.tensor(2, { dtype: 'float32' })).toArray(), [
      [0.5, 1],
      [1.5, 2],
    ]);
    assert.deepEqual(sm.zeros([2, 1, 3]).add(sm.zeros([4, 1])).shape, [2, 4, 3]);
  });
});

test('scalar right-hand sides, rsub and rdiv', () => {
  sm.tidy(() => {
    const a = f32([1, 2, 4]);
    assert.deepEqual(values(a.add(1.5)), [2.5, 3.5, 5.5]);
    assert.deepEqual(values(a.sub(1)), [0, 1, 3]);
    assert.deepEqual(values(a.mul(-2)), [-2, -4, -8]);
    assert.deepEqual(values(a.div(4)), [0.25, 0.5, 1]);
    assert.deepEqual(values(a.pow(2)), [1, 4, 16]);
    assert.deepEqual(values(a.pow(0.5)), [1, Math.fround(Math.SQRT2), 2]);
    assert.deepEqual(values(f32([-3, 5.5, 7]).remainder(2)), [1, 1.5, 1]);
    assert.deepEqual(values(f32([-3, 5.5, 7]).remainder(-2)), [-1, -0.5, -1]);
    assert.deepEqual(values(a.rsub(10)), [9, 8, 6]);
    assertClose(values(a.rdiv(8)), [8, 4, 2], 1e-6);
    assertClose(values(f64([3, 7, 0.5]).rdiv(-1)), [-1 / 3, -1 / 7, -2], 1e-15);
    assert.deepEqual(values(a), [1, 2, 4], 'input unchanged');
    assert.equal(f64([1]).add(1).dtype, 'float64', 'a scalar does not change a float64 tensor dtype');
  });
});

test('integer tensors with integer scalars stay integer (like torch with Python ints)', () => {
  sm.tidy(() => {
    const i = sm.tensor([1, 2]);
    const cases: [string, sm.Tensor, sm.DType, number[]][] = [
      ['add', i.add(1), 'int64', [2, 3]],
      ['sub', i.sub(1), 'int64', [0, 1]],
      ['mul', i.mul(2), 'int64', [2, 4]],
      ['pow', i.pow(2), 'int64', [1, 4]],
      ['remainder', i.remainder(2), 'int64', [1, 0]],
      ['rsub', i.rsub(10), 'int64', [9, 8]],
      ['clamp', i.clamp(0, 1), 'int64', [1, 1]],
      ['int32 mul', sm.tensor([3], { dtype: 'int32' }).mul(3), 'int32', [9]],
      ['div is true division', i.div(2), 'float32', [0.5, 1]],
      ['a fractional scalar promotes', i.add(0.5), 'float32', [1.5, 2.5]],
      ['float16 stays float16', sm.ones([2], { dtype: 'float16' }).add(1), 'float16', [2, 2]],
      ['float32 stays float32', sm.ones([2]).mul(3), 'float32', [3, 3]],
      ['full with an integer', sm.full([2], 3), 'int64', [3, 3]],
      ['full with a fraction', sm.full([2], 2.5), 'float32', [2.5, 2.5]],
    ];
    for (const [name, t, dtype, expected] of cases) {
      assert.equal(t.dtype, dtype, name);
      assert.deepEqual(values(t), expected, name);
    }
    // Index arithmetic stays usable as indices.
    const picked = seq([3, 2]).indexSelect(0, sm.tensor([0, 1]).add(1));
    assert.deepEqual(picked.toArray(), [
      [2, 3],
      [4, 5],
    ]);
  });
});

test(
  'a negative-zero scalar keeps its sign',
  () => {
    sm.tidy(() => {
      assert.deepEqual(values(sm.ones([1]).div(-0)), [-Infinity]);
      assert.ok(Object.is(values(sm.zeros([1]).fillInPlace(-0))[0], -0));
    });
  },
);

test('maximum and minimum', () => {
  sm.tidy(() => {
    const a = f32([1, 5, -2]);
    const b = f32([3, 4, -2]);
    assert.deepEqual(values(a.maximum(b)), [3, 5, -2]);
    assert.deepEqual(values(a.minimum(b)), [1, 4, -2]);
    assert.deepEqual(a.maximum(f32([[0], [10]])).toArray(), [
      [1, 5, 0],
      [10, 10, 10],
    ]);
  });
});

test('comparisons with tensors and scalars give bool', () => {
  sm.tidy(() => {
    const a = f32([1, 2, 3]);
    const b = f32([3, 2, 1]);
    const cases: [string, sm.Tensor, number[]][] = [
      ['eq', a.eq(b), [0, 1, 0]],
      ['ne', a.ne(b), [1, 0, 1]],
      ['lt', a.lt(b), [1, 0, 0]],
      ['le', a.le(b), [1, 1, 0]],
      ['gt', a.gt(b), [0, 0, 1]],
      ['ge', a.ge(b), [0, 1, 1]],
      ['eq scalar', a.eq(2), [0, 1, 0]],
      ['ne scalar', a.ne(2), [1, 0, 1]],
      ['lt scalar', a.lt(2), [1, 0, 0]],
      ['le scalar', a.le(2), [1, 1, 0]],
      ['gt scalar', a.gt(2), [0, 0, 1]],
      ['ge scalar', a.ge(2), [0, 1, 1]],
    ];
    for (const [name, t, expected] of cases) {
      assert.equal(t.dtype, 'bool', name);
      assert.deepEqual(values(t), expected, name);
    }
    assert.deepEqual(a.lt(f32([[2], [4]])).toArray(), [
      [true, false, false],
      [true, true, true],
    ]);
    assert.deepEqual(values(sm.tensor([1, 2, 3]).eq(2)), [0, 1, 0]);
    assert.deepEqual(values(f32([NaN]).eq(f32([NaN]))), [0]);
  });
});

test('logical and, or and not', () => {
  sm.tidy(() => {
    const p = sm.tensor([true, true, false, false]);
    const q = sm.tensor([true, false, true, false]);
    assert.deepEqual(p.logicalAnd(q).toArray(), [true, false, false, false]);
    assert.deepEqual(p.logicalOr(q).toArray(), [true, true, true, false]);
    assert.deepEqual(p.logicalNot().toArray(), [false, false, true, true]);
    assert.deepEqual(f32([0, 2, -1]).logicalNot().toArray(), [true, false, false]);
  });
});

test('unary math against JavaScript', () => {
  sm.tidy(() => {
    const xs = [-2.5, -1, -0.3, 0.2, 0.7, 1.5, 3];
    const pos = [0.01, 0.3, 1, 2.5, 10];
    const x = f64(xs);
    const p = f64(pos);
    const check = (name: string, t: sm.Tensor, fn: (v: number) => number, input: number[]) => {
      assert.equal(t.dtype, 'float64', name);
      assertClose(values(t), input.map(fn), 1e-12, name);
    };
    check('neg', x.neg(), (v) => -v, xs);
    check('abs', x.abs(), Math.abs, xs);
    check('exp', x.exp(), Math.exp, xs);
    check('tanh', x.tanh(), Math.tanh, xs);
    check('sigmoid', x.sigmoid(), (v) => 1 / (1 + Math.exp(-v)), xs);
    check('relu', x.relu(), (v) => Math.max(0, v), xs);
    check('sin', x.sin(), Math.sin, xs);
    check('cos', x.cos(), Math.cos, xs);
    check('square', x.square(), (v) => v * v, xs);
    check('reciprocal', x.reciprocal(), (v) => 1 / v, xs);
    check('floor', x.floor(), Math.floor, xs);
    check('ceil', x.ceil(), Math.ceil, xs);
    check('erf', x.erf(), erf, xs);
    check('log', p.log(), Math.log, pos);
    check('log1p', p.log1p(), Math.log1p, pos);
    check('sqrt', p.sqrt(), Math.sqrt, pos);
    check('rsqrt', p.rsqrt(), (v) => 1 / Math.sqrt(v), pos);
    assertClose(values(f64([0]).erf()), [0], 0);
    assertClose(values(f64([1, -2]).erf()), [0.8427007929497149, -0.9953222650189527], 1e-14);
    assert.deepEqual(values(f64([-1, 0]).log()), [NaN, -Infinity]);
    assert.deepEqual(values(f64([0]).reciprocal()), [Infinity]);
    assertClose(values(f32([1, 2]).exp()), [Math.E, Math.E ** 2], 1e-5);
    assert.equal(f32([1]).sqrt().dtype, 'float32');
  });
});

test('round (half to even), sign and abs of integers', () => {
  sm.tidy(() => {
    assertClose(values(f32([0.5, 1.5, 2.5, -0.5, -1.7, 2.2]).round()), [0, 2, 2, 0, -2, 2], 0);
    assert.deepEqual(values(f32([-2, 0, 3.5]).sign()), [-1, 0, 1]);
    const i = sm.tensor([-3, 4]).abs();
    assert.equal(i.dtype, 'int64');
    assert.deepEqual(values(i), [3, 4]);
  });
});

test('isfinite and isnan', () => {
  sm.tidy(() => {
    const x = f32([1, Infinity, -Infinity, NaN, 0]);
    assert.equal(x.isfinite().dtype, 'bool');
    assert.deepEqual(values(x.isfinite()), [1, 0, 0, 0, 1]);
    assert.deepEqual(values(x.isnan()), [0, 0, 0, 1, 0]);
  });
});

test('clamp with both bounds, only min, only max', () => {
  sm.tidy(() => {
    const x = f32([-2, 0.5, 3, 10]);
    assert.deepEqual(values(x.clamp(0, 5)), [0, 0.5, 3, 5]);
    assert.deepEqual(values(x.clamp(1)), [1, 1, 3, 10]);
    assert.deepEqual(values(x.clamp(undefined, 1)), [-2, 0.5, 1, 1]);
  });
});

test('where and addcmul', () => {
  sm.tidy(() => {
    const cond = sm.tensor([true, false, true]);
    assert.deepEqual(values(sm.where(cond, f32([1, 2, 3]), f32([10, 20, 30]))), [1, 20, 3]);
    // Broadcasting condition and branches.
    const w = sm.where(sm.tensor([[true], [false]]), f32([1, 2]), f32([[7], [8]]));
    assert.deepEqual(w.toArray(), [
      [1, 2],
      [8, 8],
    ]);
    assert.deepEqual(values(F.where(f32([1, -1]).gt(0), f32([5, 5]), f32([6, 6]))), [5, 6]);
    const a = f32([1, 2]);
    assert.deepEqual(values(a.addcmul(f32([3, 4]), f32([5, 6]))), [16, 26]);
    assert.deepEqual(values(a.addcmul(f32([3, 4]), f32([5, 6]), 0.5)), [8.5, 14]);
    assert.deepEqual(values(a), [1, 2]);
  });
});

// ======================= in place =======================

test('addInPlace, mulInPlace, copyFrom, zeroInPlace and fillInPlace modify and return the tensor', () => {
  sm.tidy(() => {
    const x = f32([1, 2, 3]);
    assert.equal(x.addInPlace(f32([1, 1, 1])), x);
    assert.deepEqual(values(x), [2, 3, 4]);
    x.addInPlace(f32([10, 20, 30]), -0.5);
    assert.deepEqual(values(x), [-3, -7, -11]);
    assert.equal(x.mulInPlace(f32([2, 0, -1])), x);
    assert.deepEqual(values(x), [-6, -0, 11]);
    x.mulInPlace(0.5);
    assert.deepEqual(values(x), [-3, -0, 5.5]);
    x.addInPlace(f32([1])); // broadcast
    assert.deepEqual(values(x), [-2, 1, 6.5]);
    assert.equal(x.copyFrom(f32([7, 8, 9])), x);
    assert.deepEqual(values(x), [7, 8, 9]);
    x.copyFrom(sm.tensor([1, 2, 3])); // with a dtype conversion
    assert.equal(x.dtype, 'float32');
    assert.deepEqual(values(x), [1, 2, 3]);
    assert.equal(x.zeroInPlace(), x);
    assert.deepEqual(values(x), [0, 0, 0]);
    assert.equal(x.fillInPlace(2.5), x);
    assert.deepEqual(values(x), [2.5, 2.5, 2.5]);
    const b = sm.zeros([2], { dtype: 'bool' }).fillInPlace(true);
    assert.deepEqual(b.toArray(), [true, true]);
  });
});

test('in-place updates through a view change the base tensor', () => {
  sm.tidy(() => {
    const x = seq([2, 3]);
    x.narrow(1, 1, 2).fillInPlace(-1);
    assert.deepEqual(x.toArray(), [
      [0, -1, -1],
      [3, -1, -1],
    ]);
    x.select(0, 0).zeroInPlace();
    assert.deepEqual(x.toArray(), [
      [0, 0, 0],
      [3, -1, -1],
    ]);
    const y = seq([3]);
    y.reshape([3]).addInPlace(f32([1, 1, 1]));
    assert.deepEqual(values(y), [1, 2, 3]);
  });
});

// ======================= reductions =======================

test('sum over all, dims, keepdim and with a dtype', () => {
  sm.tidy(() => {
    const x = seq([2, 3]);
    const all = x.sum();
    assert.deepEqual(all.shape, []);
    assert.equal(all.item(), 15);
    assert.deepEqual(values(x.sum(0)), [3, 5, 7]);
    assert.deepEqual(values(x.sum(1)), [3, 12]);
    assert.deepEqual(values(x.sum(-1)), [3, 12]);
    assert.deepEqual(x.sum(1, true).shape, [2, 1]);
    assert.deepEqual(x.sum(1, true).toArray(), [[3], [12]]);
    assert.deepEqual(x.sum([0, 1]).item(), 15);
    assert.deepEqual(x.sum([0, 1], true).shape, [1, 1]);
    const i32 = sm.tensor([1, 2, 3], { dtype: 'int32' });
    const d = i32.sum(undefined, false, 'float64');
    assert.equal(d.dtype, 'float64');
    assert.equal(d.item(), 6);
    assert.equal(x.sum(0, false, 'float64').dtype, 'float64');
    assert.equal(sm.tensor([true, true, false]).sum().item(), 2);
    assert.equal(sm.tensor([1, 2]).sum().dtype, 'int64');
  });
});

test('mean over all, dims, keepdim and with a dtype', () => {
  sm.tidy(() => {
    const x = seq([2, 3]);
    assert.equal(x.mean().item(), 2.5);
    assert.deepEqual(values(x.mean(0)), [1.5, 2.5, 3.5]);
    assert.deepEqual(values(x.mean(1)), [1, 4]);
    assert.deepEqual(x.mean(0, true).shape, [1, 3]);
    assert.deepEqual(x.mean([1, 0]).item(), 2.5);
    const m = sm.tensor([1, 2], { dtype: 'int32' }).mean(undefined, false, 'float64');
    assert.equal(m.dtype, 'float64');
    assert.equal(m.item(), 1.5);
  });
});

test('prod and var', () => {
  sm.tidy(() => {
    const x = f32([
      [1, 2],
      [3, 4],
    ]);
    assert.equal(x.prod().item(), 24);
    assert.deepEqual(values(x.prod(1)), [2, 12]);
    assert.deepEqual(values(x.prod(0)), [3, 8]);
    assert.deepEqual(x.prod(0, true).shape, [1, 2]);
    const r = f64([
      [1, 2, 3, 4],
      [2, 2, 2, 2],
    ]);
    assertClose(values(r.var(1)), [5 / 3, 0], 1e-12);
    assertClose(values(r.var(1, false)), [1.25, 0], 1e-12);
    assert.deepEqual(r.var(1, true, true).shape, [2, 1]);
    // Over both dims: mean 2.25, sum of squares 1.5625+0.0625+0.5625+3.0625+4*0.0625 = 5.5.
    assertClose(values(r.var([0, 1])), [5.5 / 7], 1e-12);
    assertClose(values(r.var([0, 1], false)), [5.5 / 8], 1e-12);
  });
});

test('max/min over all, maxAlong/minAlong, argmax/argmin', () => {
  sm.tidy(() => {
    const x = f32([
      [1, 7, 3],
      [9, 2, 5],
    ]);
    assert.equal(x.max().item(), 9);
    assert.equal(x.min().item(), 1);
    const mx = x.maxAlong(1);
    assert.deepEqual(values(mx.values), [7, 9]);
    assert.equal(mx.indices.dtype, 'int64');
    assert.deepEqual(values(mx.indices), [1, 0]);
    const mn = x.minAlong(0, true);
    assert.deepEqual(mn.values.toArray(), [[1, 2, 3]]);
    assert.deepEqual(mn.indices.toArray(), [[0, 1, 0]]);
    assert.deepEqual(values(x.maxAlong(-1, true).values), [7, 9]);
    assert.deepEqual(x.maxAlong(-1, true).values.shape, [2, 1]);
    const am = x.argmax();
    assert.deepEqual(am.shape, []);
    assert.equal(am.item(), 3); // flat index of 9
    assert.equal(x.argmin().item(), 0);
    assert.deepEqual(values(x.argmax(1)), [1, 0]);
    assert.deepEqual(values(x.argmin(1)), [0, 1]);
    assert.deepEqual(x.argmax(0, true).toArray(), [[1, 0, 1]]);
    // Ties: the first maximum (documented by maxAlong).
    const tie = f32([[3, 1, 3, 3]]);
    assert.deepEqual(values(tie.maxAlong(1).indices), [0]);
    assert.deepEqual(values(f32([[1, 0, 0]]).minAlong(1).indices), [1]);
  });
});

test('logsumexp', () => {
  sm.tidy(() => {
    const data = [
      [1, 2, 3],
      [-1, 0, 1000],
    ];
    const x = f64(data);
    assertClose(values(x.logsumexp(1)), data.map(logSumExp), 1e-12);
    assertClose(values(x.logsumexp(0)), [logSumExp([1, -1]), logSumExp([2, 0]), logSumExp([3, 1000])], 1e-12);
    assert.deepEqual(x.logsumexp(1, true).shape, [2, 1]);
    assertClose(values(x.logsumexp([0, 1])), [logSumExp(data.flat())], 1e-12);
  });
});

test('topk: largest and smallest, along a dim', () => {
  sm.tidy(() => {
    const x = f32([1, 5, 3, 4, 2]);
    const t = x.topk(2);
    assert.deepEqual(values(t.values), [5, 4]);
    assert.deepEqual(values(t.indices), [1, 3]);
    const s = x.topk(3, -1, false);
    assert.deepEqual(values(s.values), [1, 2, 3]);
    assert.deepEqual(values(s.indices), [0, 4, 2]);
    const m = f32([
      [1, 9],
      [8, 2],
      [5, 5],
    ]);
    const c = m.topk(2, 0);
    assert.deepEqual(c.values.toArray(), [
      [8, 9],
      [5, 5],
    ]);
    assert.deepEqual(c.indices.toArray(), [
      [1, 0],
      [2, 2],
    ]);
    const unsorted = x.topk(3, 0, true, false);
    assert.deepEqual(
      values(unsorted.values).sort((a, b) => a - b),
      [3, 4, 5],
    );
  });
});

test('sort and argsort are stable, ascending and descending', () => {
  sm.tidy(() => {
    const x = f32([3, 1, 2, 1, 3, 1]);
    const up = x.sort();
    assert.deepEqual(values(up.values), [1, 1, 1, 2, 3, 3]);
    assert.deepEqual(values(up.indices), [1, 3, 5, 2, 0, 4]);
    const down = x.sort(-1, true);
    assert.deepEqual(values(down.values), [3, 3, 2, 1, 1, 1]);
    assert.deepEqual(values(down.indices), [0, 4, 2, 1, 3, 5]);
    assert.deepEqual(values(x.argsort()), [1, 3, 5, 2, 0, 4]);
    assert.deepEqual(values(x.argsort(0, true)), [0, 4, 2, 1, 3, 5]);
    // A longer run of ties (stability must not depend on a small-size special case).
    const n = 300;
    const data = Array.from({ length: n }, (_, i) => (i * 7) % 3);
    const expectedUp = Array.from({ length: n }, (_, i) => i).sort((a, b) => data[a]! - data[b]! || a - b);
    const expectedDown = Array.from({ length: n }, (_, i) => i).sort((a, b) => data[b]! - data[a]! || a - b);
    assert.deepEqual(values(f32(data).argsort()), expectedUp);
    assert.deepEqual(values(f32(data).argsort(-1, true)), expectedDown);
    // Along dim 0 of a matrix.
    const m = f32([
      [2, 0],
      [1, 0],
      [2, 1],
    ]);
    const s0 = m.sort(0);
    assert.deepEqual(s0.values.toArray(), [
      [1, 0],
      [2, 0],
      [2, 1],
    ]);
    assert.deepEqual(s0.indices.toArray(), [
      [1, 0],
      [0, 1],
      [2, 2],
    ]);
  });
});

test('cumsum', () => {
  sm.tidy(() => {
    const m = seq([2, 3]);
    assert.deepEqual(m.cumsum(1).toArray(), [
      [0, 1, 3],
      [3, 7, 12],
    ]);
    assert.deepEqual(m.cumsum(0).toArray(), [
      [0, 1, 2],
      [3, 5, 7],
    ]);
    assert.deepEqual(m.cumsum(-1).shape, [2, 3]);
    const b = sm.tensor([true, false, true]).cumsum(0);
    assert.equal(b.dtype, 'int64');
    assert.deepEqual(values(b), [1, 1, 2]);
    const d = sm.tensor([1, 2, 3]).cumsum(0, 'float64');
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(values(d), [1, 3, 6]);
  });
});

test('all, any and norm', () => {
  sm.tidy(() => {
    assert.deepEqual(sm.tensor([true, true]).all().toArray(), true);
    assert.deepEqual(sm.tensor([true, false]).all().toArray(), false);
    assert.deepEqual(sm.tensor([false, true]).any().toArray(), true);
    assert.deepEqual(sm.tensor([false, false]).any().toArray(), false);
    assert.equal(sm.tensor([true, false]).all().dtype, 'bool');
    assert.equal(f32([1, 2]).gt(0).all().item(), 1);
    assertClose(f32([3, 4]).norm().item(), 5, 1e-6);
    assertClose(f32([3, -4]).norm(1).item(), 7, 1e-6);
    assertClose(
      f64([
        [1, 2],
        [3, 4],
      ]).norm().item(),
      Math.sqrt(30),
      1e-12,
    );
  });
});

// ======================= products =======================

function jsMatmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}

test('matmul: 2D, batched, broadcast batch, vectors', () => {
  sm.tidy(() => {
    const a = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const b = [
      [7, 8],
      [9, 10],
      [11, 12],
    ];
    assert.deepEqual(f32(a).matmul(f32(b)).toArray(), jsMatmul(a, b));
    assert.deepEqual(sm.matmul(f32(a), f32(b)).toArray(), [
      [58, 64],
      [139, 154],
    ]);
    const a2 = [
      [0, 1, 0],
      [1, 0, -1],
    ];
    const batched = sm.stack([f32(a), f32(a2)]).matmul(sm.stack([f32(b), f32(b)]));
    assert.deepEqual(batched.shape, [2, 2, 2]);
    assert.deepEqual(batched.toArray(), [jsMatmul(a, b), jsMatmul(a2, b)]);
    // Broadcast a single matrix over the batch.
    assert.deepEqual(sm.stack([f32(a), f32(a2)]).matmul(f32(b)).toArray(), [jsMatmul(a, b), jsMatmul(a2, b)]);
    // Matrix-vector, vector-matrix, vector-vector.
    assert.deepEqual(values(f32(a).matmul(f32([1, 0, -1]))), [-2, -2]);
    assert.deepEqual(f32(a).matmul(f32([1, 0, -1])).shape, [2]);
    assert.deepEqual(values(f32([1, -1]).matmul(f32(a))), [-3, -3, -3]);
    const dot = f32([1, 2, 3]).matmul(f32([4, 5, 6]));
    assert.deepEqual(dot.shape, []);
    assert.equal(dot.item(), 32);
  });
});

test('bmm, baddbmm and addmm', () => {
  sm.tidy(() => {
    const a = [
      [1, 2],
      [3, 4],
    ];
    const b = [
      [0, 1],
      [1, 0],
    ];
    const c = [
      [2, 0],
      [0, 2],
    ];
    const b1 = sm.stack([f32(a), f32(b)]);
    const b2 = sm.stack([f32(c), f32(a)]);
    assert.deepEqual(b1.bmm(b2).toArray(), [jsMatmul(a, c), jsMatmul(b, a)]);
    assert.deepEqual(sm.bmm(b1, b2).toArray(), [jsMatmul(a, c), jsMatmul(b, a)]);
    const input = sm.ones([2, 2, 2]);
    const r = sm.baddbmm(input, b1, b2, 0.5, 2);
    const expect = [jsMatmul(a, c), jsMatmul(b, a)].map((m) => m.map((row) => row.map((v) => 0.5 + 2 * v)));
    assert.deepEqual(r.toArray(), expect);
    assert.deepEqual(sm.baddbmm(input, b1, b2).toArray(), [jsMatmul(a, c), jsMatmul(b, a)].map((m) => m.map((row) => row.map((v) => 1 + v))));
    // addmm with a broadcast bias row.
    const bias = f32([10, 20]);
    assert.deepEqual(sm.addmm(bias, f32(a), f32(c)).toArray(), [
      [12, 24],
      [16, 28],
    ]);
    assert.deepEqual(sm.addmm(bias, f32(a), f32(c), 0, 0.5).toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.throws(() => sm.bmm(f32(a), f32(a)), Error);
  });
});

test('einsum', () => {
  sm.tidy(() => {
    const a = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const b = [
      [1, 0],
      [0, 1],
      [2, -1],
    ];
    assert.deepEqual(sm.einsum('ij,jk->ik', f32(a), f32(b)).toArray(), jsMatmul(a, b));
    const batch = sm.einsum('bij,bjk->bik', sm.stack([f32(a), f32(a).mul(2)]), sm.stack([f32(b), f32(b)]));
    assert.deepEqual(batch.toArray(), [jsMatmul(a, b), jsMatmul(a, b).map((r) => r.map((v) => 2 * v))]);
    const dot = sm.einsum('i,i->', f32([1, 2, 3]), f32([4, 5, 6]));
    assert.deepEqual(dot.shape, []);
    assert.equal(dot.item(), 32);
    assert.deepEqual(sm.einsum('ij->ji', f32(a)).toArray(), [
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    assert.throws(() => sm.einsum(3 as never, f32(a)), TypeError);
  });
});

// ======================= FFT =======================

test('fftn/ifftn against a hand DFT of a 2x3 input', () => {
  sm.tidy(() => {
    const x = [
      [1, 2, 3],
      [4, 5, -6],
    ];
    const re: number[] = [];
    const im: number[] = [];
    for (let k1 = 0; k1 < 2; k1++)
      for (let k2 = 0; k2 < 3; k2++) {
        let sr = 0;
        let si = 0;
        for (let n1 = 0; n1 < 2; n1++)
          for (let n2 = 0; n2 < 3; n2++) {
            const angle = -2 * Math.PI * ((k1 * n1) / 2 + (k2 * n2) / 3);
            sr += x[n1]![n2]! * Math.cos(angle);
            si += x[n1]![n2]! * Math.sin(angle);
          }
        re.push(sr);
        im.push(si);
      }
    const t = f64(x);
    const f = sm.fftn(t, [0, 1]);
    assert.equal(f.dtype, 'complex128');
    assert.deepEqual(f.shape, [2, 3]);
    assert.equal(f.real().dtype, 'float64');
    assertClose(values(f.real()), re, 1e-12, 'real');
    assertClose(values(f.imag()), im, 1e-12, 'imag');
    // dataSync of a complex tensor interleaves (re, im).
    const interleaved = values(f);
    assertClose(
      interleaved,
      re.flatMap((r, i) => [r, im[i]!]),
      1e-12,
    );
    // Round trip.
    const back = sm.ifftn(f, [0, 1]);
    assertClose(values(back.real()), x.flat(), 1e-12);
    assertClose(values(back.imag()), [0, 0, 0, 0, 0, 0], 1e-12);
    // Over one dim only: rows transform independently.
    const rowsOnly = sm.fftn(t, [1]);
    assertClose(values(rowsOnly.real().select(0, 0)), [6, -1.5, -1.5], 1e-12);
    assertClose(values(rowsOnly.imag().select(0, 0)), [0, Math.sqrt(3) / 2, -Math.sqrt(3) / 2], 1e-12);
    // float32 input gives complex64.
    const f32fft = sm.fftn(f32(x), [0, 1]);
    assert.equal(f32fft.dtype, 'complex64');
    assert.equal(f32fft.real().dtype, 'float32');
    assertClose(values(f32fft.real()), re, 1e-4);
  });
});

test('ifftn(fftn(x)) is x on a random 3D input', () => {
  sm.tidy(() => {
    const data = pseudoRandom(24, 5);
    const x = sm.tensor(Float64Array.from(data), { shape: [2, 3, 4] });
    const y = sm.ifftn(sm.fftn(x, [1, 2]), [1, 2]);
    assertClose(values(y.real()), data, 1e-12);
    assertClose(values(y.imag()), new Array(24).fill(0), 1e-12);
  });
});

// ======================= nn functions =======================

test('oneHot', () => {
  sm.tidy(() => {
    const o = F.oneHot(sm.tensor([0, 2, 1]), 3);
    assert.equal(o.dtype, 'int64');
    assert.deepEqual(o.toArray(), [
      [1, 0, 0],
      [0, 0, 1],
      [0, 1, 0],
    ]);
    assert.deepEqual(F.oneHot(sm.tensor([[1], [0]]), 2).shape, [2, 1, 2]);
  });
});

test('linear with and without bias', () => {
  sm.tidy(() => {
    const xData = [
      [1, 2, 3],
      [-1, 0, 2],
    ];
    const wData = [
      [1, 0, 0],
      [0, 1, 0],
      [1, 1, 1],
      [0.5, -1, 2],
    ];
    const bData = [0.5, -0.5, 1, 0];
    const expected = xData.map((row) => wData.map((w, o) => row.reduce((s, v, k) => s + v * w[k]!, 0) + bData[o]!));
    const y = F.linear(f32(xData), f32(wData), f32(bData));
    assert.deepEqual(y.shape, [2, 4]);
    assertClose(values(y), expected.flat(), 1e-6);
    const noBias = F.linear(f32(xData), f32(wData));
    assertClose(
      values(noBias),
      expected.flat().map((v, i) => v - bData[i % 4]!),
      1e-6,
    );
    // Leading batch dims pass through.
    assert.deepEqual(F.linear(sm.zeros([5, 2, 3]), f32(wData)).shape, [5, 2, 4]);
  });
});

test('layerNorm with and without weight/bias, and eps', () => {
  sm.tidy(() => {
    const data = [
      [1, 2, 3, 6],
      [-1, 0, 0, 5],
    ];
    const w = [1, 2, 0.5, -1];
    const b = [0, 1, -1, 0.5];
    const ref = (eps: number, withAffine: boolean) =>
      data.flatMap((row) => {
        const m = row.reduce((s, v) => s + v, 0) / row.length;
        const v = row.reduce((s, x) => s + (x - m) ** 2, 0) / row.length;
        return row.map((x, k) => {
          const n = (x - m) / Math.sqrt(v + eps);
          return withAffine ? n * w[k]! + b[k]! : n;
        });
      });
    const x = f64(data);
    assertClose(values(F.layerNorm(x, [4])), ref(1e-5, false), 1e-12, 'plain');
    assertClose(values(F.layerNorm(x, [4], f64(w), f64(b))), ref(1e-5, true), 1e-12, 'affine');
    assertClose(values(F.layerNorm(x, [4], undefined, undefined, 0.5)), ref(0.5, false), 1e-12, 'eps 0.5');
    assertClose(values(F.layerNorm(x, [4], f64(w), f64(b), 2)), ref(2, true), 1e-12, 'affine eps 2');
    // Normalizing over the last two dims.
    const whole = F.layerNorm(x, [2, 4]);
    const flat = data.flat();
    const m = flat.reduce((s, v) => s + v, 0) / flat.length;
    const v = flat.reduce((s, xv) => s + (xv - m) ** 2, 0) / flat.length;
    assertClose(
      values(whole),
      flat.map((xv) => (xv - m) / Math.sqrt(v + 1e-5)),
      1e-12,
    );
  });
});

test('gelu exact (erf) and tanh approximation against their formulas', () => {
  sm.tidy(() => {
    const xs = [-3, -1.5, -0.5, 0, 0.3, 1, 2.5];
    const x = f64(xs);
    const exact = xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const approx = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    assertClose(values(F.gelu(x)), exact, 1e-12, 'none');
    assertClose(values(F.gelu(x, 'none')), exact, 1e-12, 'none');
    assertClose(values(F.gelu(x, 'tanh')), approx, 1e-12, 'tanh');
    // The two differ, so the flag really switches the formula.
    assert.ok(Math.abs(values(F.gelu(f64([1.5]), 'tanh'))[0]! - values(F.gelu(f64([1.5])))[0]!) > 1e-5);
    assert.throws(() => F.gelu(x, 'fast' as never), TypeError);
  });
});

test('softmax and logSoftmax along a dim', () => {
  sm.tidy(() => {
    const data = [
      [1, 2, 3],
      [0, 0, 1000],
    ];
    const x = f64(data);
    const sm1 = data.flatMap((row) => row.map((v) => Math.exp(v - logSumExp(row))));
    assertClose(values(F.softmax(x, 1)), sm1, 1e-12);
    assertClose(values(F.softmax(x, -1)), sm1, 1e-12);
    assertClose(
      values(F.logSoftmax(x, 1)),
      data.flatMap((row) => row.map((v) => v - logSumExp(row))),
      1e-12,
    );
    const cols = [0, 1, 2].map((j) => [data[0]![j]!, data[1]![j]!]);
    const sm0 = [0, 1].flatMap((i) => [0, 1, 2].map((j) => Math.exp(data[i]![j]! - logSumExp(cols[j]!))));
    assertClose(values(F.softmax(x, 0)), sm0, 1e-12);
    const withDtype = F.softmax(f32([1, 2]), 0, 'float64');
    assert.equal(withDtype.dtype, 'float64');
    assertClose(values(withDtype), [1 / (1 + Math.E), Math.E / (1 + Math.E)], 1e-7);
    assert.equal(F.logSoftmax(f32([1, 2]), 0, 'float64').dtype, 'float64');
  });
});

test('dropout: identity for p = 0 or when not training, zeroes and rescales otherwise', () => {
  sm.tidy(() => {
    const x = sm.rand([1000]).add(0.5);
    assert.deepEqual(values(F.dropout(x, 0, true)), values(x));
    assert.deepEqual(values(F.dropout(x, 0.5, false)), values(x));
    assert.deepEqual(values(F.dropout(x, 0.9, false)), values(x));
    const ones = sm.ones([10000]);
    const d = values(F.dropout(ones, 0.5, true));
    const zeros = d.filter((v) => v === 0).length;
    assert.ok(zeros > 4500 && zeros < 5500, `${zeros} of 10000 zeroed`);
    assert.ok(
      d.every((v) => v === 0 || v === 2),
      'survivors are scaled by 1/(1-p)',
    );
    const d2 = values(F.dropout(ones, 0.2, true));
    assert.ok(d2.every((v) => v === 0 || Math.abs(v - 1.25) < 1e-6));
    assert.ok(values(F.dropout(ones, 1, true)).every((v) => v === 0), 'p = 1 zeroes everything');
    assert.throws(() => F.dropout(ones, 1.5, true), RangeError);
    assert.throws(() => F.dropout(ones, -0.1, true), RangeError);
  });
});

test('embedding looks rows up; paddingIdx keeps the row and gets no gradient', () => {
  sm.tidy(() => {
    const w = f32([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    const e = F.embedding(w, sm.tensor([
      [0, 3],
      [1, 1],
    ]));
    assert.deepEqual(e.shape, [2, 2, 2]);
    assert.deepEqual(e.toArray(), [
      [
        [0, 1],
        [6, 7],
      ],
      [
        [2, 3],
        [2, 3],
      ],
    ]);
    assert.deepEqual(F.embedding(w, sm.tensor([2], { dtype: 'int32' })).toArray(), [[4, 5]]);
    // paddingIdx: forward unchanged, gradient of that row zero.
    const wg = w.clone().requiresGrad_();
    const out = F.embedding(wg, sm.tensor([0, 1, 1, 3]), 1);
    assert.deepEqual(out.toArray(), [
      [0, 1],
      [2, 3],
      [2, 3],
      [6, 7],
    ]);
    out.sum().backward();
    assert.deepEqual(wg.grad!.toArray(), [
      [1, 1],
      [0, 0],
      [0, 0],
      [1, 1],
    ]);
    const wg2 = w.clone().requiresGrad_();
    F.embedding(wg2, sm.tensor([0, 1, 1, 3])).sum().backward();
    assert.deepEqual(wg2.grad!.toArray(), [
      [1, 1],
      [2, 2],
      [0, 0],
      [1, 1],
    ]);
  });
});

/** JS cross-entropy on rows of logits. */
function jsCrossEntropy(
  logits: number[][],
  target: number[],
  opts: { weight?: number[]; ignoreIndex?: number; labelSmoothing?: number; reduction?: 'mean' | 'sum' | 'none' } = {},
): number | number[] {
  const C = logits[0]!.length;
  const w = opts.weight ?? new Array(C).fill(1);
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const nll: number[] = [];
  const smooth: number[] = [];
  let denom = 0;
  logits.forEach((row, i) => {
    const t = target[i]!;
    if (t === ignore) {
      nll.push(0);
      smooth.push(0);
      return;
    }
    const lse = logSumExp(row);
    const logp = row.map((v) => v - lse);
    nll.push(-w[t]! * logp[t]!);
    smooth.push(-logp.reduce((s, lp, c) => s + w[c]! * lp, 0));
    denom += w[t]!;
  });
  const per = nll.map((v, i) => (1 - eps) * v + (eps / C) * smooth[i]!);
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'none') return per;
  const total = per.reduce((s, v) => s + v, 0);
  return reduction === 'sum' ? total : total / denom;
}

test('crossEntropy: reductions, class weights, ignoreIndex and label smoothing', () => {
  sm.tidy(() => {
    const logits = [
      [1, 2, 0.5, -1],
      [0, 0, 0, 3],
      [2, -2, 1, 0.25],
    ];
    const target = [0, 3, 1];
    const L = f64(logits);
    const T = sm.tensor(target);
    const check = (
      name: string,
      options: sm.functional.CrossEntropyOptions,
      jsOpts: Parameters<typeof jsCrossEntropy>[2],
      tgt = target,
    ) => {
      const got = F.crossEntropy(L, sm.tensor(tgt), options);
      const want = jsCrossEntropy(logits, tgt, jsOpts);
      if (Array.isArray(want)) {
        assert.deepEqual(got.shape, [want.length], name);
        assertClose(values(got), want, 1e-12, name);
      } else {
        assert.deepEqual(got.shape, [], name);
        assertClose(got.item(), want, 1e-12, name);
      }
    };
    check('mean', {}, {});
    check('sum', { reduction: 'sum' }, { reduction: 'sum' });
    check('none', { reduction: 'none' }, { reduction: 'none' });
    const weight = [0.5, 1, 2, 3];
    check('weights mean', { weight: f64(weight) }, { weight });
    check('weights sum', { weight: f64(weight), reduction: 'sum' }, { weight, reduction: 'sum' });
    check('weights none', { weight: f64(weight), reduction: 'none' }, { weight, reduction: 'none' });
    check('ignore default -100', {}, {}, [0, -100, 1]);
    check('ignore default -100 none', { reduction: 'none' }, { reduction: 'none' }, [0, -100, 1]);
    check('ignoreIndex 3', { ignoreIndex: 3 }, { ignoreIndex: 3 });
    check('ignoreIndex 3 sum', { ignoreIndex: 3, reduction: 'sum' }, { ignoreIndex: 3, reduction: 'sum' });
    check('label smoothing', { labelSmoothing: 0.1 }, { labelSmoothing: 0.1 });
    check('label smoothing sum', { labelSmoothing: 0.2, reduction: 'sum' }, { labelSmoothing: 0.2, reduction: 'sum' });
    check('label smoothing none', { labelSmoothing: 0.2, reduction: 'none' }, { labelSmoothing: 0.2, reduction: 'none' });
    check('label smoothing + ignore', { labelSmoothing: 0.3 }, { labelSmoothing: 0.3 }, [0, -100, 2]);
    check('label smoothing + weights', { labelSmoothing: 0.1, weight: f64(weight) }, { labelSmoothing: 0.1, weight });
    // An obvious value: uniform logits over 4 classes give log(4).
    assertClose(F.crossEntropy(sm.zeros([2, 4], { dtype: 'float64' }), sm.tensor([1, 2])).item(), Math.log(4), 1e-12);
    // [N, C, d] logits equal the [N*d, C] computation.
    const L3 = L.reshape([1, 3, 4]).permute([0, 2, 1]); // [1, C=4, d=3]
    assertClose(F.crossEntropy(L3, T.reshape([1, 3])).item(), jsCrossEntropy(logits, target) as number, 1e-12);
    assert.throws(() => F.crossEntropy(L, T, { reduction: 'avg' as never }), /reduction/);
  });
});

test('mseLoss: mean, sum and none', () => {
  sm.tidy(() => {
    const a = f64([1, 2, 3, 4]);
    const b = f64([1, 0, 5, 2.5]);
    const sq = [0, 4, 4, 2.25];
    assertClose(F.mseLoss(a, b).item(), 10.25 / 4, 1e-12);
    assertClose(F.mseLoss(a, b, 'sum').item(), 10.25, 1e-12);
    assertClose(values(F.mseLoss(a, b, 'none')), sq, 1e-12);
    assert.deepEqual(
      F.mseLoss(a.reshape([2, 2]), b.reshape([2, 2]), 'none').toArray(),
      rows(sq, 2),
    );
  });
});

test('relu/tanh/sigmoid functional aliases match the methods', () => {
  sm.tidy(() => {
    const x = f64([-1, 0.5, 2]);
    assert.deepEqual(values(F.relu(x)), values(x.relu()));
    assert.deepEqual(values(F.tanh(x)), values(x.tanh()));
    assert.deepEqual(values(F.sigmoid(x)), values(x.sigmoid()));
  });
});

test(
  'toArray() of a complex tensor does not silently mis-shape the interleaved values',
  () => {
    sm.tidy(() => {
      const f = sm.fftn(f64([[1, 2, 3], [4, 5, 6]]), [0, 1]);
      let arr: unknown;
      try {
        arr = f.toArray();
      } catch {
        return; // refusing is acceptable
      }
      const flat = (arr as unknown[]).flat(Infinity) as unknown[];
      // Whatever the layout, the real parts must all be there: 21, -3, -3, -9, 0, 0.
      assert.ok(flat.includes(-9), `toArray() lost values: ${JSON.stringify(arr)}`);
    });
  },
);
