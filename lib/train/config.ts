// The training config (REFERENCE §4 and the original's config files): one flat object of model
// and training fields, like the original's ConfigDict, so `--config.FIELD=VALUE` reaches any of them.
import { MODEL_SCHEMA, presetConfig, type ModelConfig } from '../model';
import { showValue } from '../util/excerpt';
import { checkValue, parseValue, resolve, suggest, type Schema } from '../util/schema';

export const TRAIN_SCHEMA: Schema = {
  mode: { type: { kind: 'enum', values: ['pretraining', 'classification'] }, default: 'pretraining', doc: 'pre-train with MLM + NSP, or fine-tune a classifier' },
  preset: { type: { kind: 'string' }, default: 'sparse-mixer-tiny', doc: 'model preset whose values are the defaults of the model fields' },
  vocab_filepath: { type: { kind: 'string' }, default: '', doc: 'SentencePiece .model file' },
  train_batch_size: { type: { kind: 'int', min: 1 }, default: 64, doc: 'examples per training step' },
  eval_batch_size: { type: { kind: 'int', min: 1 }, default: 64, doc: 'examples per evaluation batch' },
  learning_rate: { type: { kind: 'number', min: 0 }, default: 1e-4, doc: 'base learning rate' },
  schedule: { type: { kind: 'enum', values: ['linear', 'constant', 'rsqrt', 'cosine'] }, default: 'linear', doc: 'learning-rate schedule after warmup' },
  warmup_steps: { type: { kind: 'int', min: 0 }, default: 10000, doc: 'linear warmup steps (pre-training)' },
  warmup_proportion: { type: { kind: 'number', min: 0, max: 1 }, default: 0.1, doc: 'warmup as a share of the steps (fine-tuning)' },
  num_train_steps: { type: { kind: 'int', min: 0 }, default: 1000000, doc: 'training steps (pre-training; fine-tuning derives them from epochs when 0)' },
  max_train_seconds: { type: { kind: 'number', min: 0 }, default: 0, doc: 'pre-training wall-clock budget in seconds (0: none): the step that crosses it is the last (final evaluation and checkpoint as at num_train_steps); counts training steps and data waits, not evaluations or checkpoints' },
  num_train_epochs: { type: { kind: 'number', min: 0 }, default: 5, doc: 'fine-tuning epochs: steps = examples · epochs // batch' },
  weight_decay: { type: { kind: 'number', min: 0 }, default: 0.01, doc: 'AdamW decoupled weight decay' },
  exclude_bias_and_norm_from_decay: { type: { kind: 'boolean' }, default: false, doc: 'no decay on biases and LayerNorm parameters (the reference decays all)' },
  adam_beta1: { type: { kind: 'number', min: 0, max: 1, exclusiveMax: true }, default: 0.9, doc: 'AdamW β1 (1 would divide by zero in the bias correction)' },
  adam_beta2: { type: { kind: 'number', min: 0, max: 1, exclusiveMax: true }, default: 0.999, doc: 'AdamW β2' },
  adam_epsilon: { type: { kind: 'number', min: 0, exclusiveMin: true }, default: 1e-6, doc: 'AdamW ε' },
  clipped_grad_norm: { type: { kind: 'number', min: 0 }, default: 0, doc: 'global gradient-norm clipping (0: off)' },
  gradient_accum_steps: { type: { kind: 'int', min: 1 }, default: 1, doc: 'split each batch into this many parts and accumulate' },
  save_checkpoints_steps: { type: { kind: 'int', min: 1 }, default: 20000, doc: 'checkpoint cadence' },
  checkpoint_keep: { type: { kind: 'int', min: 1 }, default: 2, doc: 'checkpoints kept' },
  eval_frequency: { type: { kind: 'int', min: 0 }, default: 2000, doc: 'evaluation cadence in steps; 0 = about 10 times per run (fine-tuning: every ceil(0.1·steps/10)·10 steps)' },
  max_num_eval_steps: { type: { kind: 'int', min: 1 }, default: 1000, doc: 'evaluation batches at most' },
  log_frequency: { type: { kind: 'int', min: 1 }, default: 100, doc: 'training summaries cadence in steps' },
  max_predictions_per_seq: { type: { kind: 'int', min: 1 }, default: 80, doc: 'masked positions per sequence at most' },
  corpus: { type: { kind: 'string' }, default: 'sotu,moby-dick', doc: 'pre-training corpus: comma-separated files, folders, globs or built-ins' },
  shuffle_buffer: { type: { kind: 'int', min: 0 }, default: 1000, doc: 'documents in the corpus shuffle buffer' },
  eval_fraction: { type: { kind: 'number', min: 0, max: 1 }, default: 0.02, doc: 'share of corpus documents held out for pre-training evaluation (ours)' },
  dataset_name: { type: { kind: 'string' }, default: 'spam', doc: 'fine-tuning task (glue/rte, superglue/cb, spam, ...)' },
  data_dir: { type: { kind: 'string' }, default: '', doc: 'folder holding the task folder (e.g. ../shared/data/glue/RTE for glue/rte: give ../shared/data)' },
  skip_bad_rows: { type: { kind: 'boolean' }, default: false, doc: 'skip malformed data rows (counted and reported) instead of stopping' },
  train_holdout_rows: { type: { kind: 'int', min: 0 }, default: 0, doc: 'fine-tuning: hold out this many training rows (whole groups for grouped tasks; the same rows in every run) and evaluate on them instead of the eval split, to choose hyperparameters without touching the reported split; 0: off' },
  eval_at_start: { type: { kind: 'boolean' }, default: true, doc: 'fine-tuning: evaluate before the first step, as the reference does' },
  init_checkpoint_dir: { type: { kind: 'string' }, default: '', doc: 'pre-training workdir or checkpoint whose encoder starts fine-tuning' },
  device: { type: { kind: 'string', pattern: /^(cpu|cuda(:\d+)?)$/, what: "'cpu', 'cuda' or 'cuda:N'" }, default: 'cpu', doc: "'cpu', 'cuda' or 'cuda:N'" },
  precision: { type: { kind: 'enum', values: ['float32', 'bfloat16', 'float64'] }, default: 'float32', doc: 'bfloat16 autocast on CUDA (router always float32); float64 for exactness checks' },
  batch_size_scope: { type: { kind: 'enum', values: ['global', 'per_rank'] }, default: 'global', doc: 'on several processes: train_batch_size is the global batch, split over the ranks (the same run as one process), or each rank\'s share' },
  expert_parallel_size: { type: { kind: 'int', min: 1 }, default: 1, doc: 'ranks over which each MoE layer\'s experts are spread (divides num_experts and the world size); 1: every rank holds every expert' },
  gradient_bucket_mb: { type: { kind: 'number', min: 0 }, default: 0, doc: 'on several processes: gradients are all-reduced in buckets of about this many MiB, each as soon as backward fills it; 0: DDP\'s 25 MiB, or a quarter of the gradients if that is less (at least 1 MiB), so that a small model\'s communication overlaps backward too' },
};

