// The HTTP inference server: POST /predict and /embed (TEI's shapes), GET /health, /info and
// /metrics. Requests are checked, tokenized (on libuv's thread pool), queued input by input and
// answered from dynamic batches run by the inference process; the event loop only ever does I/O.
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { encodeSegments, Tokenizer, type EncodedInput } from '../data';
import { packageRoot } from '../tensor/binding';
import { checkDevice } from '../tensor/device';
import { acceptsAnyWidth, readWorkdirConfig } from '../train';
import { batchWidth, BatchQueue, type BatchPolicy, type Queued } from './batcher';
import { readBody, sendError, sendJson } from './http';
import { InferenceClient, InferenceCrashed, InferenceUnavailable, type InferenceResult } from './inference-client';
import { ServerMetrics } from './metrics';
import { resolveServeOptions, type ResolvedServeOptions, type ServeOptions } from './options';
import type { ModelDescription } from './protocol';
import { HttpError, parseEmbed, parseJson, parsePredict } from './requests';

/** Counts since the server started. */
export interface ServerStats {
  batches: number;
  inputs: number;
  /** Tokens of the inputs, and the tokens the batches ran (padding included). */
  inputTokens: number;
  paddedTokens: number;
  inferenceRestarts: number;
}

export interface InferenceServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly model: ModelDescription;
  stats(): ServerStats;
  /** Stops accepting requests, answers those in flight, then stops the inference process. */
  close(): Promise<void>;
}

interface QueuedInput extends Queued {
  kind: 'predict' | 'embed';
  normalize: boolean;
  row: EncodedInput;
  resolve(result: InferenceResult): void;
  reject(error: Error): void;
}

const ENDPOINTS: Record<string, 'GET' | 'POST'> = { '/predict': 'POST', '/embed': 'POST', '/health': 'GET', '/info': 'GET', '/metrics': 'GET' };

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

class Server implements InferenceServer {
  readonly url: string;
  readonly port: number;
  private readonly metrics: ServerMetrics;
  private readonly counts: Omit<ServerStats, 'inferenceRestarts'> = { batches: 0, inputs: 0, inputTokens: 0, paddedTokens: 0 };
  private readonly queue: BatchQueue<QueuedInput>;
  private inFlight = 0;
  private draining = false;
  private closing: Promise<void> | undefined;
  private whenIdle: (() => void) | undefined;
  /** Seconds the last batch took per input, for Retry-After. */
  private secondsPerInput = 0.05;

