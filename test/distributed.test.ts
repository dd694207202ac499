// Process groups, collectives and gradient averaging across real processes on localhost (c10d's
// TCPStore and Gloo): values, asynchronous forms, subgroups, errors, and the DDP-style buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { runRanks } from './dist-helpers';

const skipReason = sm.distributed.availableBackends().includes('gloo') ? undefined : 'this build has no Gloo backend (libgloo-dev missing at build time)';

test('collectives on 3 ranks: all-reduce (every op), broadcast, all-gather, uneven all-to-all, barrier, async forms, subgroups', { skip: skipReason, timeout: 120_000 }, async () => {
  const { results, runs } = await runRanks(3, async (sm) => {
    const world = sm.distributed.init({ timeoutSeconds: 30 });
    const r = world.rank;
    const out: Record<string, unknown> = { rank: r, size: world.size };
    const reduce = (op: 'sum' | 'avg' | 'product' | 'min' | 'max') => {
      const t = sm.tensor([r + 1, 10 * (r + 1)], { dtype: 'float64' });
      world.allReduce(t, { op });
      return Array.from(t.dataSync() as Float64Array);
    };
    out['ops'] = { sum: reduce('sum'), avg: reduce('avg'), product: reduce('product'), min: reduce('min'), max: reduce('max') };
    // A list reduces each tensor on its own.
    const a = sm.tensor([r], { dtype: 'float32' });
    const b = sm.tensor([1, 2, 3], { dtype: 'int64' });
    world.allReduce([a, b]);
    out['list'] = [a.item(), Array.from(b.dataSync() as BigInt64Array, Number)];
    const bc = sm.full([2], r === 2 ? 7 : -1, { dtype: 'float32' });
    world.broadcast(bc, { src: 2 });
    out['broadcast'] = Array.from(bc.dataSync() as Float32Array);
    out['gather'] = world.allGather(sm.tensor([r * 2, r * 2 + 1], { dtype: 'int32' })).map((t) => Array.from(t.dataSync() as Int32Array));
    // Rank r sends k+1 rows to rank k; each row holds 100·sender + receiver.
    const rows = [0, 1, 2].flatMap((k) => Array.from({ length: k + 1 }, () => [100 * r + k, 100 * r + k]));
    const input = sm.tensor(rows, { dtype: 'float32' });
    const received = world.allToAll(input, { inputSplits: [1, 2, 3], outputSplits: [r + 1, r + 1, r + 1] });
    out['allToAll'] = received.shape.concat(Array.from(received.dataSync() as Float32Array).filter((_, i) => i % 2 === 0));
    world.barrier();
    const later = sm.tensor([1], { dtype: 'float64' });
    const work = world.allReduce(later, { async: true });
    await work.promise();
    out['async'] = [later.item(), work.isCompleted()];
    const gathered = world.allGather(sm.tensor([r]), { async: true });
    gathered.work.wait();
    out['asyncGather'] = gathered.outputs.map((t) => t.item());
    // Subgroups: every rank takes part in creating each; members get a group.
    const pair = sm.distributed.newGroup([0, 2]);
    const single = sm.distributed.newGroup([1]);
    out['groups'] = [pair ? [pair.rank, pair.size] : null, single ? [single.rank, single.size] : null];
    if (pair) {
      const t = sm.tensor([r], { dtype: 'float64' });
      pair.allReduce(t);
      out['pairSum'] = t.item();
    }
    sm.distributed.destroy();
    out['destroyed'] = !sm.distributed.isInitialized();
    return out;
  });
  for (const [rank, result] of results.entries()) {
    assert.ok(result, `rank ${rank} returned nothing: ${runs[rank]!.stderr}`);
    const o = result as Record<string, unknown>;
    assert.deepEqual(o['ops'], { sum: [6, 60], avg: [2, 20], product: [6, 6000], min: [1, 10], max: [3, 30] });
    assert.deepEqual(o['list'], [3, [3, 6, 9]]);
    assert.deepEqual(o['broadcast'], [7, 7]);
    assert.deepEqual(o['gather'], [[0, 1], [2, 3], [4, 5]]);
    // rank r receives r+1 rows from each sender s, each reading 100·s + r
    assert.deepEqual(o['allToAll'], [3 * (rank + 1), 2, ...[0, 1, 2].flatMap((s) => Array(rank + 1).fill(100 * s + rank))]);
    assert.deepEqual(o['async'], [3, true]);
    assert.deepEqual(o['asyncGather'], [0, 1, 2]);
    assert.deepEqual(o['groups'], [rank === 0 ? [0, 2] : rank === 2 ? [1, 2] : null, rank === 1 ? [0, 1] : null]);
    if (rank !== 1) assert.equal(o['pairSum'], 2);
    assert.equal(o['destroyed'], true);
  }
});

