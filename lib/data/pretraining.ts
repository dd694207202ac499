// The pre-training input pipeline: corpus documents -> lines tokenized on a worker thread ->
// sentence-order pairs -> dynamically masked examples -> batches, reproducible from a seed and
// resumable exactly from a saved state.
import { CorpusStream, type CorpusOptions, type CorpusState } from './corpus';
import { pretrainingExample, segmentPairs, type PretrainingExample, type SegmentPair } from './examples';
import { Rng, type RngState } from './random';
import type { Tokenizer } from './tokenizer';

export interface PretrainingOptions {
  corpus: Omit<CorpusOptions, 'state'>;
  tokenizer: Tokenizer;
  maxSeqLength: number;
  batchSize: number;
  maxPredictionsPerSeq?: number;
  /** Seeds pairing and masking (the corpus has its own seed). */
  seed?: number;
  /** Documents tokenized per worker call at most. */
  documentsPerChunk?: number;
  /**
   * Characters of text tokenized per worker call at most (a call takes at least one document):
   * bounds the memory a call holds at once. With long documents (whole speeches, books) and a
   * short max_seq_length, most lines are too long to pair and are dropped, so a call over 32
   * documents would tokenize megabytes of text to fill a few batches; allocating and freeing that
   * every few steps made resident memory swing by tens of MB (V8's young generation and malloc
   * fragmentation). Default 65,536.
   */
  charactersPerChunk?: number;
}

/** Everything needed to continue exactly after the last batch taken. */
export interface PretrainingState {
  corpus: CorpusState;
  rng: RngState;
  /** Pairs made from documents already read but not yet batched. */
  pending: SegmentPair[];
}

/** Splits a document into its non-empty lines (REFERENCE §3: each line is tokenized on its own). */
export function documentLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export class PretrainingStream {
  private readonly corpus: CorpusStream;
  private readonly rng: Rng;
  private pending: SegmentPair[];
  private finished = false;
  readonly maxPredictions: number;

  constructor(
    private readonly options: PretrainingOptions,
    state?: PretrainingState,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    this.maxPredictions = options.maxPredictionsPerSeq ?? 80;
    this.corpus = state ? CorpusStream.restore(options.corpus, state.corpus) : new CorpusStream(options.corpus);
    this.rng = new Rng(state ? state.rng : (options.seed ?? 0));
    this.pending = state ? state.pending.map((p) => ({ ...p })) : [];
  }

  get epoch(): number {
    return this.corpus.epoch;
  }

  /** The next batch of examples, or undefined when the corpus (all its epochs) is exhausted. */
  async nextBatch(): Promise<PretrainingExample[] | undefined> {
    const { batchSize, tokenizer, maxSeqLength } = this.options;
    while (this.pending.length < batchSize && !this.finished) await this.refill();
    if (this.pending.length === 0) return undefined;
    const pairs = this.pending.splice(0, batchSize);
    return pairs.map((p) => pretrainingExample(p, tokenizer, maxSeqLength, this.maxPredictions, this.rng));
  }

  /** Reads a chunk of documents, tokenizes all their lines in one worker call, makes pairs. */
  private async refill(): Promise<void> {
    const documents: string[][] = [];
    const chunk = this.options.documentsPerChunk ?? 32;
    const maxChars = this.options.charactersPerChunk ?? 1 << 16;
    let chars = 0;
    while (documents.length < chunk && chars < maxChars) {
      const doc = await this.corpus.next();
      if (doc === undefined) {
        this.finished = true;
        break;
      }
      documents.push(documentLines(doc.text));
      chars += doc.text.length;
    }
    const encoded = await this.options.tokenizer.encodeBatch(documents.flat());
    let offset = 0;
    for (const lines of documents) {
      const ids = encoded.slice(offset, offset + lines.length);
      offset += lines.length;
      this.pending.push(...segmentPairs(ids, this.options.maxSeqLength, this.rng));
    }
  }

  getState(): PretrainingState {
    return { corpus: this.corpus.getState(), rng: this.rng.getState(), pending: this.pending.map((p) => ({ ...p })) };
  }

  async close(): Promise<void> {
    await this.corpus.close();
  }
}

/**
 * Keeps up to `depth` batches in preparation while the consumer trains on the current one, and
 * hands each out with the pipeline state right after it (what a checkpoint saves).
 */
export class Prefetcher<T, S> {
  private queue: Promise<{ item: T | undefined; state: S }>[] = [];

  constructor(
    private readonly produce: () => Promise<T | undefined>,
    private readonly snapshot: () => S,
    private readonly depth = 2,
  ) {}

  /** The next item and the state after it; fills the queue back up before returning. */
  async next(): Promise<{ item: T | undefined; state: S }> {
    while (this.queue.length < this.depth) this.queue.push(this.chain());
    const head = this.queue.shift()!;
    this.queue.push(this.chain());
    return head;
  }

  private last: Promise<unknown> = Promise.resolve();

  // Items are produced strictly one after another (the producer is stateful).
  private chain(): Promise<{ item: T | undefined; state: S }> {
    const result = this.last.then(async () => {
      const item = await this.produce();
      return { item, state: this.snapshot() };
    });
    this.last = result.catch(() => undefined);
    return result;
  }

  /** Waits for work in flight (call before closing the producer). */
  async drain(): Promise<void> {
    await this.last;
    this.queue = [];
  }
}
