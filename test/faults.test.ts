// The fault suite in CI, at small size: SIGKILLs during training and checkpoint writes resume to
// exactly the losses of an uninterrupted run, and damaged checkpoints are skipped with a note
// naming the file (or refused), never trained on. Full size: npm run faults -- --kills 20.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { corruptions, prepareBase, runCorruption } from '../bench/faults/corruptions';
import { killAndResume } from '../bench/faults/kills';
import { ensureVocab } from '../bench/faults/training';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-faults-'));

test('SIGKILL at random points, checkpoint writes included, then resume: identical losses, each step logged once', { timeout: 600_000 }, async () => {
  const vocab = await ensureVocab(root);
  const r = await killAndResume({ root: path.join(root, 'kills'), vocab, kills: 4, seed: 15, steps: 16 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.kills, 4);
  assert.ok(r.duringWrites >= 1, 'at least one kill landed while a checkpoint was being written');
});

test('every class of checkpoint damage is skipped with a note naming the file, or refused', { timeout: 600_000 }, async () => {
  const vocab = await ensureVocab(root);
  const dir = path.join(root, 'corruptions');
  fs.mkdirSync(dir);
  const { base, expected, config } = await prepareBase(dir, vocab, 8, 6);
  // A third of the cases in CI (every file and class is among them); all of them: npm run faults.
  const all = corruptions();
  const sample = all.filter((c, i) => i % 3 === 0 || c.harmless);
  assert.ok(new Set(sample.map((c) => c.file)).size === 3);
  for (const [i, c] of sample.entries()) {
    const o = await runCorruption(c, base, 6, expected, config, dir, i);
    assert.deepEqual(o.problems, [], `${c.file}: ${c.name}`);
    assert.equal(o.outcome, c.harmless ? 'same' : 'fallback', `${c.file}: ${c.name}`);
  }
});
