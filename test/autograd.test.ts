// Autograd: flags, backward, gradient accumulation, grad modes, autocast, and finite-difference
// checks of every differentiable op the models use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose, assertNoLeak, gradcheck, pseudoRandom, randomF64, values } from './helpers';

const F = sm.functional;
const noCuda = !sm.cuda.isAvailable() && 'no CUDA device';

/** A float64 tensor with entries bounded away from 0 (|x| in [0.2, 1.2)). */
function awayFromZero(shape: number[], seed: number): sm.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = pseudoRandom(n, seed).map((x) => (x >= 0 ? x + 0.2 : x - 0.2));
  return sm.tensor(Float64Array.from(v), { shape });
}

/** A float64 tensor with entries in [lo, lo + 1). */
function positive(shape: number[], seed: number, lo = 0.5): sm.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return sm.tensor(Float64Array.from(pseudoRandom(n, seed), (x) => lo + (x + 1) / 2), { shape });
}

// ======================= flags and backward =======================

test('requiresGrad flag, setter and requiresGrad_()', () => {
  sm.tidy(() => {
    const x = sm.ones([2]);
    assert.equal(x.requiresGrad, false);
    assert.equal(x.requiresGrad_(), x, 'requiresGrad_ returns this');
    assert.equal(x.requiresGrad, true);
    x.requiresGrad_(false);
    assert.equal(x.requiresGrad, false);
    x.requiresGrad = true;
    assert.equal(x.requiresGrad, true);
    assert.equal(x.mul(2).requiresGrad, true, 'results of ops on it require grad');
    assert.equal(sm.ones([2]).mul(2).requiresGrad, false);
    assert.throws(() => x.requiresGrad_('yes' as never), TypeError);
    assert.throws(() => sm.tensor([1, 2]).requiresGrad_(), /floating point/);
  });
});

test('isLeaf', () => {
  sm.tidy(() => {
    const x = sm.ones([2]).requiresGrad_();
    assert.equal(x.isLeaf, true);
    const y = x.mul(2);
    assert.equal(y.isLeaf, false);
    assert.equal(sm.ones([2]).mul(2).isLeaf, true, 'a result that does not require grad is a leaf');
    assert.equal(y.detach().isLeaf, true);
  });
});

test('backward on a scalar fills .grad of the leaves', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, -2, 3], { dtype: 'float64' }).requiresGrad_();
    const w = sm.tensor([0.5, 0.5, 2], { dtype: 'float64' }).requiresGrad_();
    assert.equal(x.grad, undefined);
    x.mul(x).mul(w).sum().backward();
    assert.deepEqual(values(x.grad!), [1, -2, 12]); // 2 x w
    assert.deepEqual(values(w.grad!), [1, 4, 9]); // x^2
    assert.deepEqual(x.grad!.shape, [3]);
  });
});

test('backward with an explicit gradient on a non-scalar', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, 2, 3], { dtype: 'float64' }).requiresGrad_();
    const y = x.mul(3).add(1);
    y.backward(sm.tensor([1, 0.5, -1], { dtype: 'float64' }));
    assert.deepEqual(values(x.grad!), [3, 1.5, -3]);
  });
});

test('backward of a non-scalar without a gradient throws, mentioning one element', () => {
  sm.tidy(() => {
    const x = sm.ones([3]).requiresGrad_();
    const y = x.mul(2);
    assert.throws(
      () => y.backward(),
      (e: unknown) => e instanceof Error && /one element/.test(e.message),
    );
    // The graph is intact: a proper backward still works afterwards.
    y.sum().backward();
    assert.deepEqual(values(x.grad!), [2, 2, 2]);
  });
});

test('backward on a tensor that does not require grad throws an Error', () => {
  sm.tidy(() => {
    assert.throws(() => sm.ones([1]).mul(2).sum().backward(), Error);
  });
});