export type TrainConfig = ModelConfig & {
  mode: 'pretraining' | 'classification';
  preset: string;
  vocab_filepath: string;
  train_batch_size: number;
  eval_batch_size: number;
  learning_rate: number;
  schedule: 'linear' | 'constant' | 'rsqrt' | 'cosine';
  warmup_steps: number;
  warmup_proportion: number;
  num_train_steps: number;
  max_train_seconds: number;
  num_train_epochs: number;
  weight_decay: number;
  exclude_bias_and_norm_from_decay: boolean;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  clipped_grad_norm: number;
  gradient_accum_steps: number;
  save_checkpoints_steps: number;
  checkpoint_keep: number;
  eval_frequency: number;
  max_num_eval_steps: number;
  log_frequency: number;
  max_predictions_per_seq: number;
  corpus: string;
  shuffle_buffer: number;
  eval_fraction: number;
  dataset_name: string;
  data_dir: string;
  skip_bad_rows: boolean;
  train_holdout_rows: number;
  eval_at_start: boolean;
  init_checkpoint_dir: string;
  device: string;
  precision: 'float32' | 'bfloat16' | 'float64';
  batch_size_scope: 'global' | 'per_rank';
  expert_parallel_size: number;
  gradient_bucket_mb: number;
};

const TRAIN_KEYS = Object.keys(TRAIN_SCHEMA);
const ALL_KEYS = [...TRAIN_KEYS, ...Object.keys(MODEL_SCHEMA)];

/** A complete, checked training config: defaults, then the preset's model values, then `values`. */
export function trainConfig(values: Record<string, unknown>): TrainConfig {
  const unknown = Object.keys(values).filter((k) => !ALL_KEYS.includes(k));
  if (unknown.length) {
    throw new Error(
      `invalid config: ${unknown.map((k) => `unknown key ${showValue(k)}${suggest(k, ALL_KEYS) ? ` (did you mean '${suggest(k, ALL_KEYS)}'?)` : ''}`).join('; ')}`,
    );
  }
  const trainValues = Object.fromEntries(Object.entries(values).filter(([k]) => TRAIN_KEYS.includes(k)));
  const modelValues = Object.fromEntries(Object.entries(values).filter(([k]) => !TRAIN_KEYS.includes(k)));
  const train = resolve<Record<string, unknown>>(TRAIN_SCHEMA, trainValues, 'config');
  const model = presetConfig(train['preset'] as string, modelValues);
  return { ...model, ...train } as TrainConfig;
}

/** Parses `key=value` overrides (the CLI's --set and --config.key=value) into typed values. */
export function parseOverrides(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`override ${showValue(pair)} is not key=value`);
    const key = pair.slice(0, eq);
    const spec = TRAIN_SCHEMA[key] ?? MODEL_SCHEMA[key];
    if (!spec) {
      const near = suggest(key, ALL_KEYS);
      throw new Error(`unknown config key ${showValue(key)}${near ? ` (did you mean '${near}'?)` : ''}`);
    }
    const text = pair.slice(eq + 1);
    const value = parseValue(text, spec.type);
    const problem = checkValue(value, spec.type, text);
    if (problem) throw new Error(`${key} ${problem}`);
    out[key] = value;
  }
  return out;
}
