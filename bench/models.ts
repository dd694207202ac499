// `sparse-mixer bench models`: training-step and inference throughput of the presets, ours next to
// the same architectures in Python PyTorch eager (bench/models_peer.py) measured in interleaved
// rounds of one run, with peak memory, model FLOPs utilisation and speed-ups over BERT.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as sm from '../lib';
import { forwardIn } from '../lib/train/pretrain';
import { AdamW } from '../lib/train/optimizer';
import { syntheticPretrainingBatch, writePeerInputs, peerScript } from './model_inputs';
import { PythonPeer, type PeerRuntime } from './peer';
import { median, settle, timeOnce } from './timing';
import { readPeakRss, resetPeakRss } from './rss';
import { breakdownRows, copyBandwidth, partCosts, profileStep, toParts, type BreakdownRow } from './breakdown';

export type Pass = 'train' | 'infer';
export type Precision = 'float32' | 'bfloat16';

export interface ModelsBenchOptions {
  models: string[];
  /** Examples per step; default 2 for base presets, 8 for -small, -quarter and -tiny. */
  batchSize?: number;
  /** Sequence length (= max_seq_length); default the preset's (512, 128, 64). */
  seqLength?: number;
  vocabSize: number;
  device: sm.Device;
  precision: Precision;
  threads: number;
  warmup: number;
  repeats: number;
  passes: Pass[];
  /** Python with torch for the peer; undefined runs ours alone. */
  python?: string;
  /** The peer's MoE dispatch: the reference's one-hot masks and einsums, or index gathers. */
  peerDispatch: 'masked' | 'scatter';
  /** The peer's process settings (bench/peer.ts); default: a PyTorch user's. */
  peerRuntime?: PeerRuntime;
  /** Also time Hugging Face transformers' BertForPreTraining for BERT presets (when installed). */
  hfBert: boolean;
  /** Also profile one step of each pass, ours and the peer's, into the time per part (bench/breakdown.ts). */
  breakdown?: boolean;
  log: (line: string) => void;
}

export interface Measurement {
  /** Median seconds per step. */
  seconds: number;
  samples: number[];
  examples_per_sec: number;
  tokens_per_sec: number;
  /** Peak resident memory of the process (CPU) or peak allocated bytes (CUDA) while timing. */
  peak_bytes: number | null;
  /** Model FLOPs per second over the measured matmul peak. */
  mfu: number;
}

export interface PassResult {
  ours: Measurement;
  pytorch: Measurement | null;
  hf_bert?: Measurement | null;
  /** ours seconds / PyTorch seconds (medians): below 1 is faster. */
  ratio: number | null;
  /** The same for the fastest sample of each side, which a noisy machine cannot make faster. */
  min_ratio: number | null;
}

/** Where one pass's time goes, per part, ours and the peer's (profiled, so a little slower than timed). */
export interface PassBreakdown {
  ours: BreakdownRow[];
  pytorch: BreakdownRow[] | null;
}

export interface ModelRow {
  model: string;
  batch_size: number;
  seq_length: number;
  parameters: number;
  /** Analytic FLOPs per step: train = 3 × forward of the pre-training model; infer = encoder forward. */
  flops_per_step: Record<Pass, number>;
  /** |our eval loss − PyTorch's| on the same weights and batch. */
  loss_difference: number | null;
  passes: Partial<Record<Pass, PassResult>>;
  breakdown?: Partial<Record<Pass, PassBreakdown>>;
}

export interface Speedup {
  family: string;
  model: string;
  pass: Pass;
  ours: number;
  pytorch: number | null;
  paper: number;
}

export interface ModelsBenchReport {
  device: string;
  precision: Precision;
  threads: number;
  cpu: string;
  libtorch: string;
  pytorch: string | null;
  peer_dispatch: string;
  /** The peer's process settings: 'default' (a PyTorch user's) or 'ours'. */
  peer_runtime: PeerRuntime;
  /** Our process's runtime tuning (OpenMP wait policy, malloc thresholds). */
  runtime_tuning: sm.RuntimeTuningInfo;
  peer_note?: string;
  matmul_peak: { n: number; dtype: string; ours_gflops: number; pytorch_gflops: number | null };
  /** Best GB/s of a 64 MiB device copy (read + write): the memory bound of the breakdown's efficiencies. */
  copy_gbps?: number;
  rows: ModelRow[];
  speedups: Speedup[];
  command?: string;
}

