// The pre-training document stream: sources read one after another, a seeded shuffle buffer,
// repeated epochs, a deterministic held-out split, and a small state that resumes it exactly.
import { DataError } from '../errors';
import { Rng, hash32, type RngState } from '../random';
import { START, readSource, resolveSources, type CorpusSpec, type Document, type ReadDocument, type Source, type SourcePosition } from './sources';

export type CorpusSplit = 'train' | 'eval' | 'all';

export interface CorpusOptions {
  spec: CorpusSpec;
  /** Seeds the shuffling (documents and file order). Default 0. */
  seed?: number;
  /** Documents held in the shuffle buffer; 0 (default) = read in order, no shuffling. */
  shuffleBuffer?: number;
  /** Passes over the corpus; Infinity repeats forever. Default 1. */
  epochs?: number;
  split?: CorpusSplit;
  /** Share of documents held out for 'eval'. Default 0.01. */
  evalFraction?: number;
  /**
   * Seeds the held-out split's hash, apart from `seed`, so that changing the shuffling seed
   * never moves documents between train and eval. Default 0.
   */
  splitSeed?: number;
  /** Resume from a state saved by getState(). */
  state?: CorpusState;
}

/**
 * A checkpoint of the stream, plain JSON. Rather than counting documents from the start (which
 * would mean rereading everything on resume), it records where reading stopped:
 * - epoch, and the epoch's source order (indices into the sorted source list) with the index
 *   of the source being read (order.length once all are read) and its file, checked on restore;
 * - position: just after the last document read from that source — a line count, plus the
 *   byte offset for uncompressed files so resuming seeks; gzip files skip lines on resume;
 * - the Rng's four words and the documents in the shuffle buffer (read but not yet emitted,
 *   at most shuffleBuffer of them), so the next picks are the same;
 * - emitted: documents emitted in this epoch (an epoch with none ends an endless stream);
 * - the split settings, which must match on restore so train and eval stay disjoint.
 */
export interface CorpusState {
  version: 1;
  sources: number;
  epoch: number;
  order: number[];
  sourceIndex: number;
  file: string | null;
  position: SourcePosition;
  emitted: number;
  rng: RngState;
  buffer: Document[];
  split: CorpusSplit;
  evalFraction: number;
  splitSeed: number;
}

/** Whether a document is held out: its file:line hashes below evalFraction (the same in every epoch and run). */
export function isHeldOut(source: Document['source'], evalFraction: number, splitSeed = 0): boolean {
  return mix32(hash32(`${source.file}:${source.line}`, splitSeed)) / 2 ** 32 < evalFraction;
}

