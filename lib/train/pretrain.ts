// Pre-training (MLM + NSP + MoE terms), REFERENCE §4: held-out evaluation at a cadence,
// checkpoints with the full state, exact resumption.
import { corpus, PretrainingStream, Prefetcher, pretrainingBatch, Tokenizer, type PretrainingState } from '../data';
import type { PretrainingExample } from '../data/examples';
import { PretrainingModel } from '../model';
import type { ParallelTraining } from '../distributed';
import type { Module } from '../nn';
import { autocast, manualSeed, noGrad, tidy, type Device } from '../tensor';
import type { TrainConfig } from './config';
import { prepareWorkdir, Trainer, type RunOptions, type RunResult } from './loop';
import { MetricAccumulator } from './metrics';
import { evaluateSplit, shareOfBatch, type PartShare } from './parallel-step';
import { preflight } from './preflight';
import { checkPretrainingData } from './training-state';

/** What a pre-training checkpoint records of the data: the stream's position, and the training time spent so far. */
type PretrainDataState = PretrainingState & {
  /** Seconds of training (steps and data waits, not evaluations or checkpoints) up to the checkpoint; for max_train_seconds across resumption. */
  trainSeconds?: number;
};

export interface PretrainResult extends RunResult {
  /** Seconds of training of the whole run (resumed parts included): steps and data waits, not evaluations or checkpoints. */
  trainSeconds: number;
}

/** The vocabulary decides the model's vocab_size and pad id. */
export function withTokenizer(config: TrainConfig): { config: TrainConfig; tokenizer: Tokenizer } {
  if (!config.vocab_filepath) throw new Error('vocab_filepath is required (train one with `sparse-mixer vocab`)');
  const tokenizer = Tokenizer.load(config.vocab_filepath);
  return { config: { ...config, vocab_size: tokenizer.vocabSize, pad_id: tokenizer.padId }, tokenizer };
}

export function splitParts<T>(items: readonly T[], parts: number): T[][] {
  const size = Math.ceil(items.length / parts);
  return Array.from({ length: parts }, (_, k) => items.slice(k * size, (k + 1) * size)).filter((p) => p.length > 0);
}

/** The model on the configured device, in float64 when the precision says so. */
export function placeModel<M extends Module>(model: M, config: Pick<TrainConfig, 'precision' | 'device'>): M {
  model.to(config.device as Device);
  return config.precision === 'float64' ? model.to('float64') : model;
}

/** Examples per step over all ranks: train_batch_size, or that many per rank (batch_size_scope). */
export function globalBatchSize(config: TrainConfig, worldSize: number): number {
  return config.batch_size_scope === 'per_rank' ? config.train_batch_size * worldSize : config.train_batch_size;
}

/**
 * A step's batch as the parts the trainer runs: the accumulation parts in one process; this rank's
 * slice of each (with the part's global denominators) on several.
 */
export function stepParts<E>(examples: readonly E[], config: TrainConfig, p: ParallelTraining | undefined, denominators: (part: readonly E[]) => Record<string, number>): PartShare<E[]>[] {
  if (!p) return splitParts(examples, config.gradient_accum_steps).map((batch) => ({ batch, denominators: {} }));
  return shareOfBatch(examples, config.gradient_accum_steps, p.rank, p.worldSize, denominators);
}

function pretrainingDenominators(part: readonly PretrainingExample[]): Record<string, number> {
  let weights = 0;
  for (const e of part) for (const w of e.maskedWeights) weights += w;
  return { masked_lm_weight_sum: weights, next_sentence_count: part.length };
}

/** Forward pass in the configured precision (bfloat16 autocast on CUDA; the router stays float32). */
export function forwardIn<T>(config: Pick<TrainConfig, 'precision' | 'device'>, fn: () => T): T {
  return config.precision === 'bfloat16' && config.device.startsWith('cuda') ? autocast(fn, { device: 'cuda', dtype: 'bfloat16' }) : fn();
}

function corpusOptions(config: TrainConfig) {
  return { spec: config.corpus.split(',').map((s) => s.trim()).filter((s) => s !== ''), seed: config.seed, evalFraction: config.eval_fraction };
}

async function evaluate(model: PretrainingModel, config: TrainConfig, tokenizer: Tokenizer, p: ParallelTraining | undefined): Promise<Record<string, number> | undefined> {
  const stream = new PretrainingStream({
    corpus: { ...corpusOptions(config), split: 'eval', epochs: 1 },
    tokenizer,
    maxSeqLength: config.max_seq_length,
    batchSize: config.eval_batch_size,
    maxPredictionsPerSeq: config.max_predictions_per_seq,
    seed: 1234, // the same masks at every evaluation
  });
  let taken = 0;
  const next = async () => (taken++ < config.max_num_eval_steps ? ((await stream.nextBatch()) ?? undefined) : undefined);
  const run = (examples: PretrainingExample[]) => ({
    stats: noGrad(() =>
      tidy(() => {
        const out = forwardIn(config, () => model.forward(pretrainingBatch(examples, config.device as Device)));
        return Object.fromEntries(Object.entries(out.stats).map(([k, t]) => [k, t.item()]));
      }),
    ),
  });
  const acc = new MetricAccumulator({ auxiliaryLossFactor: config.auxiliary_loss_factor, routerZLossFactor: config.router_z_loss_factor });
  model.eval();
  try {
    if (p) {
      for (const stats of (await evaluateSplit(p, next, run)).stats) acc.add(stats);
    } else {
      for (let examples = await next(); examples; examples = await next()) acc.add(run(examples).stats);
    }
  } finally {
    model.train();
    await stream.close();
  }
  return acc.batches > 0 ? acc.result() : undefined;
}