/** The paper's speed-ups over BERT-Base (Lee-Thorp & Ainslie 2022). */
export const PAPER_SPEEDUPS: Record<string, Record<Pass, number>> = {
  'sparse-mixer': { train: 1.65, infer: 1.61 },
  'fast-sparse-mixer': { train: 1.89, infer: 1.98 },
};

/** 'sparse-mixer-small' -> { base: 'sparse-mixer', family: 'small' }; 'bert-base' -> bert/base. */
export function splitPreset(name: string): { base: string; family: string } {
  const m = /^(.*?)-(small|tiny|quarter|base)$/.exec(name);
  return m ? { base: m[1]!, family: m[2]! } : { base: name, family: 'base' };
}

/** Base presets at 2 × 512; the others at 8 × their max_seq_length (128 for -small and -quarter, 64 for -tiny). */
function defaultShape(name: string): { batch: number; length: number } {
  return splitPreset(name).family === 'base' ? { batch: 2, length: 512 } : { batch: 8, length: sm.presetConfig(name).max_seq_length };
}

/** Analytic FLOPs (multiply-adds count 2) of one step at batch B, length L. */
export function stepFlops(config: sm.ModelConfig, B: number, P: number): Record<Pass, number> {
  const encoderPerToken = sm.modelInfo(config).flopsPerToken.total;
  const L = config.max_seq_length;
  const encoder = B * L * encoderPerToken + B * 2 * config.d_model * config.d_model; // + pooler
  const heads = B * P * (2 * config.d_model * config.d_emb + 2 * config.d_emb * config.vocab_size) + B * 4 * config.d_model;
  return { train: 3 * (encoder + heads), infer: encoder };
}

function measurement(samples: number[], B: number, L: number, flops: number, peakGflops: number, peak: number | null): Measurement {
  const seconds = median(samples);
  return {
    seconds,
    samples,
    examples_per_sec: B / seconds,
    tokens_per_sec: (B * L) / seconds,
    peak_bytes: peak,
    mfu: flops / seconds / (peakGflops * 1e9),
  };
}

/** Best GFLOP/s of an n³ matmul in this process, in the benchmark's dtype and device. */
function ourMatmulPeak(n: number, dtype: sm.DType, device: sm.Device, reps: number): number {
  return sm.tidy(() => {
    const g = new sm.Generator(0);
    const a = sm.randn([n, n], { generator: g, device }).to(dtype);
    const b = sm.randn([n, n], { generator: g, device }).to(dtype);
    g.dispose();
    let best = Infinity;
    for (let r = 0; r < reps + 1; r++) {
      sm.cuda.synchronize();
      const start = process.hrtime.bigint();
      a.matmul(b).dispose();
      sm.cuda.synchronize();
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      if (r > 0) best = Math.min(best, s); // the first call warms up
    }
    return (2 * n ** 3) / best / 1e9;
  });
}

interface PeerTime {
  seconds?: number[];
  peak_bytes?: number;
  error?: string;
}

/** Our side of one model: a model, its optimizer and batch, and the two passes as step functions. */
class OurModel {
  readonly model: sm.PretrainingModel;
  readonly optimizer: AdamW;
  readonly batch: sm.PretrainingBatch;

  constructor(config: sm.ModelConfig, B: number, readonly precision: Precision, readonly device: sm.Device) {
    this.model = new sm.PretrainingModel(config).to(device);
    this.optimizer = new AdamW(this.model);
    this.batch = syntheticPretrainingBatch(config, B, config.max_seq_length, 7, device);
  }

  private forward<T>(fn: () => T): T {
    return forwardIn({ precision: this.precision, device: this.device }, fn);
  }

