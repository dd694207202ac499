// SentencePiece tokenizers (REFERENCE §3): [CLS], [SEP] and [MASK] are looked up by piece, the pad
// id is the model's, no BOS/EOS are added. Encoding of batches runs off the JavaScript thread.
import * as fs from 'fs';
import * as os from 'os';
import { N } from '../tensor/native';
import { showValue } from '../util/excerpt';
import { DataError } from './errors';

export const SPECIAL_PIECES = { cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' } as const;

const HOW_TO_TRAIN =
  'Train a compatible model with `sparse-mixer vocab --corpus sotu --output vocab.model` (or SentencePiece with ' +
  '--user_defined_symbols=[CLS],[SEP],[MASK] --pad_id=0 --unk_id=1 --bos_id=-1 --eos_id=-1).';

export class Tokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  /** Ids never masked nor drawn as random replacements: [CLS], [SEP], [MASK], pad, unk. */
  readonly specialIds: ReadonlySet<number>;
  private id: number;
  private static readonly finalizer = new FinalizationRegistry<number>((id) => N.spFree(id));

  private constructor(id: number, readonly source: string) {
    this.id = id;
    Tokenizer.finalizer.register(this, id, this);
    const info = N.spInfo(id);
    this.vocabSize = info.vocabSize;
    this.padId = info.padId;
    this.unkId = info.unkId;
    const lookup = (piece: string) => {
      const pid = N.spPieceToId(id, piece);
      return pid === info.unkId && piece !== N.spIdToPiece(id, info.unkId) ? -1 : pid;
    };
    this.clsId = lookup(SPECIAL_PIECES.cls);
    this.sepId = lookup(SPECIAL_PIECES.sep);
    this.maskId = lookup(SPECIAL_PIECES.mask);
    const missing = [
      ...Object.entries({ '[CLS]': this.clsId, '[SEP]': this.sepId, '[MASK]': this.maskId }).filter(([, v]) => v < 0).map(([k]) => `piece ${k}`),
      ...(this.padId < 0 ? ['a pad id'] : []),
    ];
    if (missing.length) {
      this.dispose();
      throw new DataError(`the SentencePiece model has no ${missing.join(', ')}. ${HOW_TO_TRAIN}`, source);
    }
    this.specialIds = new Set([this.clsId, this.sepId, this.maskId, this.padId, this.unkId].filter((v) => v >= 0));
  }

  /** Loads a .model file (path) or its bytes, and checks it has what the models need. */
  static load(model: string | Uint8Array): Tokenizer {
    if (typeof model === 'string' && !fs.existsSync(model)) throw new DataError('no such SentencePiece model file', model);
    let id: number;
    try {
      id = N.spLoad(model);
    } catch (error) {
      throw new DataError(`not a SentencePiece model (${(error as Error).message})`, typeof model === 'string' ? model : '<bytes>');
    }
    return new Tokenizer(id, typeof model === 'string' ? model : '<bytes>');
  }

  private get handle(): number {
    if (this.id < 0) throw new Error('Tokenizer is disposed');
    return this.id;
  }

  encode(text: string): Int32Array {
    return N.spEncode(this.handle, text);
  }

  encodePieces(text: string): string[] {
    return N.spEncodePieces(this.handle, text);
  }

  decode(ids: ArrayLike<number>): string {
    // Int32Array.from would turn 1.5 into 1, NaN into 0 and 2^31 into -2^31 without a word.
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`decode: ids[${i}] is ${String(id)}, not an id of this vocabulary [0, ${this.vocabSize})`);
      }
    }
    return N.spDecode(this.handle, Int32Array.from(ids));
  }

  pieceToId(piece: string): number {
    return N.spPieceToId(this.handle, piece);
  }

  idToPiece(id: number): string {
    return N.spIdToPiece(this.handle, id);
  }

  /** Encodes many texts on a worker thread, so tokenization overlaps training. */
  async encodeBatch(texts: readonly string[]): Promise<Int32Array[]> {
    const { ids, offsets } = await N.spEncodeBatch(this.handle, texts);
    const out: Int32Array[] = [];
    for (let k = 0; k < texts.length; k++) out.push(ids.subarray(offsets[k]!, offsets[k + 1]!));
    return out;
  }

  dispose(): void {
    if (this.id < 0) return;
    N.spFree(this.id);
    Tokenizer.finalizer.unregister(this);
    this.id = -1;
  }
}

export interface TrainTokenizerOptions {
  vocabSize: number;
  modelType?: 'bpe' | 'unigram';
  characterCoverage?: number;
  /** Sentences sampled for training at most (SentencePiece's input_sentence_size). */
  maxSentences?: number;
  /** Longest sentence kept, in bytes. */
  maxSentenceLength?: number;
  threads?: number;
}

/**
 * Trains a SentencePiece model on sentences (on a worker thread) with the pieces and ids the models
 * need: pad 0, unk 1, [CLS] 2, [SEP] 3, [MASK] 4, no BOS/EOS. Returns the serialized model.
 */
export async function trainTokenizer(sentences: readonly string[], options: TrainTokenizerOptions): Promise<Uint8Array> {
  const o = { modelType: 'bpe', characterCoverage: 0.9995, maxSentences: 1_000_000, maxSentenceLength: 8192, threads: Math.min(2, os.availableParallelism()), ...options };
  // The options become SentencePiece flags in one string: anything but these values could smuggle in
  // more flags, and SentencePiece starts as many threads as it is told.
  if (!Number.isSafeInteger(o.vocabSize) || o.vocabSize < 8) throw new RangeError(`vocabSize must be an integer >= 8, got ${o.vocabSize}`);
  if (o.modelType !== 'bpe' && o.modelType !== 'unigram') throw new RangeError(`modelType must be 'bpe' or 'unigram', got ${showValue(o.modelType)}`);
  if (!(typeof o.characterCoverage === 'number' && o.characterCoverage > 0 && o.characterCoverage <= 1)) throw new RangeError(`characterCoverage must be in (0, 1], got ${showValue(o.characterCoverage)}`);
  for (const key of ['maxSentences', 'maxSentenceLength'] as const) {
    if (!Number.isSafeInteger(o[key]) || o[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${showValue(o[key])}`);
  }
  if (!Number.isSafeInteger(o.threads) || o.threads < 1 || o.threads > os.availableParallelism()) {
    throw new RangeError(`threads must be an integer from 1 to ${os.availableParallelism()} (the CPUs available), got ${showValue(o.threads)}`);
  }
  const usable = sentences.filter((s) => s.trim() !== '');
  if (usable.length === 0) throw new DataError('no sentences to train a vocabulary on');
  const args = [
    `--model_type=${o.modelType}`,
    `--vocab_size=${o.vocabSize}`,
    `--character_coverage=${o.characterCoverage}`,
    `--input_sentence_size=${o.maxSentences}`,
    `--shuffle_input_sentence=true`,
    `--max_sentence_length=${o.maxSentenceLength}`,
    `--num_threads=${o.threads}`,
    '--pad_id=0',
    '--unk_id=1',
    '--bos_id=-1',
    '--eos_id=-1',
    `--user_defined_symbols=${SPECIAL_PIECES.cls},${SPECIAL_PIECES.sep},${SPECIAL_PIECES.mask}`,
    '--hard_vocab_limit=false',
    '--minloglevel=2',
  ].join(' ');
  return N.spTrain(args, usable);
}
