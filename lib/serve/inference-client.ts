// The server's side of the inference process: starts it, sends it one batch at a time, and starts a
// new one when it dies (the batch it was running fails; the batches queued behind it wait).
import { fork, type ChildProcess } from 'child_process';
import * as path from 'path';
import type { FromInference, LoadMessage, ModelDescription, RunMessage } from './protocol';

/** The batch was lost with the process running it. */
export class InferenceCrashed extends Error {}
/** No process can run the batch: the model could not be loaded again, or the server is stopping. */
export class InferenceUnavailable extends Error {}

export interface InferenceResult {
  /** Scores (class probabilities or regression outputs) or embeddings, row after row. */
  values: Float32Array;
  /** Raw logits, for /predict. */
  logits?: Float32Array;
}

type LoadSettings = Omit<LoadMessage, 'type'>;
type Pending = { resolve: (r: InferenceResult) => void; reject: (e: Error) => void };

export class InferenceClient {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopped = false;
  private current!: Promise<ModelDescription>;
  private description: ModelDescription | undefined;
  /** Live tensors in the inference process after its last batch (flat when nothing leaks). */
  liveTensors = 0;
  restarts = 0;

  private constructor(
    private readonly settings: LoadSettings,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts the process and resolves once it has loaded and warmed up the model. */
  static async start(settings: LoadSettings, log: (line: string) => void): Promise<InferenceClient> {
    const client = new InferenceClient(settings, log);
    client.spawn();
    await client.current;
    return client;
  }

  get model(): ModelDescription {
    if (!this.description) throw new Error('the model is not loaded yet');
    return this.description;
  }

  /** True while a process with the model loaded is there to run batches. */
  get ready(): boolean {
    return !this.stopped && this.child !== undefined && this.readyChild === this.child;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private readyChild: ChildProcess | undefined;

  private spawn(): void {
    const child = fork(path.join(__dirname, 'inference-process.js'), [], {
      serialization: 'advanced',
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    this.current = new Promise<ModelDescription>((resolve, reject) => {
      child.on('message', (message: FromInference) => {
        if (message.type === 'ready') {
          this.description = message.model;
          this.liveTensors = message.liveTensors;
          this.readyChild = child;
          resolve(message.model);
        } else if (message.type === 'failed') {
          reject(new InferenceUnavailable(`the model could not be loaded: ${message.message}`));
          child.disconnect();
        } else {
          const waiting = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.type === 'result') {
            this.liveTensors = message.liveTensors;
            waiting?.resolve({ values: message.values, ...(message.logits ? { logits: message.logits } : {}) });
          } else {
            waiting?.reject(new Error(message.message));
          }
        }
      });
      child.on('error', (error) => reject(new InferenceUnavailable(`the inference process could not be started: ${error.message}`)));
      child.on('exit', (code, signal) => {
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(new InferenceUnavailable(`the inference process ended (${how}) while loading the model`));
        this.onExit(child, how);
      });
    });
    // Restarts are awaited by the batches that need them; this keeps a failed one from being unhandled.
    this.current.catch(() => {});
    child.send({ type: 'load', ...this.settings });
  }

  private onExit(child: ChildProcess, how: string): void {
    if (child !== this.child) return;
    const wasReady = this.readyChild === child;
    this.readyChild = undefined;
    for (const waiting of this.pending.values()) {
      waiting.reject(new InferenceCrashed(`the inference process ended (${how}) while running this batch; the server is starting a new one`));
    }
    this.pending.clear();
    // Stopping, or a process that never loaded the model: starting another would fail the same way
    // (over and over); batches get 503 and /health says 503.
    if (this.stopped || !wasReady) return;
    this.restarts += 1;
    this.log(`inference process ${child.pid} ended (${how}); starting a new one`);
    this.spawn();
    this.current.then(
      () => this.log(`inference process ${this.child?.pid} ready`),
      (error: Error) => this.log(`no inference process: ${error.message}`),
    );
  }

  /** Runs one batch (waiting for a restart in progress). */
  async run(batch: Omit<RunMessage, 'type' | 'id'>): Promise<InferenceResult> {
    if (this.stopped) throw new InferenceUnavailable('the server is stopping');
    await this.current;
    const child = this.child!;
    const id = this.nextId++;
    return new Promise<InferenceResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.send({ type: 'run', id, ...batch }, (error) => {
        if (error && this.pending.delete(id)) reject(new InferenceCrashed(`the batch could not be sent to the inference process: ${error.message}`));
      });
    });
  }

  /** Ends the process (after the batch it runs, if any: disconnecting lets it finish). */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.disconnect();
    else child.kill();
    await exited;
  }
}
