// float32 products on the CPU run on oneDNN's GEMM where the build has it (native/cpu_linear.cc,
// cpu_matmul.cc): linear, matmul, bmm and baddbmm, values and gradients against a float64 reference
// (libtorch's own path), on the strided views the models use, the fallbacks, and the switch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as sm from '../lib';
import { assertClose, randomF64, values } from './helpers';

const F = sm.functional;

/** Output and gradients of linear in float32 (the fast path) and in float64 (the reference). */
function both(xShape: number[], outFeatures: number, bias: boolean, grads: { x: boolean; w: boolean; b: boolean }) {
  const K = xShape[xShape.length - 1]!;
  const run = (dtype: 'float32' | 'float64') =>
    sm.tidy(() => {
      const x = randomF64(xShape, 1).to(dtype);
      const w = randomF64([outFeatures, K], 2, 0.5).to(dtype);
      const b = bias ? randomF64([outFeatures], 3).to(dtype) : undefined;
      if (grads.x) x.requiresGrad_();
      if (grads.w) w.requiresGrad_();
      if (grads.b && b) b.requiresGrad_();
      const y = F.linear(x, w, b);
      const weights = randomF64(y.shape, 4).to(dtype);
      if (grads.x || grads.w || grads.b) y.mul(weights).sum().backward();
      const g = (t: sm.Tensor | undefined) => (t?.grad ? values(t.grad) : null);
      return { shape: y.shape, y: values(y), gx: g(x), gw: g(w), gb: g(b) };
    });
  return { fast: run('float32'), exact: run('float64') };
}

test('float32 linear: values and gradients equal the float64 reference for 1-D, 2-D and 3-D inputs, with and without bias', () => {
  const cases: [number[], number, boolean][] = [
    [[7], 3, true],
    [[5, 7], 3, true],
    [[5, 7], 3, false],
    [[2, 4, 16], 9, true],
    [[3, 1, 33], 65, true],
  ];
  for (const [shape, out, bias] of cases) {
    const { fast, exact } = both(shape, out, bias, { x: true, w: true, b: true });
    const what = `[${shape}] -> ${out}${bias ? ' + bias' : ''}`;
    assert.deepEqual(fast.shape, exact.shape, what);
    assertClose(fast.y, exact.y, 1e-4, `${what}: y`);
    assertClose(fast.gx!, exact.gx!, 1e-4, `${what}: grad x`);
    assertClose(fast.gw!, exact.gw!, 1e-4, `${what}: grad w`);
    if (bias) assertClose(fast.gb!, exact.gb!, 1e-4, `${what}: grad b`);
  }
});

test('float32 linear: gradients only where asked, no graph without grad, empty batches', () => {
  const onlyW = both([4, 6], 5, true, { x: false, w: true, b: false });
  assert.equal(onlyW.fast.gx, null);
  assert.equal(onlyW.fast.gb, null);
  assertClose(onlyW.fast.gw!, onlyW.exact.gw!, 1e-4);
  const onlyX = both([4, 6], 5, false, { x: true, w: false, b: false });
  assert.equal(onlyX.fast.gw, null);
  assertClose(onlyX.fast.gx!, onlyX.exact.gx!, 1e-4);
  sm.tidy(() => {
    const w = sm.ones([3, 4]).requiresGrad_();
    const y = sm.noGrad(() => F.linear(sm.ones([2, 4]), w));
    assert.equal(y.requiresGrad, false);
    assert.deepEqual(values(y), [4, 4, 4, 4, 4, 4]);
    const empty = F.linear(sm.zeros([0, 4]), w, sm.ones([3]));
    assert.deepEqual(empty.shape, [0, 3]);
  });
});

test('float32 linear: what the fast path does not cover falls back with the same values and errors', () => {
  sm.tidy(() => {
    const x = randomF64([3, 5], 1).to('float32');
    const wT = randomF64([5, 4], 2).to('float32').transpose(0, 1); // a strided weight
    assertClose(values(F.linear(x, wT)), values(F.linear(x.to('float64'), wT.to('float64'))), 1e-5);
    assert.throws(() => F.linear(sm.ones([2, 5]), sm.ones([3, 4])), /linear|mat1 and mat2|shapes/);
    assert.throws(() => F.linear(sm.ones([2, 4]), sm.ones([3, 4]), sm.ones([2])), /./);
  });
});

test('SPARSE_MIXER_GEMM=aten turns the oneDNN path off (doctor says which runs), with equal results', () => {
  const lib = path.resolve(__dirname, '..', 'lib', 'index.js');
  const script = `const sm = require(${JSON.stringify(lib)}); const x = sm.arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]).div(7); const w = sm.arange(8, undefined, 1, { dtype: 'float32' }).reshape([2, 4]).div(5);
    console.log(JSON.stringify({ gemm: sm.systemInfo().addon.cpuGemm, y: Array.from(sm.functional.linear(x, w, sm.ones([2])).dataSync()) }));`;
  const run = (env: Record<string, string>) => JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } })) as { gemm: string; y: number[] };
  const on = run({});
  const off = run({ SPARSE_MIXER_GEMM: 'aten' });
  assert.equal(off.gemm, 'aten');
  assert.equal(on.gemm, sm.systemInfo().addon.cpuGemm);
  assertClose(on.y, off.y, 1e-5);
});

