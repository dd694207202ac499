// Task rows -> token ids in the classification layout (REFERENCE §3), tokenized in one worker call.
import type { EncodedExample } from './batch';
import { layoutSegments } from './examples';
import type { TaskExample } from './tasks';
import type { Tokenizer } from './tokenizer';

export async function encodeTaskExamples(rows: readonly TaskExample[], tokenizer: Tokenizer, maxSeqLength: number): Promise<EncodedExample[]> {
  const texts = rows.flatMap((r) => r.segments);
  const ids = await tokenizer.encodeBatch(texts);
  let offset = 0;
  return rows.map((row) => {
    const segments = ids.slice(offset, offset + row.segments.length);
    offset += row.segments.length;
    return { ...layoutSegments(segments, tokenizer, maxSeqLength), label: row.label };
  });
}
