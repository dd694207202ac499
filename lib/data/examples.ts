// Turning token ids into model inputs (REFERENCE §3): sentence-order pairs from consecutive lines,
// the [CLS] A [SEP] B [SEP] layout, dynamic 80/10/10 masking, and the classification layout.
import type { Rng } from './random';

/** Ids of the special pieces, from the tokenizer. */
export interface SpecialIds {
  clsId: number;
  sepId: number;
  maskId: number;
  padId: number;
  vocabSize: number;
  /** Ids never drawn as random replacements. */
  specialIds: ReadonlySet<number>;
}

export interface SegmentPair {
  a: number[];
  b: number[];
  /** 1: B follows A in the document; 0: the order was swapped. */
  label: 0 | 1;
}

/**
 * Walks the tokenized lines of one document: two consecutive lines longer than L-3 together skip
 * one line; otherwise the longest run of >= 2 lines totalling <= L-3 is split at a uniform pivot
 * into A and B, kept in order (label 1) or swapped (label 0) with probability 1/2.
 */
export function segmentPairs(lines: readonly ArrayLike<number>[], maxLength: number, rng: Rng): SegmentPair[] {
  const budget = maxLength - 3;
  const pairs: SegmentPair[] = [];
  let i = 0;
  while (i + 1 < lines.length) {
    let total = lines[i]!.length + lines[i + 1]!.length;
    if (total > budget) {
      i += 1;
      continue;
    }
    let j = i + 2;
    while (j < lines.length && total + lines[j]!.length <= budget) total += lines[j++]!.length;
    const pivot = rng.int(1, j - i);
    const join = (from: number, to: number) => {
      const out: number[] = [];
      for (let k = from; k < to; k++) {
        const l = lines[k]!;
        for (let t = 0; t < l.length; t++) out.push(l[t]!);
      }
      return out;
    };
    const first = join(i, i + pivot);
    const second = join(i + pivot, j);
    pairs.push(rng.next() < 0.5 ? { a: first, b: second, label: 1 } : { a: second, b: first, label: 0 });
    i = j;
  }
  return pairs;
}

export interface PretrainingExample {
  inputIds: Int32Array; // [L]
  typeIds: Int32Array; // [L]
  nextSentenceLabel: number;
  maskedPositions: Int32Array; // [P]
  maskedIds: Int32Array; // [P]
  maskedWeights: Float32Array; // [P]
}

/** [CLS] A [SEP] B [SEP], padded to L; type 0 through the first [SEP], 1 for B and its [SEP]. */
export function layoutPair(pair: SegmentPair, ids: SpecialIds, maxLength: number): { inputIds: Int32Array; typeIds: Int32Array } {
  const length = pair.a.length + pair.b.length + 3;
  if (length > maxLength) throw new Error(`pair of ${length} tokens exceeds max_seq_length ${maxLength}`);
  const inputIds = new Int32Array(maxLength).fill(ids.padId);
  const typeIds = new Int32Array(maxLength);
  inputIds[0] = ids.clsId;
  inputIds.set(pair.a, 1);
  inputIds[pair.a.length + 1] = ids.sepId;
  inputIds.set(pair.b, pair.a.length + 2);
  inputIds[length - 1] = ids.sepId;
  typeIds.fill(1, pair.a.length + 2, length);
  return { inputIds, typeIds };
}

/**
 * Dynamic masking: min(P, max(1, floor(0.15 · non-pad tokens))) positions, drawn uniformly without
 * replacement among tokens other than [CLS], [SEP] and pad, sorted; each becomes [MASK] (80%), a
 * random non-special id (10%) or stays (10%). Returns the masked inputs and the padded targets.
 */
export function maskTokens(
  inputIds: Int32Array,
  ids: SpecialIds,
  maxPredictions: number,
  rng: Rng,
  maskRate = 0.15,
): { inputIds: Int32Array; maskedPositions: Int32Array; maskedIds: Int32Array; maskedWeights: Float32Array } {
  const candidates: number[] = [];
  let nonPad = 0;
  for (let i = 0; i < inputIds.length; i++) {
    const id = inputIds[i]!;
    if (id === ids.padId) continue;
    nonPad++;
    if (id !== ids.clsId && id !== ids.sepId) candidates.push(i);
  }
  const count = Math.min(maxPredictions, Math.max(1, Math.floor(nonPad * maskRate)), candidates.length);
  // Partial Fisher-Yates: the first `count` entries become a uniform sample without replacement.
  for (let k = 0; k < count; k++) {
    const j = rng.int(k, candidates.length);
    [candidates[k], candidates[j]] = [candidates[j]!, candidates[k]!];
  }
  const positions = candidates.slice(0, count).sort((p, q) => p - q);
  const masked = inputIds.slice();
  const maskedPositions = new Int32Array(maxPredictions);
  const maskedIds = new Int32Array(maxPredictions);
  const maskedWeights = new Float32Array(maxPredictions);
  positions.forEach((pos, k) => {
    maskedPositions[k] = pos;
    maskedIds[k] = inputIds[pos]!;
    maskedWeights[k] = 1;
    const r = rng.next();
    if (r < 0.8) masked[pos] = ids.maskId;
    else if (r < 0.9) masked[pos] = randomRegularId(ids, rng);
  });
  return { inputIds: masked, maskedPositions, maskedIds, maskedWeights };
}

function randomRegularId(ids: SpecialIds, rng: Rng): number {
  if (ids.specialIds.size >= ids.vocabSize) throw new Error('the vocabulary has no regular pieces');
  for (;;) {
    const id = rng.int(0, ids.vocabSize);
    if (!ids.specialIds.has(id)) return id;
  }
}

export function pretrainingExample(pair: SegmentPair, ids: SpecialIds, maxLength: number, maxPredictions: number, rng: Rng): PretrainingExample {
  const { inputIds, typeIds } = layoutPair(pair, ids, maxLength);
  const masked = maskTokens(inputIds, ids, maxPredictions, rng);
  return {
    inputIds: masked.inputIds,
    typeIds,
    nextSentenceLabel: pair.label,
    maskedPositions: masked.maskedPositions,
    maskedIds: masked.maskedIds,
    maskedWeights: masked.maskedWeights,
  };
}

/**
 * Classification layout: [CLS], then each segment followed by [SEP]; segment k has type id k
 * ([CLS] is 0); the whole sequence is truncated to L keeping the head; padded with pad / type 0.
 * With padToLongest the arrays are as long as the example instead of L.
 */
export function layoutSegments(segments: readonly ArrayLike<number>[], ids: SpecialIds, maxLength: number): { inputIds: Int32Array; typeIds: Int32Array; length: number } {
  const tokens: number[] = [ids.clsId];
  const types: number[] = [0];
  segments.forEach((segment, k) => {
    for (let i = 0; i < segment.length; i++) {
      tokens.push(segment[i]!);
      types.push(k);
    }
    tokens.push(ids.sepId);
    types.push(k);
  });
  const length = Math.min(tokens.length, maxLength);
  const inputIds = new Int32Array(maxLength).fill(ids.padId);
  const typeIds = new Int32Array(maxLength);
  inputIds.set(tokens.slice(0, length));
  typeIds.set(types.slice(0, length));
  return { inputIds, typeIds, length };
}
