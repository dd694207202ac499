// The main job, tiny: its seed reaches both runs and changes what they learn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quickstart } from '../lib/cli/quickstart';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-quickstart-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(name: string, seed: number) {
  const workdir = path.join(dir, name);
  const r = await quickstart({ workdir, pretrainSteps: 2, finetuneEpochs: 0.02, seed, log: () => {} });
  const seeds = ['pretrain', 'spam'].map((run) => JSON.parse(fs.readFileSync(path.join(workdir, run, 'config.json'), 'utf8')).seed as number);
  const firstLine = fs.readFileSync(path.join(workdir, 'pretrain', 'metrics.jsonl'), 'utf8').split('\n')[0]!;
  return { metrics: r.metrics, seeds, pretrainLoss: JSON.parse(firstLine).masked_lm_loss as number };
}

test('quickstart --seed: both runs take the seed, and another seed trains differently', async () => {
  const a = await run('a', 1);
  const b = await run('b', 2);
  assert.deepEqual(a.seeds, [1, 1]);
  assert.deepEqual(b.seeds, [2, 2]);
  assert.ok(a.metrics.accuracy >= 0 && a.metrics.accuracy <= 1, `accuracy ${a.metrics.accuracy}`);
  assert.notEqual(a.pretrainLoss, b.pretrainLoss, 'seeds 1 and 2 gave the same pre-training loss');
});
