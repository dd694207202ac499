// Helpers for tests that run several processes on localhost: free ports, ranks started with the
// torchrun environment, and the command-line launcher.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const LIB = path.resolve(__dirname, '..', 'lib', 'index.js');
export const CLI = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Waits for a child, collecting its output; kills it after timeoutMs. */
export function finished(child: ChildProcess, timeoutMs: number): Promise<Finished> {
  const started = Date.now();
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** What a rank's worker gets besides the library. */
export interface WorkerTools {
  /** The message of the Error fn throws, or 'no error'. */
  caught: (fn: () => unknown) => string;
}

const TOOLS = `{ caught: (fn) => { try { fn(); return 'no error'; } catch (e) { return e.message; } } }`;

/**
 * Runs `worker` (a self-contained function of the library, stringified) in `n` processes with
 * RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set; each prints what it returns as JSON.
 */
export async function runRanks<T>(n: number, worker: (sm: typeof import('../lib'), tools: WorkerTools) => T | Promise<T>, options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ results: (T | undefined)[]; runs: Finished[] }> {
  const port = await freePort();
  const script = `Promise.resolve((${worker.toString()})(require(${JSON.stringify(LIB)}), ${TOOLS})).then((r) => console.log('RESULT ' + JSON.stringify(r)))`;
  const runs = await Promise.all(
    Array.from({ length: n }, (_, rank) =>
      finished(
        spawn(process.execPath, ['-e', script], {
          env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(n), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), SPARSE_MIXER_NUM_THREADS: '1', ...options.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
        options.timeoutMs ?? 60_000,
      ),
    ),
  );
  const results = runs.map((r) => {
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    return line === undefined ? undefined : (JSON.parse(line.slice('RESULT '.length)) as T);
  });
  return { results, runs };
}

/** `sparse-mixer <args>` as a child process. */
export function cli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The train-split loss of each step in a workdir's metrics.jsonl (the last record of a step wins). */
export function trainLosses(workdir: string): number[] {
  const byStep = new Map<number, number>();
  for (const line of fs.readFileSync(path.join(workdir, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const r = JSON.parse(line) as { split: string; step: number; loss: number };
    if (r.split === 'train') byStep.set(r.step, r.loss);
  }
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l);
}

/** Whether a process is still running (a zombie counts as gone). */
export function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}
