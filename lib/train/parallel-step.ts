// What a training step and an evaluation do differently on several processes, so that N ranks
// compute what one process computes on the same global batch:
// - each rank takes its slice of every accumulation part of the global batch;
// - a rank's loss uses the part's global denominators (masked-token weights, example counts), times
//   the world size, so that averaging the ranks' gradients gives the gradient of the global loss;
// - statistics are summed over ranks (MoE averages averaged; router confidence from its sums);
// - evaluation batches are dealt round-robin and every batch's results shared, then accumulated in
//   batch order, exactly as one process would.
import type { ParallelTraining } from '../distributed';
import type { MoeStats, RawStats } from '../model';
import type { Tensor } from '../tensor';
import { CLASSIFICATION_SUMS, MOE_AVERAGES, PRETRAINING_SUMS, MetricAccumulator } from './metrics';

/** A rank's share of one accumulation part, and the part's global denominators. */
export interface PartShare<B> {
  batch: B;
  denominators: Record<string, number>;
}

/** (numerator, denominator, lower clamp) of each loss term, as the models compute them. */
const LOSS_TERMS = [
  ['masked_lm_loss_sum', 'masked_lm_weight_sum', 1e-5],
  ['next_sentence_loss_sum', 'next_sentence_count', 0],
  ['loss_sum', 'count', 0],
] as const;

/**
 * Splits a global batch into accumulation parts and each part into equal rank slices; this rank's
 * slices with each part's denominators (from `denominators`, computed over the whole part).
 */
export function shareOfBatch<E>(examples: readonly E[], parts: number, rank: number, worldSize: number, denominators: (part: readonly E[]) => Record<string, number>): PartShare<E[]>[] {
  if (examples.length % (parts * worldSize) !== 0) {
    throw new Error(`a global batch of ${examples.length} examples does not split into ${parts} accumulation part(s) of equal slices for ${worldSize} ranks (make train_batch_size a multiple of gradient_accum_steps × world size)`);
  }
  const partSize = examples.length / parts;
  const slice = partSize / worldSize;
  return Array.from({ length: parts }, (_, j) => {
    const part = examples.slice(j * partSize, (j + 1) * partSize);
    return { batch: part.slice(rank * slice, (rank + 1) * slice), denominators: denominators(part) };
  });
}

/** This rank's objective: world size × its loss sums over the part's global denominators, plus its MoE terms. */
export function globalLoss(stats: RawStats, denominators: Record<string, number>, worldSize: number, factors: { auxiliary_loss_factor: number; router_z_loss_factor: number }): Tensor {
  let loss: Tensor | undefined;
  for (const [num, den, clamp] of LOSS_TERMS) {
    const sum = stats[num];
    if (sum === undefined) continue;
    const d = denominators[den];
    if (d === undefined) throw new Error(`no global ${den} for the loss term ${num}`);
    const term = sum.mul(worldSize / Math.max(d, clamp));
    loss = loss ? loss.add(term) : term;
  }
  if (!loss) throw new Error('the model returned no loss sums');
  if (stats['auxiliary_loss']) loss = loss.add(stats['auxiliary_loss'].mul(factors.auxiliary_loss_factor));
  if (stats['router_z_loss']) loss = loss.add(stats['router_z_loss'].mul(factors.router_z_loss_factor));
  return loss;
}

/** One part's local statistics and its MoE layers' router-confidence sums. */
export interface LocalPart {
  stats: Record<string, number>;
  /** [combine weight sum, dispatched slots] per MoE layer. */
  moe: number[];
}

export function moeSums(moe: readonly MoeStats[]): number[] {
  return moe.flatMap((s) => [s.combineWeightSum.item(), s.dispatchedSlots.item()]);
}

/** Every part's statistics over the world, with one collective. */
export function reduceParts(local: readonly LocalPart[], p: ParallelTraining): Record<string, number>[] {
  const keys = Object.keys(local[0]!.stats).sort();
  const summed = p.sumOverRanks(local.map((l) => [...keys.map((k) => l.stats[k]!), ...l.moe]));
  const averaged = new Set<string>(MOE_AVERAGES);
  const layers = local[0]!.moe.length / 2;
  return summed.map((row) => {
    const out: Record<string, number> = {};
    keys.forEach((k, i) => (out[k] = averaged.has(k) ? row[i]! / p.worldSize : row[i]!));
    if (layers > 0 && out['router_confidence'] !== undefined) {
      let confidence = 0;
      for (let l = 0; l < layers; l++) confidence += row[keys.length + 2 * l]! / Math.max(1, row[keys.length + 2 * l + 1]!);
      out['router_confidence'] = confidence / layers;
    }
    return out;
  });
}

/** The loss one process reports for a part with these (global) statistics. */
export function partLoss(stats: Record<string, number>, factors: { auxiliaryLossFactor: number; routerZLossFactor: number }): number {
  const acc = new MetricAccumulator(factors);
  acc.add(stats);
  return acc.result()['loss']!;
}

const STAT_KEYS = [...PRETRAINING_SUMS, ...CLASSIFICATION_SUMS, ...MOE_AVERAGES];

/**
 * Evaluates batches split over the ranks: batch i runs on rank i mod W. Returns every batch's
 * statistics (and rows of outputs, e.g. logits) in batch order, on every rank. `run` must free
 * what it creates. With expert parallelism every rank must run the same number of forward passes
 * (the all-to-alls pair them up), so ranks short of batches repeat one and drop its results.
 */
export async function evaluateSplit<B>(
  p: ParallelTraining,
  next: () => Promise<B | undefined>,
  run: (batch: B) => { stats: Record<string, number>; rows?: number[][] },
  rowWidth = 0,
): Promise<{ stats: Record<string, number>[]; rows: number[][] }> {
  const mine = new Map<number, { stats: Record<string, number>; rows: number[][] }>();
  let count = 0;
  let first: B | undefined;
  for (let batch = await next(); batch !== undefined; batch = await next(), count++) {
    first ??= batch;
    if (count % p.worldSize === p.rank) {
      const r = run(batch);
      mine.set(count, { stats: r.stats, rows: r.rows ?? [] });
    }
  }
  if (p.expertGroup && first !== undefined) {
    const perRank = Math.ceil(count / p.worldSize);
    for (let k = mine.size; k < perRank; k++) run(first);
  }
  // Every batch's statistics, each filled in by the rank that ran it: a sum over ranks adds only zeros.
  const statRows = Array.from({ length: count }, (_, i) => {
    const s = mine.get(i)?.stats;
    return STAT_KEYS.flatMap((k) => (s && s[k] !== undefined ? [s[k]!, 1] : [0, 0]));
  });
  const stats = p.sumOverRanks(statRows).map((row) => {
    const out: Record<string, number> = {};
    STAT_KEYS.forEach((k, i) => {
      if (row[2 * i + 1]! > 0) out[k] = row[2 * i]!;
    });
    return out;
  });
  // Output rows (e.g. logits, rowWidth each) the same way, once each batch's row count is known everywhere.
  if (rowWidth === 0 || count === 0) return { stats, rows: [] };
  const counts = p.sumOverRanks([Array.from({ length: count }, (_, i) => mine.get(i)?.rows.length ?? 0)])[0]!;
  const zero = new Array<number>(rowWidth).fill(0);
  const rows = p.sumOverRanks(counts.flatMap((c, i) => Array.from({ length: c }, (_, k) => mine.get(i)?.rows[k] ?? zero)));
  return { stats, rows };
}
