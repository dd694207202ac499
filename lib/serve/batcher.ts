// Dynamic batching: inputs from concurrent requests wait in one queue and leave it in batches that
// fit a token budget (inputs × padded width) and an input cap. A batch leaves as soon as it is full,
// or when its oldest input has waited maxWaitMs; while the model runs one batch the next one fills.
// When batches are cut to their longest input, each batch gathers inputs of similar lengths so that
// padding stays small; the oldest input is always in the next batch, so none waits forever.

export interface BatchPolicy {
  /** Padded tokens per batch at most: inputs × the batch's width. */
  maxBatchTokens: number;
  /** Inputs per batch at most. */
  maxBatchRequests: number;
  /** How long the oldest input waits for a batch to fill. */
  maxWaitMs: number;
  /** Every input is padded to this width (models with mixing or MoE layers); undefined: batches are cut to their longest input. */
  fixedWidth: number | undefined;
}

export interface Queued {
  /** Tokens of the input (after truncation). */
  length: number;
  /** performance.now() when it was queued. */
  queuedAt: number;
  /** Its request was abandoned by the client: dropped instead of run. */
  cancelled: boolean;
}

/** The padded width of a batch of inputs with these lengths. */
export function batchWidth(lengths: readonly number[], policy: BatchPolicy): number {
  return policy.fixedWidth ?? Math.max(...lengths);
}

/**
 * Which queued inputs (indices into `lengths`, in arrival order) make the next batch, and whether it
 * is full (the cap is reached, or no other queued input fits the token budget).
 */
export function selectBatch(lengths: readonly number[], policy: BatchPolicy): { indices: number[]; full: boolean } {
  if (lengths.length === 0) return { indices: [], full: false };
  const cap = policy.maxBatchRequests;
  if (policy.fixedWidth !== undefined) {
    const fit = Math.min(cap, Math.max(1, Math.floor(policy.maxBatchTokens / policy.fixedWidth)));
    const n = Math.min(fit, lengths.length);
    return { indices: Array.from({ length: n }, (_, i) => i), full: n === fit };
  }
  // Grow a window of the length-sorted queue around the oldest input, adding whichever neighbour adds
  // the least padding (a shorter one pads itself to the width, a longer one widens every row), as
  // long as the budget holds and no input is padded to more than twice its length.
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const start = order.indexOf(0);
  let lo = start;
  let hi = start;
  const lengthAt = (k: number) => lengths[order[k]!]!;
  const fits = (count: number, width: number) => count <= cap && count * width <= policy.maxBatchTokens;
  for (;;) {
    const count = hi - lo + 2;
    const width = lengthAt(hi);
    const shorter = lo > 0 ? lengthAt(lo - 1) : undefined;
    const longer = hi < order.length - 1 ? lengthAt(hi + 1) : undefined;
    const shorterCost = shorter !== undefined && fits(count, width) && width <= 2 * shorter ? width - shorter : Infinity;
    const longerCost = longer !== undefined && fits(count, longer) && longer <= 2 * lengthAt(lo) ? (count - 1) * (longer - width) : Infinity;
    if (shorterCost === Infinity && longerCost === Infinity) break;
    if (shorterCost <= longerCost) lo -= 1;
    else hi += 1;
  }
  const indices = order.slice(lo, hi + 1).sort((a, b) => a - b);
  return { indices, full: indices.length < lengths.length || indices.length === cap };
}

/**
 * The queue: push inputs; it calls `run` with one batch at a time. Inputs of different kinds (keyOf:
 * e.g. /predict and /embed) never share a batch; the next batch is of the oldest input's kind.
 */
export class BatchQueue<T extends Queued> {
  private readonly queue: T[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private flushing = false;

  constructor(
    private readonly policy: BatchPolicy,
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly keyOf: (item: T) => string = () => '',
    /** Called for each cancelled input as it leaves the queue unrun (to settle whatever waits on it). */
    private readonly dropped: (item: T) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Inputs waiting (not yet in a batch). */
  get size(): number {
    return this.queue.length;
  }

  push(item: T): void {
    this.queue.push(item);
    this.pump();
  }

  /** From now on batches leave without waiting to fill (no more inputs are coming: the server is stopping). */
  flush(): void {
    this.flushing = true;
    this.pump();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (this.running) return;
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.cancelled) this.dropped(this.queue.splice(i, 1)[0]!);
    if (this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    const key = this.keyOf(this.queue[0]!);
    const candidates = this.queue.flatMap((q, i) => (this.keyOf(q) === key ? [i] : []));
    const selected = selectBatch(candidates.map((i) => this.queue[i]!.length), this.policy);
    const indices = selected.indices.map((k) => candidates[k]!);
    const full = selected.full;
    const waited = this.now() - this.queue[0]!.queuedAt;
    if (!full && !this.flushing && waited < this.policy.maxWaitMs) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.policy.maxWaitMs - waited);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const taken = new Set(indices);
    const batch = indices.map((i) => this.queue[i]!);
    for (let i = this.queue.length - 1; i >= 0; i--) if (taken.has(i)) this.queue.splice(i, 1);
    this.running = true;
    // `run` settles each input itself; a rejection here would be a bug in it, and must not stop the queue.
    this.run(batch)
      .catch(() => {})
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
