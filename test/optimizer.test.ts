// Optimizer and schedule (REFERENCE §4): schedule values, AdamW against hand-computed steps,
// weight-decay exclusion, gradient norm and clipping, and accumulation equal to one big batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { AdamW, isBiasOrNorm } from '../lib/train/optimizer';
import { learningRate } from '../lib/train/schedule';
import { assertClose } from './helpers';

test('learning-rate schedule: warmup 2, decay 4 gives [0, 0.5, 1, 0.75, 0.5, 0.25]', () => {
  const values = [0, 1, 2, 3, 4, 5].map((step) => learningRate(step, { base: 1, warmupSteps: 2, decaySteps: 4 }));
  assert.deepEqual(values, [0, 0.5, 1, 0.75, 0.5, 0.25]);
  assert.equal(learningRate(9, { base: 1, warmupSteps: 2, decaySteps: 4 }), 0, 'never negative');
  assert.equal(learningRate(50, { base: 2e-5, warmupSteps: 0, decaySteps: 100 }), 1e-5);
  assert.equal(learningRate(1, { base: 1, warmupSteps: 2, decaySteps: 4, kind: 'constant' }), 0.5);
  assert.equal(learningRate(8, { base: 1, warmupSteps: 2, decaySteps: 4, kind: 'constant' }), 1);
  assert.equal(learningRate(8, { base: 1, warmupSteps: 2, decaySteps: 4, kind: 'rsqrt' }), 0.5);
  assertClose([learningRate(4, { base: 1, warmupSteps: 2, decaySteps: 4, kind: 'cosine' })], [0.5], 1e-12);
});

class Params extends sm.nn.Module {
  readonly weight: sm.Tensor;
  readonly bias: sm.Tensor;
  constructor(w: number[], b: number[]) {
    super();
    this.weight = this.param('weight', sm.tensor(w, { dtype: 'float64' }));
    this.bias = this.param('bias', sm.tensor(b, { dtype: 'float64' }));
  }
}

/** Sets gradients to given values through a backward pass of Σ p·g. */
function setGrads(m: Params, gw: number[], gb: number[]) {
  sm.tidy(() => m.weight.mul(sm.tensor(gw, { dtype: 'float64' })).sum().add(m.bias.mul(sm.tensor(gb, { dtype: 'float64' })).sum()).backward());
}

/** AdamW by hand (optax.adamw semantics) over steps of gradients and learning rates. */
function adamwByHand(start: number[], grads: number[][], lrs: number[], weightDecay: number): number[] {
  const p = [...start];
  const mo = p.map(() => 0);
  const ve = p.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      mo[i] = 0.9 * mo[i]! + 0.1 * g[i]!;
      ve[i] = 0.999 * ve[i]! + 0.001 * g[i]! ** 2;
      const update = mo[i]! / (1 - 0.9 ** t) / (Math.sqrt(ve[i]! / (1 - 0.999 ** t)) + 1e-6);
      p[i] = p[i]! * (1 - lrs[s]! * weightDecay) - lrs[s]! * update;
    }
  });
  return p;
}

const GRADS = [[0.5, 0.1, -0.3], [-0.2, 0.4, 0.05]];
const LRS = [0.1, 0.05];

test('AdamW matches the update worked out by hand, over two steps', () => {
  const m = new Params([1, -2], [0.5]);
  const opt = new AdamW(m, { weightDecay: 0.01 });
  GRADS.forEach((g, s) => {
    setGrads(m, g.slice(0, 2), g.slice(2));
    opt.step(LRS[s]!);
    opt.zeroGrad();
  });
  // After step 1 the update is ~sign(g) (m̂/sqrt(v̂) = g/|g|): e.g. w0 = 1·(1 − 0.001) − 0.1·(0.5/0.500001).
  assertClose([...(m.weight.dataSync() as Float64Array), ...(m.bias.dataSync() as Float64Array)], adamwByHand([1, -2, 0.5], GRADS, LRS, 0.01), 1e-12);
  assert.equal(opt.stepCount, 2);
  opt.dispose();
  m.dispose();
});

test('AdamW on non-contiguous and bfloat16 parameters (the multi-tensor path) matches the hand-worked update', () => {
  for (const [dtype, layout, tol] of [['float64', 'strided', 1e-12], ['bfloat16', 'contiguous', 2e-2], ['float32', 'strided', 1e-6]] as const) {
    sm.tidy(() => {
      // Strided: the first column of a [3, 2] tensor, stride 2.
      const p = layout === 'strided' ? sm.tensor([[1, 9], [-2, 9], [0.5, 9]], { dtype }).select(1, 0).requiresGrad_() : sm.tensor([1, -2, 0.5], { dtype }).requiresGrad_();
      assert.deepEqual(p.strides, [layout === 'strided' ? 2 : 1]);
      const [m, v] = [sm.zerosLike(p), sm.zerosLike(p)];
      GRADS.forEach((g, s) => {
        p.grad = sm.tensor(g, { dtype }).reshape(p.shape);
        sm.optim.adamwStep([p], [m], [v], [true], { lr: LRS[s]!, step: s + 1, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 });
      });
      assertClose(Array.from(p.to('float64').dataSync() as Float64Array), adamwByHand([1, -2, 0.5], GRADS, LRS, 0.01), tol, `${dtype} ${layout}`);
    });
  }
});

