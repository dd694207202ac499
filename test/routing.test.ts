// Routing on small hand-built router probabilities whose right answers are worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';

const R = sm.routing;
const ints = (t: sm.Tensor) => Array.from(t.dataSync() as BigInt64Array, Number);
const floats = (t: sm.Tensor) => Array.from(t.dataSync() as Float32Array);
const close = (a: number[], b: number[], tol = 1e-6) =>
  assert.ok(a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tol), `${JSON.stringify(a)} ≈ ${JSON.stringify(b)}`);

// One group, four tokens, two experts. Top-1 choices: t0, t1, t2 -> e0; t3 -> e1.
const PROBS_A = [[[0.6, 0.4], [0.9, 0.1], [0.7, 0.3], [0.2, 0.8]]];

test('tokens-choose top-1: capacity overflow drops the later tokens (no BPR)', () => {
  sm.tidy(() => {
    const r = R.tokensChooseSlots(sm.tensor(PROBS_A), { k: 1, capacity: 2, batchPrioritized: false });
    // e0 takes t0 then t1 and is full (t2 dropped); e1 takes t3 and has one empty slot (token T = 4).
    assert.deepEqual(ints(r.slotToken), [0, 1, 3, 4]);
    close(floats(r.slotWeight), [0.6, 0.9, 0.8, 0]);
  });
});

test('batch-prioritized routing changes who is dropped: the least confident token', () => {
  sm.tidy(() => {
    const r = R.tokensChooseSlots(sm.tensor(PROBS_A), { k: 1, capacity: 2, batchPrioritized: true });
    // Order by top-1 probability: t1 (.9), t3 (.8), t2 (.7), t0 (.6): e0 takes t1, t2; t0 is dropped.
    assert.deepEqual(ints(r.slotToken), [1, 2, 3, 4]);
    close(floats(r.slotWeight), [0.9, 0.7, 0.8, 0]);
  });
});

test('top-2 choices never displace top-1 choices', () => {
  sm.tidy(() => {
    const probs = sm.tensor([[[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]]]);
    const r = R.tokensChooseSlots(probs, { k: 2, capacity: 2, batchPrioritized: false });
    // Top-1 first: t0->e0 (slot 0), t1->e1 (slot 0), t2->e0 (slot 1); then top-2: t0->e1 (slot 1),
    // t1->e0 (slot 2, dropped), t2->e1 (slot 2, dropped). t1's second choice does not take t2's first.
    assert.deepEqual(ints(r.slotToken), [0, 2, 1, 0]);
    close(floats(r.slotWeight), [0.6, 0.55, 0.7, 0.4]);
  });
});

test('experts-choose: each expert takes its top-C tokens; a token may go to several or none', () => {
  sm.tidy(() => {
    const r = R.expertsChooseSlots(sm.tensor(PROBS_A), 2);
    // e0 column [.6 .9 .7 .2] -> t1, t2; e1 column [.4 .1 .3 .8] -> t3, t0.
    assert.deepEqual(ints(r.slotToken), [1, 2, 3, 0]);
    close(floats(r.slotWeight), [0.9, 0.7, 0.8, 0.4]);
    assert.equal(r.auxLoss.item(), 0);
    const m = R.expertsChooseMasked(sm.tensor(PROBS_A), 2);
    // dispatch[g, t, e, c]: t1 in e0 slot 0, t2 in e0 slot 1, t3 in e1 slot 0, t0 in e1 slot 1.
    assert.deepEqual(
      floats(m.dispatch),
      [0, 0, 0, 1, /* t1 */ 1, 0, 0, 0, /* t2 */ 0, 1, 0, 0, /* t3 */ 0, 0, 1, 0],
    );
    close(floats(m.combine), [0, 0, 0, 0.4, 0.9, 0, 0, 0, 0, 0.7, 0, 0, 0, 0, 0.8, 0]);
  });
});

test('ties are broken towards the lower index', () => {
  sm.tidy(() => {
    const uniform = sm.full([1, 4, 2], 0.5);
    // Experts-choose: both experts take t0, t1. Tokens-choose: every token picks e0; C=2 keeps t0, t1.
    assert.deepEqual(ints(R.expertsChooseSlots(uniform, 2).slotToken), [0, 1, 0, 1]);
    const tc = R.tokensChooseSlots(uniform, { k: 1, capacity: 2, batchPrioritized: true });
    assert.deepEqual(ints(tc.slotToken), [0, 1, 4, 4]);
    const top = R.stableTopK(sm.tensor([[1, 3, 3, 2, 3]]), 3);
    assert.deepEqual(ints(top.indices), [1, 2, 4]);
  });
});

