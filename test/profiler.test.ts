// The time breakdown: libtorch's profiler with the models' scopes, the attribution of forward and
// backward time to parts (on a hand-made record with known answers, then on a real model), the
// analytic costs, and `bench models --breakdown` for ours and the PyTorch peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { breakdownRows, partCosts, PARTS, profileStep } from '../bench/breakdown';
import { breakdownSvg, breakdownTables } from '../bench/breakdown_report';
import { benchModels, stepFlops } from '../bench/models';
import { syntheticPretrainingBatch } from '../bench/model_inputs';
import * as sm from '../lib';
import { AdamW } from '../lib/train/optimizer';

const { breakdown } = sm.profiler;

/** A record by hand: ranges as [name, start, end, sequence, userScope], one thread. */
function record(ranges: [string, number, number, number, 0 | 1][], scopes: [string, number, number][]): sm.profiler.Profile {
  const names = [...new Set(ranges.map((r) => r[0]))];
  return {
    names,
    name: Int32Array.from(ranges, (r) => names.indexOf(r[0])),
    thread: new Int32Array(ranges.length),
    userScope: Int32Array.from(ranges, (r) => r[4]),
    start: Float64Array.from(ranges, (r) => r[1] * 1000),
    end: Float64Array.from(ranges, (r) => r[2] * 1000),
    sequence: Float64Array.from(ranges, (r) => r[3]),
    cuda: new Float64Array(ranges.length).fill(-1),
    scopes: { name: scopes.map((s) => s[0]), firstSequence: Float64Array.from(scopes, (s) => s[1]), endSequence: Float64Array.from(scopes, (s) => s[2]) },
  };
}

test('breakdown: own time to the innermost scope; backward nodes to the scope that created them, engine work included', () => {
  const p = record(
    [
      ['forward', 0, 10, -1, 1],
      ['attention', 0, 6, -1, 1],
      ['aten::mm', 0, 4, 7, 0], // 4 ms inside attention, creating node 7
      ['moe/experts', 6, 9, -1, 1],
      ['aten::bmm', 6, 8, 12, 0], // 2 ms, node 12; 1 ms of the scope's own glue
      ['backward', 10, 20, -1, 1],
      ['autograd::engine::evaluate_function: BmmBackward0', 10, 14, -1, 0],
      ['BmmBackward0', 10, 13, 12, 0], // 3 ms + 1 ms of the engine's summing: moe/experts
      ['autograd::engine::evaluate_function: MmBackward0', 14, 19, -1, 0],
      ['MmBackward0', 14, 19, 7, 0],
      ['aten::mm', 14, 18, -1, 0], // runs inside MmBackward0: attention
      ['torch::autograd::AccumulateGrad', 19, 20, -1, 0],
    ],
    [
      ['attention', 5, 10],
      ['moe/experts', 10, 15],
      ['forward', 0, 20],
    ],
  );
  const b = breakdown(p);
  assert.deepEqual(b['attention'], { forwardMs: 6, backwardMs: 5 });
  assert.deepEqual(b['moe/experts'], { forwardMs: 3, backwardMs: 4 });
  assert.deepEqual(b['forward'], { forwardMs: 1, backwardMs: 0 });
  assert.deepEqual(b['backward (accumulate grads)'], { forwardMs: 0, backwardMs: 1 });
  assert.equal(b['backward (unattributed)'], undefined);
});

