// Fine-tuning on a GLUE/SuperGLUE task or the built-in spam task (REFERENCE §3–§4): steps from
// epochs, warmup proportion, evaluation at step 0, at the cadence and at the end.
import * as fs from 'fs';
import * as path from 'path';
import { classificationBatch, encodeTaskExamples, Rng, tasks, type EncodedExample, type RngState } from '../data';
import { ClassificationModel } from '../model';
import { manualSeed, noGrad, tidy, type Device, type Tensor } from '../tensor';
import { CheckpointStore, disposeCheckpoint } from './checkpoint';
import type { TrainConfig } from './config';
import { prepareWorkdir, Trainer, type RunOptions, type RunResult } from './loop';
import { computeTaskMetrics, MetricAccumulator } from './metrics';
import { evaluateSplit } from './parallel-step';
import { preflight } from './preflight';
import { forwardIn, globalBatchSize, placeModel, stepParts, withTokenizer } from './pretrain';
import { checkFinetuningData } from './training-state';

/** Where the shuffled pass over the training examples stands. */
interface FinetuneDataState {
  epoch: number;
  position: number;
  /** The Rng state at the start of the epoch: the permutation is drawn again from it. */
  epochRng: RngState;
}

/** An epoch's order of the examples, and the Rng state the next epoch starts from. */
function epochOrder(n: number, rngState: RngState): { order: number[]; next: RngState } {
  const rng = new Rng(rngState);
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  return { order, next: rng.getState() };
}

/** The encoder's tensors of a model's parameters, named as the Encoder names them ('encoder.' dropped). */
export function encoderState(params: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  return new Map([...params].filter(([k]) => k.startsWith('encoder.')).map(([k, t]) => [k.slice('encoder.'.length), t]));
}

/** Loads the encoder of a pre-trained workdir (its latest checkpoint) or checkpoint folder. */
export function loadPretrainedEncoder(model: ClassificationModel, dir: string): string {
  const isCheckpoint = fs.existsSync(path.join(dir, 'model.safetensors'));
  const store = new CheckpointStore(isCheckpoint ? path.dirname(dir) : path.join(dir, 'checkpoints'), { keep: 1_000_000 });
  const step = isCheckpoint ? Number(/(\d+)$/.exec(dir)?.[1]) : store.latest()?.step;
  if (step === undefined || Number.isNaN(step)) throw new Error(`no pre-training checkpoint in ${dir}`);
  const ckpt = store.load(step);
  try {
    model.encoder.loadStateDict(encoderState(ckpt.params)); // strict: every encoder tensor, nothing else (the heads are dropped)
  } finally {
    disposeCheckpoint(ckpt);
  }
  return store.pathFor(step);
}