test('masked and slot tokens-choose routings agree on random probabilities', () => {
  sm.tidy(() => {
    const g = new sm.Generator(3);
    for (const [k, capacity, bpr] of [[1, 3, true], [1, 5, false], [2, 4, true], [2, 2, false]] as const) {
      const probs = sm.functional.softmax(sm.randn([3, 12, 4], { generator: g }), -1);
      const slots = R.tokensChooseSlots(probs, { k, capacity, batchPrioritized: bpr });
      const masked = R.tokensChooseMasked(probs, { k, capacity, batchPrioritized: bpr });
      // Rebuild dispatch[G,T,E,C] from the slot table and compare.
      const [G, T, E] = probs.shape as [number, number, number];
      const dispatch = new Float32Array(G * T * E * capacity);
      const combine = new Float32Array(G * T * E * capacity);
      const tok = ints(slots.slotToken);
      const w = floats(slots.slotWeight);
      for (let gi = 0; gi < G; gi++)
        for (let e = 0; e < E; e++)
          for (let c = 0; c < capacity; c++) {
            const s = (gi * E + e) * capacity + c;
            if (tok[s]! < T) {
              dispatch[((gi * T + tok[s]!) * E + e) * capacity + c] = 1;
              combine[((gi * T + tok[s]!) * E + e) * capacity + c] = w[s]!;
            }
          }
      assert.deepEqual(floats(masked.dispatch), Array.from(dispatch), `dispatch k=${k} C=${capacity} bpr=${bpr}`);
      close(floats(masked.combine), Array.from(combine));
      close([masked.auxLoss.item()], [slots.auxLoss.item()]);
    }
    g.dispose();
  });
});

test('load-balancing loss and z-loss match their formulas', () => {
  sm.tidy(() => {
    const probs = sm.tensor(PROBS_A);
    // Top-1: e0 for 3 of 4 tokens, e1 for 1. Mean probs: e0 0.6, e1 0.4.
    // E² · mean_e(fraction · mean prob) = 4 · (0.75·0.6 + 0.25·0.4) / 2 = 1.1
    const expert = R.stableTopK(probs, 1).indices;
    close([R.loadBalancingLoss(probs, expert).item()], [1.1], 1e-6);
    const r = R.tokensChooseSlots(probs, { k: 1, capacity: 4, batchPrioritized: true });
    close([r.auxLoss.item()], [1.1], 1e-6);
    // Top-2 with two experts: every token has both experts: fractions 1, loss = 4 · (0.6 + 0.4) / 2 = 2.
    close([R.loadBalancingLoss(probs, R.stableTopK(probs, 2).indices).item()], [2], 1e-6);
    // z-loss: logsumexp of [0, 0] is ln 2, of [ln 3, 0] is ln 4; mean of squares.
    const logits = sm.tensor([[[0, 0], [Math.log(3), 0]]]);
    close([R.routerZLoss(logits).item()], [(Math.LN2 ** 2 + Math.log(4) ** 2) / 2], 1e-6);
  });
});

test('expert capacity rounds half to even and group count divides the tokens', () => {
  assert.equal(R.expertCapacity(4096, 16, 1.0, 4), 256);
  assert.equal(R.expertCapacity(4096, 16, 0.5, 4), 128);
  assert.equal(R.expertCapacity(40, 16, 1.0, 1), 2); // 2.5 -> 2, like Python's round
  assert.equal(R.expertCapacity(56, 16, 1.0, 1), 4); // 3.5 -> 4
  assert.equal(R.expertCapacity(64, 16, 0.5, 4), 4); // 2 -> min_expert_capacity
  assert.equal(R.numGroups(8 * 512, 4096), 1);
  assert.equal(R.numGroups(64 * 512, 4096), 8);
  assert.equal(R.numGroups(3 * 4097, 4096), 3);
  assert.equal(R.numGroups(7 * 1000, 1000), 7);
  assert.equal(R.numGroups(10, 3), 5); // 10 // 3 = 3 does not divide 10; 4 neither; 5 does
  assert.equal(R.numGroups(5, 4096), 1);
});
