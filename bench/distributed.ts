// `sparse-mixer bench distributed`: training steps on several processes against one process, and
// against PyTorch's DistributedDataParallel on the same model (the port in models_peer.py), same
// weights, same global batch. Every setup's processes stay up for the whole run and take turns
// round by round, so all are measured in the same machine state.
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as sm from '../lib';
import { syntheticPretrainingBatch, writePeerInputs } from './model_inputs';
import { peerEnvironment, type PeerRuntime } from './peer';
import { median, settle } from './timing';
import type { StepsReply, WorkerSpec } from './distributed_worker';

export interface DistributedBenchOptions {
  models: string[];
  /** Examples per step over all processes (default 8). */
  batchSize: number;
  /** Sequence length (default: the preset's). */
  seqLength?: number;
  vocabSize: number;
  /** Processes of the parallel setups (default 2) and the threads of the one-process setup (the same number). */
  processes: number;
  warmup: number;
  rounds: number;
  steps: number;
  /** Python with torch for the DDP peer; undefined runs ours alone. */
  python?: string;
  peerRuntime: PeerRuntime;
  /** The peer's MoE dispatch: the reference's one-hot masks and einsums, or index gathers. */
  peerDispatch: 'masked' | 'scatter';
  log: (line: string) => void;
}

export interface SetupRow {
  model: string;
  setup: string;
  side: 'ours' | 'pytorch';
  processes: number;
  threads_per_process: number;
  expert_parallel_size: number;
  /** Median seconds per training step. */
  seconds: number;
  tokens_per_sec: number;
  /** One process × all threads (the same side's) over this setup: above 1 is faster. */
  speedup_over_one_process: number | null;
  /** Gradient all-reduce per step: time some bucket was in flight, and the part backward did not hide. */
  comm_ms: number | null;
  exposed_ms: number | null;
  hidden_share: number | null;
  /** Bytes each process sent per step (measured: /proc/self/io), and the least any algorithm must send. */
  bytes_sent_per_step: number | null;
  analytic_min_bytes_per_step: number | null;
  loss: number;
}

export interface DistributedBenchReport {
  cpu: string;
  cores: number;
  libtorch: string;
  pytorch: string | null;
  peer_runtime: PeerRuntime;
  peer_dispatch: string;
  batch_size: number;
  processes: number;
  rows: SetupRow[];
  /** ours / PyTorch DDP median step time per model (data parallel): below 1 is faster. */
  ratios: Record<string, number>;
  peer_note?: string;
}

interface Setup {
  label: string;
  side: 'ours' | 'pytorch';
  processes: number;
  threads: number;
  expertParallelSize: number;
}

/** A setup's processes, answering JSON lines (distributed_worker.ts, distributed_peer.py). */
class WorkerGroup {
  private readonly children: ChildProcessWithoutNullStreams[] = [];
  private readonly lines: AsyncIterator<string>[] = [];
  private readonly stderr: string[] = [];

  constructor(readonly setup: Setup, command: string, args: string[], env: NodeJS.ProcessEnv, port: number) {
    for (let rank = 0; rank < setup.processes; rank++) {
      const threads = String(setup.threads);
      const child = spawn(command, args, {
        env: { ...env, RANK: String(rank), WORLD_SIZE: String(setup.processes), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), SPARSE_MIXER_NUM_THREADS: threads, OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads },
      });
      this.stderr.push('');
      child.stderr.on('data', (d: Buffer) => (this.stderr[rank] += d.toString()));
      this.children.push(child);
      this.lines.push(readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]());
    }
  }

  private async read<T>(rank: number): Promise<T> {
    const r = await this.lines[rank]!.next();
    if (r.done) throw new Error(`${this.setup.label}: rank ${rank} exited: ${this.stderr[rank]!.trim().split('\n').slice(-3).join(' | ')}`);
    return JSON.parse(r.value) as T;
  }

  async ready(): Promise<{ torch?: string }> {
    const replies = await Promise.all(this.children.map((_, r) => this.read<{ torch?: string }>(r)));
    return replies[0]!;
  }

  /** n steps on every rank; rank 0's reply (the steps are synchronous across ranks). */
  async steps(n: number): Promise<StepsReply & { comm: { commMs: number; exposedMs?: number; overlapMs?: number }[] }> {
    for (const c of this.children) c.stdin.write(`${JSON.stringify({ cmd: 'steps', n })}\n`);
    const replies = await Promise.all(this.children.map((_, r) => this.read<StepsReply>(r)));
    return replies[0]!;
  }

  quit(): void {
    for (const c of this.children) {
      c.stdin.on('error', () => {}); // a worker that already died cannot be told to quit
      c.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    }
  }
}

/** Ports for the setups' rendezvous: a fresh one per setup. */
let nextPort = 29500 + Math.floor(Math.random() * 20000);