  constructor(
    private readonly options: ResolvedServeOptions,
    private readonly http: http.Server,
    private readonly client: InferenceClient,
    private readonly tokenizer: Tokenizer,
    private readonly policy: BatchPolicy,
  ) {
    const address = http.address() as AddressInfo;
    this.port = address.port;
    this.url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    this.queue = new BatchQueue(
      policy,
      (batch) => this.runBatch(batch),
      (q) => `${q.kind}:${q.normalize}`,
      (q) => q.reject(new HttpError(499, 'Cancelled', 'the client closed the connection before the answer')),
    );
    this.metrics = new ServerMetrics({
      queuedInputs: () => this.queue.size,
      requestsInFlight: () => this.inFlight,
      liveTensors: () => this.client.liveTensors,
      inferenceRestarts: () => this.client.restarts,
    });
    http.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res));
  }

  get model(): ModelDescription {
    return this.client.model;
  }

  stats(): ServerStats {
    return { ...this.counts, inferenceRestarts: this.client.restarts };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const pathname = (req.url ?? '/').split('?')[0]!;
    const method = ENDPOINTS[pathname];
    let status = 200;
    try {
      if (!method) throw new HttpError(404, 'NotFound', `no endpoint ${pathname}; the endpoints are ${Object.entries(ENDPOINTS).map(([p, m]) => `${m} ${p}`).join(', ')}`);
      if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) {
        throw new HttpError(405, 'MethodNotAllowed', `${pathname} takes ${method}, not ${req.method}`, { Allow: method === 'GET' ? 'GET, HEAD' : method });
      }
      if (pathname === '/health') this.health(res);
      else if (pathname === '/info') sendJson(res, 200, this.info(), this.headers());
      else if (pathname === '/metrics') {
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType, ...this.headers() });
        res.end(text);
      } else await this.limited(req, res, pathname as '/predict' | '/embed');
      status = res.statusCode;
    } catch (error) {
      status = sendError(res, this.asHttpError(error), this.headers());
    } finally {
      this.metrics.request(method ? pathname : 'other', status, (performance.now() - started) / 1000);
    }
  }

  /** While draining, every answer closes its connection, so keep-alive clients go elsewhere. */
  private headers(): Record<string, string> {
    return this.draining ? { Connection: 'close' } : {};
  }

  private health(res: http.ServerResponse): void {
    if (this.draining) throw new HttpError(503, 'Unhealthy', 'the server is shutting down');
    if (!this.client.ready) throw new HttpError(503, 'Unhealthy', 'the inference process is starting again after it ended');
    sendJson(res, 200, { status: 'ok' }, this.headers());
  }

  /** /predict and /embed, within --max-concurrent-requests. */
  private async limited(req: http.IncomingMessage, res: http.ServerResponse, endpoint: '/predict' | '/embed'): Promise<void> {
    if (this.draining) throw new HttpError(503, 'Unhealthy', 'the server is shutting down');
    if (this.inFlight >= this.options.maxConcurrentRequests) {
      const seconds = Math.min(60, Math.max(1, Math.ceil(this.queue.size * this.secondsPerInput)));
      throw new HttpError(429, 'Overloaded', `the server is answering ${this.inFlight} requests, its limit (--max-concurrent-requests); retry after ${seconds} s`, { 'Retry-After': String(seconds) });
    }
    this.inFlight += 1;
    const queued: QueuedInput[] = [];
    // A client that goes away leaves its inputs to be dropped from the queue, not run.
    res.on('close', () => {
      if (!res.writableFinished) for (const q of queued) q.cancelled = true;
    });
    try {
      const body = parseJson(await readBody(req, this.options.maxBodyBytes));
      const answer = endpoint === '/predict' ? await this.predict(body, queued) : await this.embed(body, queued);
      sendJson(res, 200, answer, this.headers());
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.whenIdle?.();
    }
  }

  private async predict(body: unknown, queued: QueuedInput[]): Promise<unknown> {
    const model = this.model;
    if (model.kind !== 'classifier') throw new HttpError(400, 'Validation', `${model.workdir} is a pre-trained encoder without a classifier: it answers /embed, not /predict`);
    const request = parsePredict(body, model, this.options.maxClientBatchSize);
    const results = await this.infer('predict', request, false, queued);
    const lists = results.map((r) =>
      model.labels.map((label, k) => ({ score: (request.rawScores ? r.logits! : r.values)[k]!, label })).sort((a, b) => b.score - a.score),
    );
    return request.single ? lists[0] : lists;
  }

  private async embed(body: unknown, queued: QueuedInput[]): Promise<number[][]> {
    const request = parseEmbed(body, this.options.maxClientBatchSize);
    const results = await this.infer('embed', request, request.normalize, queued);
    return results.map((r) => Array.from(r.values));
  }

  /** Tokenizes the inputs, queues them (adding them to `queued`), and resolves with each one's result. */
  private async infer(kind: QueuedInput['kind'], request: { inputs: string[][]; single: boolean; truncate: boolean }, normalize: boolean, queued: QueuedInput[]): Promise<InferenceResult[]> {
    const max = this.model.maxInputLength;
    const rows = await encodeSegments(request.inputs, this.tokenizer, max);
    rows.forEach((row, i) => {
      if (!request.truncate && row.fullLength > max) {
        const where = request.single ? 'inputs' : `inputs[${i}]`;
        throw new HttpError(422, 'Validation', `${where} is ${row.fullLength} tokens long ([CLS] and [SEP] included), more than the model's ${max}; send "truncate": true to cut it`);
      }
    });
    const queuedAt = performance.now();
    return Promise.all(
      rows.map(
        (row) =>
          new Promise<InferenceResult>((resolve, reject) => {
            const item: QueuedInput = { kind, normalize, row, length: row.length, queuedAt, cancelled: false, resolve, reject };
            queued.push(item);
            this.queue.push(item);
          }),
      ),
    );
  }

  /** Runs one batch in the inference process and settles its inputs. */
  private async runBatch(batch: QueuedInput[]): Promise<void> {
    const started = performance.now();
    for (const q of batch) this.metrics.queueDuration.observe((started - q.queuedAt) / 1000);
    const first = batch[0]!;
    const width = batchWidth(batch.map((q) => q.length), this.policy);
    try {
      const result = await this.client.run({ kind: first.kind, rows: batch.map((q) => q.row), padToLongest: this.policy.fixedWidth === undefined, normalize: first.normalize });
      const seconds = (performance.now() - started) / 1000;
      const tokens = batch.reduce((n, q) => n + q.length, 0);
      this.metrics.batch(batch.length, batch.length * width, tokens, seconds);
      this.counts.batches += 1;
      this.counts.inputs += batch.length;
      this.counts.inputTokens += tokens;
      this.counts.paddedTokens += batch.length * width;
      this.secondsPerInput = seconds / batch.length;
      const per = result.values.length / batch.length;
      const perLogit = result.logits ? result.logits.length / batch.length : 0;
      batch.forEach((q, r) =>
        q.resolve({ values: result.values.subarray(r * per, (r + 1) * per), ...(result.logits ? { logits: result.logits.subarray(r * perLogit, (r + 1) * perLogit) } : {}) }),
      );
    } catch (error) {
      for (const q of batch) q.reject(error as Error);
    }
  }

  private asHttpError(error: unknown): unknown {
    if (error instanceof InferenceCrashed) return new HttpError(500, 'Backend', error.message);
    if (error instanceof InferenceUnavailable) return new HttpError(503, 'Unhealthy', error.message);
    return error;
  }

  private info(): Record<string, unknown> {
    const m = this.model;
    const o = this.options;
    const labels = Object.fromEntries(m.labels.map((l, i) => [String(i), l]));
    return {
      model_id: path.resolve(m.workdir),
      model_dtype: 'float32',
      model_type: m.kind === 'classifier' ? { classifier: { id2label: labels, label2id: Object.fromEntries(m.labels.map((l, i) => [l, i])) } } : { embedding: { pooling: 'pooler' } },
      max_concurrent_requests: o.maxConcurrentRequests,
      max_input_length: m.maxInputLength,
      max_batch_tokens: o.maxBatchTokens,
      max_batch_requests: o.maxBatchRequests,
      max_client_batch_size: o.maxClientBatchSize,
      auto_truncate: false,
      version: packageVersion(),
      // Ours, beyond TEI's fields:
      preset: m.preset,
      model_arch: m.modelArch,
      task: m.task ?? null,
      segments: m.segments,
      hidden_size: m.hiddenSize,
      step: m.step,
      device: m.device,
      // Each input is routed through the MoE experts on its own: its result does not depend on its batch.
      moe_routing: m.routing === 'input' ? 'per_input' : 'per_batch',
      batch_width: this.policy.fixedWidth ?? 'longest_input',
      max_wait_ms: o.maxWaitMs,
      max_body_bytes: o.maxBodyBytes,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.draining = true;
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeIdleConnections();
      this.queue.flush();
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.whenIdle = resolve));
      await this.queue.idle();
      this.http.closeAllConnections();
      await closed;
      await this.client.stop();
      this.tokenizer.dispose();
    })();
    return this.closing;
  }
}

