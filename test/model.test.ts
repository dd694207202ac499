// Models: parameter counts, shapes for every architecture, gradient checks through tiny encoders,
// state dictionaries, modes, and a tiny model that learns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose } from './helpers';

const TINY: Partial<sm.ModelConfig> = {
  vocab_size: 20,
  max_seq_length: 8,
  d_emb: 6,
  d_model: 8,
  d_ff: 12,
  num_heads: 2,
  num_layers: 4,
  num_attention_layers: 1,
  num_moe_layers: 2,
  num_experts: 4,
  min_expert_capacity: 2,
};

function batchFor(c: sm.ModelConfig, B = 3, seed = 1) {
  const g = new sm.Generator(seed);
  const L = c.max_seq_length;
  const ids = sm.tidy(() => {
    const raw = sm.randint(3, c.vocab_size, [B, L], { generator: g });
    // Pad the tail of the first example.
    const pad = sm.tensor(Array.from({ length: B * L }, (_, i) => (i < L && i % L >= L - 3 ? 1 : 0)), { dtype: 'bool' }).reshape([B, L]);
    return raw.maskedFill(pad, c.pad_id);
  });
  const P = 3;
  return {
    input_ids: ids,
    type_ids: sm.tidy(() => sm.arange(L).ge(L / 2).long().unsqueeze(0).expand([B, L]).contiguous()),
    masked_lm_positions: sm.randint(1, L - 3, [B, P], { generator: g }),
    masked_lm_ids: sm.randint(3, c.vocab_size, [B, P], { generator: g }),
    masked_lm_weights: sm.tidy(() => sm.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]], { dtype: 'float32' }).narrow(0, 0, B)),
    next_sentence_labels: sm.randint(0, 2, [B], { generator: g }),
    label: sm.randint(0, 2, [B], { generator: g }),
  };
}

test('parameter counts of the base presets (vocab 32000, L 512) match REFERENCE §1 arithmetic', () => {
  const count = (name: string) => sm.modelInfo(sm.presetConfig(name, { vocab_size: 32000, max_seq_length: 512 })).parameters;
  const V = 32000;
  const L = 512;
  const dense = (i: number, o: number) => i * o + o;
  const ln = (d: number) => 2 * d;
  const embeddings = (E: number, D: number) => V * E + L * E + 4 * E + ln(E) + dense(E, D);
  const ff = (D: number, F: number) => dense(D, F) + dense(F, D);
  const attention = (D: number) => 4 * dense(D, D);
  const moe = (D: number, F: number, X: number) => dense(D, X) + X * ff(D, F);
  const heads = (E: number, D: number) => dense(D, E) + ln(E) + V /* MLM (tied embeddings) */ + dense(D, 2) /* NSP */;

  // BERT-Base: 12 attention layers, 768 / 3072.
  const bertEncoder = embeddings(768, 768) + 12 * (attention(768) + ln(768) + ff(768, 3072) + ln(768)) + dense(768, 768);
  assert.equal(count('bert-base').encoder, bertEncoder);
  assert.equal(count('bert-base').total, bertEncoder + heads(768, 768));

  // Sparse Mixer: 14 layers, 512 / 2048; 4 attention (TOP), 10 LINEAR (W_seq L×L, W_hidden D×D);
  // 4 MoE layers of 16 experts (MIDDLE), 10 dense.
  const linear = L * L + 512 * 512;
  const smEncoder =
    embeddings(512, 512) +
    4 * attention(512) +
    10 * linear +
    4 * moe(512, 2048, 16) +
    10 * ff(512, 2048) +
    14 * 2 * ln(512) +
    dense(512, 512);
  assert.equal(count('sparse-mixer').encoder, smEncoder);
  assert.equal(count('sparse-mixer').total, smEncoder + heads(512, 512));
  assert.equal(count('fast-sparse-mixer').total, count('sparse-mixer').total, 'Fast differs only in capacity');
  assert.equal(bertEncoder, 111_209_472);
  assert.equal(smEncoder, 182_060_096);
});

test('parameters have stable hierarchical names', () => {
  const c = sm.modelConfig(TINY);
  const m = new sm.PretrainingModel(c);
  const names = m.namedParameters().map(([n]) => n);
  const moeLayer = sm.layerPlan(c).find((p) => p.moe)!.index;
  for (const expected of [
    'encoder.embeddings.word.weight',
    'encoder.embeddings.hidden_mapping_in.weight',
    `encoder.layers.${moeLayer}.moe.experts.w1`,
    `encoder.layers.${moeLayer}.moe.router.weight`,
    'encoder.layers.3.attention.query.weight',
    'encoder.layers.0.mixing.seq_kernel',
    'encoder.pooler.weight',
    'mlm.output_bias',
    'nsp.weight',
  ]) {
    assert.ok(names.includes(expected), `has ${expected}`);
  }
  assert.equal(new Set(names).size, names.length);
  m.dispose();
});

