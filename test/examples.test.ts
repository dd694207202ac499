// Pre-training examples (pairs, layout, masking) and the classification layout, REFERENCE §3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layoutPair, layoutSegments, maskTokens, pretrainingExample, segmentPairs, type SpecialIds } from '../lib/data/examples';
import { Rng } from '../lib/data/random';

const IDS: SpecialIds = { padId: 0, clsId: 2, sepId: 3, maskId: 4, vocabSize: 1000, specialIds: new Set([0, 1, 2, 3, 4]) };
// Line k is made of tokens 100k, 100k+1, ... so every token says which line it came from.
const line = (k: number, n: number) => Array.from({ length: n }, (_, i) => 100 * k + i + 10);

test('segment pairs: longest runs of >= 2 lines within L-3, over-long neighbours skip a line', () => {
  const lengths = [3, 3, 3, 6, 5, 5, 12, 1, 2];
  const lines = lengths.map((n, k) => line(k, n));
  const pairs = segmentPairs(lines, 13, new Rng(3)); // budget 10
  // Runs: lines 0-2 (9 tokens; adding line 3 would make 15); 3+4 = 11 > 10 skips line 3; lines 4-5
  // (10); 6+7 = 13 skips line 6; lines 7-8 (3).
  const runs = [[0, 1, 2], [4, 5], [7, 8]];
  assert.equal(pairs.length, runs.length);
  pairs.forEach((p, i) => {
    const run = runs[i]!;
    const first = p.label === 1 ? p.a : p.b;
    const second = p.label === 1 ? p.b : p.a;
    const linesOf = (tokens: number[]) => [...new Set(tokens.map((t) => Math.floor((t - 10) / 100)))];
    // A and B split the run at a pivot in [1, lines-1]; label 1 keeps the document order.
    const head = linesOf(first);
    const tail = linesOf(second);
    assert.deepEqual([...head, ...tail], run);
    assert.ok(head.length >= 1 && tail.length >= 1);
    assert.deepEqual([...first, ...second], run.flatMap((k) => lines[k]!));
  });
});

test('segment pairs: both labels appear about equally and pivots cover the range', () => {
  const lines = Array.from({ length: 6 }, (_, k) => line(k, 2));
  const rng = new Rng(9);
  let ones = 0;
  const pivots = new Set<number>();
  const n = 4000;
  for (let i = 0; i < n; i++) {
    const [p] = segmentPairs(lines, 100, rng);
    ones += p!.label;
    pivots.add((p!.label === 1 ? p!.a : p!.b).length / 2);
  }
  assert.ok(Math.abs(ones / n - 0.5) < 0.03, `label 1 share ${ones / n}`);
  assert.deepEqual([...pivots].sort(), [1, 2, 3, 4, 5]);
});

test('layout: [CLS] A [SEP] B [SEP] then padding; type 1 for B and its [SEP]', () => {
  const { inputIds, typeIds } = layoutPair({ a: [11, 12], b: [21, 22, 23], label: 1 }, IDS, 10);
  assert.deepEqual(Array.from(inputIds), [2, 11, 12, 3, 21, 22, 23, 3, 0, 0]);
  assert.deepEqual(Array.from(typeIds), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]);
  assert.throws(() => layoutPair({ a: [1, 1, 1, 1], b: [1, 1, 1, 1], label: 0 }, IDS, 10), /exceeds max_seq_length 10/);
});

test('masking: count, candidates, sorted positions, padded targets', () => {
  const { inputIds } = layoutPair({ a: line(1, 30), b: line(2, 37), label: 1 }, IDS, 128); // 70 non-pad tokens
  const m = maskTokens(inputIds, IDS, 80, new Rng(1));
  const count = Math.floor(70 * 0.15); // 10
  assert.deepEqual(Array.from(m.maskedWeights).filter((w) => w === 1).length, count);
  assert.ok(Array.from(m.maskedWeights).slice(count).every((w) => w === 0));
  const positions = Array.from(m.maskedPositions).slice(0, count);
  assert.deepEqual(positions, [...positions].sort((p, q) => p - q));
  assert.equal(new Set(positions).size, count);
  for (const p of positions) {
    assert.ok(![2, 3, 0].includes(inputIds[p]!), 'never [CLS], [SEP] or pad');
    assert.equal(m.maskedIds[positions.indexOf(p)], inputIds[p]);
  }
  // Everything but the chosen positions is untouched.
  for (let i = 0; i < 128; i++) if (!positions.includes(i)) assert.equal(m.inputIds[i], inputIds[i]);
  // max_predictions_per_seq caps the count; at least one is always predicted.
  assert.equal(Array.from(maskTokens(inputIds, IDS, 4, new Rng(1)).maskedWeights).filter((w) => w === 1).length, 4);
  const short = layoutPair({ a: [50], b: [60], label: 1 }, IDS, 8).inputIds;
  assert.equal(Array.from(maskTokens(short, IDS, 80, new Rng(1)).maskedWeights).filter((w) => w === 1).length, 1);
});

test('masking proportions: 80% [MASK], 10% random regular id, 10% unchanged (statistically)', () => {
  const rng = new Rng(5);
  const counts = { mask: 0, random: 0, same: 0 };
  let predicted = 0;
  for (let n = 0; n < 3000; n++) {
    const { inputIds } = layoutPair({ a: line(1, 40), b: line(2, 40), label: 1 }, IDS, 96);
    const m = maskTokens(inputIds, IDS, 80, rng);
    for (let k = 0; k < 80 && m.maskedWeights[k] === 1; k++) {
      const p = m.maskedPositions[k]!;
      predicted++;
      if (m.inputIds[p] === IDS.maskId) counts.mask++;
      else if (m.inputIds[p] === inputIds[p]) counts.same++;
      else {
        counts.random++;
        assert.ok(!IDS.specialIds.has(m.inputIds[p]!), 'random replacements are never special ids');
      }
    }
  }
  // ~36,000 predictions: three standard deviations of a 10% share are ~0.5%.
  assert.ok(Math.abs(counts.mask / predicted - 0.8) < 0.01, JSON.stringify(counts));
  assert.ok(Math.abs(counts.random / predicted - 0.1) < 0.01, JSON.stringify(counts));
  assert.ok(Math.abs(counts.same / predicted - 0.1) < 0.01, JSON.stringify(counts));
});

test('examples are reproducible with a seed and differ across seeds', () => {
  const pair = { a: line(1, 20), b: line(2, 20), label: 1 as const };
  const a = pretrainingExample(pair, IDS, 64, 20, new Rng(7));
  const b = pretrainingExample(pair, IDS, 64, 20, new Rng(7));
  const c = pretrainingExample(pair, IDS, 64, 20, new Rng(8));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.maskedPositions, c.maskedPositions);
  assert.equal(a.nextSentenceLabel, 1);
});

test('classification layout: segments with their type ids, truncated keeping the head', () => {
  const r = layoutSegments([[11, 12], [21], [31, 32]], IDS, 12);
  assert.deepEqual(Array.from(r.inputIds), [2, 11, 12, 3, 21, 3, 31, 32, 3, 0, 0, 0]);
  assert.deepEqual(Array.from(r.typeIds), [0, 0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0]);
  assert.equal(r.length, 9);
  const t = layoutSegments([[11, 12, 13, 14], [21, 22, 23]], IDS, 6);
  assert.deepEqual(Array.from(t.inputIds), [2, 11, 12, 13, 14, 3]);
  assert.deepEqual(Array.from(t.typeIds), [0, 0, 0, 0, 0, 0]);
  assert.equal(t.length, 6);
});
