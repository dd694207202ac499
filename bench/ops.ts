// `sparse-mixer bench ops`: per-op overhead of our Node path against Python PyTorch eager on the
// same libtorch and thread count, measured in interleaved rounds of one run.
import * as path from 'path';
import * as sm from '../lib/tensor';
import { PythonPeer } from './peer';
import { median, settle } from './timing';

const F = sm.functional;

export interface OpsBenchOptions {
  python: string;
  rounds: number;
  /** Target seconds per round and side. */
  roundSeconds: number;
  threads: number;
  /** Only these ops (default: all). */
  only?: string[];
  log: (line: string) => void;
}

export interface OpResult {
  name: string;
  ours_us: number;
  pytorch_us: number | null;
  ratio: number | null;
}

export interface OpsBenchReport {
  results: OpResult[];
  matmul_512: { ours_gflops: number; pytorch_gflops: number | null; ratio: number | null };
  threads: number;
  libtorch: string;
  pytorch: string | null;
  note?: string;
}

type Op = () => void;

/** The same ops and shapes as bench/ops_peer.py; each result is freed as Python would free it. */
function makeOps(): Record<string, Op> {
  const g = new sm.Generator(0);
  const r = (...shape: number[]) => sm.keep(sm.randn(shape, { generator: g }));
  const a = r(32, 32), b = r(32, 32);
  const m1 = r(64, 64), m2 = r(64, 64);
  const x = r(16, 64), w = r(64, 64), bias = r(64);
  const lnW = sm.keep(sm.ones([64])), lnB = sm.keep(sm.zeros([64]));
  const big1 = r(512, 512), big2 = r(512, 512);
  const wg = r(64, 64).requiresGrad_();
  const bg = sm.keep(sm.zeros([64])).requiresGrad_();
  return {
    add: () => a.add(b).dispose(),
    mul: () => a.mul(b).dispose(),
    matmul_64: () => m1.matmul(m2).dispose(),
    linear: () => F.linear(x, w, bias).dispose(),
    layer_norm: () => F.layerNorm(x, [64], lnW, lnB, 1e-12).dispose(),
    softmax: () => F.softmax(x, -1).dispose(),
    gelu: () => F.gelu(x, 'tanh').dispose(),
    backward_small: () => {
      sm.tidy(() => F.linear(x, wg, bg).tanh().sum().backward());
      wg.zeroGrad();
      bg.zeroGrad();
    },
    matmul_512: () => big1.matmul(big2).dispose(),
  };
}


function timeOurs(op: Op, iters: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) op();
  return Number(process.hrtime.bigint() - start) / 1000 / iters;
}

export async function benchOps(options: OpsBenchOptions): Promise<OpsBenchReport> {
  sm.setNumThreads(options.threads);
  const ops = Object.fromEntries(Object.entries(makeOps()).filter(([name]) => !options.only || options.only.includes(name)));
  const script = path.resolve(__dirname, '..', '..', 'bench', 'ops_peer.py');
  const { peer, version, error } = await PythonPeer.start(options.python, script);
  if (error) options.log(`PyTorch peer unavailable (${error}); reporting our figures only`);
  const results: OpResult[] = [];
  try {
    // Warm up every op on both sides first (JIT tiers, allocator caches, thread pools).
    const iterations = new Map<string, number>();
    for (const [name, op] of Object.entries(ops)) {
      const probe = timeOurs(op, 20);
      const iters = Math.max(5, Math.round((options.roundSeconds * 1e6) / Math.max(probe, 0.05)));
      iterations.set(name, iters);
      timeOurs(op, iters);
      if (peer) await peer.request({ op: name, iters, threads: options.threads });
    }
    for (const [name, op] of Object.entries(ops)) {
      const iters = iterations.get(name)!;
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let round = 0; round < options.rounds; round++) {
        // A pause before each side's round lets the other side's OpenMP workers stop spinning;
        // on 2 cores their busy-waiting would otherwise eat into the round being timed.
        await settle(30);
        ours.push(timeOurs(op, iters));
        if (peer) {
          await settle(30);
          theirs.push((await peer.request<{ us: number }>({ op: name, iters, threads: options.threads })).us);
        }
      }
      const oursUs = median(ours);
      const pytorchUs = peer ? median(theirs) : null;
      const ratio = pytorchUs === null ? null : oursUs / pytorchUs;
      results.push({ name, ours_us: oursUs, pytorch_us: pytorchUs, ratio });
      options.log(
        `${name.padEnd(16)} ours ${oursUs.toFixed(2).padStart(9)} us   pytorch ${pytorchUs === null ? '      n/a' : pytorchUs.toFixed(2).padStart(9)} us   ratio ${ratio === null ? 'n/a' : ratio.toFixed(3)}`,
      );
    }
  } finally {
    peer?.close();
  }
  const mm = results.find((r) => r.name === 'matmul_512');
  const flops = 2 * 512 ** 3;
  const oursGflops = mm ? flops / (mm.ours_us * 1e3) : NaN;
  const pytorchGflops = mm?.pytorch_us ? flops / (mm.pytorch_us * 1e3) : null;
  return {
    results,
    matmul_512: {
      ours_gflops: oursGflops,
      pytorch_gflops: pytorchGflops,
      ratio: pytorchGflops === null ? null : oursGflops / pytorchGflops,
    },
    threads: options.threads,
    libtorch: sm.systemInfo().libtorch.version,
    pytorch: version ?? null,
    ...(error ? { note: `PyTorch peer unavailable: ${error}` } : {}),
  };
}
