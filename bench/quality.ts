// `sparse-mixer bench quality`: quality at equal pre-training cost, done fairly. For each model:
// pre-training learning rates swept at seed 0 and chosen on the held-out corpus split's MLM loss;
// every pre-training run gets the same wall-clock budget (max_train_seconds: training steps and data
// waits, not evaluations); fine-tuning learning rates swept per task from the seed-0 encoder and
// chosen on rows held out of the task's training split (GLUE's dev split is the reported one, so it
// is never used to choose); then every seed is pre-trained and fine-tuned at the chosen rates and
// evaluated on the dev split, reported as mean ± std over seeds with a test of the difference.
// Every finished run is written to <workdir>/quality.json at once, and a rerun of the same command
// skips it: a stopped or killed bench continues where it stopped.
import * as fs from 'fs';
import * as path from 'path';
import * as sm from '../lib';
import { qualityMarkdown, qualitySvg, summarizeQuality, type QualitySummary } from './quality_report';
import { runFinetuneUnit, runPretrainUnit, type FinetuneRecord, type PretrainRecord, type UnitRecord } from './quality_units';

export { formatQualityTable, qualityMarkdown, qualitySvg } from './quality_report';
export { QualityInterrupted } from './quality_units';

const { trainConfig } = sm.train;

export interface QualityBenchOptions {
  /** Model presets compared; the first is the baseline the others are compared with (default ['bert-quarter', 'sparse-mixer-quarter']). */
  models?: string[];
  /** Fine-tuning tasks (default ['glue/sst2', 'glue/mrpc']). */
  tasks?: string[];
  /** Seeds per model, at least 2 (default 3): seed s pre-trains and fine-tunes run s. */
  seeds?: number;
  /** Pre-training budget of every run, in seconds of training (steps and data waits, not evaluations). */
  budgetSeconds: number;
  /** The folder holding the GLUE task folders (glue/SST-2, glue/MRPC, ...), e.g. ../shared/data. */
  dataDir: string;
  /** Runs, vocabulary, quality.json/.md/.svg; a rerun with the same settings continues the bench found here. */
  workdir: string;
  /** A SentencePiece model shared by all models (default: one of vocabSize pieces trained on sotu into the workdir). */
  vocab?: string;
  /** Pieces of the vocabulary trained when no vocab is given (default 8000). */
  vocabSize?: number;
  /** Pre-training corpus (default 'sotu,moby-dick'). */
  corpus?: string;
  /** Pre-training batch size (default 16). */
  pretrainBatchSize?: number;
  /** Sequence length of pre-training and fine-tuning (default 128). */
  maxSeqLength?: number;
  /** Masked positions per sequence at most (default ceil(0.15 · maxSeqLength): 20 at 128). */
  maxPredictionsPerSeq?: number;
  /** Pre-training learning rates swept (default [1e-3, 2e-3]); constant after pretrainWarmupSteps of linear warmup (default 20). */
  pretrainLearningRates?: number[];
  pretrainWarmupSteps?: number;
  /** Batches of the held-out corpus split evaluated at the end of pre-training (default 20). */
  pretrainEvalBatches?: number;
  /** Fine-tuning steps of every run, the same for every model (default 50). */
  finetuneSteps?: number;
  /** Fine-tuning batch size (default 16); 10% warmup, linear decay, expert dropout 0.2. */
  finetuneBatchSize?: number;
  /** Fine-tuning learning rates swept per task (default [1e-4, 3e-4, 1e-3]). */
  finetuneLearningRates?: number[];
  /** Training rows held out per task to choose the fine-tuning rate: at most this many (default 400) and a tenth of the split. */
  holdoutRows?: number;
  /** Config values applied to every run on top of the bench's (e.g. smaller widths for a smoke run). */
  overrides?: Record<string, unknown>;
  /** Config values for one model's runs, by preset name, applied after `overrides`. */
  modelOverrides?: Record<string, Record<string, unknown>>;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

export interface TaskRows {
  /** Rows trained on in the final runs (the whole train split) and in the sweep (less the held-out rows). */
  train: number;
  held_out: number;
  eval_split: string;
  eval: number;
}

/** What a bench was run with; a rerun must match it (threads aside) to continue the bench. */
export interface QualitySettings {
  models: string[];
  tasks: string[];
  seeds: number;
  budget_seconds: number;
  data_dir: string;
  vocab: string;
  vocab_size: number;
  corpus: string;
  pretrain: { batch_size: number; max_seq_length: number; max_predictions_per_seq: number; learning_rates: number[]; warmup_steps: number; schedule: 'constant'; eval_batches: number };
  finetune: { steps: number; batch_size: number; learning_rates: number[]; warmup_proportion: number; expert_dropout_rate: number; holdout_rows: number };
  task_rows: Record<string, TaskRows>;
  overrides: Record<string, unknown>;
  model_overrides: Record<string, Record<string, unknown>>;
  device: string;
  threads: number;
}

export interface QualityBenchReport {
  settings: QualitySettings;
  progress: { done: number; total: number; /** Wall seconds of the finished units. */ work_seconds: number; complete: boolean };
  /** Learning rates chosen so far: pre-training by model, fine-tuning by model and task. */
  chosen: { pretrain: Record<string, number>; finetune: Record<string, Record<string, number>> };
  /** Finished units by id ('pretrain <model> lr=<lr> seed=<s>', 'sweep <model> <task> lr=<lr>', 'final <model> <task> seed=<s>'). */
  units: Record<string, UnitRecord>;
  summary: QualitySummary;
}

function checkRates(name: string, rates: number[]): number[] {
  if (rates.length === 0 || rates.some((r) => !(r > 0) || !Number.isFinite(r))) throw new Error(`bench quality: ${name} must be positive numbers, got [${rates.join(', ')}]`);
  if (new Set(rates).size !== rates.length) throw new Error(`bench quality: ${name} has duplicates: [${rates.join(', ')}]`);
  return rates;
}

/** Row counts of a task's splits, failing (before any training) when they cannot be read. */
function taskRows(dataDir: string, name: string, holdoutRows: number): TaskRows {
  const task = sm.data.tasks.getTask(name);
  const folder = path.join(dataDir, task.folderName ?? task.name);
  const label = path.basename(task.folderName ?? task.name);
  try {
    const train = task.read(folder, 'train').examples;
    const evalRows = task.read(folder, task.evalSplit).examples.length;
    const units = new Set(train.map((r, i) => r.group ?? i)).size;
    const heldOut = Math.min(holdoutRows, Math.floor(units / 10));
    if (heldOut < 1 || evalRows === 0) throw new Error(`${units} training and ${evalRows} ${task.evalSplit} rows are too few (a tenth of train is held out to choose learning rates)`);
    return { train: train.length, held_out: heldOut, eval_split: task.evalSplit, eval: evalRows };
  } catch (e) {
    throw new Error(`bench quality: no usable ${label} under data dir ${dataDir} (expected ${folder}/train.tsv and ${task.evalSplit}.tsv, GLUE's published layout): ${e instanceof Error ? e.message : String(e)}`);
  }
}

function settingsFrom(options: QualityBenchOptions): QualitySettings {
  const models = options.models ?? ['bert-quarter', 'sparse-mixer-quarter'];
  if (models.length === 0) throw new Error('bench quality: no models given');
  if (new Set(models).size !== models.length) throw new Error(`bench quality: a model is given twice: ${models.join(', ')}`);
  for (const model of models) sm.presetConfig(model); // an unknown preset fails before the data is read
  if (!(options.budgetSeconds > 0)) throw new Error(`bench quality: budgetSeconds must be a positive number, got ${options.budgetSeconds}`);
  const seeds = options.seeds ?? 3;
  if (!Number.isInteger(seeds) || seeds < 2) throw new Error(`bench quality: seeds must be an integer of at least 2 (a spread needs two), got ${seeds}`);
  const tasks = (options.tasks ?? ['glue/sst2', 'glue/mrpc']).map((t) => sm.data.tasks.getTask(t).name);
  if (tasks.length === 0) throw new Error('bench quality: no tasks given');
  const L = options.maxSeqLength ?? 128;
  const holdoutRows = options.holdoutRows ?? 400;
  const dataDir = path.resolve(options.dataDir);
  return {
    models,
    tasks,
    seeds,
    budget_seconds: options.budgetSeconds,
    data_dir: dataDir,
    vocab: path.resolve(options.vocab ?? path.join(options.workdir, 'vocab.model')),
    vocab_size: options.vocabSize ?? 8000,
    corpus: options.corpus ?? 'sotu,moby-dick',
    pretrain: {
      batch_size: options.pretrainBatchSize ?? 16,
      max_seq_length: L,
      max_predictions_per_seq: options.maxPredictionsPerSeq ?? Math.max(1, Math.ceil(0.15 * L)),
      learning_rates: checkRates('pre-training learning rates', options.pretrainLearningRates ?? [1e-3, 2e-3]),
      warmup_steps: options.pretrainWarmupSteps ?? 20,
      schedule: 'constant',
      eval_batches: options.pretrainEvalBatches ?? 20,
    },
    finetune: {
      steps: options.finetuneSteps ?? 50,
      batch_size: options.finetuneBatchSize ?? 16,
      learning_rates: checkRates('fine-tuning learning rates', options.finetuneLearningRates ?? [1e-4, 3e-4, 1e-3]),
      warmup_proportion: 0.1,
      expert_dropout_rate: 0.2,
      holdout_rows: holdoutRows,
    },
    task_rows: Object.fromEntries(tasks.map((t) => [t, taskRows(dataDir, t, holdoutRows)])),
    overrides: options.overrides ?? {},
    model_overrides: options.modelOverrides ?? {},
    device: options.device ?? 'cpu',
    threads: sm.getNumThreads(),
  };
}

/** Settings that only the fine-tunings depend on: changing them keeps a bench's pre-trainings. */
const FINETUNING_SETTINGS = new Set(['finetune', 'tasks', 'task_rows']);

/** Settings keys whose values differ (threads may change between a run and its continuation). */
function settingsChanged(before: QualitySettings, now: QualitySettings): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(now)]);
  keys.delete('threads');
  const at = (s: QualitySettings, k: string) => JSON.stringify((s as unknown as Record<string, unknown>)[k]);
  return [...keys].filter((k) => at(before, k) !== at(now, k));
}

