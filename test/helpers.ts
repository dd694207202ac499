// Shared helpers for the tensor tests: approximate comparison, read-back and a finite-difference
// gradient checker.
import assert from 'node:assert/strict';
import * as sm from '../lib';

/** Asserts |actual[i] - expected[i]| <= tol (elementwise, same length); NaN matches NaN. */
export function assertClose(
  actual: ArrayLike<number> | readonly number[] | number,
  expected: ArrayLike<number> | readonly number[] | number,
  tol = 1e-5,
  msg?: string,
): void {
  const a: ArrayLike<number> = typeof actual === 'number' ? [actual] : actual;
  const e: ArrayLike<number> = typeof expected === 'number' ? [expected] : expected;
  const prefix = msg ? `${msg}: ` : '';
  assert.equal(a.length, e.length, `${prefix}length ${a.length} != expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]);
    const y = Number(e[i]);
    if (Number.isNaN(y)) {
      assert.ok(Number.isNaN(x), `${prefix}element ${i}: ${x} is not NaN`);
      continue;
    }
    if (x === y) continue; // covers infinities
    assert.ok(
      Math.abs(x - y) <= tol,
      `${prefix}element ${i}: ${x} != ${y} (|diff| ${Math.abs(x - y)} > ${tol})\n  actual:   [${Array.from(a).slice(0, 32).join(', ')}]\n  expected: [${Array.from(e).slice(0, 32).join(', ')}]`,
    );
  }
}

/** The values of a tensor as a flat array of Numbers (bigints and bools converted). */
export function values(t: sm.Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function pseudoRandom(n: number, seed = 1234): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out.push(2 * u - 1);
  }
  return out;
}

/** A float64 tensor of the given shape filled with pseudoRandom values (scaled). */
export function randomF64(shape: readonly number[], seed = 1, scale = 1): sm.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return sm.tensor(Float64Array.from(pseudoRandom(n, seed), (v) => v * scale), { shape });
}

/** Runs fn and asserts that memory().numTensors and every device's numBytes are unchanged after it. */
export function assertNoLeak<T>(fn: () => T, what = 'operation'): T {
  const before = sm.memory();
  const result = fn();
  const after = sm.memory();
  assert.equal(after.numTensors, before.numTensors, `${what} leaked ${after.numTensors - before.numTensors} tensor(s)`);
  assert.equal(after.numBytes, before.numBytes, `${what} leaked ${after.numBytes - before.numBytes} byte(s)`);
  return result;
}

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Indices of the inputs to check (default: all). The others are passed through unchanged. */
  wrt?: readonly number[];
  /** Seed of the fixed random output weights. */
  seed?: number;
  /** Called before every evaluation of fn (e.g. to reseed a global generator). */
  beforeEach?: () => void;
}

/**
 * Compares the autograd gradient of sum(fn(xs) * W) (W fixed random weights) with central
 * differences, in float64. Every input that is checked must be a float64 tensor. Frees all it
 * creates; throws an AssertionError naming the input and element on a mismatch.
 */
export function gradcheck(fn: (xs: sm.Tensor[]) => sm.Tensor, inputs: sm.Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-5;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const before = opts.beforeEach ?? (() => undefined);
  for (const i of wrt) assert.equal(inputs[i]!.dtype, 'float64', `gradcheck: input ${i} must be float64`);
  const data = inputs.map((t) => (t.dtype === 'float64' ? Float64Array.from(t.dataSync() as Float64Array) : undefined));
  const shapes = inputs.map((t) => t.shape);

  // Output shape and weights.
  let weights: number[] = [];
  const outShape = sm.tidy(() => {
    before();
    const out = sm.noGrad(() => fn(inputs.map((t) => t.clone())));
    assert.ok(out.dtype === 'float64', `gradcheck: fn must return float64, got ${out.dtype}`);
    weights = pseudoRandom(out.numel, opts.seed ?? 777);
    return [...out.shape];
  });

  const objective = (xs: sm.Tensor[]): number =>
    sm.tidy(() => {
      before();
      const out = sm.noGrad(() => fn(xs));
      const v = out.dataSync() as Float64Array;
      let s = 0;
      for (let k = 0; k < v.length; k++) s += v[k]! * weights[k]!;
      return s;
    });

  // Analytic gradients.
  const analytic: Float64Array[] = sm.tidy(() => {
    const xs = inputs.map((t, i) => (wrt.includes(i) ? t.detach().clone().requiresGrad_() : t));
    before();
    const out = fn(xs);
    assert.deepEqual([...out.shape], outShape, 'gradcheck: output shape changed between calls');
    const w = sm.tensor(Float64Array.from(weights), { shape: outShape });
    out.mul(w).sum().backward();
    return wrt.map((i) => {
      const g = xs[i]!.grad;
      if (g === undefined) return new Float64Array(data[i]!.length); // no path to the output: zero gradient
      assert.deepEqual([...g.shape], [...shapes[i]!], `gradcheck: gradient of input ${i} has the wrong shape`);
      return Float64Array.from(g.dataSync() as Float64Array);
    });
  });

  // Numeric gradients by central differences.
  wrt.forEach((i, slot) => {
    const base = data[i]!;
    for (let k = 0; k < base.length; k++) {
      const evalAt = (delta: number): number =>
        sm.tidy(() => {
          const perturbed = Float64Array.from(base);
          perturbed[k] = perturbed[k]! + delta;
          const xs = inputs.map((t, j) => (j === i ? sm.tensor(perturbed, { shape: shapes[i]! }) : t));
          return objective(xs);
        });
      const numeric = (evalAt(eps) - evalAt(-eps)) / (2 * eps);
      const a = analytic[slot]![k]!;
      assert.ok(
        Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric),
        `gradcheck: input ${i} element ${k}: analytic ${a} vs numeric ${numeric} (diff ${Math.abs(a - numeric)})`,
      );
    }
  });
}
