// A long-running Python PyTorch process answering benchmark requests line by line, so our
// rounds and PyTorch's can be interleaved in one run on one machine state.
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as readline from 'readline';

export class PythonPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  private constructor(python: string, script: string) {
    this.child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the peer; resolves with undefined (and the reason) when Python or torch is missing. */
  static async start(python: string, script: string): Promise<{ peer?: PythonPeer; version?: string; error?: string }> {
    const peer = new PythonPeer(python, script);
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
