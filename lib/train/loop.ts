// What pre-training and fine-tuning runs share: the workdir and its config, checkpoints with the
// full training state, the optimizer step, signals, non-finite losses and progress output.
import * as path from 'path';
import { getWorld, ParallelTraining, type CommStats } from '../distributed';
import type { ModelOutput } from '../model';
import type { Module } from '../nn';
import { dispose, getRngState, manualSeed, optim, setRngState, tensor, tidy, type Device } from '../tensor';
import { CheckpointStore, disposeCheckpoint } from './checkpoint';
import type { TrainConfig } from './config';
import { MOE_AVERAGES } from './metrics';
import { AdamW } from './optimizer';
import { globalLoss, moeSums, partLoss, reduceParts, type LocalPart, type PartShare } from './parallel-step';
import { learningRate, type ScheduleOptions } from './schedule';
import { Summaries } from './summaries';
import { checkTrainingState, type DataStateCheck } from './training-state';

export interface RunOptions {
  workdir: string;
  /** Accept a workdir that holds a run with a different config. */
  force?: boolean;
  /** Progress lines (default: stderr, so that stdout carries only results). */
  log?: (line: string) => void;
  /** Stop after this step even if the run has more (for tests and smoke runs); a checkpoint is written. */
  stopAfterStep?: number;
  /** Called after every step (e.g. to watch memory). */
  onStep?: (step: number, loss: number) => void;
}

export interface RunResult {
  workdir: string;
  step: number;
  /** The last evaluation's metrics. */
  eval: Record<string, number> | undefined;
  /** Training loss of every step taken in this process, in order. */
  losses: number[];
  /** How the run ended: all steps done, a signal, options.stopAfterStep, or (pre-training) max_train_seconds spent. */
  stopped: 'finished' | 'signal' | 'stop_after_step' | 'time_budget';
}

export class NonFiniteLossError extends Error {}

// The workdir's config.json lives in workdir.ts (absolute paths, validation naming file and field).
export { prepareWorkdir } from './workdir';

/** The training state a checkpoint carries besides parameters and optimizer moments. */
export interface TrainingState<D> {
  step: number;
  optimizerSteps: number;
  /** libtorch's global CPU generator (dropout on the CPU, jitter), base64. */
  torchRng: string;
  /** On a GPU run, that GPU's generator (dropout there), base64. */
  deviceRng?: string;
  data: D;
  /** Runs on several processes: the world, and every rank's generators (rank 0's are also above). */
  world?: { size: number; expertParallelSize: number; batchSizeScope: string };
  ranks?: { torchRng: string; deviceRng?: string }[];
}

function rngBytes(device: Device): Uint8Array {
  return tidy(() => (getRngState(device).dataSync() as Uint8Array).slice());
}

function savedRng(device: Device): string {
  return Buffer.from(rngBytes(device)).toString('base64');
}

function restoreRng(base64: string, device: Device): void {
  tidy(() => setRngState(tensor(new Uint8Array(Buffer.from(base64, 'base64')), { dtype: 'uint8' }), device));
}

/** Summaries written by rank 0 only; the other ranks' calls do nothing. */
type SummaryWriter = Pick<Summaries, 'log' | 'close' | 'dropAfter'>;
const NO_SUMMARIES: SummaryWriter = { log: () => {}, close: () => {}, dropAfter: () => {} };

