// Task metrics from model outputs (REFERENCE §3's table) and the accumulation of the raw
// per-batch statistics the models return into the logged metrics.
import type { TaskExample, TaskSpec } from '../../data/tasks/types';
import {
  accuracy,
  copaAccuracy,
  f1,
  macroF1,
  matthewsCorrcoef,
  multircScores,
  pearson,
  recordScores,
  spearman,
} from './classification';

/** Index of the largest logit; the first one on ties (numpy's argmax). */
export function argmax(row: readonly number[]): number {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k]! > row[best]!) best = k;
  return best;
}

function labelsOf(spec: TaskSpec, examples: readonly TaskExample[]): number[] {
  return examples.map((e) => {
    if (e.label === undefined) {
      throw new Error(`${spec.name}: cannot score unlabeled example (${e.source.file}:${e.source.line}); test splits have no labels`);
    }
    return e.label;
  });
}

function groupsOf(spec: TaskSpec, examples: readonly TaskExample[]): string[] {
  return examples.map((e) => {
    if (e.group === undefined) throw new Error(`${spec.name}: grouped task row without a group (${e.source.file}:${e.source.line})`);
    return e.group;
  });
}

/**
 * The metrics named in spec.metrics, exactly those, from logits [examples][numClasses]. What a
 * prediction is depends on the task's flags, not its name:
 * - regression, not grouped (STS-B): score = logit[0]; pearson, spearman.
 * - regression, grouped (COPA, ReCoRD): logit[0] scores rows, the best row of a group is chosen;
 *   accuracy = COPA accuracy; exact_match and f1 = ReCoRD scores (rows need entity and answers).
 * - classification, grouped (MultiRC): argmax per row; exact_match per group, f1a over rows.
 * - classification: argmax; accuracy, f1 (class 1), macro_f1, matthews_corrcoef.
 * A metric name that does not fit the task's kind is an Error, as is an unlabeled example.
 */
export function computeTaskMetrics(spec: TaskSpec, examples: TaskExample[], outputs: { logits: number[][] }): Record<string, number> {
  const { logits } = outputs;
  if (logits.length !== examples.length) throw new Error(`${spec.name}: ${logits.length} rows of logits for ${examples.length} examples`);
  logits.forEach((row, i) => {
    if (row.length !== spec.numClasses) throw new Error(`${spec.name}: logits row ${i} has ${row.length} values, expected ${spec.numClasses}`);
  });
  const labels = labelsOf(spec, examples);
  const metrics = new Map<string, () => number>();

  if (spec.regression) {
    const scores = logits.map((row) => row[0]!);
    if (!spec.grouped) {
      metrics.set('pearson', () => pearson(scores, labels));
      metrics.set('spearman', () => spearman(scores, labels));
    } else {
      const groups = groupsOf(spec, examples);
      metrics.set('accuracy', () => copaAccuracy(scores, labels, groups));
      // Computed once, on first use, for both names.
      let record: { exactMatch: number; f1: number } | undefined;
      const rec = () => {
        if (record === undefined) {
          const entities = examples.map((e) => {
            if (e.entity === undefined) throw new Error(`${spec.name}: row without a candidate entity (${e.source.file}:${e.source.line})`);
            return e.entity;
          });
          const answers = examples.map((e) => {
            if (e.answers === undefined) throw new Error(`${spec.name}: row without gold answers (${e.source.file}:${e.source.line})`);
            return e.answers;
          });
          record = recordScores(scores, groups, entities, answers);
        }
        return record;
      };
      metrics.set('exact_match', () => rec().exactMatch);
      metrics.set('f1', () => rec().f1);
    }
  } else {
    const predictions = logits.map(argmax);
    if (spec.grouped) {
      const groups = groupsOf(spec, examples);
      const m = multircScores(predictions, labels, groups);
      metrics.set('exact_match', () => m.exactMatch);
      metrics.set('f1a', () => m.f1a);
    } else {
      metrics.set('accuracy', () => accuracy(predictions, labels));
      metrics.set('f1', () => f1(predictions, labels).f1);
      metrics.set('macro_f1', () => macroF1(predictions, labels));
      metrics.set('matthews_corrcoef', () => matthewsCorrcoef(predictions, labels));
    }
  }

  const result: Record<string, number> = {};
  for (const name of spec.metrics) {
    const compute = metrics.get(name);
    if (compute === undefined) throw new Error(`${spec.name}: metric "${name}" does not apply to this kind of task (${[...metrics.keys()].join(', ')} do)`);
    result[name] = compute();
  }
  return result;
}

/** Per-batch statistics that are summed over batches, then divided (see MetricAccumulator.result). */
export const PRETRAINING_SUMS = [
  'masked_lm_loss_sum',
  'masked_lm_weight_sum',
  'masked_lm_correct_sum',
  'next_sentence_loss_sum',
  'next_sentence_correct_sum',
  'next_sentence_count',
] as const;
export const CLASSIFICATION_SUMS = ['loss_sum', 'count'] as const;
/**
 * MoE metrics, each already a per-batch value (aux and z summed over layers, the other three
 * averaged over layers, by the model): averaged over the batches that reported them, unweighted,
 * as the original averages per-step metrics.
 */
