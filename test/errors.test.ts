// Errors: libtorch failures become JavaScript Errors naming the op and its inputs, wrong argument
// types become TypeErrors, and neither leaks tensors nor leaves the process in a bad state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { values } from './helpers';

const F = sm.functional;

type ErrorClass = typeof Error | typeof TypeError | typeof RangeError;

/**
 * Asserts that fn throws an instance of `kind` whose message matches every pattern, that
 * memory() is unchanged afterwards, and that a normal op still works.
 */
function expectError(fn: () => unknown, kind: ErrorClass, patterns: (RegExp | string)[] = []): Error {
  const before = sm.memory();
  let caught: unknown;
  try {
    sm.tidy(() => {
      fn();
    });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected an error to be thrown');
  assert.ok(caught instanceof kind, `expected ${kind.name}, got ${String(caught)}`);
  const error = caught as Error;
  if (kind === Error) assert.ok(!(error instanceof TypeError), `expected a plain Error, got a TypeError: ${error.message}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(error.message.includes(p), `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(p)}`);
    else assert.match(error.message, p);
  }
  assert.ok(!error.message.includes('Exception raised from'), 'no C++ backtrace in the message');
  const after = sm.memory();
  assert.equal(after.numTensors, before.numTensors, `the failed call leaked ${after.numTensors - before.numTensors} tensor(s)`);
  assert.equal(after.numBytes, before.numBytes, 'the failed call leaked storage');
  // The process is fine: further ops work.
  assert.deepEqual(
    sm.tidy(() => values(sm.tensor([1, 2], { dtype: 'float32' }).add(1).mul(2))),
    [4, 6],
  );
  return error;
}

/** Runs fn with fresh tensors from make, freeing them after. */
function withTensors<const T extends readonly sm.Tensor[]>(make: () => T, fn: (...ts: T) => void): void {
  const base = sm.memory().numTensors;
  const ts = make();
  try {
    fn(...ts);
  } finally {
    sm.dispose(ts);
  }
  assert.equal(sm.memory().numTensors, base, 'test tensors freed');
}

// ======================= libtorch errors =======================

test('add with mismatched shapes names the op and both shapes', () => {
  withTensors(
    () => [sm.zeros([2, 3]), sm.zeros([2, 4])],
    (a, b) => {
      expectError(() => a.add(b), Error, [/^add: /, 'float32[2, 3]', 'float32[2, 4]']);
      expectError(() => a.mul(b), Error, [/^mul: /, 'float32[2, 3]', 'float32[2, 4]']);
      expectError(() => a.addInPlace(b), Error, [/addInPlace/, 'float32[2, 4]']);
      expectError(() => sm.where(a.gt(0), a, b), Error, [/where/]);
    },
  );
});

test('matmul with mismatched inner dims names the op and both shapes', () => {
  withTensors(
    () => [sm.zeros([2, 3]), sm.zeros([4, 5])],
    (a, b) => {
      expectError(() => a.matmul(b), Error, [/^matmul: /, 'float32[2, 3]', 'float32[4, 5]']);
      expectError(() => sm.bmm(a, b), Error, [/bmm/]);
      expectError(() => F.linear(a, b), Error, [/^linear: /, 'float32[2, 3]', 'float32[4, 5]']);
      expectError(() => sm.einsum('ij,jk->ik', a, b), Error, [/einsum/]);
      expectError(() => sm.addmm(a, a, b), Error, [/addmm/]);
    },
  );
});

test(
  'error messages list the inputs in argument order',
  () => {
    withTensors(
      () => [sm.zeros([2, 3]), sm.zeros([4, 5])],
      (a, b) => {
        const e = expectError(() => a.matmul(b), Error);
        assert.ok(e.message.indexOf('float32[2, 3]') < e.message.indexOf('float32[4, 5]'), e.message);
      },
    );
  },
);

test('reshape and view to an impossible shape', () => {
  withTensors(
    () => [sm.zeros([2, 3])],
    (a) => {
      expectError(() => a.reshape([4]), Error, [/^reshape: /, '[4]', '6']);
      expectError(() => a.view([5]), Error, [/^view: /, '[5]']);
      expectError(() => a.reshape([-1, -1]), Error, [/reshape/]);
      expectError(() => a.T.view([6]), Error, [/view/]);
      expectError(() => a.expand([3, 3]), Error, [/expand/]);
    },
  );
});

test('embedding with float indices names the wrong dtype', () => {
  withTensors(
    () => [sm.zeros([3, 2]), sm.tensor([0.5, 1.5])],
    (weight, indices) => {
      expectError(() => F.embedding(weight, indices), Error, [/^embedding: /, /Float|float32\[2\]/, 'float32[2]']);
      expectError(() => F.embedding(weight, sm.tensor([3])), Error, [/embedding/, /out of range/]);
    },
  );
});

test('index ops out of range', () => {
  withTensors(
    () => [sm.zeros([2, 3])],
    (a) => {
      expectError(() => a.indexSelect(0, sm.tensor([5])), Error, [/^indexSelect: /, /out of range/]);
      expectError(() => a.indexSelect(0, sm.tensor([-3])), Error, [/indexSelect/]);
      expectError(() => a.gather(1, sm.tensor([[3]])), Error, [/^gather: /, /out of bounds/]);
      expectError(() => a.select(0, 2), Error, [/^select: /, /out of range/]);
      expectError(() => a.narrow(1, 2, 5), Error, [/^narrow: /]);
      expectError(() => a.transpose(0, 2), Error, [/^transpose: /, /out of range/]);
      expectError(() => a.sum(2), Error, [/^sum: /]);
      expectError(() => a.maxAlong(-3), Error, [/out of range/]);
      expectError(() => a.topk(4), Error, [/^topk: /]);
      expectError(() => F.softmax(a, 2), Error, [/^softmax: /]);
      expectError(() => a.slice(0, 0, 2, 0), Error, [/^slice: /, /step/]);
      expectError(() => a.indexSelect(0, sm.tensor([0.0, 1.0], { dtype: 'float32' })), Error, [/indexSelect/]);
    },
  );
});

test('cat and stack of mismatched tensors', () => {
  withTensors(
    () => [sm.zeros([2, 3]), sm.zeros([3]), sm.zeros([2, 2])],
    (a, v, b) => {
      expectError(() => sm.cat([a, v]), Error, [/^cat: /, /dimensions/, 'float32[2, 3]', 'float32[3]']);
      expectError(() => sm.cat([a, b], 0), Error, [/^cat: /]);
      expectError(() => sm.stack([a, b]), Error, [/^stack: /]);
      expectError(() => sm.cat([]), Error, [/cat/]);
    },
  );
});

test('crossEntropy with a wrong target dtype or out-of-range target', () => {
  withTensors(
    () => [sm.zeros([2, 3]), sm.tensor([0, 1], { dtype: 'float32' })],
    (logits, target) => {
      expectError(() => F.crossEntropy(logits, target), Error, [/^crossEntropy: /, /Long|int64/, 'float32[2]']);
      expectError(() => F.crossEntropy(logits, sm.tensor([0, 7])), Error, [/crossEntropy/, /out of bounds/]);
      expectError(() => F.crossEntropy(logits, sm.tensor([0, 1]), { reduction: 'avg' as never }), Error, [/reduction/]);
      expectError(() => F.crossEntropy(logits, sm.tensor([0, 1]), { weight: sm.ones([2]) }), Error, [/crossEntropy/]);
      expectError(() => F.mseLoss(logits, logits, 'avg' as never), Error, [/reduction/]);
    },
  );
});

test('other libtorch errors: layerNorm shape, ranges, negative sizes, bad gradient shape', () => {
  withTensors(
    () => [sm.zeros([2, 3]), sm.ones([2]).requiresGrad_()],
    (a, x) => {
      expectError(() => F.layerNorm(a, [4]), Error, [/^layerNorm: /]);
      expectError(() => sm.randint(5, 2, [3]), Error, [/randint/]);
      expectError(() => sm.zeros([-1]), Error, [/zeros/, /negative/]);
      expectError(() => sm.tensor(new Float32Array(2), { shape: [-1, -2] }), Error, [/negative/]);
      expectError(() => sm.eye(-1), Error, [/eye/]);
      expectError(() => sm.tensor([1, 2]).mean(), Error, [/^mean: /, 'int64[2]']);
      expectError(() => x.mul(2).backward(sm.zeros([3])), Error, [/^backward: /]);
      expectError(() => sm.tensor([1, 2]).item(), Error, [/one element/]);
    },
  );
});

test('backward on a tensor that does not require grad throws an Error', () => {
  withTensors(
    () => [sm.ones([1])],
    (a) => {
      expectError(() => a.backward(), Error, [/^backward: /, /require grad/]);
      expectError(() => a.mul(2).sum().backward(), Error, [/require grad/]);
    },
  );
});

// ======================= wrong argument types =======================

test('wrong argument types throw TypeError', () => {
  withTensors(
    () => [sm.zeros([2, 2]), sm.ones([2, 2])],
    (a, b) => {
      expectError(() => a.add('x' as never), TypeError, [/add/, /string/]);
      expectError(() => a.mul(null as never), TypeError, [/mul/]);
      expectError(() => a.sub(undefined as never), TypeError, [/sub/]);
      expectError(() => a.div(true as never), TypeError, [/div/]);
      expectError(() => a.reshape('3' as never), TypeError, [/shape/]);
      expectError(() => a.reshape([1.5]), TypeError, [/integer/, '1.5']);
      expectError(() => a.reshape([4, NaN]), TypeError, [/integer/]);
      expectError(() => a.transpose(0, '1' as never), TypeError, [/dim1/]);
      expectError(() => a.sum('0' as never), TypeError, [/dims/]);
      expectError(() => a.sum(0.5), TypeError, [/integer/]);
      expectError(() => a.sum(0, 'yes' as never), TypeError, [/boolean/]);
      expectError(() => a.split('1' as never), TypeError);
      expectError(() => a.clamp('1' as never), TypeError);
      expectError(() => a.rsub('1' as never), TypeError);
      expectError(() => a.fillInPlace('x' as never), TypeError);
      expectError(() => a.maskedFill(a.gt(0), 'x' as never), TypeError);
      expectError(() => a.maskedFill([true] as never, 1), TypeError, [/mask/]);
      expectError(() => a.maskedFillInPlace(a.gt(0), 'x' as never), TypeError);
      expectError(() => a.maskedFillInPlace(sm.tensor([true, false, true, false, true]), 1), Error, [/maskedFillInPlace/]);
      expectError(() => a.matmul([[1, 2]] as never), TypeError, [/Tensor/, /Array/]);
      expectError(() => a.indexSelect(0, [0] as never), TypeError, [/index/]);
      expectError(() => a.to(3 as never), TypeError);
      expectError(() => a.to('float128' as never), TypeError, ['float128']);
      expectError(() => a.to('gpu' as never), TypeError);
      expectError(() => a.requiresGrad_('yes' as never), TypeError);
      expectError(() => a.sum(0, false, 'x' as never), TypeError, [/dtype/]);
      expectError(() => sm.zeros('x' as never), TypeError, [/shape/]);
      expectError(() => sm.zeros([2, '2'] as never), TypeError, [/integer/]);
      expectError(() => sm.ones([2], { dtype: 'float128' as never }), TypeError, ['float128']);
      expectError(() => sm.tensor([1, 2], { dtype: 'float128' as never }), TypeError, ['float128']);
      expectError(() => sm.tensor(['a'] as never), TypeError, [/string/]);
      expectError(() => sm.tensor([{}] as never), TypeError);
      expectError(() => sm.tensor(new DataView(new ArrayBuffer(4)) as never), TypeError);
      expectError(() => sm.zeros([2], { device: 'gpu' as never }), TypeError, [/device/, 'gpu']);
      expectError(() => sm.tensor([1], { device: 'cuda:x' as never }), TypeError, [/device/]);
      expectError(() => sm.rand([2], { device: 'tpu' as never }), TypeError, [/device/]);
      expectError(() => sm.arange(0, 4, 0), RangeError);
      expectError(() => sm.full([2], 'x' as never), TypeError);
      expectError(() => sm.eye(2.5), TypeError);
      expectError(() => sm.manualSeed(1.5), TypeError);
      expectError(() => sm.cat('x' as never), TypeError);
      expectError(() => sm.cat([a, 'x'] as never), TypeError, [/tensors\[1\]/]);
      expectError(() => sm.stack([a, {} as never]), TypeError);
      expectError(() => sm.where(true as never, a, b), TypeError, [/condition/]);
      expectError(() => sm.einsum(3 as never, a), TypeError);
      expectError(() => F.linear(a, {} as never), TypeError, [/weight/, /Object/]);
      expectError(() => F.linear(a, b, 'bias' as never), TypeError, [/bias/]);
      expectError(() => F.layerNorm(a, 2 as never), TypeError, [/normalizedShape/]);
      expectError(() => F.layerNorm(a, [2], undefined, undefined, 'x' as never), TypeError);
      expectError(() => F.gelu(a, 'fast' as never), TypeError);
      expectError(() => F.dropout(a, 0.5, 'yes' as never), TypeError);
      expectError(() => F.dropout(a, NaN, true), RangeError);
      expectError(() => F.softmax(a, '1' as never), TypeError);
      expectError(() => F.crossEntropy(a, sm.tensor([0, 1]), { ignoreIndex: 0.5 }), TypeError);
      expectError(() => F.crossEntropy(a, sm.tensor([0, 1]), { labelSmoothing: '0.1' as never }), TypeError);
      expectError(() => F.embedding(a, 'x' as never), TypeError);
      expectError(() => F.oneHot(a, 2.5), TypeError);
      expectError(() => sm.tidy(42 as never), TypeError);
      expectError(() => sm.autocast(() => 0, { device: 'gpu' as never }), TypeError);
      expectError(() => a.size(1.5), TypeError);
      expectError(() => a.size(2), RangeError);
      expectError(() => sm.setNumThreads(0), RangeError);
    },
  );
});

test(
  'non-integer dims are rejected by every reduction',
  () => {
    withTensors(
      () => [sm.zeros([2, 3])],
      (a) => {
        expectError(() => a.prod(0.5), TypeError);
        expectError(() => a.argmax(0.5), TypeError);
        expectError(() => a.argmin(1.5), TypeError);
      },
    );
  },
);

test(
  'tensor() does not silently wrap integers outside the int64 range',
  () => {
    const t = sm.tensor([1e20]);
    try {
      assert.ok(Math.abs(values(t)[0]! - 1e20) < 1e15, `got ${values(t)[0]}`);
    } finally {
      t.dispose();
    }
  },
);

// ======================= robustness =======================

test('errors inside tidy free the scope, and errors do not leak over many iterations', () => {
  const base = sm.memory();
  const a = sm.zeros([2, 3]);
  const b = sm.zeros([2, 4]);
  for (let i = 0; i < 200; i++) {
    try {
      sm.tidy(() => a.add(1).mul(2).add(b));
    } catch {
      // expected
    }
    try {
      a.add('x' as never);
    } catch {
      // expected
    }
  }
  sm.dispose([a, b]);
  const after = sm.memory();
  assert.equal(after.numTensors, base.numTensors);
  assert.equal(after.numBytes, base.numBytes);
});

test('grad mode and autocast are restored after an error inside their scope', () => {
  const base = sm.memory().numTensors;
  const a = sm.zeros([2, 3]);
  const b = sm.zeros([4, 5]);
  assert.throws(() => sm.noGrad(() => a.matmul(b)), Error);
  assert.equal(sm.isGradEnabled(), true);
  assert.throws(() => sm.autocast(() => a.matmul(b), { device: 'cpu' }), Error);
  assert.equal(sm.isAutocastEnabled('cpu'), false);
  sm.dispose([a, b]);
  assert.equal(sm.memory().numTensors, base);
});

test('errors are Error instances with a stack and a plain message', () => {
  const e = expectError(() => sm.zeros([2, 3]).add(sm.zeros([2, 4])), Error, [/^add: /]);
  assert.equal(typeof e.stack, 'string');
  assert.ok(e.message.length < 1000, `message is short: ${e.message.length} characters`);
});
