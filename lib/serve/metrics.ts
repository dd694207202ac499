// The server's Prometheus metrics, kept and written by prom-client in a registry of the server's own
// (several servers in one process do not mix), with Node's process metrics (CPU, memory, event-loop
// lag: the lag stays small while a batch runs, because the model runs in another process).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const TOKEN_BUCKETS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
/** tokens_per_second is the rate over this window. */
const RATE_WINDOW_MS = 60_000;

/** What the gauges read when scraped. */
export interface MetricsProbe {
  queuedInputs(): number;
  requestsInFlight(): number;
  liveTensors(): number;
  inferenceRestarts(): number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint' | 'status'>;
  readonly requestDuration: Histogram<'endpoint'>;
  readonly queueDuration: Histogram;
  readonly inferenceDuration: Histogram;
  readonly batchInputs: Histogram;
  readonly batchTokens: Histogram;
  readonly inputTokens: Counter;
  /** Finished batches' real tokens, for the tokens-per-second gauge. */
  private readonly recent: { at: number; tokens: number }[] = [];
  private readonly startedAt = performance.now();

  constructor(probe: MetricsProbe) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'sparse_mixer_requests_total', help: 'HTTP requests answered, by endpoint and status code', labelNames: ['endpoint', 'status'], registers });
    this.requestDuration = new Histogram({ name: 'sparse_mixer_request_duration_seconds', help: 'Time from a request arriving to its answer', labelNames: ['endpoint'], buckets: LATENCY_BUCKETS, registers });
    this.queueDuration = new Histogram({ name: 'sparse_mixer_queue_duration_seconds', help: 'Time an input waited in the queue before its batch started', buckets: LATENCY_BUCKETS, registers });
    this.inferenceDuration = new Histogram({ name: 'sparse_mixer_inference_duration_seconds', help: 'Time the model took for a batch, the transfer to and from the inference process included', buckets: LATENCY_BUCKETS, registers });
    this.batchInputs = new Histogram({ name: 'sparse_mixer_batch_inputs', help: 'Inputs per batch', buckets: SIZE_BUCKETS, registers });
    this.batchTokens = new Histogram({ name: 'sparse_mixer_batch_tokens', help: 'Padded tokens per batch (inputs times width)', buckets: TOKEN_BUCKETS, registers });
    this.inputTokens = new Counter({ name: 'sparse_mixer_input_tokens_total', help: 'Tokens of the inputs run (without padding)', registers });
    const recent = this.recent;
    const startedAt = this.startedAt;
    new Gauge({
      name: 'sparse_mixer_tokens_per_second',
      help: `Input tokens run per second over the last ${RATE_WINDOW_MS / 1000} s`,
      registers,
      collect() {
        const now = performance.now();
        while (recent.length && now - recent[0]!.at > RATE_WINDOW_MS) recent.shift();
        const window = Math.min(RATE_WINDOW_MS, now - startedAt) / 1000;
        this.set(window > 0 ? recent.reduce((n, r) => n + r.tokens, 0) / window : 0);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    gauge('sparse_mixer_queue_inputs', 'Inputs waiting for a batch', () => probe.queuedInputs());
    gauge('sparse_mixer_requests_in_flight', 'Requests of /predict and /embed being answered (the --max-concurrent-requests count)', () => probe.requestsInFlight());
    gauge('sparse_mixer_inference_live_tensors', 'Live tensors in the inference process after its last batch (flat unless something leaks)', () => probe.liveTensors());
    gauge('sparse_mixer_inference_restarts', 'Times the inference process ended and was started again', () => probe.inferenceRestarts());
  }

  /** Records a finished batch. */
  batch(inputs: number, paddedTokens: number, realTokens: number, seconds: number): void {
    this.batchInputs.observe(inputs);
    this.batchTokens.observe(paddedTokens);
    this.inputTokens.inc(realTokens);
    this.inferenceDuration.observe(seconds);
    const now = performance.now();
    this.recent.push({ at: now, tokens: realTokens });
    while (now - this.recent[0]!.at > RATE_WINDOW_MS) this.recent.shift();
  }

  /** Records an answered request. */
  request(endpoint: string, status: number, seconds: number): void {
    this.requests.inc({ endpoint, status: String(status) });
    this.requestDuration.observe({ endpoint }, seconds);
  }
}
