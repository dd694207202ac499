// What pre-training and fine-tuning runs share: the workdir and its config, checkpoints with the
// full training state, the optimizer step, signals, non-finite losses and progress output.
import * as path from 'path';
import type { Module } from '../nn';
import { getRngState, optim, setRngState, tensor, tidy, type Device, type Tensor } from '../tensor';
import { CheckpointStore, disposeCheckpoint } from './checkpoint';
import type { TrainConfig } from './config';
import { MOE_AVERAGES } from './metrics';
import { AdamW } from './optimizer';
import { learningRate, type ScheduleOptions } from './schedule';
import { Summaries } from './summaries';
import { checkTrainingState, type DataStateCheck } from './training-state';

export interface RunOptions {
  workdir: string;
  /** Accept a workdir that holds a run with a different config. */
  force?: boolean;
  /** Progress lines (default: stdout). */
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
}

function savedRng(device: Device): string {
  return tidy(() => Buffer.from(getRngState(device).dataSync() as Uint8Array).toString('base64'));
}

function restoreRng(base64: string, device: Device): void {
  tidy(() => setRngState(tensor(new Uint8Array(Buffer.from(base64, 'base64')), { dtype: 'uint8' }), device));
}

export class Trainer<D> {
  readonly optimizer: AdamW;
  readonly store: CheckpointStore;
  readonly summaries: Summaries;
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
    this.optimizer = new AdamW(model, {
      beta1: config.adam_beta1,
      beta2: config.adam_beta2,
      eps: config.adam_epsilon,
      weightDecay: config.weight_decay,
      excludeBiasAndNormFromDecay: config.exclude_bias_and_norm_from_decay,
    });
    this.store = new CheckpointStore(path.join(options.workdir, 'checkpoints'), { keep: config.checkpoint_keep });
    this.summaries = new Summaries(options.workdir);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get signal(): NodeJS.Signals | undefined {
    return this.interrupted;
  }

  log(line: string): void {
    (this.options.log ?? ((l: string) => console.log(l)))(line);
  }

  /**
   * Restores the newest intact checkpoint of the workdir, if any (a damaged newer one is skipped with
   * a logged note), and drops metrics logged after it; returns its training state.
   */
  resume(checkData?: DataStateCheck): TrainingState<D> | undefined {
    const ckpt = this.store.loadLatestValid({ device: this.config.device as never, validate: (c, dir) => checkTrainingState(c, dir, checkData), onNote: (note) => this.log(note) });
    this.summaries.dropAfter(ckpt?.step ?? -1);
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
    this.log(`resumed from ${this.store.pathFor(ckpt.step)} at step ${state.step}`);
    return state;
  }

  checkpoint(step: number, data: D): void {
    const device = this.config.device as Device;
    const state: TrainingState<D> = { step, optimizerSteps: this.optimizer.stepCount, torchRng: savedRng('cpu'), data };
    if (device !== 'cpu') state.deviceRng = savedRng(device);
    this.store.save(step, { params: this.model.stateDict(), optimizer: this.optimizer.stateDict(), state });
  }

  /**
   * One optimizer update from the given batch parts (gradient accumulation: each part's loss is
   * divided by the number of parts). Returns the summed raw statistics and the gradient norm.
   */
  update<B>(parts: readonly B[], forward: (batch: B) => { loss: Tensor; stats: Record<string, Tensor> }, schedule: ScheduleOptions, step: number): { stats: Record<string, number>; loss: number; gradNorm: number; lr: number } {
    const stats: Record<string, number> = {};
    let loss = 0;
    for (const part of parts) {
      // Only the scaled loss outlives the forward's scope: with the other handles freed, backward
      // releases each saved activation as soon as it is used (as in PyTorch), and memory is reused.
      const { scaled, value, values } = tidy(() => {
        const out = forward(part);
        const values = Object.entries(out.stats).map(([k, t]) => [k, t.item()] as const);
        return { scaled: out.loss.div(parts.length), value: out.loss.item(), values };
      });
      try {
        if (!Number.isFinite(value)) {
          const latest = this.store.latest();
          throw new NonFiniteLossError(
            `non-finite loss (${value}) at step ${step}; stopping. ${latest ? `The last good checkpoint is ${latest.dir}.` : 'No checkpoint was written yet.'}`,
          );
        }
        loss += value / parts.length;
        scaled.backward();
      } finally {
        scaled.dispose();
      }
      for (const [k, v] of values) stats[k] = (stats[k] ?? 0) + v;
    }
    // Averaged quantities of a split batch are means over its parts, like the reference's.
    for (const k of MOE_AVERAGES) {
      if (stats[k] !== undefined) stats[k] /= parts.length;
    }
    const params = this.optimizer.params;
    const gradNorm = this.config.clipped_grad_norm > 0 ? optim.clipGradNorm(params, this.config.clipped_grad_norm) : optim.gradNorm(params);
    const lr = learningRate(step, schedule);
    this.optimizer.step(lr);
    this.optimizer.zeroGrad();
    return { stats, loss, gradNorm, lr };
  }

  /**
   * Checkpoint at the cadence, at the last step, on a signal or at options.stopAfterStep; says
   * whether (and why) the run stops after this step.
   */
  async endStep(step: number, total: number, data: D): Promise<RunResult['stopped'] | undefined> {
    // One turn of the event loop per step: when the prefetcher always has the next batch ready, the
    // loop's awaits resolve as microtasks only, and signal handlers (macrotasks) would never run.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const stopHere = this.interrupted !== undefined || step === this.options.stopAfterStep;
    if (step % this.config.save_checkpoints_steps === 0 || step === total || stopHere) this.checkpoint(step, data);
    if (this.interrupted) {
      this.log(`received ${this.interrupted}: checkpoint written at step ${step}`);
      return 'signal';
    }
    return stopHere ? 'stop_after_step' : undefined;
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
    if (process.stdout.isTTY && !this.options.log) {
      process.stdout.write(`\r${line}   `);
    } else if (step % this.config.log_frequency === 0 || step === total || Number(now - this.lastTick) > 30e9) {
      this.log(line);
      this.lastTick = now;
    }
  }

  close(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    if (process.stdout.isTTY && !this.options.log) process.stdout.write('\n');
    this.summaries.close();
    this.optimizer.dispose();
  }
}
