// Holding out part of a task's training rows for choosing hyperparameters. GLUE's test labels are
// not published, so its dev split is the one results are reported on; choosing a learning rate on
// it as well would make the reported number optimistic.
import { Rng } from '../random';
import type { TaskExample } from './types';

export interface HeldOutSplit {
  train: TaskExample[];
  heldOut: TaskExample[];
}

/**
 * Moves `count` rows (whole groups for grouped tasks: COPA, MultiRC, ReCoRD) out of the training
 * rows, drawn with a fixed seed: every run over the same file holds out the same rows, whatever
 * its own seed. Both parts keep the file's order.
 */
export function holdOutRows(rows: readonly TaskExample[], count: number, seed = 0): HeldOutSplit {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`rows to hold out must be a positive integer, got ${count}`);
  const keyOf = (row: TaskExample, i: number) => (row.group === undefined ? `row ${i}` : `group ${row.group}`);
  const keys = [...new Set(rows.map(keyOf))];
  const what = rows.some((r) => r.group !== undefined) ? 'groups' : 'rows';
  if (count >= keys.length) throw new RangeError(`cannot hold out ${count} of ${keys.length} training ${what}: none would be left to train on`);
  const held = new Set(new Rng(seed).shuffle(keys).slice(0, count));
  const split: HeldOutSplit = { train: [], heldOut: [] };
  rows.forEach((row, i) => (held.has(keyOf(row, i)) ? split.heldOut : split.train).push(row));
  return split;
}