test('gradients accumulate over two backward calls; zeroGrad() clears them', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    x.mul(x).sum().backward();
    assert.deepEqual(values(x.grad!), [2, 4]);
    x.mul(3).sum().backward();
    assert.deepEqual(values(x.grad!), [5, 7]);
    x.zeroGrad();
    assert.equal(x.grad, undefined);
    x.mul(3).sum().backward();
    assert.deepEqual(values(x.grad!), [3, 3], 'starts over after zeroGrad');
  });
});

test('the grad setter replaces the gradient; each read is a new handle on it', () => {
  sm.tidy(() => {
    const x = sm.zeros([2], { dtype: 'float64' }).requiresGrad_();
    x.grad = sm.tensor([1, 1], { dtype: 'float64' });
    const g1 = x.grad!;
    const g2 = x.grad!;
    assert.notEqual(g1, g2);
    g1.dispose(); // disposing one handle does not drop the gradient
    assert.deepEqual(values(g2), [1, 1]);
    x.mul(2).sum().backward();
    assert.deepEqual(values(x.grad!), [3, 3]);
    x.grad = undefined;
    assert.equal(x.grad, undefined);
  });
});

test('retainGrad keeps the gradient of a non-leaf', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    const y = x.mul(2);
    assert.equal(y.retainGrad(), y);
    const z = x.mul(5);
    y.mul(y).add(z).sum().backward();
    assert.deepEqual(values(y.grad!), [4, 8]); // 2y
    assert.equal(z.grad, undefined, 'a non-leaf without retainGrad has no grad');
    assert.deepEqual(values(x.grad!), [13, 21]); // 2*2y + 5
  });
});

test('retainGraph lets a second backward through the same graph', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    const loss = x.exp().sum();
    loss.backward(undefined, { retainGraph: true });
    loss.backward();
    assertClose(values(x.grad!), [2 * Math.E, 2 * Math.E ** 2], 1e-12);
    // Without retainGraph the buffers are freed and a second pass fails.
    const loss2 = x.exp().sum();
    loss2.backward();
    assert.throws(() => loss2.backward(), Error);
  });
});

test('detach() stops gradients', () => {
  sm.tidy(() => {
    const x = sm.tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    x.mul(2).add(d.mul(x)).sum().backward();
    assert.deepEqual(values(x.grad!), [3, 4]); // 2 + d, nothing through d
    assert.deepEqual(values(d), [1, 2]);
  });
});

test('in-place updates of a leaf that requires grad need noGrad; the version counter catches stale saved tensors', () => {
  sm.tidy(() => {
    const w = sm.ones([2]).requiresGrad_();
    assert.throws(() => w.addInPlace(sm.ones([2])), /leaf Variable that requires grad/);
    sm.noGrad(() => {
      w.addInPlace(sm.ones([2]), -0.5);
      w.mulInPlace(4);
    });
    assert.deepEqual(values(w), [2, 2]);
    assert.equal(w.requiresGrad, true);
    assert.equal(w.isLeaf, true);
    const x = sm.ones([2]).requiresGrad_();
    const a = x.exp(); // exp saves its output for backward
    const loss = a.sum();
    a.mulInPlace(2);
    assert.throws(() => loss.backward(), /modified by an inplace operation/);
  });
});

test(
  'the grad setter validates the assigned gradient (shape, dtype, not the tensor itself)',
  () => {
    sm.tidy(() => {
      const x = sm.zeros([2]).requiresGrad_();
      assert.throws(() => {
        x.grad = sm.zeros([5]);
      }, Error);
      assert.throws(() => {
        x.grad = sm.tensor([1, 2]);
      }, Error);
      assert.throws(() => {
        x.grad = x;
      }, Error);
    });
  },
);

test(
  'requiresGrad = false on a non-leaf throws instead of being ignored',
  () => {
    sm.tidy(() => {
      const y = sm.ones([2]).requiresGrad_().mul(2);
      assert.throws(() => {
        y.requiresGrad = false;
      }, Error);
    });
  },
);

// ======================= grad modes =======================

