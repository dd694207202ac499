// `sparse-mixer bench quality`: quality at equal cost. Each model is pre-trained for the same
// wall-clock budget (max_train_seconds: training steps and data waits, not evaluations) on the same
// corpus and vocabulary, then fine-tuned on SST-2 for the same number of steps; the held-out MLM and
// NSP accuracies and the SST-2 dev accuracy are reported side by side.
import * as fs from 'fs';
import * as path from 'path';
import * as sm from '../lib';

const { trainConfig, pretrain, finetune } = sm.train;

export interface QualityBenchOptions {
  /** Model presets compared (default ['bert-small', 'sparse-mixer-small']). */
  models?: string[];
  /** Pre-training budget per model, in seconds of training (steps and data waits, not evaluations). */
  budgetSeconds: number;
  /** The folder holding glue/SST-2 (train.tsv, dev.tsv), e.g. ../shared/data. */
  dataDir: string;
  /** Where vocabulary, runs and report go: <workdir>/<model>/{pretrain,sst2} are replaced on every run. */
  workdir: string;
  /** A SentencePiece model shared by all models (default: one of vocabSize pieces trained on sotu, as the quickstart does). */
  vocab?: string;
  /** Pieces of the vocabulary trained when no vocab is given (default 8000). */
  vocabSize?: number;
  /** Pre-training corpus (default 'sotu,moby-dick'). */
  corpus?: string;
  /** Pre-training batch size (default 32). */
  pretrainBatchSize?: number;
  /** Sequence length of pre-training and fine-tuning (default 128). */
  maxSeqLength?: number;
  /** Masked positions per sequence at most (default ceil(0.15 · maxSeqLength): 20 at 128). */
  maxPredictionsPerSeq?: number;
  /** Pre-training learning rate (default 1e-3), constant after pretrainWarmupSteps of linear warmup (default 40). */
  pretrainLearningRate?: number;
  pretrainWarmupSteps?: number;
  /** Evaluation batches of the held-out corpus split at the end of pre-training (default 50). */
  pretrainEvalBatches?: number;
  /** Fine-tuning steps, the same for every model (default 600). */
  finetuneSteps?: number;
  /** Fine-tuning batch size (default 32) and learning rate (default 5e-4; 10% warmup, linear decay, expert dropout 0.2). */
  finetuneBatchSize?: number;
  finetuneLearningRate?: number;
  /** Config values applied to every model's runs on top of the bench's (e.g. smaller widths for a smoke run). */
  overrides?: Record<string, unknown>;
  /** Config values for one model's runs, by preset name, applied after `overrides` (e.g. a layer layout). */
  modelOverrides?: Record<string, Record<string, unknown>>;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  seed?: number;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/** The settings a report was made with (every default filled in). */
export interface QualitySettings {
  models: string[];
  budget_seconds: number;
  data_dir: string;
  vocab: string;
  vocab_size: number;
  corpus: string;
  pretrain: { batch_size: number; max_seq_length: number; max_predictions_per_seq: number; learning_rate: number; warmup_steps: number; schedule: 'constant'; eval_batches: number };
  finetune: { task: 'glue/sst2'; steps: number; batch_size: number; learning_rate: number; warmup_proportion: number; expert_dropout_rate: number };
  overrides: Record<string, unknown>;
  model_overrides: Record<string, Record<string, unknown>>;
  device: string;
  seed: number;
  threads: number;
}

export interface QualityRow {
  model: string;
  /** Encoder parameters (what fine-tuning keeps) and forward FLOPs per token, from model-info. */
  encoder_parameters: number;
  flops_per_token: number;
  pretrain: {
    steps: number;
    /** Seconds of training counted against the budget (the step that crosses it included). */
    train_seconds: number;
    steps_per_sec: number;
    examples_per_sec: number;
    /** 'time_budget' unless the run ended otherwise. */
    stopped: string;
    /** Held-out evaluation at the last step; null when the held-out split gave no batch. */
    mlm_accuracy: number | null;
    mlm_loss: number | null;
    nsp_accuracy: number | null;
    loss: number | null;
    /** The whole run, final evaluation and checkpoint included. */
    wall_seconds: number;
  };
  sst2: {
    steps: number;
    dev_accuracy: number | null;
    dev_loss: number | null;
    /** The whole fine-tuning run: encoding, evaluations at step 0 and at the end, checkpoint. */
    wall_seconds: number;
  };
}

export interface QualityBenchReport {
  settings: QualitySettings;
  rows: QualityRow[];
}

const SST2 = 'glue/sst2';

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;
const metric = (m: Record<string, number> | undefined, key: string): number | null => (m && Number.isFinite(m[key]) ? m[key]! : null);

/** Fails (before any training) when dataDir has no readable SST-2 in the GLUE layout. */
function checkSst2(dataDir: string): void {
  const task = sm.data.tasks.getTask(SST2);
  const folder = path.join(dataDir, task.folderName ?? task.name);
  try {
    for (const split of ['train', task.evalSplit]) {
      if (task.read(folder, split).examples.length === 0) throw new Error(`${split} split has no rows`);
    }
  } catch (e) {
    throw new Error(
      `bench quality: no usable SST-2 under data dir ${dataDir} (expected ${folder}/train.tsv and dev.tsv, GLUE's published layout): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

export async function benchQuality(options: QualityBenchOptions): Promise<QualityBenchReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const models = options.models ?? ['bert-small', 'sparse-mixer-small'];
  if (models.length === 0) throw new Error('bench quality: no models given');
  if (!(options.budgetSeconds > 0)) throw new Error(`bench quality: budgetSeconds must be a positive number, got ${options.budgetSeconds}`);
  const L = options.maxSeqLength ?? 128;
  const settings: QualitySettings = {
    models,
    budget_seconds: options.budgetSeconds,
    data_dir: path.resolve(options.dataDir),
    vocab: path.resolve(options.vocab ?? path.join(options.workdir, 'vocab.model')),
    vocab_size: options.vocabSize ?? 8000,
    corpus: options.corpus ?? 'sotu,moby-dick',
    pretrain: {
      batch_size: options.pretrainBatchSize ?? 32,
      max_seq_length: L,
      max_predictions_per_seq: options.maxPredictionsPerSeq ?? Math.max(1, Math.ceil(0.15 * L)),
      learning_rate: options.pretrainLearningRate ?? 1e-3,
      warmup_steps: options.pretrainWarmupSteps ?? 40,
      schedule: 'constant',
      eval_batches: options.pretrainEvalBatches ?? 50,
    },
    finetune: {
      task: SST2,
      steps: options.finetuneSteps ?? 600,
      batch_size: options.finetuneBatchSize ?? 32,
      learning_rate: options.finetuneLearningRate ?? 5e-4,
      warmup_proportion: 0.1,
      expert_dropout_rate: 0.2,
    },
    overrides: options.overrides ?? {},
    model_overrides: options.modelOverrides ?? {},
    device: options.device ?? 'cpu',
    seed: options.seed ?? 0,
    threads: sm.getNumThreads(),
  };
  const s = settings;
  const common = (model: string) => ({ preset: model, vocab_filepath: s.vocab, seed: s.seed, device: s.device, max_seq_length: L });
  const pretrainConfig = (model: string) =>
    trainConfig({
      ...common(model),
      mode: 'pretraining',
      corpus: s.corpus,
      train_batch_size: s.pretrain.batch_size,
      eval_batch_size: s.pretrain.batch_size,
      max_predictions_per_seq: s.pretrain.max_predictions_per_seq,
      learning_rate: s.pretrain.learning_rate,
      warmup_steps: s.pretrain.warmup_steps,
      schedule: 'constant',
      num_train_steps: 1_000_000_000, // the budget ends the run
      max_train_seconds: s.budget_seconds,
      eval_frequency: 0, // only the final evaluation
      max_num_eval_steps: s.pretrain.eval_batches,
      save_checkpoints_steps: 1_000_000_000, // only the final checkpoint
      log_frequency: 50,
      ...s.overrides,
      ...s.model_overrides[model],
    });
  const finetuneConfig = (model: string, pretrainDir: string) =>
    trainConfig({
      ...common(model),
      mode: 'classification',
      dataset_name: SST2,
      data_dir: s.data_dir,
      init_checkpoint_dir: pretrainDir,
      train_batch_size: s.finetune.batch_size,
      eval_batch_size: 128,
      learning_rate: s.finetune.learning_rate,
      warmup_proportion: s.finetune.warmup_proportion,
      num_train_steps: s.finetune.steps,
      expert_dropout_rate: s.finetune.expert_dropout_rate,
      eval_frequency: s.finetune.steps, // step 0 and the end
      save_checkpoints_steps: s.finetune.steps,
      log_frequency: 50,
      ...s.overrides,
      ...s.model_overrides[model],
    });

  // Everything that can be wrong is found before any training.
  checkSst2(s.data_dir);
  if (options.vocab && !fs.existsSync(options.vocab)) throw new Error(`bench quality: no vocabulary file ${options.vocab}`);
  const unknownModels = Object.keys(s.model_overrides).filter((m) => !models.includes(m));
  if (unknownModels.length) throw new Error(`bench quality: modelOverrides for models not compared: ${unknownModels.join(', ')}`);
  for (const model of models) {
    pretrainConfig(model); // unknown presets and bad overrides throw here
    finetuneConfig(model, '');
  }

  fs.mkdirSync(options.workdir, { recursive: true });
  if (!options.vocab) {
    await sm.data.trainVocab({ corpus: ['sotu'], output: s.vocab, vocabSize: s.vocab_size, modelType: 'bpe', characterCoverage: 0.9995, maxSentences: 1_000_000 }, log);
  }
  const tokenizer = sm.data.Tokenizer.load(s.vocab);
  const vocabSize = tokenizer.vocabSize;
  tokenizer.dispose();
  s.vocab_size = vocabSize;

  const rows: QualityRow[] = [];
  for (const model of models) {
    const dir = path.join(options.workdir, model);
    const pretrainDir = path.join(dir, 'pretrain');
    const finetuneDir = path.join(dir, 'sst2');
    // Fresh runs: a resumed one would not be trained for the budget in one go.
    fs.rmSync(pretrainDir, { recursive: true, force: true });
    fs.rmSync(finetuneDir, { recursive: true, force: true });
    const pc = pretrainConfig(model);
    const info = sm.modelInfo({ ...pc, vocab_size: vocabSize });

    log(`${model}: pre-training for ${s.budget_seconds}s of training on ${s.corpus} (batch ${s.pretrain.batch_size}, L ${L}) in ${pretrainDir}`);
    const t0 = process.hrtime.bigint();
    const pre = await pretrain(pc, { workdir: pretrainDir, log });
    const preWall = seconds(t0);
    if (pre.stopped === 'signal') throw new Error(`bench quality: interrupted during ${model} pre-training (checkpoint in ${pretrainDir})`);
    const mlm = metric(pre.eval, 'masked_lm_accuracy');
    log(`${model}: ${pre.step} steps in ${pre.trainSeconds.toFixed(1)}s (${pre.stopped}); held-out MLM accuracy ${mlm?.toFixed(4) ?? 'n/a'}`);

    log(`${model}: fine-tuning on SST-2 for ${s.finetune.steps} steps in ${finetuneDir}`);
    const t1 = process.hrtime.bigint();
    const ft = await finetune(finetuneConfig(model, pretrainDir), { workdir: finetuneDir, log });
    const ftWall = seconds(t1);
    if (ft.stopped === 'signal') throw new Error(`bench quality: interrupted during ${model} fine-tuning (checkpoint in ${finetuneDir})`);
    log(`${model}: SST-2 dev accuracy ${metric(ft.eval, 'accuracy')?.toFixed(4) ?? 'n/a'} (${ftWall.toFixed(0)}s)`);

    rows.push({
      model,
      encoder_parameters: info.parameters.encoder,
      flops_per_token: info.flopsPerToken.total,
      pretrain: {
        steps: pre.step,
        train_seconds: pre.trainSeconds,
        steps_per_sec: pre.step / pre.trainSeconds,
        examples_per_sec: (pre.step * s.pretrain.batch_size) / pre.trainSeconds,
        stopped: pre.stopped,
        mlm_accuracy: mlm,
        mlm_loss: metric(pre.eval, 'masked_lm_loss'),
        nsp_accuracy: metric(pre.eval, 'next_sentence_accuracy'),
        loss: metric(pre.eval, 'loss'),
        wall_seconds: preWall,
      },
      sst2: { steps: ft.step, dev_accuracy: metric(ft.eval, 'accuracy'), dev_loss: metric(ft.eval, 'loss'), wall_seconds: ftWall },
    });
  }
  const report: QualityBenchReport = { settings, rows };
  fs.writeFileSync(path.join(options.workdir, 'quality.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(options.workdir, 'quality.md'), qualityMarkdown(report));
  return report;
}

const fixed = (v: number | null, digits: number) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const millions = (n: number) => `${(n / 1e6).toFixed(2)}M`;

function columns(r: QualityRow): string[] {
  return [
    r.model,
    millions(r.encoder_parameters),
    String(r.pretrain.steps),
    fixed(r.pretrain.train_seconds, 1),
    fixed(r.pretrain.steps_per_sec, 2),
    fixed(r.pretrain.mlm_accuracy, 4),
    fixed(r.pretrain.mlm_loss, 3),
    fixed(r.pretrain.nsp_accuracy, 3),
    fixed(r.sst2.dev_accuracy, 4),
    fixed(r.sst2.wall_seconds / 60, 1),
  ];
}

const HEADER = ['model', 'encoder params', 'pre-train steps', 'train s', 'steps/s', 'MLM acc', 'MLM loss', 'NSP acc', 'SST-2 dev acc', 'fine-tune min'];

/** The report as an aligned text table (one row per model) with a line of settings. */
export function formatQualityTable(report: QualityBenchReport): string {
  const rows = [HEADER, ...report.rows.map(columns)];
  const widths = HEADER.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
  return [...lines, settingsLine(report.settings)].join('\n');
}

function settingsLine(s: QualitySettings): string {
  const pairs = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  const perModel = Object.entries(s.model_overrides).filter(([, o]) => Object.keys(o).length);
  const overrides =
    (Object.keys(s.overrides).length ? `; overrides ${pairs(s.overrides)}` : '') + perModel.map(([m, o]) => `; ${m}: ${pairs(o)}`).join('');
  return (
    `pre-training: ${s.budget_seconds}s of training each on ${s.corpus}, batch ${s.pretrain.batch_size} × L ${s.pretrain.max_seq_length}, ` +
    `lr ${s.pretrain.learning_rate} (constant after ${s.pretrain.warmup_steps} warmup steps), ${s.vocab_size}-piece vocabulary; ` +
    `SST-2: ${s.finetune.steps} steps at batch ${s.finetune.batch_size}, lr ${s.finetune.learning_rate}; ${s.device}, ${s.threads} threads${overrides}`
  );
}

/** The report as a Markdown section (heading, settings, table), e.g. for the README. */
export function qualityMarkdown(report: QualityBenchReport): string {
  const s = report.settings;
  const head = `| ${HEADER.join(' | ')} |`;
  const rule = `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  const body = report.rows.map((r) => `| ${columns(r).join(' | ')} |`);
  return [
    `### Quality at equal pre-training time (${s.models.join(' vs ')})`,
    '',
    `Each model pre-trained for the same ${s.budget_seconds}s of training (steps and data waits; evaluations excluded) on ${s.corpus}, ` +
      `then fine-tuned on SST-2 for the same number of steps from its own checkpoint. MLM and NSP accuracies are on the held-out ` +
      `corpus split (${s.pretrain.eval_batches} batches at most); SST-2 on its dev set.`,
    '',
    head,
    rule,
    ...body,
    '',
    `Settings: ${settingsLine(s)}.`,
    '',
  ].join('\n');
}