test('weight decay can exclude biases and LayerNorm parameters; parameters without gradients stay', () => {
  assert.ok(isBiasOrNorm('encoder.layers.0.mixing_layer_norm.weight'));
  assert.ok(isBiasOrNorm('encoder.layers.5.moe.experts.b1'));
  assert.ok(isBiasOrNorm('classifier.bias'));
  assert.ok(!isBiasOrNorm('encoder.layers.0.feed_forward.intermediate.weight'));
  const m = new Params([1, 1], [1]);
  const opt = new AdamW(m, { weightDecay: 0.5, excludeBiasAndNormFromDecay: true });
  setGrads(m, [0, 0], [0]); // zero gradient: only decay moves a parameter
  opt.step(0.1);
  assertClose(Array.from(m.weight.dataSync() as Float64Array), [0.95, 0.95], 1e-12);
  assertClose(Array.from(m.bias.dataSync() as Float64Array), [1], 1e-12);
  opt.zeroGrad();
  opt.step(0.1); // no gradients at all: nothing changes, not even decay
  assertClose(Array.from(m.weight.dataSync() as Float64Array), [0.95, 0.95], 1e-12);
  opt.dispose();
  m.dispose();
});

test('global gradient norm and clipping', () => {
  const m = new Params([1, 1], [1]);
  setGrads(m, [3, 0], [4]);
  assert.equal(sm.optim.gradNorm(m.parameters()), 5);
  assert.equal(sm.optim.clipGradNorm(m.parameters(), 10), 5, 'under the limit: unchanged');
  assertClose(Array.from(m.weight.grad!.dataSync() as Float64Array), [3, 0], 0);
  assert.equal(sm.optim.clipGradNorm(m.parameters(), 1), 5);
  assertClose([sm.optim.gradNorm(m.parameters())], [1], 1e-6);
  assert.throws(() => sm.optim.clipGradNorm(m.parameters(), 0), /maxNorm must be positive/);
  m.dispose();
});

test('optimizer state round trip', () => {
  const a = new Params([1, 2], [3]);
  const opt = new AdamW(a);
  setGrads(a, [1, -1], [2]);
  opt.step(0.01);
  const b = new Params([1, 2], [3]);
  const opt2 = new AdamW(b);
  opt2.loadStateDict(opt.stateDict(), opt.stepCount);
  const read = (o: AdamW) => [...o.stateDict()].map(([k, t]) => [k, Array.from(t.dataSync() as Float64Array)]);
  assert.deepEqual(read(opt2), read(opt));
  assert.equal(opt2.stepCount, 1);
  assert.throws(() => opt2.loadStateDict(new Map(), 1), /optimizer state is missing m\.weight/);
  for (const x of [opt, opt2, a, b]) x.dispose();
});

test('gradient accumulation over k parts equals one big batch', () => {
  const config = sm.modelConfig({ vocab_size: 30, max_seq_length: 8, d_emb: 8, d_model: 8, d_ff: 16, num_heads: 2, num_layers: 2, num_attention_layers: 1, num_moe_layers: 1, num_experts: 2, dropout_rate: 0, mixing_dropout_rate: 0, expert_dropout_rate: 0, router_type: 'tokens_choose', min_expert_capacity: 2, max_group_size: 8 });
  // One routing group per example (max_group_size = L), so splitting the batch changes no routing decision.
  const model = new sm.ClassificationModel(config, 2, false, sm.nn.initContext(1, 0.2, 'float64'));
  const ids = sm.randint(3, 30, [4, 8], { generator: new sm.Generator(2) });
  const types = sm.zeros([4, 8], { dtype: 'int64' });
  const label = sm.tensor([0, 1, 1, 0]);
  const grads = () => model.parameters().map((p) => Array.from(p.grad!.dataSync() as Float64Array));
  sm.tidy(() => model.forward({ input_ids: ids, type_ids: types, label }).loss.backward());
  const whole = grads();
  for (const p of model.parameters()) p.zeroGrad();
  const k = 2;
  for (let part = 0; part < k; part++) {
    sm.tidy(() => {
      const slice = (t: sm.Tensor) => t.narrow(0, part * 2, 2);
      model.forward({ input_ids: slice(ids), type_ids: slice(types), label: slice(label) }).loss.div(k).backward();
    });
  }
  const accumulated = grads();
  whole.forEach((g, i) => assertClose(accumulated[i]!, g, 1e-12, model.namedParameters()[i]![0]));
  model.dispose();
  sm.dispose([ids, types, label]);
});
