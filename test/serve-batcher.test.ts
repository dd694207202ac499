// The batching queue on its own: token budget, input cap, the wait, grouping similar lengths,
// fairness to the oldest input, kinds kept apart, and abandoned inputs dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchQueue, selectBatch, type BatchPolicy, type Queued } from '../lib/serve/batcher';

const anyWidth = (o: Partial<BatchPolicy> = {}): BatchPolicy => ({ maxBatchTokens: 1000, maxBatchRequests: 100, maxWaitMs: 5, fixedWidth: undefined, ...o });

test('fixed width: first come, first served, up to the cap or the token budget', () => {
  const policy: BatchPolicy = { maxBatchTokens: 512, maxBatchRequests: 3, maxWaitMs: 5, fixedWidth: 128 };
  assert.deepEqual(selectBatch([5, 100, 7, 9], policy), { indices: [0, 1, 2], full: true });
  assert.deepEqual(selectBatch([5, 100], policy), { indices: [0, 1], full: false });
  // 512 tokens hold four inputs of width 128 when the cap allows them
  assert.deepEqual(selectBatch([1, 2, 3, 4, 5, 6], { ...policy, maxBatchRequests: 10 }), { indices: [0, 1, 2, 3], full: true });
});

test('any width: the oldest input is always taken and joined by inputs of similar length', () => {
  // (within a factor of two of each other: the 10-token input would be padded to 50)
  // lengths: oldest 50, then a mix; budget 200 tokens = e.g. 4 × 50 or 2 × 100
  const lengths = [50, 10, 48, 100, 52, 49, 200];
  const { indices, full } = selectBatch(lengths, anyWidth({ maxBatchTokens: 200 }));
  assert.ok(indices.includes(0), 'the oldest input is in the batch');
  assert.deepEqual(indices, [0, 2, 5], 'its closest neighbours in length, within 3 × 52 ≤ 200 or 4 × 50');
  assert.equal(full, true);
  const width = Math.max(...indices.map((i) => lengths[i]!));
  assert.ok(indices.length * width <= 200);
});

test('any width: the budget counts padded tokens (inputs × the longest) and the cap counts inputs', () => {
  const lengths = Array.from({ length: 20 }, (_, i) => 10 + (i % 3));
  const budget = selectBatch(lengths, anyWidth({ maxBatchTokens: 100 }));
  assert.ok(budget.indices.length * Math.max(...budget.indices.map((i) => lengths[i]!)) <= 100);
  assert.ok(budget.indices.length >= 8, `a 100-token budget holds at least 8 inputs of ≤ 12 tokens, got ${budget.indices.length}`);
  assert.deepEqual(selectBatch(lengths, anyWidth({ maxBatchRequests: 4 })).indices.length, 4);
  assert.deepEqual(selectBatch([7], anyWidth()), { indices: [0], full: false });
});

interface Item extends Queued {
  id: number;
  kind: string;
}

function harness(policy: BatchPolicy) {
  const batches: number[][] = [];
  let release: (() => void) | undefined;
  let clock = 0;
  const queue = new BatchQueue<Item>(
    policy,
    (batch) => {
      batches.push(batch.map((b) => b.id));
      return new Promise<void>((resolve) => (release = resolve));
    },
    (item) => item.kind,
    (item) => dropped.push(item.id),
    () => clock,
  );
  const dropped: number[] = [];
  let next = 0;
  const push = (length: number, kind = 'a') => {
    const item: Item = { id: next++, length, kind, queuedAt: clock, cancelled: false };
    queue.push(item);
    return item;
  };
  return {
    queue,
    batches,
    dropped,
    push,
    advance: (ms: number) => (clock += ms),
    finish: async () => {
      release?.();
      release = undefined;
      await new Promise((r) => setImmediate(r));
    },
  };
}

test('a batch leaves when full, or when its oldest input has waited maxWaitMs', async () => {
  const h = harness({ maxBatchTokens: 1000, maxBatchRequests: 3, maxWaitMs: 30, fixedWidth: 10 });
  h.push(5);
  h.push(5);
  assert.deepEqual(h.batches, [], 'not full, not waited: no batch yet');
  h.push(5);
  assert.deepEqual(h.batches, [[0, 1, 2]], 'full: it leaves at once');
  h.push(5); // arrives while the first batch runs
  await h.finish();
  assert.deepEqual(h.batches, [[0, 1, 2]], 'the next one waits for more inputs');
  h.advance(30);
  await new Promise((r) => setTimeout(r, 40)); // the queue's own timer fires
  assert.deepEqual(h.batches, [[0, 1, 2], [3]]);
  await h.finish();
  await h.queue.idle();
});

test('while a batch runs the next fills; kinds never share a batch; abandoned inputs are dropped', async () => {
  const h = harness({ maxBatchTokens: 1000, maxBatchRequests: 8, maxWaitMs: 0, fixedWidth: 10 });
  h.push(5, 'predict'); // leaves at once (no wait)
  const gone = h.push(5, 'predict');
  h.push(5, 'embed');
  h.push(5, 'predict');
  gone.cancelled = true;
  assert.deepEqual(h.batches, [[0]]);
  await h.finish();
  assert.deepEqual(h.batches, [[0], [2]], "the oldest input's kind goes next, alone; the cancelled one is not run");
  assert.deepEqual(h.dropped, [1], 'but handed back, so that its request does not wait forever');
  await h.finish();
  assert.deepEqual(h.batches, [[0], [2], [3]]);
  let idle = false;
  void h.queue.idle().then(() => (idle = true));
  await h.finish();
  assert.equal(idle, true);
  assert.equal(h.queue.size, 0);
});