export class Trainer<D> {
  readonly optimizer: AdamW;
  readonly store: CheckpointStore;
  readonly summaries: SummaryWriter;
  /** Set when the run spans several processes (distributed.init() was called with a world > 1). */
  readonly parallel: ParallelTraining | undefined;
  private interrupted: NodeJS.Signals | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.interrupted = signal;
  };
  private lastTick = process.hrtime.bigint();

  constructor(
    readonly model: Module,
    readonly config: TrainConfig,
    readonly options: RunOptions,
  ) {
    const world = getWorld();
    if (world && world.size > 1) {
      // Experts are sharded here, before the optimizer allocates moments for them.
      this.parallel = new ParallelTraining(world, model, {
        expertParallelSize: config.expert_parallel_size,
        ...(config.gradient_bucket_mb > 0 ? { bucketBytes: Math.round(config.gradient_bucket_mb * 1024 * 1024) } : {}),
      });
      // Dropout differs between ranks, as between the examples of one process's batch.
      manualSeed(config.seed + 1_000_003 * world.rank);
    } else if (config.expert_parallel_size > 1) {
      throw new Error(`expert_parallel_size ${config.expert_parallel_size} needs that many processes (launch with --nproc-per-node, or set WORLD_SIZE)`);
    }
    this.optimizer = new AdamW(model, {
      beta1: config.adam_beta1,
      beta2: config.adam_beta2,
      eps: config.adam_epsilon,
      weightDecay: config.weight_decay,
      excludeBiasAndNormFromDecay: config.exclude_bias_and_norm_from_decay,
    });
    this.store = new CheckpointStore(path.join(options.workdir, 'checkpoints'), { keep: config.checkpoint_keep });
    this.summaries = this.isLeader ? new Summaries(options.workdir) : NO_SUMMARIES;
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get signal(): NodeJS.Signals | undefined {
    return this.interrupted;
  }

  /** Rank 0 (or the only process): the one that logs, writes summaries and checkpoints. */
  get isLeader(): boolean {
    return (this.parallel?.rank ?? 0) === 0;
  }

  /** Progress and notes, from rank 0 only. */
  log(line: string): void {
    if (this.isLeader) (this.options.log ?? ((l: string) => console.error(l)))(line);
  }

  /**
   * Restores the newest intact checkpoint of the workdir, if any (a damaged newer one is skipped with
   * a logged note), and drops metrics logged after it; returns its training state.
   */
  resume(checkData?: DataStateCheck): TrainingState<D> | undefined {
    if (this.parallel) return this.resumeParallel(this.parallel, checkData);
    const ckpt = this.newestValid(checkData);
    if (!ckpt) return undefined;
    const state = ckpt.state as TrainingState<D>;
    try {
      this.model.loadStateDict(ckpt.params);
      if (!ckpt.optimizer) throw new Error(`checkpoint at step ${ckpt.step} has no optimizer state`);
      this.optimizer.loadStateDict(ckpt.optimizer, state.optimizerSteps);
      restoreRng(state.torchRng, 'cpu');
      const device = this.config.device as Device;
      if (device !== 'cpu' && state.deviceRng !== undefined) restoreRng(state.deviceRng, device);
    } finally {
      disposeCheckpoint(ckpt);
    }
    this.log(`resumed from ${this.store.pathFor(ckpt.step)} at step ${state.step}${this.worldChange(state, 1)}`);
    return state;
  }

  /** The newest checkpoint that loads and validates (rank 0 alone reads on several processes). */
  private newestValid(checkData?: DataStateCheck) {
    const ckpt = this.store.loadLatestValid({ device: this.config.device as never, validate: (c, dir) => checkTrainingState(c, dir, checkData), onNote: (note) => this.log(note) });
    this.summaries.dropAfter(ckpt?.step ?? -1);
    return ckpt;
  }

  /** What resuming on another number of processes changes, for the log line. */
  private worldChange(state: TrainingState<D>, worldSize: number): string {
    const before = state.world?.size ?? 1;
    if (before === worldSize) return '';
    // A global batch is the same batch at any world size; a per-rank one is not.
    const orderChanged = this.config.batch_size_scope === 'per_rank' || state.world?.batchSizeScope === 'per_rank';
    return ` (saved by ${before} process(es), resumed on ${worldSize}: ${orderChanged ? 'the global batch size and so the data order changed' : 'the same global batches in the same order'}; dropout's random streams restart)`;
  }

  /**
   * Rank 0 reads the checkpoint and sends it to the others (no shared file system needed); each
   * rank keeps its block of the experts and its own random generators.
   */
  private resumeParallel(p: ParallelTraining, checkData?: DataStateCheck): TrainingState<D> | undefined {
    const ckpt = p.rank === 0 ? this.newestValid(checkData) : undefined;
    try {
      const header = p.broadcastBytes(ckpt ? Buffer.from(JSON.stringify({ step: ckpt.step, state: ckpt.state, optimizer: ckpt.optimizer !== undefined })) : undefined);
      if (!header) return undefined;
      const { step, state, optimizer } = JSON.parse(Buffer.from(header).toString('utf8')) as { step: number; state: TrainingState<D>; optimizer: boolean };
      if (!optimizer) throw new Error(`checkpoint at step ${step} has no optimizer state`);
      const params = p.broadcastWhole(this.model.stateDict(), ckpt?.params);
      const moments = p.broadcastWhole(this.optimizer.stateDict(), ckpt?.optimizer, ['m.', 'v.']);
      try {
        this.model.loadStateDict(params);
        this.optimizer.loadStateDict(moments, state.optimizerSteps);
      } finally {
        dispose([...params.values(), ...moments.values()]);
      }
      const device = this.config.device as Device;
      const mine = state.world?.size === p.worldSize ? state.ranks?.[p.rank] : undefined;
      if (mine) {
        restoreRng(mine.torchRng, 'cpu');
        if (device !== 'cpu' && mine.deviceRng !== undefined) restoreRng(mine.deviceRng, device);
      }
      this.log(`resumed from ${this.store.pathFor(step)} at step ${state.step}${this.worldChange(state, p.worldSize)}`);
      return state;
    } finally {
      if (ckpt) disposeCheckpoint(ckpt);
    }
  }

  checkpoint(step: number, data: D): void {
    const device = this.config.device as Device;
    const state: TrainingState<D> = { step, optimizerSteps: this.optimizer.stepCount, torchRng: savedRng('cpu'), data };
    if (device !== 'cpu') state.deviceRng = savedRng(device);
    const p = this.parallel;
    if (!p) {
      this.store.save(step, { params: this.model.stateDict(), optimizer: this.optimizer.stateDict(), state });
      return;
    }
    // Collective: every rank's generators, and whole expert tensors from their blocks.
    const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    const cpu = p.gatherBytes(rngBytes('cpu'));
    const gpu = device !== 'cpu' ? p.gatherBytes(rngBytes(device)) : undefined;
    state.world = { size: p.worldSize, expertParallelSize: p.expertParallelSize, batchSizeScope: this.config.batch_size_scope };
    state.ranks = cpu.map((c, r) => ({ torchRng: base64(c), ...(gpu ? { deviceRng: base64(gpu[r]!) } : {}) }));
    const params = p.gatherWhole(this.model.stateDict());
    const moments = p.gatherWhole(this.optimizer.stateDict(), ['m.', 'v.']);
    try {
      if (p.rank === 0) this.store.save(step, { params: params.whole, optimizer: moments.whole, state });
    } finally {
      params.release();
      moments.release();
    }
    p.world.barrier(); // written once, and every rank knows it is
  }

  /**
   * One optimizer update from the given batch parts (gradient accumulation: each part's loss is
   * divided by the number of parts). Returns the summed raw statistics and the gradient norm. On
   * several processes the parts are this rank's shares, with each part's global denominators,
   * and the statistics, loss and norm returned are the world's.
   */
  update<B>(parts: readonly PartShare<B>[], forward: (batch: B) => ModelOutput, schedule: ScheduleOptions, step: number): { stats: Record<string, number>; loss: number; gradNorm: number; lr: number; comm?: CommStats } {
    const p = this.parallel;
    const local: LocalPart[] = [];
    let loss = 0;
    for (const [j, part] of parts.entries()) {
      p?.prepareBackward(j === parts.length - 1); // all-reduce only on the last micro-step
      // Only the scaled loss outlives the forward's scope: with the other handles freed, backward
      // releases each saved activation as soon as it is used (as in PyTorch), and memory is reused.
      const { scaled, value, values, moe } = tidy(() => {
        const out = forward(part.batch);
        const objective = p ? globalLoss(out.stats, part.denominators, p.worldSize, this.config) : out.loss;
        const values = Object.fromEntries(Object.entries(out.stats).map(([k, t]) => [k, t.item()] as const));
        return { scaled: objective.div(parts.length), value: out.loss.item(), values, moe: p ? moeSums(out.moe) : [] };
      });
      try {
        if (!p) this.checkFinite(value, step); // on several processes: once the ranks' losses are combined
        loss += value / parts.length;
        scaled.backward();
      } finally {
        scaled.dispose();
      }
      local.push({ stats: values, moe });
    }
    let perPart = local.map((l) => l.stats);
    let comm: CommStats | undefined;
    if (p) {
      comm = p.finishBackward();
      perPart = reduceParts(local, p);
      const factors = { auxiliaryLossFactor: this.config.auxiliary_loss_factor, routerZLossFactor: this.config.router_z_loss_factor };
      loss = perPart.reduce((sum, part) => sum + partLoss(part, factors) / parts.length, 0);
      this.checkFinite(loss, step);
    }
    const stats: Record<string, number> = {};
    for (const part of perPart) for (const [k, v] of Object.entries(part)) stats[k] = (stats[k] ?? 0) + v;
    // Averaged quantities of a split batch are means over its parts, like the reference's.
    for (const k of MOE_AVERAGES) {
      if (stats[k] !== undefined) stats[k] /= parts.length;
    }
    const clip = this.config.clipped_grad_norm;
    const params = this.optimizer.params;
    const gradNorm = p ? (clip > 0 ? p.clipGradNorm(clip) : p.gradNorm()) : clip > 0 ? optim.clipGradNorm(params, clip) : optim.gradNorm(params);
    const lr = learningRate(step, schedule);
    this.optimizer.step(lr);
    this.optimizer.zeroGrad();
    return { stats, loss, gradNorm, lr, ...(comm ? { comm } : {}) };
  }

  private checkFinite(value: number, step: number): void {
    if (Number.isFinite(value)) return;
    const latest = this.store.latest();
    throw new NonFiniteLossError(
      `non-finite loss (${value}) at step ${step}; stopping. ${latest ? `The last good checkpoint is ${latest.dir}.` : 'No checkpoint was written yet.'}`,
    );
  }

  /**
   * Checkpoint at the cadence, at the last step, on a signal or at options.stopAfterStep; says
   * whether (and why) the run stops after this step.
   */
  async endStep(step: number, total: number, data: D): Promise<RunResult['stopped'] | undefined> {
    // One turn of the event loop per step: when the prefetcher always has the next batch ready, the
    // loop's awaits resolve as microtasks only, and signal handlers (macrotasks) would never run.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // On several processes a signal seen by any rank stops every rank after this same step.
    const signalled = this.parallel ? this.parallel.anyRank(this.interrupted !== undefined) : this.interrupted !== undefined;
    const stopHere = signalled || step === this.options.stopAfterStep;
    if (step % this.config.save_checkpoints_steps === 0 || step === total || stopHere) this.checkpoint(step, data);
    if (signalled) {
      this.log(`received ${this.interrupted ?? 'a signal (on another rank)'}: checkpoint written at step ${step}`);
      return 'signal';
    }
    return stopHere ? 'stop_after_step' : undefined;
  }

  /** One line with an evaluation's metrics. */
  logEval(step: number, metrics: Record<string, number>): void {
    this.log(`eval at step ${step}: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
  }

  /** Progress: a rewritten line on a terminal, plain periodic lines otherwise. */
  progress(step: number, total: number, loss: number, startedAt: bigint, startStep: number, budget?: { spent: number; seconds: number }): void {
    const now = process.hrtime.bigint();
    const elapsed = Number(now - startedAt) / 1e9;
    const rate = (step - startStep) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - step) / rate : Infinity;
    // Under a time budget the run ends at whichever comes first: the budget or the last step.
    const left = budget && Math.max(0, budget.seconds - budget.spent) < eta
      ? `${Math.round(Math.max(0, budget.seconds - budget.spent))}s of the ${budget.seconds}s budget left`
      : `ETA ${Number.isFinite(eta) ? `${Math.round(eta)}s` : '?'}`;
    const line = `step ${step}${left.startsWith('ETA') ? `/${total}` : ''}  loss ${loss.toFixed(4)}  ${rate.toFixed(2)} steps/s  ${left}`;
    if (!this.isLeader) return;
    if (process.stderr.isTTY && !this.options.log) {
      process.stderr.write(`\r${line}   `);
    } else if (step % this.config.log_frequency === 0 || step === total || Number(now - this.lastTick) > 30e9) {
      this.log(line);
      this.lastTick = now;
    }
  }

  close(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    if (process.stderr.isTTY && !this.options.log && this.isLeader) process.stderr.write('\n');
    this.summaries.close();
    this.optimizer.dispose();
    this.parallel?.dispose();
  }
}