/**
 * MurmurHash3's finalizer. FNV-1a's high bits barely change between keys that differ only in
 * their last characters (line numbers), so without it the split of 233 documents at 10% held out
 * anywhere from 0% to 43% of them depending on the file name; with it, it is binomial.
 */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class CorpusStream implements AsyncIterable<Document> {
  /** The resolved sources, in sorted order (each epoch reads them in its own order). */
  readonly sources: readonly Source[];
  private readonly shuffleBuffer: number;
  private readonly epochs: number;
  private readonly split: CorpusSplit;
  private readonly evalFraction: number;
  private readonly splitSeed: number;
  private readonly rng: Rng;
  private epochIndex = 0;
  private order: number[] = [];
  private sourceIndex = 0;
  private position: SourcePosition = START;
  private emitted = 0;
  private buffer: Document[] = [];
  private reader: AsyncGenerator<ReadDocument> | undefined;
  // next() calls run one after another, so a prefetching caller may issue several at once.
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private closed = false;

  constructor(options: CorpusOptions) {
    const { seed = 0, shuffleBuffer = 0, epochs = 1, split = 'all', evalFraction = 0.01, splitSeed = 0 } = options;
    if (!Number.isInteger(seed)) throw new RangeError(`CorpusStream: seed must be an integer, got ${seed}`);
    if (!Number.isInteger(shuffleBuffer) || shuffleBuffer < 0) throw new RangeError(`CorpusStream: shuffleBuffer must be an integer >= 0, got ${shuffleBuffer}`);
    if (!(epochs === Infinity || (Number.isInteger(epochs) && epochs >= 1))) throw new RangeError(`CorpusStream: epochs must be an integer >= 1 or Infinity, got ${epochs}`);
    if (split !== 'train' && split !== 'eval' && split !== 'all') throw new RangeError(`CorpusStream: split must be 'train', 'eval' or 'all', got ${String(split)}`);
    if (!(evalFraction >= 0 && evalFraction <= 1)) throw new RangeError(`CorpusStream: evalFraction must be in [0, 1], got ${evalFraction}`);
    if (!Number.isInteger(splitSeed)) throw new RangeError(`CorpusStream: splitSeed must be an integer, got ${splitSeed}`);
    this.sources = resolveSources(options.spec);
    this.shuffleBuffer = shuffleBuffer;
    this.epochs = epochs;
    this.split = split;
    this.evalFraction = evalFraction;
    this.splitSeed = splitSeed;
    this.rng = new Rng(seed);
    if (options.state === undefined) this.startEpoch(0);
    else this.setState(options.state);
  }

  /** A stream that continues exactly where the one that saved `state` was. */
  static restore(options: Omit<CorpusOptions, 'state'>, state: CorpusState): CorpusStream {
    return new CorpusStream({ ...options, state });
  }

  /** The epoch being read, from 0. */
  get epoch(): number {
    return this.epochIndex;
  }

  /** The next document, or undefined once all epochs are done. */
  next(): Promise<Document | undefined> {
    if (this.closed) return Promise.reject(new Error('CorpusStream: next() after close()'));
    this.inFlight++;
    const result = this.queue.then(() => this.pull()).finally(() => this.inFlight--);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Iterates the remaining documents. Breaking out leaves the stream open (getState() still works); call close(). */
  [Symbol.asyncIterator](): AsyncIterator<Document> {
    return {
      next: async (): Promise<IteratorResult<Document>> => {
        const doc = await this.next();
        return doc === undefined ? { done: true, value: undefined } : { done: false, value: doc };
      },
    };
  }

  getState(): CorpusState {
    if (this.inFlight > 0) throw new Error('CorpusStream: getState() while a next() is pending; await it first');
    return {
      version: 1,
      sources: this.sources.length,
      epoch: this.epochIndex,
      order: [...this.order],
      sourceIndex: this.sourceIndex,
      file: this.currentSource()?.file ?? null,
      position: { ...this.position },
      emitted: this.emitted,
      rng: this.rng.getState(),
      buffer: this.buffer.map((d) => ({ text: d.text, source: { ...d.source } })),
      split: this.split,
      evalFraction: this.evalFraction,
      splitSeed: this.splitSeed,
    };
  }

  /** Releases the open file; waits for a pending next() first. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const reader = this.reader;
    this.reader = undefined;
    await reader?.return(undefined);
  }

  private async pull(): Promise<Document | undefined> {
    for (;;) {
      await this.fill();
      if (this.buffer.length > 0) return this.take();
      // The epoch is over. One that yielded nothing would yield nothing forever: stop.
      if (this.emitted === 0 || this.epochIndex + 1 >= this.epochs) return undefined;
      this.startEpoch(this.epochIndex + 1);
    }
  }

  /** Reads until the buffer is full or the epoch's sources are all read. */
  private async fill(): Promise<void> {
    const size = Math.max(1, this.shuffleBuffer);
    while (this.buffer.length < size) {
      const source = this.currentSource();
      if (source === undefined) return;
      this.reader ??= readSource(source, this.position);
      let r: IteratorResult<ReadDocument>;
      try {
        r = await this.reader.next();
      } catch (err) {
        // A failed reader is finished; reopening at the same position fails the same way again
        // instead of silently skipping the rest of the file.
        this.reader = undefined;
        throw err;
      }
      if (r.done) {
        this.reader = undefined;
        this.sourceIndex++;
        this.position = START;
        continue;
      }
      this.position = r.value.after;
      if (this.wanted(r.value.doc)) this.buffer.push(r.value.doc);
    }
  }

  /** Emits a uniformly random buffered document (the first when not shuffling); the hole takes the last one. */
  private take(): Document {
    this.emitted++;
    if (this.shuffleBuffer <= 1) return this.buffer.shift()!;
    const j = this.rng.int(0, this.buffer.length);
    const doc = this.buffer[j]!;
    const last = this.buffer.pop()!;
    if (j < this.buffer.length) this.buffer[j] = last;
    return doc;
  }

  private wanted(doc: Document): boolean {
    if (this.split === 'all') return true;
    return isHeldOut(doc.source, this.evalFraction, this.splitSeed) === (this.split === 'eval');
  }

  private startEpoch(epoch: number): void {
    this.epochIndex = epoch;
    this.order = this.sources.map((_, i) => i);
    if (this.shuffleBuffer > 0) this.rng.shuffle(this.order);
    this.sourceIndex = 0;
    this.position = START;
    this.emitted = 0;
  }

  private currentSource(): Source | undefined {
    const i = this.order[this.sourceIndex];
    return i === undefined ? undefined : this.sources[i];
  }

  private setState(state: CorpusState): void {
    const bad = (why: string): never => {
      throw new DataError(`cannot restore the corpus stream: ${why}`);
    };
    if (state === null || typeof state !== 'object' || state.version !== 1) bad('not a version 1 CorpusState');
    if (state.sources !== this.sources.length) bad(`it was saved with ${state.sources} sources, the spec now resolves to ${this.sources.length}`);
    const n = this.sources.length;
    const isPermutation = Array.isArray(state.order) && state.order.length === n && new Set(state.order).size === n && state.order.every((i) => Number.isInteger(i) && i >= 0 && i < n);
    if (!isPermutation) bad('order is not a permutation of the sources');
    if (!(Number.isInteger(state.sourceIndex) && state.sourceIndex >= 0 && state.sourceIndex <= n)) bad(`bad sourceIndex ${state.sourceIndex}`);
    const file = state.sourceIndex < n ? this.sources[state.order[state.sourceIndex]!]!.file : null;
    if (file !== state.file) bad(`it was reading ${state.file}, which is now ${file}`);
    if (state.split !== this.split || state.evalFraction !== this.evalFraction || state.splitSeed !== this.splitSeed) {
      bad(`it was saved with split ${state.split} (evalFraction ${state.evalFraction}, splitSeed ${state.splitSeed}), not ${this.split} (${this.evalFraction}, ${this.splitSeed})`);
    }
    const count = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0;
    const { line, offset } = state.position ?? {};
    if (!count(line) || !(offset === null || count(offset))) bad('bad position');
    if (!count(state.epoch) || !count(state.emitted) || !Array.isArray(state.buffer)) bad('bad epoch, emitted or buffer');
    if (!Array.isArray(state.rng) || state.rng.length !== 4 || !state.rng.every((w) => count(w) && w < 2 ** 32)) bad('bad rng');
    this.epochIndex = state.epoch;
    this.order = [...state.order];
    this.sourceIndex = state.sourceIndex;
    this.position = { line: state.position.line, offset: state.position.offset };
    this.emitted = state.emitted;
    this.rng.setState(state.rng);
    this.buffer = state.buffer.map((d) => ({ text: d.text, source: { ...d.source } }));
  }
}