  evalLoss(): number {
    this.model.eval();
    return sm.noGrad(() => sm.tidy(() => this.forward(() => this.model.forward(this.batch).loss).item()));
  }

  /** One pass as profileStep wants it: the forward (returning the loss to train on), backward, optimizer. */
  profiled(pass: Pass): ReturnType<typeof profileStep> {
    const gpu = this.device.startsWith('cuda');
    if (pass === 'infer') {
      this.model.eval();
      return sm.noGrad(() => profileStep({ forward: () => sm.tidy(() => void this.forward(() => this.model.encoder.forward(this.batch.input_ids, this.batch.type_ids))) }, gpu));
    }
    this.model.train();
    this.optimizer.zeroGrad();
    return profileStep(
      {
        forward: () => sm.tidy(() => this.forward(() => this.model.forward(this.batch).loss)),
        backward: (loss) => {
          loss.backward();
          loss.dispose();
        },
        optimizer: () => this.optimizer.step(1e-4),
      },
      gpu,
    );
  }

  /** One AdamW training step in training mode (dropout on). */
  trainStep(): void {
    this.model.train();
    this.optimizer.zeroGrad();
    // As Trainer.update: only the loss outlives the forward, so backward frees activations as it goes.
    const loss = sm.tidy(() => this.forward(() => this.model.forward(this.batch).loss));
    loss.backward();
    loss.dispose();
    this.optimizer.step(1e-4);
    sm.cuda.synchronize();
  }

  /** Eval-mode encoder forward without gradients (what serving a fine-tuned model costs). */
  inferStep(): void {
    this.model.eval();
    sm.noGrad(() => sm.tidy(() => void this.forward(() => this.model.encoder.forward(this.batch.input_ids, this.batch.type_ids))));
    sm.cuda.synchronize();
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
    sm.dispose(this.batch);
  }
}

function ourPeak(device: sm.Device): number | null {
  if (device.startsWith('cuda')) return sm.cuda.memoryStats(Number(device.split(':')[1] ?? 0)).peakAllocatedBytes;
  return readPeakRss();
}

function resetOurPeak(device: sm.Device): void {
  if (device.startsWith('cuda')) sm.cuda.resetPeakMemory(Number(device.split(':')[1] ?? 0));
  else {
    sm.releaseFreeMemory();
    resetPeakRss();
  }
}

