// `bench distributed` end to end at tiny shapes: every setup (ours in one process, data and expert
// parallel; PyTorch in one process and under DDP) starts, takes turns and reports; the bytes each
// process sends are measured and meet the analytic minimum.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { analyticBytes, benchDistributed, formatDistributed } from '../bench/distributed';
import * as sm from '../lib';

const PYTHON = process.env['SM_TEST_PYTHON'] || '/usr/bin/python3';
const noTorch = spawnSync(PYTHON, ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { encoding: 'utf8' }).status !== 0;
const skip = sm.distributed.availableBackends().includes('gloo') ? undefined : 'this build has no Gloo backend';

test('bench distributed: ours (one process, data parallel, expert parallel) and PyTorch (one process, DDP), side by side', { skip, timeout: 300_000 }, async () => {
  const lines: string[] = [];
  const report = await benchDistributed({
    models: ['sparse-mixer-tiny'],
    batchSize: 4,
    seqLength: 32,
    vocabSize: 300,
    processes: 2,
    warmup: 1,
    rounds: 2,
    steps: 1,
    ...(noTorch ? {} : { python: PYTHON }),
    peerRuntime: 'ours',
    peerDispatch: 'scatter',
    log: (line) => lines.push(line),
  });
  const setups = report.rows.map((r) => r.setup);
  assert.deepEqual(setups.slice(0, 3), ['ours 1 process × 2 threads', 'ours 2 processes × 1 thread, data parallel', 'ours 2 processes × 1 thread, expert parallel']);
  if (!noTorch) assert.deepEqual(setups.slice(3), ['PyTorch 1 process × 2 threads', 'PyTorch DDP 2 processes × 1 thread']);
  assert.equal(lines.length, 2, 'a progress line per round');
  for (const row of report.rows) {
    assert.ok(row.seconds > 0 && Number.isFinite(row.loss), `${row.setup}: ${row.seconds} s, loss ${row.loss}`);
    if (row.processes === 1) {
      assert.equal(row.bytes_sent_per_step, null);
      assert.equal(row.speedup_over_one_process, 1);
      continue;
    }
    // Measured bytes: at least the analytic minimum, and not much more (ring all-reduce is optimal).
    const min = row.analytic_min_bytes_per_step!;
    assert.ok(row.bytes_sent_per_step! >= 0.99 * min && row.bytes_sent_per_step! <= 1.2 * min, `${row.setup}: sent ${row.bytes_sent_per_step} bytes per step, minimum ${min}`);
    assert.ok(row.comm_ms !== null && row.comm_ms >= 0 && row.hidden_share! >= 0 && row.hidden_share! <= 1, `${row.setup}: ${row.comm_ms} ms, hidden ${row.hidden_share}`);
  }
  if (!noTorch) assert.ok(report.ratios['sparse-mixer-tiny']! > 0);
  assert.match(formatDistributed(report), /\| sparse-mixer-tiny \| ours 2 processes × 1 thread, data parallel \| /);
});

test('analytic bytes: 2(P−1)/P of the gradients for data parallel; expert parallel sends slots instead of expert gradients', () => {
  const config = sm.presetConfig('sparse-mixer-tiny', { vocab_size: 300, max_seq_length: 32 });
  const model = new sm.PretrainingModel(config);
  const params = model.numParameters();
  const expertParams = sm.distributed.expertModules(model).reduce((n, [, e]) => n + e.numParameters(), 0);
  model.dispose();
  const setup = (processes: number, expertParallelSize: number) => ({ label: '', side: 'ours' as const, processes, threads: 1, expertParallelSize });
  assert.equal(analyticBytes(config, setup(1, 1), 4), null);
  assert.equal(analyticBytes(config, setup(2, 1), 4), params * 4);
  assert.equal(analyticBytes(config, setup(4, 1), 8), (2 * 3 * params * 4) / 4);
  // 2 ranks × 2 examples × 32 tokens: one group of 64 tokens, capacity 64 / E each.
  const C = sm.routing.expertCapacity(64, config.num_experts, config.train_capacity_factor, config.min_expert_capacity);
  const slots = config.num_moe_layers * 4 * 0.5 * config.num_experts * C * config.d_model * 4;
  assert.equal(analyticBytes(config, setup(2, 2), 4), (params - expertParams) * 4 + slots);
});