for (const arch of sm.MODEL_ARCHS) {
  for (const router of sm.ROUTER_TYPES) {
    test(`${arch} with ${router}: pre-training and classification forward passes and losses`, () => {
      const c = sm.modelConfig({ ...TINY, model_arch: arch, router_type: router, num_selected_experts: router === 'tokens_choose' ? 2 : 1 });
      const before = sm.memory().numTensors;
      const pre = new sm.PretrainingModel(c);
      const cls = new sm.ClassificationModel(c, 3);
      const reg = new sm.ClassificationModel(c, 1, true);
      const batch = batchFor(c);
      sm.tidy(() => {
        const out = pre.forward(batch);
        assert.deepEqual(out.mlmLogits.shape, [3, 3, c.vocab_size]);
        assert.deepEqual(out.nspLogits.shape, [3, 2]);
        const loss = out.loss.item();
        assert.ok(Number.isFinite(loss) && loss > 0);
        assert.equal(out.stats['masked_lm_weight_sum']!.item(), 6);
        assert.equal(out.stats['next_sentence_count']!.item(), 3);
        // loss = MLM mean + NSP mean + 0.01 Σ aux + 1e-4 Σ z
        const s = Object.fromEntries(Object.entries(out.stats).map(([k, v]) => [k, v.item()]));
        const expected =
          s['masked_lm_loss_sum']! / 6 + s['next_sentence_loss_sum']! / 3 + 0.01 * s['auxiliary_loss']! + 1e-4 * s['router_z_loss']!;
        assertClose([loss], [expected], 1e-5);
        if (router === 'experts_choose') assert.equal(s['auxiliary_loss'], 0);
        else assert.ok(s['auxiliary_loss']! > 0);
        out.loss.backward();
        for (const [name, p] of pre.namedParameters()) assert.ok(p.grad !== undefined, `${name} gets a gradient`);
        const logits = cls.forward({ ...batch, label: batch.label }).logits;
        assert.deepEqual(logits.shape, [3, 3]);
        const r = reg.forward({ ...batch, label: sm.tensor([0.5, 2, 4.5]) });
        assert.deepEqual(r.logits.shape, [3, 1]);
        assert.ok(Number.isFinite(r.loss.item()));
      });
      for (const p of pre.parameters()) p.zeroGrad();
      pre.dispose();
      cls.dispose();
      reg.dispose();
      sm.dispose(batch);
      assert.equal(sm.memory().numTensors, before, 'no tensor leaks');
    });
  }
}

/** Finite differences on a few parameter entries of a float64 encoder. */
function checkEncoderGradients(overrides: Partial<sm.ModelConfig>) {
  const c = sm.modelConfig({ ...TINY, dropout_rate: 0, mixing_dropout_rate: 0, expert_dropout_rate: 0, ...overrides });
  const enc = new sm.Encoder(c, sm.nn.initContext(3, 0.3, 'float64'));
  const batch = batchFor(c);
  const weights = sm.randn([3, c.max_seq_length, c.d_model], { generator: new sm.Generator(5), dtype: 'float64' });
  const objective = () =>
    sm.tidy(() => {
      const out = enc.forward(batch.input_ids, batch.type_ids);
      return out.sequence.mul(weights).sum().add(out.pooled.sum());
    });
  sm.tidy(() => objective().backward());
  const g = new sm.Generator(9);
  let checked = 0;
  for (const [name, p] of enc.namedParameters()) {
    const grad = sm.tidy(() => Array.from(p.grad!.dataSync() as Float64Array));
    const flat = p.numel;
    const picks = sm.tidy(() => Array.from(sm.randint(0, flat, [2], { generator: g }).dataSync() as BigInt64Array, Number));
    for (const i of picks) {
      const eps = 1e-6;
      const shift = (delta: number) =>
        sm.noGrad(() => sm.tidy(() => {
          const bump = sm.zeros([flat], { dtype: 'float64' }).scatter(0, sm.tensor([i]), sm.tensor([delta], { dtype: 'float64' }));
          p.addInPlace(bump.reshape(p.shape));
        }));
      shift(eps);
      const up = sm.tidy(() => objective().item());
      shift(-2 * eps);
      const down = sm.tidy(() => objective().item());
      shift(eps);
      const numeric = (up - down) / (2 * eps);
      assert.ok(Math.abs(numeric - grad[i]!) <= 1e-5 + 1e-4 * Math.abs(numeric), `${name}[${i}]: analytic ${grad[i]} vs numeric ${numeric}`);
      checked++;
    }
  }
  assert.ok(checked > 20);
  enc.dispose();
  sm.dispose([batch, weights]);
  g.dispose();
}

