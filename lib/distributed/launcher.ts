// The launcher: starts this node's workers with the torchrun environment (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), splits the machine's threads between
// them, forwards SIGINT/SIGTERM, and when one worker fails stops the others and exits non-zero.
// It only sets variables and supervises: the rendezvous itself is c10d's (see group.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as readline from 'node:readline';
import { N } from '../tensor/native';

/** The variable that tells a worker which launcher started it. */
export const LAUNCHER_PID_ENV = 'SPARSE_MIXER_LAUNCHER_PID';

/**
 * In a worker started by launch(): dies with the launcher (no orphan survives a killed launcher).
 * Returns false when this process was not started by the launcher.
 */
export function bindToLauncher(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[LAUNCHER_PID_ENV];
  if (!raw) return false;
  if (!N.exitWithParent(Number(raw))) {
    process.stderr.write(`sparse-mixer: the launcher (pid ${raw}) is gone; exiting\n`);
    process.exit(1);
  }
  return true;
}

export interface LaunchOptions {
  /** Workers on this machine. */
  nprocPerNode: number;
  /** Machines taking part (default 1). */
  nnodes?: number;
  /** This machine's index among them (default 0). */
  nodeRank?: number;
  /** Where rank 0 (node 0's first worker) hosts the rendezvous store (default 127.0.0.1). */
  masterAddr?: string;
  masterPort?: number;
  /** What each worker runs. */
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Intra-op threads per worker (default: this machine's cores / nprocPerNode, at least 1). */
  threadsPerWorker?: number;
  /** Seconds the other workers get to stop after one failed, before they are killed (default 30). */
  graceSeconds?: number;
  /** Launcher messages (default: stderr). */
  log?: (line: string) => void;
  /** Called with each started worker (tests use it to find the pids). */
  onStart?: (worker: { rank: number; localRank: number; pid: number }) => void;
}

export interface LaunchResult {
  /** 0 when every worker exited with 0; else the first failure's exit code (128 + signal number for a signal). */
  exitCode: number;
  /** The first worker that failed, if one did. */
  failed?: { rank: number; pid: number; code: number | null; signal: NodeJS.Signals | null };
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = os.constants.signals;

function checkCount(name: string, v: number | undefined, min: number): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** The environment of one worker. */
export function workerEnvironment(o: LaunchOptions, localRank: number): NodeJS.ProcessEnv {
  const nnodes = o.nnodes ?? 1;
  const base = o.env ?? process.env;
  const threads = String(o.threadsPerWorker ?? Math.max(1, Math.floor(os.availableParallelism() / o.nprocPerNode)));
  const env: NodeJS.ProcessEnv = {
    ...base,
    RANK: String((o.nodeRank ?? 0) * o.nprocPerNode + localRank),
    WORLD_SIZE: String(nnodes * o.nprocPerNode),
    LOCAL_RANK: String(localRank),
    LOCAL_WORLD_SIZE: String(o.nprocPerNode),
    GROUP_RANK: String(o.nodeRank ?? 0),
    MASTER_ADDR: o.masterAddr ?? base['MASTER_ADDR'] ?? '127.0.0.1',
    MASTER_PORT: String(o.masterPort ?? base['MASTER_PORT'] ?? 29500),
    [LAUNCHER_PID_ENV]: String(process.pid),
  };
  // The user's own thread settings win; otherwise each worker gets its share of the cores (libtorch's
  // pool, OpenMP, and OpenBLAS's own pthreads, which would otherwise each take every core).
  for (const name of ['SPARSE_MIXER_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS']) {
    if (base[name] === undefined || base[name] === '') env[name] = threads;
  }
  return env;
}

/** Starts the workers and resolves when all have exited. */
export function launch(o: LaunchOptions): Promise<LaunchResult> {
  checkCount('nproc_per_node', o.nprocPerNode, 1);
  const nnodes = checkCount('nnodes', o.nnodes, 1) ?? 1;
  const nodeRank = checkCount('node_rank', o.nodeRank, 0) ?? 0;
  if (nodeRank >= nnodes) throw new Error(`node_rank ${nodeRank} must be below nnodes ${nnodes}`);
  checkCount('master_port', o.masterPort, 1);
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const grace = (o.graceSeconds ?? 30) * 1000;
  const workers: { rank: number; child: ChildProcess; exited: boolean }[] = [];
  let failed: LaunchResult['failed'];
  let killTimer: NodeJS.Timeout | undefined;
  let interrupts = 0;

  const running = () => workers.filter((w) => !w.exited);
  const stopOthers = (signal: NodeJS.Signals) => {
    for (const w of running()) w.child.kill(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    // The first signal lets the workers write a checkpoint; a second one does not wait.
    if (interrupts === 1) {
      log(`sparse-mixer launcher: ${signal}: passing it on to ${running().length} worker(s)`);
      stopOthers(signal);
    } else {
      log(`sparse-mixer launcher: ${signal} again: killing the workers`);
      stopOthers('SIGKILL');
    }
  };

  return new Promise<LaunchResult>((resolve) => {
    const finishIfDone = () => {
      if (running().length > 0) return;
      if (killTimer) clearTimeout(killTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const exitCode = failed ? (failed.code ?? 128 + (SIGNAL_NUMBERS[failed.signal!] ?? 1)) || 1 : 0;
      resolve(failed ? { exitCode, failed } : { exitCode });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let localRank = 0; localRank < o.nprocPerNode; localRank++) {
      const env = workerEnvironment(o, localRank);
      const rank = Number(env['RANK']);
      const child = spawn(o.command, [...o.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const worker = { rank, child, exited: false };
      workers.push(worker);
      // Rank 0 speaks for the run; the others' lines are labelled.
      const label = rank === 0 ? '' : `[rank ${rank}] `;
      readline.createInterface({ input: child.stdout! }).on('line', (line) => process.stdout.write(`${label}${line}\n`));
      readline.createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`${label}${line}\n`));
      // 'close' comes after the worker's output has been read to its end (its last lines are not lost).
      child.on('close', (code, signal) => ended(code, signal));
      child.on('error', (error) => {
        log(`sparse-mixer launcher: rank ${rank} could not start: ${error.message}`);
        ended(127, null);
      });
      const ended = (code: number | null, signal: NodeJS.Signals | null) => {
        if (worker.exited) return;
        worker.exited = true;
        if ((code !== 0 || signal !== null) && failed === undefined) {
          failed = { rank, pid: child.pid ?? -1, code, signal };
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          if (running().length > 0) {
            log(`sparse-mixer launcher: rank ${rank} (pid ${child.pid}) ${how}; stopping the other ${running().length} worker(s)`);
            stopOthers('SIGTERM');
            killTimer = setTimeout(() => stopOthers('SIGKILL'), grace);
          } else {
            log(`sparse-mixer launcher: rank ${rank} (pid ${child.pid}) ${how}`);
          }
        }
        finishIfDone();
      };
      if (child.pid !== undefined) o.onStart?.({ rank, localRank, pid: child.pid });
    }
  });
}