/** The least bytes a rank must send per step: the ring all-reduce's 2(P−1)/P of the gradients, plus the expert all-to-alls. */
export function analyticBytes(config: sm.ModelConfig, setup: Setup, batchSize: number): number | null {
  const P = setup.processes;
  if (P === 1) return null;
  const model = new sm.PretrainingModel(config);
  try {
    let dense = 0;
    let expert = 0;
    const shards = new Set(sm.distributed.expertModules(model).flatMap(([name]) => ['w1', 'b1', 'w2', 'b2'].map((p) => `${name}.${p}`)));
    for (const [name, p] of model.namedParameters()) {
      if (setup.expertParallelSize > 1 && shards.has(name)) expert += p.numel;
      else dense += p.numel;
    }
    let bytes = (2 * (P - 1) * dense * 4) / P;
    if (setup.expertParallelSize > 1) {
      const EP = setup.expertParallelSize;
      const tokens = (batchSize / P) * config.max_seq_length;
      const G = sm.routing.numGroups(tokens, config.max_group_size);
      const C = Math.min(sm.routing.expertCapacity(tokens / G, config.num_experts, config.train_capacity_factor, config.min_expert_capacity), tokens / G);
      // Slots to the experts and back, forward and backward: four exchanges per MoE layer, each
      // sending the (EP−1)/EP of this rank's E·G·C slots that belong to other ranks.
      bytes += (config.num_moe_layers * 4 * (EP - 1) * config.num_experts * G * C * config.d_model * 4) / EP;
      // Expert blocks have no replicas when EP = P: nothing to all-reduce for them.
      if (P > EP) bytes += (2 * (P / EP - 1) * expert * 4) / (P / EP);
    }
    return bytes;
  } finally {
    model.dispose();
  }
}