export async function benchModels(options: ModelsBenchOptions): Promise<ModelsBenchReport> {
  const log = options.log;
  sm.setNumThreads(options.threads);
  const onCuda = options.device.startsWith('cuda');
  const dtype: sm.DType = options.precision === 'bfloat16' ? 'bfloat16' : 'float32';
  const matmulN = onCuda ? 8192 : 1024;

  let peer: PythonPeer | undefined;
  let pytorch: string | null = null;
  let peerNote: string | undefined;
  if (options.python) {
    const started = await PythonPeer.start(options.python, peerScript(), options.peerRuntime ?? 'default');
    if (started.error) peerNote = `PyTorch peer unavailable (${started.error}); our figures only`;
    else {
      peer = started.peer;
      pytorch = started.version ?? null;
    }
  } else peerNote = 'PyTorch peer disabled';
  if (peerNote) log(peerNote);

  const oursPeak = ourMatmulPeak(matmulN, dtype, options.device, 5);
  let pytorchPeak: number | null = null;
  if (peer) {
    await settle(300); // as between timed turns: our BLAS threads still spin for a while after our peak
    const r = await peer.request<{ gflops?: number; error?: string }>({ cmd: 'matmul_peak', n: matmulN, dtype, device: options.device, reps: 5, threads: options.threads });
    pytorchPeak = r.gflops ?? null;
  }
  const peakGflops = Math.max(oursPeak, pytorchPeak ?? 0);
  const copyGbps = options.breakdown ? copyBandwidth(options.device) : null;
  log(`matmul ${matmulN}^3 ${dtype}: ours ${oursPeak.toFixed(1)} GFLOP/s, PyTorch ${pytorchPeak?.toFixed(1) ?? 'n/a'} GFLOP/s`);

  const rows: ModelRow[] = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-models-'));
  try {
    for (const name of options.models) {
      const shape = defaultShape(name);
      const B = options.batchSize ?? shape.batch;
      const L = options.seqLength ?? shape.length;
      const config = sm.presetConfig(name, { vocab_size: options.vocabSize, max_seq_length: L });
      const ours = new OurModel(config, B, options.precision, options.device);
      const P = ours.batch.masked_lm_positions.shape[1]!;
      const flops = stepFlops(config, B, P);
      const row: ModelRow = { model: name, batch_size: B, seq_length: L, parameters: ours.model.numParameters(), flops_per_step: flops, loss_difference: null, passes: {} };
      let peerLoaded = false;
      try {
        if (peer) {
          const files = writePeerInputs(scratch, ours.model, ours.batch);
          const load = await peer.request<{ ok?: boolean; error?: string }>({
            cmd: 'load', config, weights: files.weights, batch: files.batch, device: options.device, precision: options.precision,
            threads: options.threads, seed: 0, dispatch: options.peerDispatch, impl: 'port',
          });
          fs.rmSync(files.weights!, { force: true });
          if (load.error) log(`${name}: PyTorch peer could not load the model: ${load.error}`);
          else {
            peerLoaded = true;
            const theirs = await peer.request<{ loss?: number; error?: string }>({ cmd: 'loss' });
            if (theirs.loss !== undefined) row.loss_difference = Math.abs(ours.evalLoss() - theirs.loss);
          }
        }
        for (const pass of options.passes) {
          const step = pass === 'train' ? () => ours.trainStep() : () => ours.inferStep();
          const oursSamples: number[] = [];
          const peerSamples: number[] = [];
          let peerPeak: number | null = null;
          let peerError: string | undefined;
          for (let w = 0; w < options.warmup; w++) step();
          resetOurPeak(options.device);
          for (let r = 0; r < options.repeats; r++) {
            await settle(300);
            oursSamples.push(timeOnce(step) / 1000);
            if (peerLoaded && !peerError) {
              await settle(300);
              const t = await peer!.request<PeerTime>({ cmd: 'time', pass, warmup: r === 0 ? options.warmup : 0, reps: 1 });
              if (t.error) peerError = t.error;
              else {
                peerSamples.push(...t.seconds!);
                peerPeak = Math.max(peerPeak ?? 0, t.peak_bytes ?? 0);
              }
            }
          }
          const ourMeasure = measurement(oursSamples, B, L, flops[pass], peakGflops, ourPeak(options.device));
          const theirMeasure = peerSamples.length ? measurement(peerSamples, B, L, flops[pass], peakGflops, peerPeak) : null;
          if (peerError) log(`${name} ${pass}: PyTorch peer failed: ${peerError}`);
          const result: PassResult = {
            ours: ourMeasure,
            pytorch: theirMeasure,
            ratio: theirMeasure ? ourMeasure.seconds / theirMeasure.seconds : null,
            min_ratio: theirMeasure ? Math.min(...oursSamples) / Math.min(...peerSamples) : null,
          };
          row.passes[pass] = result;
          if (options.breakdown) {
            // A profile that fails (e.g. a profiler this libtorch lacks) costs the breakdown, not the timings.
            try {
              const costs = partCosts(config, B, L, P, pass);
              const peerTimes = peerLoaded ? await peer!.request<{ parts?: Record<string, [number, number]>; error?: string }>({ cmd: 'breakdown', pass }) : undefined;
              if (peerTimes?.error) log(`${name} ${pass}: PyTorch breakdown failed: ${peerTimes.error}`);
              const theirs = peerTimes?.parts
                ? toParts(Object.fromEntries(Object.entries(peerTimes.parts).map(([k, [f, b]]) => [k, { forwardMs: f, backwardMs: b }])))
                : undefined;
              (row.breakdown ??= {})[pass] = {
                ours: breakdownRows(ours.profiled(pass), costs, pass === 'train', peakGflops, copyGbps),
                pytorch: theirs ? breakdownRows(theirs, costs, pass === 'train', peakGflops, copyGbps) : null,
              };
            } catch (error) {
              log(`${name} ${pass}: breakdown failed: ${(error as Error).message}`);
            }
          }
          log(
            `${name.padEnd(24)} ${pass.padEnd(5)} ours ${ourMeasure.seconds.toFixed(3)} s` +
              (theirMeasure ? `, PyTorch ${theirMeasure.seconds.toFixed(3)} s, ratio ${result.ratio!.toFixed(2)}` : '') +
              `, MFU ${(ourMeasure.mfu * 100).toFixed(1)}%`,
          );
        }
        // Last, since loading it replaces the port in the peer.
        if (options.hfBert && peer && config.model_arch === 'BERT') await timeHfBert(peer, row, config, scratch, ours.batch, peakGflops, options);
      } finally {
        ours.dispose();
      }
      rows.push(row);
    }
  } finally {
    peer?.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return {
    device: options.device,
    precision: options.precision,
    threads: options.threads,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    libtorch: sm.systemInfo().libtorch.version,
    pytorch,
    peer_dispatch: options.peerDispatch,
    peer_runtime: options.peerRuntime ?? 'default',
    runtime_tuning: sm.runtimeTuning(),
    ...(peerNote ? { peer_note: peerNote } : {}),
    matmul_peak: { n: matmulN, dtype, ours_gflops: oursPeak, pytorch_gflops: pytorchPeak },
    ...(copyGbps ? { copy_gbps: copyGbps } : {}),
    rows,
    speedups: speedups(rows),
  };
}

/** Hugging Face BertForPreTraining at the same shapes (timing only: its own random weights), each pass of row. */
async function timeHfBert(peer: PythonPeer, row: ModelRow, config: sm.ModelConfig, dir: string, batch: sm.PretrainingBatch, peakGflops: number, options: ModelsBenchOptions): Promise<void> {
  const files = writePeerInputs(dir, undefined, batch);
  const load = await peer.request<{ error?: string }>({ cmd: 'load', config, weights: null, batch: files.batch, device: options.device, precision: options.precision, threads: options.threads, seed: 0, dispatch: options.peerDispatch, impl: 'hf-bert' });
  if (load.error) {
    options.log(`HF BERT: ${load.error}`);
    return;
  }
  const [B, L] = batch.input_ids.shape as [number, number];
  const P = batch.masked_lm_positions.shape[1]!;
  for (const [pass, result] of Object.entries(row.passes) as [Pass, PassResult][]) {
    const t = await peer.request<PeerTime>({ cmd: 'time', pass, warmup: options.warmup, reps: options.repeats });
    if (t.error || !t.seconds) {
      options.log(`HF BERT ${pass}: ${t.error ?? 'no timings'}`);
      continue;
    }
    result.hf_bert = measurement(t.seconds, B, L, stepFlops(config, B, P)[pass], peakGflops, t.peak_bytes ?? null);
    options.log(`${row.model.padEnd(24)} ${pass.padEnd(5)} HF BERT ${result.hf_bert.seconds.toFixed(3)} s, ours/HF ${(result.ours.seconds / result.hf_bert.seconds).toFixed(2)}`);
  }
}

/** Sparse Mixer and Fast Sparse Mixer over BERT of the same size family, per pass. */
export function speedups(rows: ModelRow[]): Speedup[] {
  const out: Speedup[] = [];
  for (const row of rows) {
    const { base, family } = splitPreset(row.model);
    const paper = PAPER_SPEEDUPS[base];
    if (!paper) continue;
    const bert = rows.find((r) => r.model === (family === 'base' ? 'bert-base' : `bert-${family}`));
    if (!bert) continue;
    for (const pass of ['train', 'infer'] as const) {
      const a = bert.passes[pass];
      const b = row.passes[pass];
      if (!a || !b) continue;
      const pytorch = a.pytorch && b.pytorch ? a.pytorch.seconds / b.pytorch.seconds : null;
      out.push({ family, model: row.model, pass, ours: a.ours.seconds / b.ours.seconds, pytorch, paper: paper[pass] });
    }
  }
  return out;
}