export const MOE_AVERAGES = ['auxiliary_loss', 'router_z_loss', 'fraction_tokens_left_behind', 'expert_usage', 'router_confidence'] as const;

export interface AccumulatorOptions {
  /** Weights of the MoE terms in `loss` (REFERENCE §2; ModelConfig's defaults). */
  auxiliaryLossFactor?: number;
  routerZLossFactor?: number;
}

/**
 * Adds up the raw statistics of many batches (plain numbers, read off the model's stats tensors)
 * so that the result equals the metric over the concatenated batch: losses and accuracies are
 * Σ sums / Σ counts, never a mean of per-batch means. Each batch must be either pre-training
 * (all of PRETRAINING_SUMS) or classification (all of CLASSIFICATION_SUMS), the same kind for
 * every batch, plus optionally the MOE_AVERAGES keys; any other key is an Error (catches typos).
 */
export class MetricAccumulator {
  private readonly sums = new Map<string, number>();
  private readonly averaged = new Map<string, { sum: number; batches: number }>();
  private kind: 'pretraining' | 'classification' | undefined;
  private readonly auxFactor: number;
  private readonly zFactor: number;
  /** Number of batches added. */
  batches = 0;

  constructor(options: AccumulatorOptions = {}) {
    this.auxFactor = options.auxiliaryLossFactor ?? 0.01;
    this.zFactor = options.routerZLossFactor ?? 1e-4;
  }

  add(stats: Readonly<Record<string, number>>): void {
    const has = (k: string) => stats[k] !== undefined;
    const kind = PRETRAINING_SUMS.some(has) ? 'pretraining' : CLASSIFICATION_SUMS.some(has) ? 'classification' : undefined;
    if (kind === undefined) throw new Error(`batch statistics have neither ${PRETRAINING_SUMS.join('/')} nor ${CLASSIFICATION_SUMS.join('/')}`);
    if (this.kind !== undefined && this.kind !== kind) throw new Error(`a ${kind} batch added to ${this.kind} statistics`);
    const required: readonly string[] = kind === 'pretraining' ? PRETRAINING_SUMS : CLASSIFICATION_SUMS;
    const missing = required.filter((k) => !has(k));
    // All checks come before any state changes, so a rejected batch leaves the accumulator as it was.
    if (missing.length > 0) throw new Error(`${kind} batch statistics lack ${missing.join(', ')}`);
    const allowed = new Set<string>([...required, ...MOE_AVERAGES]);
    for (const key of Object.keys(stats)) if (!allowed.has(key)) throw new Error(`unknown batch statistic "${key}"`);
    // NaN/Infinity (a diverged step) are not rejected: they propagate into the result, visibly.
    for (const [key, value] of Object.entries(stats)) if (typeof value !== 'number') throw new Error(`batch statistic ${key} is not a number`);

    this.kind = kind;
    this.batches++;
    for (const key of required) this.sums.set(key, (this.sums.get(key) ?? 0) + stats[key]!);
    for (const key of MOE_AVERAGES) {
      if (!has(key)) continue;
      const a = this.averaged.get(key) ?? { sum: 0, batches: 0 };
      a.sum += stats[key]!;
      a.batches++;
      this.averaged.set(key, a);
    }
  }

  /**
   * Pre-training: masked_lm_loss = Σ masked_lm_loss_sum / Σ masked_lm_weight_sum,
   * masked_lm_accuracy = Σ masked_lm_correct_sum / Σ masked_lm_weight_sum,
   * next_sentence_loss = Σ next_sentence_loss_sum / Σ next_sentence_count,
   * next_sentence_accuracy = Σ next_sentence_correct_sum / Σ next_sentence_count,
   * loss = masked_lm_loss + next_sentence_loss + MoE terms.
   * Classification: loss = Σ loss_sum / Σ count + MoE terms.
   * MoE terms = auxiliaryLossFactor · mean auxiliary_loss + routerZLossFactor · mean router_z_loss
   * (absent → 0), the same terms the models add to their loss; the five MoE metrics are returned
   * as their means over batches. A zero denominator gives 0, as the model's clamped division does.
   */
  result(): Record<string, number> {
    if (this.kind === undefined) throw new Error('no batches were added');
    const sum = (k: string) => this.sums.get(k) ?? 0;
    const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
    const out: Record<string, number> = {};
    for (const [key, a] of this.averaged) out[key] = a.sum / a.batches;
    const moeLoss = this.auxFactor * (out.auxiliary_loss ?? 0) + this.zFactor * (out.router_z_loss ?? 0);
    if (this.kind === 'pretraining') {
      out.masked_lm_loss = div(sum('masked_lm_loss_sum'), sum('masked_lm_weight_sum'));
      out.masked_lm_accuracy = div(sum('masked_lm_correct_sum'), sum('masked_lm_weight_sum'));
      out.next_sentence_loss = div(sum('next_sentence_loss_sum'), sum('next_sentence_count'));
      out.next_sentence_accuracy = div(sum('next_sentence_correct_sum'), sum('next_sentence_count'));
      out.loss = out.masked_lm_loss + out.next_sentence_loss + moeLoss;
    } else {
      out.loss = div(sum('loss_sum'), sum('count')) + moeLoss;
    }
    return out;
  }
}