test('collective errors: bad arguments are Errors naming the collective; a lost peer is named', { skip: skipReason, timeout: 120_000 }, async () => {
  const { results, runs } = await runRanks(2, async (sm, { caught }) => {
    const world = sm.distributed.init({ timeoutSeconds: 30 });
    const out: Record<string, string> = {};
    out['strided'] = caught(() => world.allReduce(sm.zeros([4, 4]).transpose(0, 1)));
    out['splits'] = caught(() => world.allToAll(sm.zeros([3, 2]), { inputSplits: [1, 1], outputSplits: [1, 1] }));
    out['uneven'] = caught(() => world.allToAll(sm.zeros([3, 2])));
    out['src'] = caught(() => world.broadcast(sm.zeros([1]), { src: 5 }));
    out['twice'] = caught(() => sm.distributed.init());
    out['group'] = caught(() => sm.distributed.newGroup([0, 7]));
    world.barrier();
    // Rank 1 leaves for good: rank 0's next collective names it.
    if (world.rank === 1) process.exit(0);
    await new Promise((r) => setTimeout(r, 300));
    out['lost'] = caught(() => world.allReduce(sm.ones([1])));
    return out;
  });
  const r0 = results[0] as Record<string, string> | undefined;
  assert.ok(r0, runs[0]!.stderr);
  assert.match(r0['strided']!, /allReduce: tensors must be contiguous, got a strided float32\[4, 4\]/);
  assert.match(r0['splits']!, /allToAll: inputSplits add up to 2 rows, the input has 3/);
  assert.match(r0['uneven']!, /3 rows do not split evenly over 2 ranks/);
  assert.match(r0['src']!, /source rank 5 is outside a group of 2/);
  assert.match(r0['twice']!, /already initialized/);
  assert.match(r0['group']!, /rank 7 is not in the world/);
  assert.match(r0['lost']!, /^allReduce failed on rank 0 of 2: .*Lost: rank 1 \(pid \d+\) is no longer running/);
});

test('checkCollectives: ranks calling different collectives get an Error naming each rank\'s call, not a crash', { skip: skipReason, timeout: 60_000 }, async () => {
  const { results, runs } = await runRanks(2, (sm, { caught }) => {
    const world = sm.distributed.init({ timeoutSeconds: 30, checkCollectives: true });
    const r = world.rank;
    return {
      dtypes: caught(() => world.broadcast(sm.zeros([2], { dtype: r === 0 ? 'float32' : 'int64' }))),
      kinds: caught(() => (r === 0 ? world.barrier() : world.allReduce(sm.ones([1])))),
      splits: caught(() => world.allToAll(sm.zeros([3, 1]), { inputSplits: r === 0 ? [1, 2] : [2, 1], outputSplits: [1, 2] })),
      matching: caught(() => world.allToAll(sm.zeros([3, 1]), { inputSplits: r === 0 ? [1, 2] : [2, 1], outputSplits: r === 0 ? [1, 2] : [2, 1] })),
    };
  });
  for (const [rank, r] of results.entries()) {
    assert.ok(r, runs[rank]!.stderr);
    assert.match(r.dtypes, /^broadcast: the ranks of the group called different collectives \(nothing was sent\): rank 0: broadcast\(float32\[2\], src 0\); rank 1: broadcast\(int64\[2\], src 0\)/);
    assert.match(r.kinds, /rank 0: barrier\(\); rank 1: allReduce\(float32\[1\], sum\)/);
    assert.match(r.splits, /allToAll: the ranks of the group called different collectives/);
    assert.equal(r.matching, 'no error');
  }
});

test('a peer that stops answering: the collective fails after the timeout, saying so', { skip: skipReason, timeout: 60_000 }, async () => {
  const { results, runs } = await runRanks(2, async (sm) => {
    const world = sm.distributed.init({ timeoutSeconds: 2 });
    if (world.rank === 1) {
      await new Promise((r) => setTimeout(r, 6000)); // alive, but never joins the all-reduce
      return 'idle';
    }
    const started = Date.now();
    try {
      world.allReduce(sm.ones([1]));
      return 'no error';
    } catch (e) {
      return `${Date.now() - started} ${(e as Error).message}`;
    }
  });
  assert.ok(results[0], runs[0]!.stderr);
  const [ms, ...message] = (results[0] as string).split(' ');
  assert.ok(Number(ms) >= 1500 && Number(ms) < 5500, `failed after ${ms} ms with a 2 s timeout`);
  assert.match(message.join(' '), /^allReduce failed on rank 0 of 2: .*(timed out|timeout)/i);
});