test('gradient check through a tiny BERT encoder (float64)', () => checkEncoderGradients({ model_arch: 'BERT' }));
test('gradient check through a tiny LINEAR + experts-choose MoE encoder (float64)', () =>
  checkEncoderGradients({ model_arch: 'LINEAR', router_type: 'experts_choose' }));
test('gradient check through a tiny F_NET + tokens-choose top-2 MoE encoder (float64)', () =>
  checkEncoderGradients({ model_arch: 'F_NET', router_type: 'tokens_choose', num_selected_experts: 2 }));

test('state dictionary round trip; missing, unexpected and mis-shaped names are reported', () => {
  const c = sm.modelConfig({ ...TINY, dropout_rate: 0 });
  const a = new sm.ClassificationModel(c, 2).eval();
  const b = new sm.ClassificationModel({ ...c, seed: 99 }, 2).eval();
  const batch = batchFor(c);
  const logits = (m: sm.ClassificationModel) => sm.tidy(() => Array.from(m.forward({ ...batch }).logits.dataSync() as Float32Array));
  assert.notDeepEqual(logits(a), logits(b));
  b.loadStateDict(a.stateDict());
  assert.deepEqual(logits(b), logits(a));

  const state = new Map(a.stateDict());
  state.delete('classifier.bias');
  state.set('classifier.extra', a.classifier.weight);
  assert.throws(() => b.loadStateDict(state), /missing: classifier\.bias; unexpected: classifier\.extra|missing: classifier\.bias.*unexpected: classifier\.extra/);
  const lenient = b.loadStateDict(state, { strict: false });
  assert.deepEqual(lenient.missing, ['classifier.bias']);
  assert.deepEqual(lenient.unexpected, ['classifier.extra']);
  const wrong = new Map(a.stateDict());
  const bad = sm.zeros([3, 8]);
  wrong.set('classifier.weight', bad);
  assert.throws(() => b.loadStateDict(wrong), /classifier\.weight: expected shape \[2,8\], got \[3,8\]/);
  bad.dispose();
  a.dispose();
  b.dispose();
  sm.dispose(batch);
});

test('train/eval mode: dropout only in training; to(dtype) moves parameters in place', () => {
  const c = sm.modelConfig({ ...TINY, dropout_rate: 0.5 });
  const m = new sm.ClassificationModel(c, 2);
  const batch = batchFor(c);
  const run = () => sm.tidy(() => Array.from(m.forward(batch).logits.dataSync() as Float32Array));
  m.eval();
  assert.deepEqual(run(), run());
  m.train();
  assert.notDeepEqual(run(), run());
  const weight = m.classifier.weight;
  sm.tidy(() => m.forward(batch).logits.sum().backward());
  m.to('float64');
  assert.equal(weight.dtype, 'float64', 'the same tensor object now holds float64 data');
  assert.ok(m.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad));
  sm.tidy(() => {
    assert.equal(weight.grad!.dtype, 'float64', 'gradients follow their parameters');
    m.forward(batch).logits.sum().backward(); // accumulates onto the moved gradients
  });
  m.dispose();
  sm.dispose(batch);
});

test('mask_padding_in_mixing makes real positions independent of what padding holds', () => {
  const base = { ...TINY, num_attention_layers: 0, num_moe_layers: 0, dropout_rate: 0, mixing_dropout_rate: 0 };
  for (const masked of [false, true]) {
    const c = sm.modelConfig({ ...base, mask_padding_in_mixing: masked });
    const enc = new sm.Encoder(c).eval();
    const ids = sm.tensor([[5, 6, 7, 8, 9, 0, 0, 0]]);
    const realRows = (types: number[]) =>
      sm.tidy(() => Array.from(enc.forward(ids, sm.tensor([types])).sequence.narrow(1, 0, 5).dataSync() as Float32Array));
    const a = realRows([0, 0, 0, 0, 0, 0, 0, 0]);
    const b = realRows([0, 0, 0, 0, 0, 1, 3, 2]); // only padded positions differ
    if (masked) assertClose(a, b, 1e-6);
    else assert.ok(a.some((v, i) => Math.abs(v - b[i]!) > 1e-6), 'without the mask, padding leaks into real positions');
    enc.dispose();
    ids.dispose();
  }
});

