// Inputs shared by our models and the PyTorch peer (bench/models_peer.py): a deterministic
// synthetic pre-training batch with a realistic layout, and the safetensors files the peer loads.
import * as path from 'path';
import type { ModelConfig, PretrainingBatch } from '../lib/model';
import type { Module } from '../lib/nn';
import { tensor, type Device, type Tensor } from '../lib/tensor';
import { saveSafetensors } from '../lib/train/checkpoint';

/** Uniform numbers in [0, 1) from a seed (mulberry32): the same batch on every machine. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A pre-training batch shaped like the real pipeline's: `[CLS] A [SEP] B [SEP]` then padding
 * (pad_id) in some rows (row 0 is never padded), type ids 0 up to the first [SEP] and 1 for B,
 * ordinary tokens in [5, vocab), the specials taken from 1..4 (skipping pad_id). Per row,
 * P = min(80, max(1, round(0.15·L))) sorted distinct positions of ordinary tokens are masked
 * (80% [MASK], 10% random, 10% kept) with weight 1; rows with fewer candidates pad with weight 0.
 */
export function syntheticPretrainingBatch(config: ModelConfig, batchSize: number, seqLength: number, seed: number, device?: Device): PretrainingBatch {
  const V = config.vocab_size;
  const L = seqLength;
  if (V < 6) throw new Error(`syntheticPretrainingBatch needs vocab_size >= 6, got ${V}`);
  if (L < 5 || L > config.max_seq_length) throw new Error(`seqLength must be in [5, max_seq_length ${config.max_seq_length}], got ${L}`);
  const [cls, sep, maskId] = [1, 2, 3, 4].filter((id) => id !== config.pad_id) as [number, number, number];
  const random = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo)); // [lo, hi)
  const P = Math.min(80, Math.max(1, Math.round(0.15 * L)));
  const ids = new Int32Array(batchSize * L).fill(config.pad_id);
  const types = new Int32Array(batchSize * L);
  const positions = new Int32Array(batchSize * P);
  const labels = new Int32Array(batchSize * P);
  const weights = new Float32Array(batchSize * P);
  const nsp = new Int32Array(batchSize);
  for (let b = 0; b < batchSize; b++) {
    const row = b * L;
    // Real length: the full row for example 0 and every third one, else up to a quarter padding.
    const real = b % 3 === 0 ? L : L - int(1, Math.max(2, Math.floor(L / 4) + 1));
    const firstSep = int(2, real - 2); // A is 1..firstSep-1, B is firstSep+1..real-2
    const candidates: number[] = [];
    for (let i = 0; i < real; i++) {
      if (i === 0) ids[row] = cls;
      else if (i === firstSep || i === real - 1) ids[row + i] = sep;
      else {
        ids[row + i] = int(5, V);
        candidates.push(i);
      }
      types[row + i] = i > firstSep ? 1 : 0;
    }
    // Partial Fisher-Yates: the first n candidates are a uniform sample; then sorted.
    const n = Math.min(P, candidates.length);
    for (let i = 0; i < n; i++) {
      const j = int(i, candidates.length);
      [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
    }
    const chosen = candidates.slice(0, n).sort((x, y) => x - y);
    chosen.forEach((pos, k) => {
      positions[b * P + k] = pos;
      labels[b * P + k] = ids[row + pos]!;
      weights[b * P + k] = 1;
      const r = random();
      if (r < 0.8) ids[row + pos] = maskId;
      else if (r < 0.9) ids[row + pos] = int(5, V);
    });
    nsp[b] = int(0, 2);
  }
  const long = (data: Int32Array, shape: number[]) => tensor(data, { shape, dtype: 'int64', device });
  return {
    input_ids: long(ids, [batchSize, L]),
    type_ids: long(types, [batchSize, L]),
    masked_lm_positions: long(positions, [batchSize, P]),
    masked_lm_ids: long(labels, [batchSize, P]),
    masked_lm_weights: tensor(weights, { shape: [batchSize, P], dtype: 'float32', device }),
    next_sentence_labels: long(nsp, [batchSize]),
  };
}

/**
 * Writes dir/model.safetensors (the model's parameters by name; skipped without a model) and
 * dir/batch.safetensors (the batch's six fields), the files of the peer's `load` request.
 */
export function writePeerInputs(dir: string, model: Module | undefined, batch: PretrainingBatch): { weights: string | null; batch: string } {
  let weights: string | null = null;
  if (model) {
    weights = path.join(dir, 'model.safetensors');
    saveSafetensors(weights, new Map(model.namedParameters()));
  }
  const batchFile = path.join(dir, 'batch.safetensors');
  saveSafetensors(batchFile, new Map<string, Tensor>(Object.entries(batch)));
  return { weights, batch: batchFile };
}

/** bench/models_peer.py, found from the compiled location (dist/bench/). */
export function peerScript(): string {
  return path.resolve(__dirname, '..', '..', 'bench', 'models_peer.py');
}
