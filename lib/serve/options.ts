// The server's settings: defaults follow Hugging Face text-embeddings-inference where it has the
// same setting, except the host (loopback unless asked) and the batch cap (sized for a CPU).

export interface ServeOptions {
  /** A fine-tuned workdir (every endpoint) or a pre-trained one (/embed only). */
  workdir: string;
  /** Checkpoint step (default: the latest). */
  step?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Default '127.0.0.1'; '0.0.0.0' listens on every interface. */
  host?: string;
  /** Default 3000; 0 takes a free port (the server's `port` says which). */
  port?: number;
  /** Padded tokens per batch at most (default 16384). */
  maxBatchTokens?: number;
  /** Inputs per batch at most (default 32). */
  maxBatchRequests?: number;
  /** How long an input waits for its batch to fill (default 5 ms). */
  maxWaitMs?: number;
  /** Requests of /predict and /embed being answered at once; beyond, 429 (default 512). */
  maxConcurrentRequests?: number;
  /** Inputs one request may hold (default 32). */
  maxClientBatchSize?: number;
  /** Request body bytes at most; beyond, 413 (default 2,000,000). */
  maxBodyBytes?: number;
  /** Progress and lifecycle lines (default: none). */
  log?: (line: string) => void;
}

export type ResolvedServeOptions = Required<Omit<ServeOptions, 'step' | 'device'>> & Pick<ServeOptions, 'step' | 'device'>;

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 3000,
  maxBatchTokens: 16384,
  maxBatchRequests: 32,
  maxWaitMs: 5,
  maxConcurrentRequests: 512,
  maxClientBatchSize: 32,
  maxBodyBytes: 2_000_000,
} as const;

/** Options with defaults filled in; a bad value is an error naming the option. */
export function resolveServeOptions(options: ServeOptions): ResolvedServeOptions {
  const o = { ...SERVE_DEFAULTS, log: () => {}, ...options };
  const positive = ['maxBatchTokens', 'maxBatchRequests', 'maxConcurrentRequests', 'maxClientBatchSize', 'maxBodyBytes'] as const;
  for (const name of positive) {
    const v = o[name];
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (!(o.maxWaitMs >= 0) || !Number.isFinite(o.maxWaitMs)) throw new RangeError(`maxWaitMs must be a number >= 0, got ${o.maxWaitMs}`);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError(`port must be an integer from 0 to 65535, got ${o.port}`);
  if (typeof o.workdir !== 'string' || o.workdir === '') throw new TypeError('workdir is required');
  return o;
}