export async function benchDistributed(o: DistributedBenchOptions): Promise<DistributedBenchReport> {
  const P = o.processes;
  const setupsFor = (config: sm.ModelConfig): Setup[] => [
    { label: `ours 1 process × ${P} threads`, side: 'ours', processes: 1, threads: P, expertParallelSize: 1 },
    { label: `ours ${P} processes × 1 thread, data parallel`, side: 'ours', processes: P, threads: 1, expertParallelSize: 1 },
    ...(config.num_moe_layers > 0 && config.num_experts % P === 0 ? [{ label: `ours ${P} processes × 1 thread, expert parallel`, side: 'ours' as const, processes: P, threads: 1, expertParallelSize: P }] : []),
    ...(o.python
      ? [
          { label: `PyTorch 1 process × ${P} threads`, side: 'pytorch' as const, processes: 1, threads: P, expertParallelSize: 1 },
          { label: `PyTorch DDP ${P} processes × 1 thread`, side: 'pytorch' as const, processes: P, threads: 1, expertParallelSize: 1 },
        ]
      : []),
  ];
  const worker = path.resolve(__dirname, 'distributed_worker.js');
  const peerScript = path.resolve(__dirname, '..', '..', 'bench', 'distributed_peer.py');
  const rows: SetupRow[] = [];
  const ratios: Record<string, number> = {};
  let pytorch: string | null = null;
  let peerNote: string | undefined = o.python ? undefined : 'PyTorch peer disabled';
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-distributed-'));
  try {
    for (const name of o.models) {
      const config = sm.presetConfig(name, { vocab_size: o.vocabSize, ...(o.seqLength ? { max_seq_length: o.seqLength } : {}) });
      const L = config.max_seq_length;
      if (o.batchSize % P !== 0) throw new Error(`--batch-size ${o.batchSize} does not split over ${P} processes`);
      // One set of weights and one global batch for every setup of this model.
      const dir = path.join(scratch, name);
      fs.mkdirSync(dir);
      const model = new sm.PretrainingModel(config);
      const batch = syntheticPretrainingBatch(config, o.batchSize, L, 7);
      const files = writePeerInputs(dir, model, batch);
      model.dispose();
      sm.dispose(Object.values(batch));
      const base: WorkerSpec = { preset: name, vocabSize: o.vocabSize, batchSize: o.batchSize, seqLength: L, expertParallelSize: 1, weights: files.weights!, batch: files.batch };
      const groups: WorkerGroup[] = [];
      for (const setup of setupsFor(config)) {
        const spec = JSON.stringify({ ...base, expertParallelSize: setup.expertParallelSize, config, dispatch: o.peerDispatch });
        const g =
          setup.side === 'ours'
            ? new WorkerGroup(setup, process.execPath, [worker], { ...process.env, BENCH_SPEC: spec }, nextPort++)
            : new WorkerGroup(setup, o.python!, [peerScript], { ...peerEnvironment(o.peerRuntime), BENCH_SPEC: spec }, nextPort++);
        try {
          const hello = await g.ready();
          if (hello.torch) pytorch = hello.torch;
          groups.push(g);
        } catch (error) {
          g.quit();
          if (setup.side === 'ours') throw error;
          peerNote = `PyTorch setup unavailable (${(error as Error).message})`;
          o.log(peerNote);
        }
      }
      try {
        for (const g of groups) {
          await g.steps(o.warmup);
          await settle(200);
        }
        const samples = new Map<WorkerGroup, { seconds: number[]; comm: number[]; exposed: number[]; bytes: number[]; loss: number }>();
        for (let round = 0; round < o.rounds; round++) {
          for (const g of groups) {
            await settle(200); // the previous setup's threads stop spinning
            const r = await g.steps(o.steps);
            const s = samples.get(g) ?? { seconds: [], comm: [], exposed: [], bytes: [], loss: NaN };
            s.seconds.push(...r.seconds);
            for (const c of r.comm) {
              s.comm.push(c.commMs);
              // Ours reports the wait after backward; DDP reports the overlap with backward.
              s.exposed.push(c.exposedMs ?? Math.max(0, c.commMs - (c.overlapMs ?? 0)));
            }
            s.bytes.push(r.bytesSent / r.seconds.length);
            s.loss = r.loss;
            samples.set(g, s);
          }
          o.log(`${name}: round ${round + 1}/${o.rounds}: ${groups.map((g) => `${g.setup.label} ${median(samples.get(g)!.seconds).toFixed(3)} s`).join(', ')}`);
        }
        for (const g of groups) {
          const s = samples.get(g)!;
          const seconds = median(s.seconds);
          const one = groups.find((h) => h.setup.side === g.setup.side && h.setup.processes === 1);
          const comm = s.comm.length ? median(s.comm) : null;
          const exposed = s.exposed.length ? median(s.exposed) : null;
          rows.push({
            model: name,
            setup: g.setup.label,
            side: g.setup.side,
            processes: g.setup.processes,
            threads_per_process: g.setup.threads,
            expert_parallel_size: g.setup.expertParallelSize,
            seconds,
            tokens_per_sec: (o.batchSize * L) / seconds,
            speedup_over_one_process: one ? median(samples.get(one)!.seconds) / seconds : null,
            comm_ms: comm,
            exposed_ms: exposed,
            hidden_share: comm && exposed !== null ? Math.max(0, 1 - exposed / comm) : null,
            bytes_sent_per_step: g.setup.processes > 1 ? median(s.bytes) : null,
            analytic_min_bytes_per_step: analyticBytes(config, g.setup, o.batchSize),
            loss: s.loss,
          });
        }
        const ours = rows.find((r) => r.model === name && r.side === 'ours' && r.processes > 1 && r.expert_parallel_size === 1);
        const ddp = rows.find((r) => r.model === name && r.side === 'pytorch' && r.processes > 1);
        if (ours && ddp) ratios[name] = ours.seconds / ddp.seconds;
      } finally {
        for (const g of groups) g.quit();
      }
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    libtorch: sm.systemInfo().libtorch.version,
    pytorch,
    peer_runtime: o.peerRuntime,
    peer_dispatch: o.peerDispatch,
    batch_size: o.batchSize,
    processes: P,
    rows,
    ratios,
    ...(peerNote ? { peer_note: peerNote } : {}),
  };
}

/** The report as a Markdown table. */
export function formatDistributed(r: DistributedBenchReport): string {
  const mib = (b: number | null) => (b === null ? '' : `${(b / 2 ** 20).toFixed(2)}`);
  const lines = [
    `${r.cpu}, ${r.cores} cores; libtorch ${r.libtorch}; PyTorch ${r.pytorch ?? 'n/a'} (runtime: ${r.peer_runtime}, MoE dispatch: ${r.peer_dispatch}); global batch ${r.batch_size}`,
    '',
    '| model | setup | s/step | tokens/s | speed-up over 1 process | all-reduce ms | hidden behind backward | MiB sent/step | analytic min MiB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.rows.map(
      (x) =>
        `| ${x.model} | ${x.setup} | ${x.seconds.toFixed(3)} | ${x.tokens_per_sec.toFixed(0)} | ${x.speedup_over_one_process?.toFixed(2) ?? ''} | ${x.comm_ms?.toFixed(1) ?? ''} | ${x.hidden_share === null ? '' : `${(100 * x.hidden_share).toFixed(0)}%`} | ${mib(x.bytes_sent_per_step)} | ${mib(x.analytic_min_bytes_per_step)} |`,
    ),
    '',
    ...Object.entries(r.ratios).map(([m, v]) => `${m}: ours / PyTorch DDP step time ${v.toFixed(2)}`),
  ];
  if (r.peer_note) lines.push(`note: ${r.peer_note}`);
  return lines.join('\n');
}