test('noGrad: no recording inside, mode restored after, even when fn throws', () => {
  sm.tidy(() => {
    const x = sm.ones([2]).requiresGrad_();
    assert.equal(sm.isGradEnabled(), true);
    const y = sm.noGrad(() => {
      assert.equal(sm.isGradEnabled(), false);
      return x.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(sm.isGradEnabled(), true);
    assert.throws(() =>
      sm.noGrad(() => {
        throw new Error('boom');
      }),
    /boom/);
    assert.equal(sm.isGradEnabled(), true, 'restored after a throw');
    // Nested noGrad restores to the outer (disabled) state.
    sm.noGrad(() => {
      sm.noGrad(() => assert.equal(sm.isGradEnabled(), false));
      assert.equal(sm.isGradEnabled(), false);
    });
    assert.equal(sm.noGrad(() => 42), 42);
  });
});

test('enableGrad inside noGrad records again', () => {
  sm.tidy(() => {
    const x = sm.ones([2]).requiresGrad_();
    sm.noGrad(() => {
      const y = sm.enableGrad(() => {
        assert.equal(sm.isGradEnabled(), true);
        return x.mul(2);
      });
      assert.equal(sm.isGradEnabled(), false);
      assert.equal(y.requiresGrad, true);
      assert.throws(() => sm.enableGrad(() => {
        throw new Error('inner');
      }), /inner/);
      assert.equal(sm.isGradEnabled(), false);
    });
    assert.equal(sm.isGradEnabled(), true);
  });
});

// ======================= autocast =======================

/** Runs fn under CPU autocast, or returns a skip reason if this libtorch cannot. */
function cpuAutocastSupport(): string | false {
  try {
    return sm.tidy(() => {
      const dtype = sm.autocast(() => sm.ones([2, 2]).matmul(sm.ones([2, 2])).dtype, { device: 'cpu', dtype: 'bfloat16' });
      return dtype === 'bfloat16' ? false : `CPU autocast did not lower matmul (got ${dtype})`;
    });
  } catch (e) {
    return `this libtorch lacks CPU autocast: ${(e as Error).message}`;
  }
}

test('autocast on the cpu with bfloat16 lowers matmul and linear, and restores after', { skip: cpuAutocastSupport() }, () => {
  sm.tidy(() => {
    const a = sm.randn([3, 4]);
    const w = sm.randn([5, 4]);
    const b = sm.randn([5]);
    assert.equal(sm.isAutocastEnabled('cpu'), false);
    const [mm, lin, plain] = sm.autocast(
      () => {
        assert.equal(sm.isAutocastEnabled('cpu'), true);
        return [a.matmul(w.T), F.linear(a, w, b), a.add(1)];
      },
      { device: 'cpu', dtype: 'bfloat16' },
    );
    assert.equal(mm!.dtype, 'bfloat16');
    assert.equal(lin!.dtype, 'bfloat16');
    assert.equal(plain!.dtype, 'float32', 'element-wise ops are not lowered');
    // Values are close to the float32 results.
    assertClose(values(mm!), values(a.matmul(w.T)), 0.1);
    assert.equal(sm.isAutocastEnabled('cpu'), false);
    assert.equal(a.matmul(w.T).dtype, 'float32', 'restored after');
    // Restored after a throw too.
    assert.throws(() =>
      sm.autocast(
        () => {
          throw new Error('inside');
        },
        { device: 'cpu' },
      ),
    /inside/);
    assert.equal(sm.isAutocastEnabled('cpu'), false);
    // Nested: the inner exit keeps the outer scope on.
    sm.autocast(
      () => {
        sm.autocast(() => undefined, { device: 'cpu' });
        assert.equal(sm.isAutocastEnabled('cpu'), true);
        assert.equal(a.matmul(w.T).dtype, 'bfloat16');
      },
      { device: 'cpu' },
    );
    assert.equal(sm.isAutocastEnabled('cpu'), false);
  });
});

test('autocast with enabled: false turns it off inside an autocast scope, and back on after', { skip: cpuAutocastSupport() }, () => {
  sm.tidy(() => {
    const a = sm.randn([3, 4]);
    sm.autocast(
      () => {
        const inner = sm.autocast(() => [sm.isAutocastEnabled('cpu'), a.matmul(a.T).dtype] as const, { device: 'cpu', enabled: false });
        assert.deepEqual(inner, [false, 'float32']);
        assert.equal(sm.isAutocastEnabled('cpu'), true);
        assert.equal(a.matmul(a.T).dtype, 'bfloat16');
      },
      { device: 'cpu' },
    );
    assert.equal(sm.isAutocastEnabled('cpu'), false);
  });
});

test('under autocast the MoE router stays float32 while the experts run in bfloat16', { skip: cpuAutocastSupport() }, () => {
  sm.tidy(() => {
    for (const dispatch_impl of ['fused', 'masked', 'scatter'] as const) {
      const config = sm.modelConfig({ d_model: 8, d_emb: 8, d_ff: 12, num_experts: 4, max_seq_length: 8, dispatch_impl, router_type: 'tokens_choose' });
      const layer = new sm.MoeLayer(sm.nn.initContext(3, 0.5), config).train(false);
      const x = sm.randn([2, 8, 8], { generator: new sm.Generator(1) });
      const plain = layer.forward(x);
      const mixed = sm.autocast(() => layer.forward(x), { device: 'cpu', dtype: 'bfloat16' });
      assert.equal(mixed.stats.routerConfidence.dtype, 'float32', `${dispatch_impl}: router probabilities in float32`);
      assert.equal(mixed.stats.zLoss.dtype, 'float32', `${dispatch_impl}: router logits in float32`);
      // Same routing decisions, so the same tokens are dispatched as in float32.
      assert.equal(mixed.stats.fractionLeftBehind.item(), plain.stats.fractionLeftBehind.item(), dispatch_impl);
      assertClose(values(mixed.stats.zLoss), values(plain.stats.zLoss), 1e-6);
    }
  });
});

test('autocast rejects bad options', () => {
  assert.throws(() => sm.autocast(() => 0, { device: 'tpu' as never }), TypeError);
  assert.throws(() => sm.autocast(() => 0, { device: 'cpu', dtype: 'float64' as never }), TypeError);
  assert.equal(sm.isAutocastEnabled('cpu'), false);
});

test('autocast on cuda lowers matmul to float16', { skip: noCuda }, () => {
  sm.tidy(() => {
    const a = sm.randn([4, 4], { device: 'cuda' });
    const r = sm.autocast(() => a.matmul(a), { device: 'cuda', dtype: 'float16' });
    assert.equal(r.dtype, 'float16');
    assert.equal(sm.isAutocastEnabled('cuda'), false);
    assert.equal(a.matmul(a).dtype, 'float32');
  });
});

// ======================= the gradient checker itself =======================

test('gradcheck frees everything it creates', () => {
  const x = randomF64([3, 4], 1);
  try {
    assertNoLeak(() => gradcheck(([a]) => a!.tanh().matmul(a!.T), [x]), 'gradcheck');
  } finally {
    x.dispose();
  }
});

test('gradcheck catches a wrong gradient', () => {
  const x = randomF64([3], 2);
  try {
    // x * detach(x) has true derivative 2x but autograd sees only x.
    assert.throws(() => gradcheck(([a]) => a!.mul(a!.detach()), [x]), /gradcheck: input 0/);
  } finally {
    x.dispose();
  }
});

// ======================= gradient checks =======================

/** Runs gradcheck on fresh inputs and frees them. */
function check(fn: (xs: sm.Tensor[]) => sm.Tensor, make: () => sm.Tensor[], opts?: Parameters<typeof gradcheck>[2]): void {
  sm.tidy(() => gradcheck(fn, make(), opts));
}

test('gradcheck: add, sub, mul, div with broadcasting and scalars', () => {
  check(([a, b]) => a!.add(b!), () => [randomF64([2, 3], 1), randomF64([3], 2)]);
  check(([a, b]) => a!.sub(b!), () => [randomF64([2, 1], 3), randomF64([1, 3], 4)]);
  check(([a, b]) => a!.mul(b!), () => [randomF64([2, 3], 5), randomF64([2, 1], 6)]);
  check(([a, b]) => a!.div(b!), () => [randomF64([2, 3], 7), positive([3], 8)]);
  check(([a]) => a!.add(2).mul(-3).sub(1).div(4).rsub(1), () => [randomF64([4], 9)]);
  check(([a]) => a!.rdiv(2), () => [positive([4], 10)]);
});

test('gradcheck: pow, exp, log, sqrt, tanh, sigmoid, relu', () => {
  check(([a]) => a!.pow(3), () => [randomF64([5], 11)]);
  check(([a, b]) => a!.pow(b!), () => [positive([4], 12), randomF64([4], 13)]);
  check(([a]) => a!.exp(), () => [randomF64([5], 14)]);
  check(([a]) => a!.log(), () => [positive([5], 15)]);
  check(([a]) => a!.sqrt(), () => [positive([5], 16)]);
  check(([a]) => a!.tanh(), () => [randomF64([5], 17)]);
  check(([a]) => a!.sigmoid(), () => [randomF64([5], 18)]);
  check(([a]) => a!.relu(), () => [awayFromZero([6], 19)]);
});

test('gradcheck: matmul, bmm, baddbmm, addmm, einsum', () => {
  check(([a, b]) => a!.matmul(b!), () => [randomF64([2, 3], 20), randomF64([3, 4], 21)]);
  check(([a, b]) => a!.matmul(b!), () => [randomF64([2, 2, 3], 22), randomF64([3, 2], 23)]);
  check(([a, b]) => a!.matmul(b!), () => [randomF64([2, 3], 24), randomF64([3], 25)]);
  check(([a, b]) => a!.bmm(b!), () => [randomF64([2, 2, 3], 26), randomF64([2, 3, 2], 27)]);
  check(
    ([i, a, b]) => sm.baddbmm(i!, a!, b!, 0.5, 2),
    () => [randomF64([2, 2, 2], 28), randomF64([2, 2, 3], 29), randomF64([2, 3, 2], 30)],
  );
  check(
    ([i, a, b]) => sm.addmm(i!, a!, b!, 0.7, -1.5),
    () => [randomF64([3], 31), randomF64([2, 4], 32), randomF64([4, 3], 33)],
  );
  check(([a, b]) => sm.einsum('ij,jk->ik', a!, b!), () => [randomF64([2, 3], 34), randomF64([3, 2], 35)]);
  check(([a, b]) => sm.einsum('bij,bjk->bik', a!, b!), () => [randomF64([2, 2, 3], 36), randomF64([2, 3, 2], 37)]);
  check(([a, b]) => sm.einsum('i,i->', a!, b!), () => [randomF64([4], 38), randomF64([4], 39)]);
});

test('gradcheck: transpose, permute, reshape, narrow, slice, select', () => {
  const x = () => [randomF64([2, 3, 4], 40)];
  check(([a]) => a!.transpose(0, 2), x);
  check(([a]) => a!.T, x);
  check(([a]) => a!.permute([1, 2, 0]), x);
  check(([a]) => a!.reshape([6, 4]), x);
  check(([a]) => a!.narrow(2, 1, 2), x);
  check(([a]) => a!.slice(2, -3, undefined, 2), x);
  check(([a]) => a!.select(1, -1), x);
  check(([a]) => a!.unsqueeze(1).expand([2, 3, 3, 4]), x);
  check(([a]) => a!.flatten(1).repeat([2, 1]), x);
});

test('gradcheck: cat, stack, split', () => {
  check(([a, b]) => sm.cat([a!, b!], 1), () => [randomF64([2, 3], 41), randomF64([2, 2], 42)]);
  check(([a, b]) => sm.stack([a!, b!], 1), () => [randomF64([2, 3], 43), randomF64([2, 3], 44)]);
  check(
    ([a]) => {
      const [p, q, r] = a!.split([1, 2, 2], 1);
      return sm.cat([r!.mul(2), p!.exp(), q!.tanh()], 1);
    },
    () => [randomF64([3, 5], 45)],
  );
  check(
    ([a]) => {
      const [p, q] = a!.chunk(2, 0);
      return p!.mul(q!);
    },
    () => [randomF64([4, 2], 46)],
  );
});

test('gradcheck: indexSelect, gather, scatterAdd (self and src)', () => {
  sm.tidy(() => {
    const idx = sm.tensor([2, 0, 2, 1]);
    gradcheck(([a]) => a!.indexSelect(0, idx), [randomF64([3, 2], 47)]);
    const gidx = sm.tensor([
      [0, 0, 2],
      [1, 2, 1],
    ]);
    gradcheck(([a]) => a!.gather(1, gidx), [randomF64([2, 3], 48)]);
    const sidx = sm.tensor([
      [0, 1, 0],
      [2, 2, 1],
    ]);
    gradcheck(([self, src]) => self!.scatterAdd(1, sidx, src!), [randomF64([2, 3], 49), randomF64([2, 3], 50)]);
    gradcheck(([self, src]) => self!.indexAdd(0, sm.tensor([1, 1]), src!), [randomF64([3, 2], 51), randomF64([2, 2], 52)]);
  });
});

test('gradcheck: maskedFill and where', () => {
  sm.tidy(() => {
    const mask = sm.tensor([
      [true, false, false],
      [false, true, false],
    ]);
    gradcheck(([a]) => a!.maskedFill(mask, -3), [randomF64([2, 3], 53)]);
    // In place on a non-leaf: the same function, the same gradient.
    gradcheck(([a]) => a!.mul(2).maskedFillInPlace(mask, -3), [randomF64([2, 3], 53)]);
    gradcheck(([a, b]) => sm.where(mask, a!, b!), [randomF64([2, 3], 54), randomF64([3], 55)]);
  });
});

test('gradcheck: sum, mean, logsumexp, maxAlong values, topk values', () => {
  const x = () => [randomF64([3, 4], 56)];
  check(([a]) => a!.sum(), x);
  check(([a]) => a!.sum(1, true), x);
  check(([a]) => a!.sum([0, 1]), x);
  check(([a]) => a!.mean(0), x);
  check(([a]) => a!.mean(), x);
  check(([a]) => a!.logsumexp(1), x);
  check(([a]) => a!.logsumexp([0, 1]), x);
  check(([a]) => a!.maxAlong(1).values, x);
  check(([a]) => a!.minAlong(0, true).values, x);
  check(([a]) => a!.topk(2, 1).values, x);
  check(([a]) => a!.topk(2, 0, false).values, x);
  check(([a]) => a!.var(1), x);
  check(([a]) => a!.cumsum(1), x);
});

test('gradcheck: softmax and logSoftmax', () => {
  const x = () => [randomF64([2, 5], 57, 2)];
  check(([a]) => F.softmax(a!, 1), x);
  check(([a]) => F.softmax(a!, 0), x);
  check(([a]) => F.logSoftmax(a!, -1), x);
});

test('gradcheck: linear (input, weight, bias)', () => {
  check(([x, w, b]) => F.linear(x!, w!, b!), () => [randomF64([2, 3], 58), randomF64([4, 3], 59), randomF64([4], 60)]);
  check(([x, w]) => F.linear(x!, w!), () => [randomF64([2, 2, 3], 61), randomF64([2, 3], 62)]);
});

test('gradcheck: layerNorm (input, weight, bias)', () => {
  check(
    ([x, w, b]) => F.layerNorm(x!, [4], w!, b!),
    () => [randomF64([3, 4], 63, 2), randomF64([4], 64), randomF64([4], 65)],
    { rtol: 1e-4, atol: 1e-5 },
  );
  check(([x]) => F.layerNorm(x!, [4], undefined, undefined, 0.1), () => [randomF64([2, 4], 66, 2)], { rtol: 1e-4 });
});

test('gradcheck: gelu (tanh and none)', () => {
  const x = () => [randomF64([6], 67, 3)];
  check(([a]) => F.gelu(a!, 'tanh'), x);
  check(([a]) => F.gelu(a!, 'none'), x);
});

test('gradcheck: embedding (weight)', () => {
  sm.tidy(() => {
    const idx = sm.tensor([
      [0, 2],
      [2, 3],
    ]);
    gradcheck(([w]) => F.embedding(w!, idx), [randomF64([4, 3], 68)]);
  });
});

test('gradcheck: crossEntropy (logits), with class weights and label smoothing', () => {
  sm.tidy(() => {
    const target = sm.tensor([0, 3, 1]);
    const weight = sm.tensor([0.5, 1, 2, 1.5], { dtype: 'float64' });
    const logits = () => [randomF64([3, 4], 69, 2)];
    gradcheck(([l]) => F.crossEntropy(l!, target), logits());
    gradcheck(([l]) => F.crossEntropy(l!, target, { reduction: 'sum' }), logits());
    gradcheck(([l]) => F.crossEntropy(l!, target, { reduction: 'none' }), logits());
    gradcheck(([l]) => F.crossEntropy(l!, target, { weight }), logits());
    gradcheck(([l]) => F.crossEntropy(l!, target, { labelSmoothing: 0.1 }), logits());
    gradcheck(([l]) => F.crossEntropy(l!, target, { weight, labelSmoothing: 0.2 }), logits());
    gradcheck(([l]) => F.crossEntropy(l!, sm.tensor([0, -100, 2]), { labelSmoothing: 0.1 }), logits());
  });
});

test('gradcheck: mseLoss (both inputs)', () => {
  check(([a, b]) => F.mseLoss(a!, b!), () => [randomF64([2, 3], 70), randomF64([2, 3], 71)]);
  check(([a, b]) => F.mseLoss(a!, b!, 'sum'), () => [randomF64([4], 72), randomF64([4], 73)]);
  check(([a, b]) => F.mseLoss(a!, b!, 'none'), () => [randomF64([4], 74), randomF64([4], 75)]);
});

test('gradcheck: fftn followed by real() and imag()', () => {
  check(
    ([x]) => {
      const f = sm.fftn(x!, [0, 1]);
      return f.real().add(f.imag().mul(0.5));
    },
    () => [randomF64([2, 3], 76)],
  );
  check(
    ([x]) => {
      const f = sm.fftn(x!, [1]);
      const g = sm.ifftn(f.real().mul(f.imag()), [0]);
      return g.real().sub(g.imag());
    },
    () => [randomF64([3, 4], 77)],
  );
});

test('gradcheck: dropout with p = 0.3 and a fixed seed', () => {
  check(([x]) => F.dropout(x!, 0.3, true), () => [randomF64([4, 5], 78)], { beforeEach: () => sm.manualSeed(1234) });
  // The mask really is applied: some elements have zero gradient, the others 1/(1-p).
  sm.tidy(() => {
    const x = randomF64([200], 79).requiresGrad_();
    sm.manualSeed(99);
    F.dropout(x, 0.3, true).sum().backward();
    const g = values(x.grad!);
    assert.ok(g.some((v) => v === 0));
    assert.ok(g.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-12));
  });
});

test('gradcheck: composite attention-like block', () => {
  check(
    ([q, k, v]) => {
      const scores = q!.matmul(k!.transpose(-1, -2)).div(Math.sqrt(3));
      return F.softmax(scores, -1).matmul(v!);
    },
    () => [randomF64([2, 2, 3], 80), randomF64([2, 4, 3], 81), randomF64([2, 4, 3], 82)],
  );
});
