// `bench moe` end to end on the CPU at its small shape: fused against masked, the layer against its
// expert GEMMs, the dispatch/combine bandwidth against a copy, and the CLI's JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { benchMoe, dispatchCombineBandwidth, type MoeBenchReport } from '../bench/moe';
import * as sm from '../lib';

const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

test('bench moe: every part and pass timed, ratios from those times, bandwidth against a copy', { timeout: 120_000 }, () => {
  const lines: string[] = [];
  const report = benchMoe({ repeats: 1, device: 'cpu', dtype: 'float32', shapes: ['small cf=1.0'], trainingStep: false, bandwidthTokens: 4096, log: (l) => lines.push(l) });
  assert.equal(report.results.length, 10, '5 functions × 2 passes');
  const ms = (impl: string, part: string, pass: string) => report.results.find((r) => r.impl === impl && r.part === part && r.pass === pass)!.ms;
  for (const r of report.results) assert.ok(r.ms > 0 && Number.isFinite(r.ms), JSON.stringify(r));
  const ratio = report.ratios['small cf=1.0 layer forward: fused / expert_gemms']!;
  assert.ok(Math.abs(ratio - ms('fused', 'layer', 'forward') / ms('expert_gemms', 'layer', 'forward')) < 1e-12);
  assert.equal(report.bandwidth.capacity, 256);
  assert.deepEqual(report.bandwidth.results.map((b) => b.op), ['copy', 'dispatch', 'combine']);
  const [copy, dispatch] = report.bandwidth.results;
  assert.equal(copy!.of_copy, 1);
  assert.equal(dispatch!.bytes, 2 * 16 * 256 * 512 * 4 + 16 * 256 * 8, 'rows read and written, and the slot table');
  for (const b of report.bandwidth.results) assert.ok(b.gb_per_s > 0 && Math.abs(b.gb_per_s - b.bytes / (b.ms * 1e6)) < 1e-6 * b.gb_per_s);
  assert.ok(lines.some((l) => /^bandwidth dispatch .* GB\/s, \d+% of copy$/.test(l)), lines.join('\n'));
  assert.equal(sm.memory().numTensors, 0, 'the benchmark frees every tensor it made');
});

test('dispatchCombineBandwidth refuses a token count it cannot group', () => {
  assert.throws(() => dispatchCombineBandwidth({ device: 'cpu', dtype: 'float32', tokens: 5000, repeats: 1, inner: 1 }), /multiple of 4096/);
});

test('sparse-mixer bench moe --json prints the report', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [cli, 'bench', 'moe', '--json', '--repeats', '1', '--shape', 'small cf=1.0', '--batch-size', '2', '--no-training-step', '--bandwidth-tokens', '4096'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as MoeBenchReport;
  assert.equal(report.device, 'cpu');
  assert.equal(report.bandwidth.tokens, 4096);
  assert.equal(report.training_step, undefined);
  assert.equal(report.results.length, 10);
});