/** f on float32 inputs (the fast path) and on float64 copies (the reference): outputs and input gradients. */
function compare(what: string, shapes: number[][], f: (xs: sm.Tensor[]) => sm.Tensor, tol = 1e-4): void {
  const run = (dtype: 'float32' | 'float64') =>
    sm.tidy(() => {
      const xs = shapes.map((s, i) => randomF64(s, i + 1, 0.5).to(dtype).requiresGrad_());
      const y = f(xs);
      y.mul(randomF64(y.shape, 99).to(dtype)).sum().backward();
      return { shape: y.shape, y: values(y), grads: xs.map((x) => values(x.grad!)) };
    });
  const fast = run('float32');
  const exact = run('float64');
  assert.deepEqual(fast.shape, exact.shape, what);
  assertClose(fast.y, exact.y, tol, `${what}: value`);
  fast.grads.forEach((g, i) => assertClose(g, exact.grads[i]!, tol, `${what}: gradient of input ${i}`));
}

test('float32 matmul, bmm and baddbmm: strided head views, transposes, broadcasts and biases against float64', () => {
  const [B, N, h, dh] = [2, 5, 3, 4];
  const heads = (t: sm.Tensor) => t.reshape([B, N, h, dh]).transpose(1, 2); // [B, h, N, dh], not contiguous
  compare('attention scores q·kᵀ on head views', [[B, N, h * dh], [B, N, h * dh]], ([q, k]) => heads(q!).matmul(heads(k!).transpose(-2, -1)));
  compare('scaled attention scores (the scale inside the product)', [[B, N, h * dh], [B, N, h * dh]], ([q, k]) => F.scaledMatmul(heads(q!), heads(k!).transpose(-2, -1), 0.125));
  compare('attention context w·v', [[B, h, N, N], [B, N, h * dh]], ([w, v]) => w!.matmul(heads(v!)));
  compare('a mixing matrix shared by the batch, and a transposed weight', [[N, N], [B, N, 6], [6, 6]], ([a, x, w]) => a!.matmul(x!).matmul(w!.T));
  compare('2-D by 2-D', [[3, 7], [7, 2]], ([a, b]) => a!.matmul(b!));
  compare('bmm', [[4, 3, 5], [4, 5, 6]], ([a, b]) => sm.bmm(a!, b!));
  compare('baddbmm with an expert bias [E, 1, F]', [[4, 1, 6], [4, 3, 5], [4, 5, 6]], ([bias, a, b]) => sm.baddbmm(bias!, a!, b!));
  compare('many small matrices (side by side on the threads)', [[64, 3, 2], [64, 2, 3]], ([a, b]) => sm.bmm(a!, b!));
  sm.tidy(() => {
    assert.throws(() => sm.bmm(sm.ones([2, 3, 4]), sm.ones([3, 4, 5])), /batch|size|match/i, 'bmm does not broadcast');
    assert.throws(() => sm.ones([2, 3]).matmul(sm.ones([4, 5])), /shapes|size|mat1/i);
    assert.deepEqual(sm.zeros([0, 3]).matmul(sm.ones([3, 2])).shape, [0, 2]);
    // float64 takes libtorch's path, scaled afterwards: the same numbers.
    assert.deepEqual(values(F.scaledMatmul(sm.ones([2, 3], { dtype: 'float64' }), sm.ones([3, 2], { dtype: 'float64' }), 0.5)), [1.5, 1.5, 1.5, 1.5]);
    assert.throws(() => F.scaledMatmul(sm.ones([2, 2]), sm.ones([2, 2]), NaN), /scale must be a finite number/);
  });
});

test('a one-row product leaves its bias alone (the output is always a fresh tensor)', () => {
  sm.tidy(() => {
    const b = sm.tensor([1, 2, 3], { dtype: 'float32' });
    const w = sm.ones([3, 4]);
    for (let k = 0; k < 3; k++) assert.deepEqual(values(F.linear(sm.ones([1, 4]), w, b)), [5, 6, 7], `call ${k}`);
    assert.deepEqual(values(b), [1, 2, 3]);
    const eb = sm.tensor([[[1, 2]], [[3, 4]]], { dtype: 'float32' }); // [E, 1, F]
    for (let k = 0; k < 3; k++) assert.deepEqual(values(sm.baddbmm(eb, sm.ones([2, 1, 3]), sm.ones([2, 3, 2]))), [4, 5, 6, 7], `call ${k}`);
    assert.deepEqual(values(eb), [1, 2, 3, 4]);
  });
});
