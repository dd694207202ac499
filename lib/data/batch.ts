// Stacking examples into the batch tensors the models take.
import type { ClassificationBatch, PretrainingBatch } from '../model';
import { tensor, type Device } from '../tensor';
import type { PretrainingExample } from './examples';

function stackInt(rows: readonly Int32Array[], width: number, device?: Device) {
  const flat = new Int32Array(rows.length * width);
  rows.forEach((r, i) => flat.set(r.subarray(0, width), i * width));
  return tensor(flat, { shape: [rows.length, width], dtype: 'int64', ...(device ? { device } : {}) });
}

function stackFloat(rows: readonly Float32Array[], width: number, device?: Device) {
  const flat = new Float32Array(rows.length * width);
  rows.forEach((r, i) => flat.set(r, i * width));
  return tensor(flat, { shape: [rows.length, width], ...(device ? { device } : {}) });
}

/** Batch fields of REFERENCE §3: ids and types [B, L], targets [B, P], NSP labels [B]. */
export function pretrainingBatch(examples: readonly PretrainingExample[], device?: Device): PretrainingBatch {
  if (examples.length === 0) throw new Error('pretrainingBatch: no examples');
  const L = examples[0]!.inputIds.length;
  const P = examples[0]!.maskedPositions.length;
  return {
    input_ids: stackInt(examples.map((e) => e.inputIds), L, device),
    type_ids: stackInt(examples.map((e) => e.typeIds), L, device),
    masked_lm_positions: stackInt(examples.map((e) => e.maskedPositions), P, device),
    masked_lm_ids: stackInt(examples.map((e) => e.maskedIds), P, device),
    masked_lm_weights: stackFloat(examples.map((e) => e.maskedWeights), P, device),
    next_sentence_labels: tensor(Int32Array.from(examples, (e) => e.nextSentenceLabel), { dtype: 'int64', ...(device ? { device } : {}) }),
  };
}

export interface EncodedExample {
  inputIds: Int32Array;
  typeIds: Int32Array;
  /** Tokens before padding. */
  length: number;
  label: number | undefined;
}

/**
 * A classification batch. Fixed length (max_seq_length) by default; padToLongest cuts it to the
 * longest example, which only attention models accept (mixing layers are max_seq_length wide).
 */
export function classificationBatch(
  examples: readonly EncodedExample[],
  options: { regression: boolean; padToLongest?: boolean; device?: Device },
): ClassificationBatch {
  if (examples.length === 0) throw new Error('classificationBatch: no examples');
  const width = options.padToLongest ? Math.max(...examples.map((e) => e.length)) : examples[0]!.inputIds.length;
  const labels = examples.map((e, i) => {
    if (e.label === undefined) throw new Error(`classificationBatch: example ${i} has no label`);
    return e.label;
  });
  const device = options.device ? { device: options.device } : {};
  return {
    input_ids: stackInt(examples.map((e) => e.inputIds), width, options.device),
    type_ids: stackInt(examples.map((e) => e.typeIds), width, options.device),
    label: options.regression
      ? tensor(Float32Array.from(labels), device)
      : tensor(Int32Array.from(labels), { dtype: 'int64', ...device }),
  };
}