export async function finetune(raw: TrainConfig, options: RunOptions): Promise<RunResult> {
  if (raw.mode !== 'classification') throw new Error(`finetune() needs mode 'classification', got '${raw.mode}'`);
  const task = tasks.getTask(raw.dataset_name);
  const folder = task.benchmark === 'builtin' ? '' : path.join(raw.data_dir || '.', task.folderName ?? task.name);
  const readSplit = (split: string) => {
    const r = task.read(folder, split, { skipBadRows: raw.skip_bad_rows });
    if (r.skipped.length) console.warn(`${task.name} ${split}: skipped ${r.skipped.length} bad rows (first: ${r.skipped[0]!.file}:${r.skipped[0]!.line}: ${r.skipped[0]!.reason})`);
    return r.examples;
  };
  const allTrainRows = readSplit('train');
  const holdout = raw.train_holdout_rows > 0 ? tasks.holdOutRows(allTrainRows, raw.train_holdout_rows) : undefined;
  const trainRows = holdout?.train ?? allTrainRows;
  const evalRows = holdout?.heldOut ?? readSplit(task.evalSplit);
  const { config, tokenizer } = withTokenizer(raw);
  preflight(config);
  prepareWorkdir(options.workdir, config, options.force);
  const [train, evalSet] = [await encodeTaskExamples(trainRows, tokenizer, config.max_seq_length), await encodeTaskExamples(evalRows, tokenizer, config.max_seq_length)];
  tokenizer.dispose();

  manualSeed(config.seed);
  const model = placeModel(new ClassificationModel(config, task.numClasses, task.regression), config);
  const trainer = new Trainer<FinetuneDataState>(model, config, options);
  const p = trainer.parallel;
  // Every rank walks the same shuffled order in global batches and trains on its slice of each.
  const batchSize = globalBatchSize(config, p?.worldSize ?? 1);
  const totalSteps = config.num_train_steps > 0 ? config.num_train_steps : Math.floor((train.length * config.num_train_epochs) / batchSize);
  if (totalSteps < 1) throw new Error(`${train.length} training examples give no step at batch size ${batchSize}`);
  const warmup = Math.round(totalSteps * config.warmup_proportion);
  const schedule = { base: config.learning_rate, warmupSteps: warmup, decaySteps: Math.max(1, totalSteps - warmup), kind: config.schedule };
  const evalEvery = config.eval_frequency > 0 ? config.eval_frequency : Math.ceil((0.1 * totalSteps) / 10) * 10;
  const resumed = trainer.resume(checkFinetuningData);
  if (!resumed && config.init_checkpoint_dir) trainer.log(`initialised the encoder from ${loadPretrainedEncoder(model, config.init_checkpoint_dir)}`);
  if (holdout) trainer.log(`evaluating on ${holdout.heldOut.length} held-out training rows (training on the other ${trainRows.length}), not on ${task.evalSplit}`);
  let data: FinetuneDataState = resumed?.data ?? { epoch: 0, position: 0, epochRng: new Rng(config.seed).getState() };
  let epoch = epochOrder(train.length, data.epochRng);
  let step = resumed?.step ?? 0;

  // Batches of the dev split; on several processes they are dealt round-robin and every batch's
  // logits and statistics shared, so each rank computes exactly the one-process metrics.
  const evaluate = async (): Promise<Record<string, number>> => {
    const acc = new MetricAccumulator({ auxiliaryLossFactor: config.auxiliary_loss_factor, routerZLossFactor: config.router_z_loss_factor });
    const run = (batch: EncodedExample[]) =>
      noGrad(() =>
        tidy(() => {
          const out = forwardIn(config, () => model.forward(classificationBatch(batch, { regression: task.regression, device: config.device as Device })));
          const flat = Array.from(out.logits.to('float64').dataSync() as Float64Array);
          return {
            stats: Object.fromEntries(Object.entries(out.stats).map(([k, t]) => [k, t.item()])),
            rows: batch.map((_, r) => flat.slice(r * task.numClasses, (r + 1) * task.numClasses)),
          };
        }),
      );
    let next = 0;
    const nextEvalBatch = async () => {
      const batch = next < evalSet.length ? evalSet.slice(next, next + config.eval_batch_size) : undefined;
      next += config.eval_batch_size;
      return batch;
    };
    const logits: number[][] = [];
    model.eval();
    try {
      if (p) {
        const r = await evaluateSplit(p, nextEvalBatch, run, task.numClasses);
        for (const stats of r.stats) acc.add(stats);
        logits.push(...r.rows);
      } else {
        for (let batch = await nextEvalBatch(); batch; batch = await nextEvalBatch()) {
          const r = run(batch);
          acc.add(r.stats);
          logits.push(...r.rows);
        }
      }
    } finally {
      model.train();
    }
    return { ...computeTaskMetrics(task, evalRows, { logits }), loss: acc.result()['loss']! };
  };

  const nextBatch = (): EncodedExample[] => {
    const out: EncodedExample[] = [];
    while (out.length < batchSize) {
      if (data.position >= epoch.order.length) {
        data = { epoch: data.epoch + 1, position: 0, epochRng: epoch.next };
        epoch = epochOrder(train.length, data.epochRng);
      }
      out.push(train[epoch.order[data.position]!]!);
      data = { ...data, position: data.position + 1 };
    }
    return out;
  };

  const losses: number[] = [];
  let evalMetrics: Record<string, number> | undefined;
  let stopped: RunResult['stopped'] = 'finished';
  try {
    if (step === 0 && config.eval_at_start) {
      evalMetrics = await evaluate();
      trainer.summaries.log('eval', 0, evalMetrics);
      trainer.logEval(0, evalMetrics);
    }
    const startStep = step;
    const startedAt = process.hrtime.bigint();
    while (step < totalSteps) {
      const batch = nextBatch();
      step += 1;
      const r = trainer.update(
        stepParts(batch, config, p, (part) => ({ count: part.length })),
        (part: EncodedExample[]) => forwardIn(config, () => model.forward(classificationBatch(part, { regression: task.regression, device: config.device as Device }))),
        schedule,
        step,
      );
      losses.push(r.loss);
      options.onStep?.(step, r.loss);
      trainer.progress(step, totalSteps, r.loss, startedAt, startStep);
      if (step % config.log_frequency === 0) {
        const acc = new MetricAccumulator({ auxiliaryLossFactor: config.auxiliary_loss_factor, routerZLossFactor: config.router_z_loss_factor });
        acc.add(r.stats);
        trainer.summaries.log('train', step, { ...acc.result(), learning_rate: r.lr, grad_l2_norm: r.gradNorm });
      }
      if (step % evalEvery === 0 || step === totalSteps) {
        evalMetrics = await evaluate();
        trainer.summaries.log('eval', step, evalMetrics);
        trainer.logEval(step, evalMetrics);
      }
      const end = await trainer.endStep(step, totalSteps, data);
      if (end) {
        stopped = end;
        break;
      }
    }
  } finally {
    trainer.close();
    model.dispose();
  }
  return { workdir: options.workdir, step, eval: evalMetrics, losses, stopped };
}
