// A long-running Python PyTorch process answering benchmark requests line by line, so our
// rounds and PyTorch's can be interleaved in one run on one machine state.
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as readline from 'readline';
import { runtimeTuning } from '../lib/tensor';
import { userEnvironment } from '../lib/tensor/runtime-env';

/**
 * The peer's process runtime: 'default' is what a PyTorch user gets (the environment as the user
 * gave it to us, without the settings this package adds for itself); 'ours' gives it the same
 * OpenMP wait policy and malloc thresholds that our process runs with (lib/tensor/runtime-env.ts,
 * native/runtime.cc), to separate what the runtime settings buy from the rest.
 */
export type PeerRuntime = 'default' | 'ours';

export function peerEnvironment(runtime: PeerRuntime): NodeJS.ProcessEnv {
  const env = userEnvironment();
  if (runtime === 'default') return env;
  const tuning = runtimeTuning();
  Object.assign(env, tuning.environment);
  if (tuning.malloc?.applied) {
    const m = tuning.malloc;
    // glibc reads these at process start: the same thresholds, and one arena as native/runtime.cc sets.
    const ours = `glibc.malloc.mmap_threshold=${m.mmapThresholdBytes}:glibc.malloc.trim_threshold=${m.trimThresholdBytes}:glibc.malloc.arena_max=1`;
    env.GLIBC_TUNABLES = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${ours}` : ours;
  }
  return env;
}

export class PythonPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  private constructor(python: string, script: string, runtime: PeerRuntime) {
    this.child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'], env: peerEnvironment(runtime) });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the peer; resolves with undefined (and the reason) when Python or torch is missing. */
  static async start(python: string, script: string, runtime: PeerRuntime = 'default'): Promise<{ peer?: PythonPeer; version?: string; error?: string }> {
    const peer = new PythonPeer(python, script, runtime);
    const spawnError = new Promise<string>((resolve) => peer.child.on('error', (e) => resolve(e.message)));
    const first = peer.next().then((line) => ({ line }));
    const result = await Promise.race([first, spawnError.then((error) => ({ error }))]);
    if ('error' in result) return { error: `${python}: ${result.error}` };
    if (result.line === undefined) {
      return { error: `${python} ${script} exited: ${peer.stderr.trim().split('\n').slice(-1)[0] ?? ''}` };
    }
    const hello = JSON.parse(result.line) as { torch: string };
    return { peer, version: hello.torch };
  }

  private async next(): Promise<string | undefined> {
    const r = await this.lines.next();
    return r.done ? undefined : r.value;
  }

  async request<T>(message: object): Promise<T> {
    this.child.stdin.write(JSON.stringify(message) + '\n');
    const line = await this.next();
    if (line === undefined) throw new Error(`python peer died: ${this.stderr.trim()}`);
    return JSON.parse(line) as T;
  }

  close(): void {
    this.child.stdin.end();
  }
}