test('rendezvous failures are Errors: a rank outside the world, nobody at the master address, a bad RANK', { skip: skipReason, timeout: 60_000 }, async () => {
  const { results } = await runRanks(1, (sm, { caught }) => {
    // A second process is rank 1 of 2 with no rank 0 anywhere.
    return {
      badRank: caught(() => sm.distributed.init({ rank: 2, worldSize: 2, timeoutSeconds: 1 })),
      noMaster: caught(() => sm.distributed.init({ rank: 1, worldSize: 2, masterPort: 1, timeoutSeconds: 1 })),
      env: caught(() => sm.distributed.launchEnvironment({ RANK: '3', WORLD_SIZE: '2' })),
    };
  });
  const r = results[0]!;
  assert.match(r.badRank, /rank 2 is outside a world of size 2/);
  assert.match(r.noMaster, /rendezvous at 127\.0\.0\.1:1 failed on rank 1 of 2: .*is rank 0 running/);
  assert.match(r.env, /RANK 3 is outside WORLD_SIZE 2/);
});

test('gradient sync: buckets in reverse order, averages over ranks, nothing on no-sync micro-steps, timings', { skip: skipReason, timeout: 120_000 }, async () => {
  const { results, runs } = await runRanks(2, (sm) => {
    const world = sm.distributed.init({ timeoutSeconds: 30 });
    const r = world.rank;
    // Four parameters of 64 floats (256 bytes): buckets of 512 bytes hold two, the first one.
    const params = [0, 1, 2, 3].map((k) => sm.keep(sm.full([64], k + 1, { dtype: 'float32' })).requiresGrad_());
    const sync = new sm.distributed.GradientSync(world, params, { bucketBytes: 512, firstBucketBytes: 256 });
    const grads = () => params.map((p) => (p.grad ? Array.from(p.grad.dataSync() as Float32Array).slice(0, 2) : null));
    const loss = () => sm.tidy(() => sm.stack(params.map((p) => p.mul(r + 1).sum())).sum());
    // Step 1: one backward, synchronised. d/dp of (r+1)·Σp is r+1: averaged over ranks 1.5.
    sync.prepare(true);
    sm.tidy(() => loss().backward());
    const stats = sync.finish();
    const step1 = grads();
    params.forEach((p) => p.zeroGrad());
    // Step 2: two micro-steps; only the second synchronises; gradients accumulate locally first.
    sync.prepare(false);
    sm.tidy(() => loss().backward());
    const local = grads();
    sync.prepare(true);
    sm.tidy(() => loss().backward());
    sync.finish();
    return { buckets: sync.buckets, stats, step1, local, step2: grads() };
  });
  for (const [rank, r] of results.entries()) {
    assert.ok(r, runs[rank]!.stderr);
    assert.deepEqual(r.buckets, [[3], [2, 1], [0]], 'reverse registration order; the first bucket small');
    assert.equal(r.stats.buckets, 3);
    assert.equal(r.stats.bytes, 4 * 64 * 4);
    assert.ok(r.stats.commMs >= 0 && r.stats.exposedMs >= 0);
    assert.deepEqual(r.step1, Array(4).fill([1.5, 1.5]));
    assert.deepEqual(r.local, Array(4).fill([rank + 1, rank + 1]), 'a no-sync micro-step keeps the local gradient');
    assert.deepEqual(r.step2, Array(4).fill([3, 3]), 'accumulated gradients averaged once');
  }
});

test('row gradients: a lookup table\'s rows are exchanged as rows, its dense use reduced in its bucket; the sum is the average', { skip: skipReason, timeout: 120_000 }, async () => {
  const { results, runs } = await runRanks(2, (sm) => {
    const world = sm.distributed.init({ timeoutSeconds: 30 });
    const r = world.rank;
    const table = sm.keep(sm.arange(12, undefined, 1, { dtype: 'float64' }).reshape([6, 2]).div(10)).requiresGrad_();
    const rows = new sm.distributed.RowGradients();
    const sync = new sm.distributed.GradientSync(world, [table], { rowTables: [{ param: 0, rows }] });
    sync.prepare(true);
    sm.tidy(() => {
      // Rank 0 looks up rows 0 and 2, rank 1 rows 2 and 5; both use the table densely too (a tied head).
      const looked = rows.lookup(table, sm.tensor(r === 0 ? [0, 2] : [2, 5], { dtype: 'int64' }));
      looked.sum().add(table.mul(r + 1).sum()).backward();
    });
    const stats = sync.finish();
    const out = { grad: Array.from(table.grad!.dataSync() as Float64Array), bytes: stats.bytes, eval: sm.noGrad(() => sm.tidy(() => rows.lookup(table, sm.tensor([1], { dtype: 'int64' })).requiresGrad)) };
    rows.dispose();
    sync.dispose();
    return out;
  });
  for (const [rank, r] of results.entries()) {
    assert.ok(r, runs[rank]!.stderr);
    // Dense: (1 + 2) / 2 = 1.5 everywhere; rows: each lookup adds 1 / 2 to its row.
    assert.deepEqual(r.grad, [2, 2, 1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 1.5, 1.5, 2, 2]);
    assert.ok(r.bytes > 6 * 2 * 8, 'the dense bucket and the rows were sent');
    assert.equal(r.eval, false, 'without grad the lookup is the plain one');
  }
});
