// Task rows -> token ids in the classification layout (REFERENCE §3), tokenized in one worker call.
import type { EncodedExample } from './batch';
import { layoutSegments } from './examples';
import type { TaskExample } from './tasks';
import type { Tokenizer } from './tokenizer';

/** An input in the classification layout, and how many tokens that layout had before truncation. */
export interface EncodedInput extends EncodedExample {
  /** [CLS], then each segment and its [SEP]: more than max_seq_length when the input was cut. */
  fullLength: number;
}

/** Lists of text segments in the classification layout (no labels), truncated to maxSeqLength. */
export async function encodeSegments(inputs: readonly (readonly string[])[], tokenizer: Tokenizer, maxSeqLength: number): Promise<EncodedInput[]> {
  const ids = await tokenizer.encodeBatch(inputs.flat());
  let offset = 0;
  return inputs.map((input) => {
    const segments = ids.slice(offset, offset + input.length);
    offset += input.length;
    const fullLength = segments.reduce((n, s) => n + s.length + 1, 1);
    return { ...layoutSegments(segments, tokenizer, maxSeqLength), label: undefined, fullLength };
  });
}

export async function encodeTaskExamples(rows: readonly TaskExample[], tokenizer: Tokenizer, maxSeqLength: number): Promise<EncodedExample[]> {
  const encoded = await encodeSegments(rows.map((r) => r.segments), tokenizer, maxSeqLength);
  return encoded.map((e, i) => ({ ...e, label: rows[i]!.label }));
}