const taskSlug = (task: string) => task.replace(/\//g, '-');
const minutes = (s: number) => (s < 90 ? `${Math.round(s)}s` : `${(s / 60).toFixed(0)} min`);

export async function benchQuality(options: QualityBenchOptions): Promise<QualityBenchReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const s = settingsFrom(options);
  const L = s.pretrain.max_seq_length;
  const common = (model: string, seed: number) => ({ preset: model, vocab_filepath: s.vocab, seed, device: s.device, max_seq_length: L });
  const pretrainConfig = (model: string, lr: number, seed: number) =>
    trainConfig({
      ...common(model, seed),
      mode: 'pretraining',
      corpus: s.corpus,
      train_batch_size: s.pretrain.batch_size,
      eval_batch_size: s.pretrain.batch_size,
      max_predictions_per_seq: s.pretrain.max_predictions_per_seq,
      learning_rate: lr,
      warmup_steps: s.pretrain.warmup_steps,
      schedule: 'constant',
      num_train_steps: 1_000_000_000, // the budget ends the run
      max_train_seconds: s.budget_seconds,
      eval_frequency: 0, // only the final evaluation
      max_num_eval_steps: s.pretrain.eval_batches,
      save_checkpoints_steps: 1_000_000_000, // only the final checkpoint (or one on a signal)
      checkpoint_keep: 1,
      log_frequency: 5, // points of the loss curve
      ...s.overrides,
      ...s.model_overrides[model],
    });
  const finetuneConfig = (model: string, task: string, lr: number, seed: number, pretrained: string, heldOut: number) =>
    trainConfig({
      ...common(model, seed),
      mode: 'classification',
      dataset_name: task,
      data_dir: s.data_dir,
      init_checkpoint_dir: pretrained,
      train_batch_size: s.finetune.batch_size,
      eval_batch_size: 64,
      learning_rate: lr,
      warmup_proportion: s.finetune.warmup_proportion,
      num_train_steps: s.finetune.steps,
      expert_dropout_rate: s.finetune.expert_dropout_rate,
      train_holdout_rows: heldOut,
      eval_at_start: false,
      eval_frequency: s.finetune.steps, // once, at the end
      save_checkpoints_steps: s.finetune.steps,
      checkpoint_keep: 1,
      log_frequency: 10,
      ...s.overrides,
      ...s.model_overrides[model],
    });

  // Everything that can be wrong is found before any training.
  if (options.vocab && !fs.existsSync(options.vocab)) throw new Error(`bench quality: no vocabulary file ${options.vocab}`);
  const unknownModels = Object.keys(s.model_overrides).filter((m) => !s.models.includes(m));
  if (unknownModels.length) throw new Error(`bench quality: modelOverrides for models not compared: ${unknownModels.join(', ')}`);
  for (const model of s.models) {
    pretrainConfig(model, 1e-3, 0); // unknown presets and bad overrides throw here
    for (const task of s.tasks) finetuneConfig(model, task, 1e-3, 0, '', 0);
  }

  fs.mkdirSync(options.workdir, { recursive: true });
  if (!options.vocab && !fs.existsSync(s.vocab)) {
    await sm.data.trainVocab({ corpus: ['sotu'], output: s.vocab, vocabSize: s.vocab_size, modelType: 'bpe', characterCoverage: 0.9995, maxSentences: 1_000_000 }, log);
  }
  const tokenizer = sm.data.Tokenizer.load(s.vocab);
  s.vocab_size = tokenizer.vocabSize;
  tokenizer.dispose();
  const info: Record<string, { encoder_parameters: number; flops_per_token: number }> = {};
  for (const model of s.models) {
    const mi = sm.modelInfo({ ...pretrainConfig(model, 1e-3, 0), vocab_size: s.vocab_size });
    info[model] = { encoder_parameters: mi.parameters.encoder, flops_per_token: mi.flopsPerToken.total };
  }

  const S = s.seeds;
  const M = s.models.length;
  const T = s.tasks.length;
  const total = M * (s.pretrain.learning_rates.length + S - 1) + M * T * (s.finetune.learning_rates.length + S);
  const file = path.join(options.workdir, 'quality.json');
  const report: QualityBenchReport = { settings: s, progress: { done: 0, total, work_seconds: 0, complete: false }, chosen: { pretrain: {}, finetune: {} }, units: {}, summary: summarizeQuality(s, {}, { pretrain: {}, finetune: {} }, info) };
  if (fs.existsSync(file)) {
    const before = JSON.parse(fs.readFileSync(file, 'utf8')) as QualityBenchReport;
    const changed = before.settings ? settingsChanged(before.settings, s) : ['settings'];
    if (changed.length && changed.every((k) => FINETUNING_SETTINGS.has(k))) {
      // Pre-training is most of the cost: other fine-tuning settings redo only the fine-tunings.
      report.units = Object.fromEntries(Object.entries(before.units ?? {}).filter(([, u]) => u.kind === 'pretrain'));
      log(`bench quality: other fine-tuning settings (${changed.join(', ')}) than ${file}: keeping its ${Object.keys(report.units).length} pre-trainings, fine-tuning again`);
    } else if (changed.length) {
      throw new Error(`bench quality: ${file} holds a bench with other settings (${changed.join(', ')}); give another --workdir, or delete that folder to start over`);
    } else {
      report.units = before.units ?? {};
      log(`continuing the bench in ${options.workdir}: ${Object.keys(report.units).length} of ${total} runs already done`);
    }
  }
  const workSeconds = () => Object.values(report.units).reduce((a, u) => a + u.wall_seconds, 0);
  const save = () => {
    const done = Object.keys(report.units).length;
    report.progress = { done, total, work_seconds: workSeconds(), complete: done === total };
    report.summary = summarizeQuality(s, report.units, report.chosen, info);
    const partial = `${file}.partial-${process.pid}`;
    fs.writeFileSync(partial, `${JSON.stringify(report, null, 2)}\n`);
    fs.renameSync(partial, file);
    fs.writeFileSync(path.join(options.workdir, 'quality.md'), qualityMarkdown(report));
    fs.writeFileSync(path.join(options.workdir, 'quality.svg'), qualitySvg(report));
  };

  log(
    `bench quality: ${s.models.join(' vs ')}; ${total} runs: ${M * (s.pretrain.learning_rates.length + S - 1)} pre-trainings of ${s.budget_seconds}s, ` +
      `${M * T * (s.finetune.learning_rates.length + S)} fine-tunings of ${s.finetune.steps} steps on ${s.tasks.join(', ')}; results in ${file}`,
  );
  const eta = (): string => {
    const done = Object.values(report.units);
    const mean = (kind: UnitRecord['kind']) => {
      const w = done.filter((u) => u.kind === kind).map((u) => u.wall_seconds);
      return w.length ? w.reduce((a, b) => a + b, 0) / w.length : undefined;
    };
    const pretrainsLeft = M * (s.pretrain.learning_rates.length + S - 1) - done.filter((u) => u.kind === 'pretrain').length;
    const finetunesLeft = total - done.length - pretrainsLeft;
    const perPretrain = mean('pretrain') ?? s.budget_seconds * 1.1;
    const perFinetune = mean('finetune');
    if (perFinetune === undefined) return pretrainsLeft > 0 ? `more than ${minutes(pretrainsLeft * perPretrain)} left` : 'time left known after the first fine-tuning';
    return `about ${minutes(pretrainsLeft * perPretrain + finetunesLeft * perFinetune)} left`;
  };
  const unit = async <R extends UnitRecord>(id: string, run: () => Promise<R>): Promise<R> => {
    const known = report.units[id];
    if (known) return known as R;
    const done = Object.keys(report.units).length;
    log(`[${done + 1}/${total}] ${id} (${minutes(workSeconds())} of work done, ${eta()})`);
    const record = await run();
    report.units[id] = record;
    save();
    return record;
  };
  const runsDir = (model: string) => path.join(options.workdir, 'runs', model);
  const pretrainId = (model: string, lr: number, seed: number) => `pretrain ${model} lr=${lr} seed=${seed}`;
  const pretrainDir = (model: string, lr: number, seed: number) => path.join(runsDir(model), `pretrain-lr${lr}-seed${seed}`);
  const pretrainUnit = (model: string, lr: number, seed: number) =>
    unit(pretrainId(model, lr, seed), async () => {
      const r = await runPretrainUnit(pretrainId(model, lr, seed), pretrainConfig(model, lr, seed), pretrainDir(model, lr, seed), log);
      log(`${model} lr ${lr} seed ${seed}: ${r.diverged ? 'diverged' : `${r.steps} steps in ${r.train_seconds.toFixed(0)}s, held-out MLM loss ${r.heldout.mlm_loss?.toFixed(3) ?? 'n/a'}`}`);
      return r;
    });
  const finetuneUnit = (id: string, purpose: FinetuneRecord['purpose'], model: string, task: string, lr: number, seed: number) =>
    unit(id, async () => {
      const plr = report.chosen.pretrain[model]!;
      const from = pretrainDir(model, plr, seed);
      const dir = path.join(runsDir(model), purpose === 'sweep' ? `${taskSlug(task)}-sweep-lr${lr}` : `${taskSlug(task)}-seed${seed}`);
      const heldOut = purpose === 'sweep' ? s.task_rows[task]!.held_out : 0;
      const r = await runFinetuneUnit(id, purpose, pretrainId(model, plr, seed), finetuneConfig(model, task, lr, seed, from, heldOut), dir, log);
      // The fine-tuned weights are not needed once measured (hundreds of MB over a bench).
      fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
      const first = sm.data.tasks.getTask(task).metrics[0]!;
      log(`${model} ${task} ${purpose} lr ${lr} seed ${seed}: ${r.diverged ? 'diverged' : `${first} ${r.metrics[first]?.toFixed(4) ?? 'n/a'}`}`);
      return r;
    });

  // Models take turns at every stage, so that a slower spell of a shared machine hits both alike.
  for (const lr of s.pretrain.learning_rates) for (const model of s.models) await pretrainUnit(model, lr, 0);
  for (const model of s.models) report.chosen.pretrain[model] = choosePretrainRate(s.pretrain.learning_rates.map((lr) => report.units[pretrainId(model, lr, 0)] as PretrainRecord), model);
  for (let seed = 1; seed < S; seed++) for (const model of s.models) await pretrainUnit(model, report.chosen.pretrain[model]!, seed);
  for (const task of s.tasks) {
    const sweepId = (model: string, lr: number) => `sweep ${model} ${task} lr=${lr}`;
    for (const lr of s.finetune.learning_rates) for (const model of s.models) await finetuneUnit(sweepId(model, lr), 'sweep', model, task, lr, 0);
    for (const model of s.models) {
      const lr = chooseFinetuneRate(s.finetune.learning_rates.map((r) => report.units[sweepId(model, r)] as FinetuneRecord), `${model} ${task}`);
      (report.chosen.finetune[model] ??= {})[task] = lr;
    }
    for (let seed = 0; seed < S; seed++) for (const model of s.models) await finetuneUnit(`final ${model} ${task} seed=${seed}`, 'final', model, task, report.chosen.finetune[model]![task]!, seed);
  }
  save();
  log(`bench quality: done (${minutes(workSeconds())} of work); ${path.join(options.workdir, 'quality.md')}`);
  return report;
}