/** Loads the workdir's model in an inference process, warms it up and listens. */
export async function serve(options: ServeOptions): Promise<InferenceServer> {
  const o = resolveServeOptions(options);
  const device = o.device === undefined ? undefined : checkDevice(o.device);
  const config = readWorkdirConfig(o.workdir);
  const maxLength = config.max_seq_length;
  if (o.maxBatchTokens < maxLength) {
    throw new RangeError(`maxBatchTokens (${o.maxBatchTokens}) must be at least the model's max_seq_length (${maxLength}): a batch holds at least one input`);
  }
  const policy: BatchPolicy = {
    maxBatchTokens: o.maxBatchTokens,
    maxBatchRequests: o.maxBatchRequests,
    maxWaitMs: o.maxWaitMs,
    fixedWidth: acceptsAnyWidth(config) ? undefined : maxLength,
  };
  const tokenizer = Tokenizer.load(config.vocab_filepath);
  const warmupBatch = Math.min(o.maxBatchRequests, Math.floor(o.maxBatchTokens / maxLength));
  o.log(`loading ${o.workdir} in an inference process and warming it up with a batch of ${warmupBatch} inputs`);
  let client: InferenceClient;
  try {
    client = await InferenceClient.start({ workdir: o.workdir, warmupBatch, ...(o.step !== undefined ? { step: o.step } : {}), ...(device ? { device } : {}) }, o.log);
  } catch (error) {
    tokenizer.dispose();
    throw error;
  }
  const httpServer = http.createServer({ requestTimeout: 60_000 });
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(o.port, o.host, () => resolve());
    });
  } catch (error) {
    await client.stop();
    tokenizer.dispose();
    throw error;
  }
  const server = new Server(o, httpServer, client, tokenizer, policy);
  const m = server.model;
  const what = m.kind === 'classifier' ? `${m.preset} fine-tuned on ${m.task}` : `${m.preset} pre-trained encoder`;
  o.log(`listening on ${server.url}: ${what} (step ${m.step}, ${m.device}); POST /predict /embed, GET /health /info /metrics`);
  return server;
}