test('a tiny Sparse Mixer learns a synthetic sequence task (backward + update end to end)', () => {
  const c = sm.modelConfig({ ...TINY, vocab_size: 16, dropout_rate: 0, mixing_dropout_rate: 0, expert_dropout_rate: 0 });
  const model = new sm.ClassificationModel(c, 2);
  const params = model.parameters();
  // Adam, written out with tensor ops (the trainer's fused optimizer is not needed here).
  const m1 = params.map((p) => sm.keep(sm.zerosLike(p)));
  const m2 = params.map((p) => sm.keep(sm.zerosLike(p)));
  const g = new sm.Generator(4);
  const lr = 3e-3;
  const losses: number[] = [];
  for (let step = 1; step <= 200; step++) {
    const loss = sm.tidy(() => {
      const ids = sm.randint(3, 16, [16, c.max_seq_length], { generator: g });
      const label = ids.select(1, 1).ge(10).long(); // is the second token one of the high ids?
      const out = model.forward({ input_ids: ids, type_ids: sm.zerosLike(ids), label });
      out.loss.backward();
      return out.loss.item();
    });
    losses.push(loss);
    sm.noGrad(() =>
      sm.tidy(() => {
        params.forEach((p, i) => {
          const grad = p.grad!;
          m1[i]!.mulInPlace(0.9).addInPlace(grad, 0.1);
          m2[i]!.mulInPlace(0.999).addInPlace(grad.square(), 0.001);
          const mHat = m1[i]!.div(1 - 0.9 ** step);
          const vHat = m2[i]!.div(1 - 0.999 ** step);
          p.addInPlace(mHat.div(vHat.sqrt().add(1e-8)), -lr);
          p.zeroGrad();
        });
      }),
    );
  }
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
  const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < first / 5, `loss fell from ${first.toFixed(3)} to ${last.toFixed(3)}`);
  model.dispose();
  sm.dispose([m1, m2]);
  g.dispose();
});

test('fused scaled dot-product attention (libtorch >= 2.0) gives the values and gradients of the matmul path', () => {
  if (!sm.functional.hasScaledDotProductAttention) {
    assert.throws(() => sm.tidy(() => sm.functional.scaledDotProductAttention(sm.ones([1, 2, 4]), sm.ones([1, 2, 4]), sm.ones([1, 2, 4]))), /needs libtorch 2\.0 or newer/);
    return;
  }
  sm.tidy(() => {
    const g = new sm.Generator(3);
    const [q, k, v] = [0, 1, 2].map(() => sm.randn([2, 2, 6, 4], { generator: g }));
    const bias = sm.tensor([[0, 0, 0, -1e10, 0, -1e10]], { dtype: 'float32' }).reshape([1, 1, 1, 6]);
    const fused = sm.functional.scaledDotProductAttention(q!, k!, v!, { mask: bias });
    const plain = sm.functional.softmax(q!.matmul(k!.transpose(-2, -1)).mul(0.5).add(bias), -1).matmul(v!);
    assertClose(Array.from(fused.dataSync() as Float32Array), Array.from(plain.dataSync() as Float32Array), 1e-5);
  });
  // Whole models, padding included: float32 runs the fused kernel, float64 the matmul path (where
  // a padded query's row is fully masked); losses and every gradient agree.
  for (const arch of ['BERT', 'LINEAR'] as const) {
    const c = sm.modelConfig({ ...TINY, model_arch: arch, num_attention_layers: 2, dropout_rate: 0, mixing_dropout_rate: 0, init_std: 0.5 });
    const m = new sm.PretrainingModel(c).eval();
    const batch = batchFor(c);
    const lossAndGrads = () =>
      sm.tidy(() => {
        for (const p of m.parameters()) p.zeroGrad();
        const loss = m.forward(batch).loss;
        loss.backward();
        return { loss: loss.item(), grads: m.parameters().map((p) => Array.from(p.grad!.to('float64').dataSync() as Float64Array)) };
      });
    const fused = lossAndGrads();
    m.to('float64');
    const exact = lossAndGrads();
    assert.ok(Math.abs(fused.loss - exact.loss) <= 1e-5 * Math.abs(exact.loss), `${arch}: float32 ${fused.loss} vs float64 ${exact.loss}`);
    exact.grads.forEach((g, i) => assertClose(fused.grads[i]!, g, 1e-4, `${arch}: ${m.namedParameters()[i]![0]} gradient`));
    m.dispose();
    sm.dispose(Object.values(batch));
  }
});