/** The rate of the lowest held-out MLM loss among the runs that did not diverge. */
export function choosePretrainRate(runs: PretrainRecord[], model: string): number {
  const ok = runs.filter((r) => !r.diverged && r.heldout.mlm_loss !== null);
  if (ok.length === 0) throw new Error(`bench quality: every pre-training learning rate of ${model} diverged or gave no held-out evaluation`);
  return ok.reduce((best, r) => (r.heldout.mlm_loss! < best.heldout.mlm_loss! ? r : best)).learning_rate;
}

/** The rate of the best held-out value of the task's first metric (ties: the lower loss, then the earlier rate). */
export function chooseFinetuneRate(runs: FinetuneRecord[], what: string): number {
  const ok = runs.filter((r) => !r.diverged && Object.keys(r.metrics).length > 0);
  if (ok.length === 0) throw new Error(`bench quality: every fine-tuning learning rate of ${what} diverged`);
  const metric = sm.data.tasks.getTask(ok[0]!.task).metrics[0]!;
  const value = (r: FinetuneRecord) => r.metrics[metric] ?? -Infinity;
  const loss = (r: FinetuneRecord) => r.metrics['loss'] ?? Infinity;
  return ok.reduce((best, r) => (value(r) > value(best) || (value(r) === value(best) && loss(r) < loss(best)) ? r : best)).learning_rate;
}
