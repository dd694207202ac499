// Our models against an independent PyTorch eager port (bench/models_peer.py): the same weights
// and batch give the same eval loss, and one AdamW step on each side gives the same next loss
// (which checks gradients and the optimizer too). Also the peer's own dispatch forms, its error
// replies and its timing request. Skipped when the Python (SM_TEST_PYTHON, default /usr/bin/python3,
// Debian's, over the same libtorch as ours) has no torch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as sm from '../lib';
import { AdamW } from '../lib/train/optimizer';
import { saveSafetensors } from '../lib/train/checkpoint';
import { PythonPeer } from '../bench/peer';
import { peerScript, syntheticPretrainingBatch, writePeerInputs } from '../bench/model_inputs';

const PYTHON = process.env['SM_TEST_PYTHON'] || '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `${PYTHON} cannot import torch (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`;

const TOL = 1e-4;
const L = 16;
const B = 3;
// Small enough for a few seconds on 2 cores; dropout off so that a training step is deterministic.
// init_std 0.2 instead of 0.02: at 0.02 the loss is so flat that an additive attention mask or a
// wrong tokens-choose slot order moves it by under 1e-4; at 0.2 they move it by 0.02-0.6.
const SHRINK: Partial<sm.ModelConfig> = {
  vocab_size: 300, max_seq_length: L, d_emb: 24, d_model: 32, d_ff: 48, num_heads: 2, num_layers: 4,
  num_attention_layers: 1, num_moe_layers: 2, num_experts: 4, dropout_rate: 0, mixing_dropout_rate: 0, expert_dropout_rate: 0,
  init_std: 0.2,
};
const MODELS: [string, sm.ModelConfig][] = [
  ['bert-tiny', sm.presetConfig('bert-tiny', { ...SHRINK, num_layers: 2, num_attention_layers: 2, num_moe_layers: 0 })],
  ['sparse-mixer-tiny', sm.presetConfig('sparse-mixer-tiny', SHRINK)],
  ['fast-sparse-mixer-tiny', sm.presetConfig('fast-sparse-mixer-tiny', SHRINK)],
  // Three routing groups of 16 tokens, capacity 4: many top-2 assignments are dropped.
  ['tokens-choose top-2', sm.presetConfig('sparse-mixer-tiny', { ...SHRINK, router_type: 'tokens_choose', num_selected_experts: 2, max_group_size: 16 })],
  ['F_NET', sm.presetConfig('sparse-mixer-tiny', { ...SHRINK, model_arch: 'F_NET', pad_id: 3 })],
];

interface LossReply { loss: number; masked_lm_loss: number; next_sentence_loss: number; error?: string }