export async function pretrain(raw: TrainConfig, options: RunOptions): Promise<PretrainResult> {
  if (raw.mode !== 'pretraining') throw new Error(`pretrain() needs mode 'pretraining', got '${raw.mode}'`);
  const { config, tokenizer } = withTokenizer(raw);
  preflight(config);
  prepareWorkdir(options.workdir, config, options.force);
  corpus.resolveSources(corpusOptions(config).spec); // a missing corpus fails here, before any work
  manualSeed(config.seed);
  const model = placeModel(new PretrainingModel(config), config);
  const trainer = new Trainer<PretrainDataState>(model, config, options);
  const p = trainer.parallel;
  // Every rank reads the same stream of global batches and trains on its slice of each: N ranks
  // see exactly the examples (and masks) of one process.
  const batchSize = globalBatchSize(config, p?.worldSize ?? 1);
  const losses: number[] = [];
  let evalMetrics: Record<string, number> | undefined;
  let step = 0;
  let stopped: RunResult['stopped'] = 'finished';
  const budget = config.max_train_seconds;
  let trainSeconds = 0;
  const stream = await (async () => {
    const resumed = trainer.resume(checkPretrainingData);
    step = resumed?.step ?? 0;
    trainSeconds = resumed?.data.trainSeconds ?? 0;
    return new PretrainingStream(
      {
        corpus: { ...corpusOptions(config), shuffleBuffer: config.shuffle_buffer, epochs: Infinity, split: 'train' },
        tokenizer,
        maxSeqLength: config.max_seq_length,
        batchSize,
        maxPredictionsPerSeq: config.max_predictions_per_seq,
        seed: config.seed,
      },
      resumed?.data,
    );
  })();
  const loader = new Prefetcher(() => stream.nextBatch(), () => stream.getState(), 2);
  const schedule = { base: config.learning_rate, warmupSteps: config.warmup_steps, decaySteps: Math.max(1, config.num_train_steps - config.warmup_steps), kind: config.schedule };
  const newAccumulator = () => new MetricAccumulator({ auxiliaryLossFactor: config.auxiliary_loss_factor, routerZLossFactor: config.router_z_loss_factor });
  let acc = newAccumulator();
  const startStep = step;
  const startedAt = process.hrtime.bigint();
  let intervalStart = process.hrtime.bigint();
  let intervalSteps = 0;
  // Ranks measure their own time: they stop together when any one's budget is spent.
  const budgetSpent = () => {
    const spent = budget > 0 && trainSeconds >= budget;
    return p && budget > 0 ? p.anyRank(spent) : spent;
  };
  let outOfTime = budgetSpent();
  // A run resumed from the checkpoint its budget ended at is over, like one resumed at num_train_steps.
  if (outOfTime && step < config.num_train_steps) stopped = 'time_budget';
  try {
    while (step < config.num_train_steps && !outOfTime) {
      const stepStart = process.hrtime.bigint();
      const { item: examples, state: streamState } = await loader.next();
      if (!examples) throw new Error('the training corpus yielded no examples (documents too short for max_seq_length?)');
      step += 1;
      const r = trainer.update(
        stepParts(examples, config, p, pretrainingDenominators),
        (part: PretrainingExample[]) => forwardIn(config, () => model.forward(pretrainingBatch(part, config.device as Device))),
        schedule,
        step,
      );
      losses.push(r.loss);
      options.onStep?.(step, r.loss);
      acc.add(r.stats);
      intervalSteps += 1;
      trainSeconds += Number(process.hrtime.bigint() - stepStart) / 1e9;
      trainer.progress(step, config.num_train_steps, r.loss, startedAt, startStep, budget > 0 ? { spent: trainSeconds, seconds: budget } : undefined);
      outOfTime = budgetSpent();
      // The step that crosses the budget ends the run as the last step would: summaries, evaluation, checkpoint.
      const last = step === config.num_train_steps || outOfTime;
      const dataState: PretrainDataState = { ...streamState, trainSeconds };
      if (step % config.log_frequency === 0 || last) {
        const seconds = Number(process.hrtime.bigint() - intervalStart) / 1e9;
        trainer.summaries.log('train', step, {
          ...acc.result(),
          learning_rate: r.lr,
          grad_l2_norm: r.gradNorm,
          steps_per_sec: intervalSteps / seconds,
          examples_per_sec: (intervalSteps * batchSize) / seconds,
          train_seconds: trainSeconds, // the x axis of loss-against-time curves (budget time, resumption included)
        });
        acc = newAccumulator();
        intervalStart = process.hrtime.bigint();
        intervalSteps = 0;
      }
      if ((config.eval_frequency > 0 && step % config.eval_frequency === 0) || last) {
        evalMetrics = await evaluate(model, config, tokenizer, p);
        if (evalMetrics) {
          trainer.summaries.log('eval', step, evalMetrics);
          trainer.logEval(step, evalMetrics);
        }
      }
      const end = await trainer.endStep(step, last ? step : config.num_train_steps, dataState);
      if (end) {
        stopped = end;
        break;
      }
      if (outOfTime && step < config.num_train_steps) {
        trainer.log(`time budget of ${budget}s spent at step ${step} (${trainSeconds.toFixed(1)}s of training): final evaluation and checkpoint written`);
        stopped = 'time_budget';
        break;
      }
    }
  } finally {
    await loader.drain();
    await stream.close();
    trainer.close();
    model.dispose();
    tokenizer.dispose();
  }
  return { workdir: options.workdir, step, eval: evalMetrics, losses, stopped, trainSeconds };
}