test('scope() only runs its function when nothing is profiling; a real step breaks down into the model\'s parts', () => {
  assert.equal(sm.profiler.isProfiling(), false);
  assert.equal(sm.profiler.scope('x', () => 42), 42);
  const config = sm.presetConfig('sparse-mixer-tiny', { vocab_size: 300, max_seq_length: 32 });
  const model = new sm.PretrainingModel(config);
  const optimizer = new AdamW(model);
  const batch = syntheticPretrainingBatch(config, 2, 32, 7);
  try {
    const started = process.hrtime.bigint();
    const parts = profileStep(
      {
        forward: () => sm.tidy(() => model.forward(batch).loss),
        backward: (loss) => {
          loss.backward();
          loss.dispose();
        },
        optimizer: () => optimizer.step(1e-3),
      },
      false,
    );
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(sm.profiler.isProfiling(), false);
    for (const part of ['embeddings', 'mixing', 'attention', 'layer_norm', 'feed_forward', 'moe/router', 'moe/routing', 'moe/dispatch', 'moe/experts', 'moe/combine', 'heads'] as const) {
      assert.ok(parts[part].forward_ms > 0, `${part} has forward time`);
    }
    for (const part of ['embeddings', 'mixing', 'attention', 'feed_forward', 'moe/experts', 'moe/router', 'heads'] as const) {
      assert.ok(parts[part].backward_ms > 0, `${part} has backward time`);
    }
    assert.ok(parts.optimizer.forward_ms > 0);
    const total = PARTS.reduce((s, p) => s + parts[p].forward_ms + parts[p].backward_ms, 0);
    assert.ok(total <= wallMs && total > 0.5 * wallMs, `the parts (${total.toFixed(1)} ms) account for the step (${wallMs.toFixed(1)} ms)`);
    assert.ok(parts.other.backward_ms < 0.2 * total, `little backward time is unattributed: ${parts.other.backward_ms.toFixed(2)} of ${total.toFixed(1)} ms`);
  } finally {
    optimizer.dispose();
    model.dispose();
    sm.dispose(Object.values(batch));
  }
});

test('analytic part costs add up to the model\'s FLOPs; efficiencies use the binding limit', () => {
  for (const name of ['bert-base', 'sparse-mixer', 'sparse-mixer-tiny']) {
    const c = sm.presetConfig(name, { vocab_size: 32000 });
    const P = Math.min(80, Math.max(1, Math.round(0.15 * c.max_seq_length)));
    const costs = partCosts(c, 2, c.max_seq_length, P);
    const total = Object.values(costs).reduce((s, x) => s + x.flops, 0);
    const expected = stepFlops(c, 2, P).train / 3;
    // The same GEMMs; the parts also count elementwise work (layer norms, combine), ~1% at tiny widths.
    assert.ok(Math.abs(total - expected) / expected < 0.02, `${name}: ${total} vs ${expected}`);
  }
  const times = Object.fromEntries(PARTS.map((p) => [p, { forward_ms: 0, backward_ms: 0 }])) as Parameters<typeof breakdownRows>[0];
  times.feed_forward = { forward_ms: 10, backward_ms: 10 };
  const [row] = breakdownRows(times, { feed_forward: { flops: 1e9, bytes: 1e6 } }, true, 300, 10);
  // 3 GFLOP at 300 GFLOP/s: 10 ms at the limit, 20 ms taken.
  assert.equal(row!.part, 'feed_forward');
  assert.ok(Math.abs(row!.efficiency! - 0.5) < 1e-9);
});

const PYTHON = process.env['SM_TEST_PYTHON'] || '/usr/bin/python3';
const noTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0 && `${PYTHON} cannot import torch`;

test('bench models --breakdown: ours and the PyTorch peer, per part, both passes, with tables and a chart', { skip: noTorch, timeout: 300_000 }, async () => {
  const report = await benchModels({
    models: ['sparse-mixer-tiny'], batchSize: 2, seqLength: 32, vocabSize: 300, device: 'cpu', precision: 'float32', threads: 1,
    warmup: 1, repeats: 1, passes: ['train', 'infer'], python: PYTHON, peerDispatch: 'scatter', hfBert: false, breakdown: true, log: () => {},
  });
  const b = report.rows[0]!.breakdown!;
  for (const pass of ['train', 'infer'] as const) {
    const { ours, pytorch } = b[pass]!;
    assert.ok(pytorch, 'the peer broke its pass down too');
    for (const side of [ours, pytorch]) {
      const part = (name: string) => side.find((r) => r.part === name);
      assert.ok(part('moe/experts')!.forward_ms > 0 && part('attention')!.forward_ms > 0 && part('mixing')!.forward_ms > 0);
      if (pass === 'train') assert.ok(part('moe/experts')!.backward_ms > 0 && part('optimizer')!.forward_ms > 0);
      else assert.ok(side.every((r) => r.backward_ms === 0));
    }
  }
  assert.ok(report.copy_gbps! > 0);
  const tables = breakdownTables(report);
  assert.equal(tables.length, 2);
  assert.deepEqual(tables[0]!.rows[0], ['part', 'ours fwd ms', 'ours bwd ms', 'PyTorch fwd ms', 'PyTorch bwd ms', 'GFLOP', 'MB', 'ours at limit']);
  assert.match(breakdownSvg(report), /<title>moe\/experts forward [\d.]+ ms<\/title>/);
});