describe('models against the PyTorch peer', { skip }, () => {
  let peer: PythonPeer;
  let dir: string;
  const load = (config: sm.ModelConfig, files: { weights: string | null; batch: string }, extra: object = {}) =>
    peer.request<{ ok?: boolean; parameters?: number; error?: string }>({
      cmd: 'load', config, weights: files.weights, batch: files.batch, device: 'cpu', precision: 'float32', threads: 1, seed: 0, dispatch: 'masked', impl: 'port', ...extra,
    });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'models-peer-'));
    const started = await PythonPeer.start(PYTHON, peerScript());
    assert.ok(started.peer, `peer did not start: ${started.error}`);
    peer = started.peer;
  });
  after(() => {
    peer?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, config] of MODELS) {
    test(`${name}: eval loss, and the eval loss after one AdamW step, equal the peer's`, async (t) => {
      const model = new sm.PretrainingModel(config);
      const batch = syntheticPretrainingBatch(config, B, L, 5);
      const opt = new AdamW(model);
      try {
        const files = writePeerInputs(dir, model, batch);
        const loaded = await load(config, files);
        assert.ok(loaded.ok, `load failed: ${loaded.error}`);
        assert.equal(loaded.parameters, model.numParameters());

        const evalLoss = () => sm.noGrad(() => sm.tidy(() => model.eval().forward(batch).loss.item()));
        const before = evalLoss();
        const theirs = await peer.request<LossReply>({ cmd: 'loss' });
        assert.equal(theirs.error, undefined);

        const trainLoss = sm.tidy(() => {
          const { loss } = model.train().forward(batch);
          loss.backward();
          return loss.item();
        });
        opt.step(1e-3);
        const stepped = await peer.request<{ loss: number; error?: string }>({ cmd: 'step', lr: 1e-3 });
        assert.equal(stepped.error, undefined);
        const afterStep = evalLoss();
        const theirsAfter = await peer.request<LossReply>({ cmd: 'loss' });

        const diffs = [Math.abs(before - theirs.loss), Math.abs(trainLoss - stepped.loss), Math.abs(afterStep - theirsAfter.loss)];
        t.diagnostic(`${name}: loss ${before.toFixed(6)} → ${afterStep.toFixed(6)}; |diff| eval ${diffs[0]!.toExponential(2)}, train ${diffs[1]!.toExponential(2)}, after step ${diffs[2]!.toExponential(2)}`);
        assert.ok(diffs[0]! <= TOL, `eval loss: ours ${before}, peer ${theirs.loss}`);
        assert.ok(diffs[1]! <= TOL, `training-step loss: ours ${trainLoss}, peer ${stepped.loss}`);
        assert.ok(diffs[2]! <= TOL, `eval loss after one step: ours ${afterStep}, peer ${theirsAfter.loss}`);
        assert.ok(afterStep < before, 'one step on the same batch lowers its loss');
      } finally {
        opt.dispose();
        model.dispose();
        sm.dispose(Object.values(batch));
      }
    });
  }

  test('peer: masked and scatter dispatch give the same loss; a missing weight is an error naming it; time works', async () => {
    const config = MODELS.find(([n]) => n === 'tokens-choose top-2')![1];
    const model = new sm.PretrainingModel(config);
    const batch = syntheticPretrainingBatch(config, B, L, 9);
    try {
      const files = writePeerInputs(dir, model, batch);
      for (const c of [config, sm.modelConfig({ ...config, router_type: 'experts_choose', train_capacity_factor: 0.5, eval_capacity_factor: 0.5 })]) {
        const losses: number[] = [];
        for (const dispatch of ['masked', 'scatter']) {
          assert.ok((await load(c, files, { dispatch })).ok);
          const r = await peer.request<LossReply>({ cmd: 'loss' });
          assert.equal(r.error, undefined);
          losses.push(r.loss);
        }
        assert.ok(Math.abs(losses[0]! - losses[1]!) <= 1e-5, `${c.router_type}: masked ${losses[0]} vs scatter ${losses[1]}`);
      }

      const timed = await peer.request<{ seconds: number[]; peak_bytes: number; error?: string }>({ cmd: 'time', pass: 'train', warmup: 1, reps: 2 });
      assert.equal(timed.error, undefined);
      assert.equal(timed.seconds.length, 2);
      assert.ok(timed.seconds.every((s) => s > 0) && timed.peak_bytes > 0, JSON.stringify(timed));
      const inferred = await peer.request<{ seconds: number[]; peak_bytes: number }>({ cmd: 'time', pass: 'infer', warmup: 1, reps: 1 });
      assert.ok(inferred.seconds[0]! > 0 && inferred.peak_bytes > 0, JSON.stringify(inferred));

      const partial = new Map(model.namedParameters().filter(([n]) => n !== 'encoder.layers.1.moe.experts.w1'));
      const broken = path.join(dir, 'broken.safetensors');
      saveSafetensors(broken, partial);
      const reply = await load(config, { weights: broken, batch: files.batch });
      assert.match(reply.error ?? '', /missing.*encoder\.layers\.1\.moe\.experts\.w1/);
      // The peer keeps serving after an error.
      assert.match((await peer.request<{ error?: string }>({ cmd: 'bogus' })).error ?? '', /unknown cmd/);
      assert.ok((await load(config, files)).ok);
    } finally {
      model.dispose();
      sm.dispose(Object.values(batch));
    }
  });
});
