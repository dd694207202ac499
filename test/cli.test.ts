// The command-line program, run as a user would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as sm from '../lib';

const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');
const run = (...args: string[]) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('doctor --json reports libtorch, CUDA, BLAS, threads and the addon', () => {
  const { info, warnings } = JSON.parse(run('doctor', '--json')) as {
    info: { libtorch: { version: string; foundVia: string }; threads: { intraOp: number }; blas: { kind: string }; cuda: { available: boolean } };
    warnings: string[];
  };
  assert.match(info.libtorch.version, /^\d+\.\d+/);
  assert.ok(['LIBTORCH', 'LIBTORCH_USE_PYTORCH', 'system'].includes(info.libtorch.foundVia));
  assert.ok(info.threads.intraOp >= 1);
  assert.equal(typeof info.cuda.available, 'boolean');
  assert.ok(Array.isArray(warnings));
  assert.match(run('doctor'), /libtorch\s+\d+\.\d+.*found via/);
});

test('doctor lists the process-group backends of this build', () => {
  const { info } = JSON.parse(run('doctor', '--json')) as { info: { distributed: { backends: string[] } } };
  assert.deepEqual(info.distributed.backends, sm.distributed.availableBackends());
  assert.match(run('doctor'), info.distributed.backends.includes('gloo') ? /distributed\s+gloo/ : /distributed\s+none/);
});

test('SPARSE_MIXER_NUM_THREADS sets the thread count; a bad value is a clear error', () => {
  const env = { ...process.env, SPARSE_MIXER_NUM_THREADS: '1' };
  const out = JSON.parse(execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env })) as {
    info: { threads: { intraOp: number; setBy: string } };
  };
  assert.equal(out.info.threads.intraOp, 1);
  assert.equal(out.info.threads.setBy, 'SPARSE_MIXER_NUM_THREADS');
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'doctor'], { encoding: 'utf8', env: { ...env, SPARSE_MIXER_NUM_THREADS: 'many' }, stdio: 'pipe' }),
    (e: Error & { stderr?: string }) => /SPARSE_MIXER_NUM_THREADS must be a positive integer, got 'many'/.test(String(e.stderr)),
  );
});

test('smoke fits a small network and frees every tensor', () => {
  const r = JSON.parse(run('smoke', '--json', '--steps', '150')) as { initialLoss: number; finalLoss: number; liveTensorsAfter: number };
  assert.ok(r.finalLoss < r.initialLoss / 10);
  assert.equal(r.liveTensorsAfter, 0);
});

test('model-info --json: parameters, layer table and FLOPs for a base preset', () => {
  const info = JSON.parse(run('model-info', '--preset', 'fast-sparse-mixer', '--vocab-size', '32000', '--json')) as {
    parameters: { total: number; encoder: number; byModule: Record<string, number> };
    layers: { index: number; mixing: string; moe: boolean; capacity: { train: number; eval: number } | null }[];
    flopsPerToken: { total: number };
  };
  assert.equal(info.layers.length, 14);
  assert.deepEqual(info.layers.filter((l) => l.moe).map((l) => l.capacity), Array(4).fill({ train: 128, eval: 128 }));
  assert.deepEqual(info.layers.filter((l) => l.mixing === 'attention').map((l) => l.index), [10, 11, 12, 13]);
  assert.equal(Object.values(info.parameters.byModule).reduce((a, b) => a + b), info.parameters.total);
  assert.ok(info.flopsPerToken.total > 1e7);
  const text = run('model-info', '--preset', 'bert-tiny');
  assert.match(text, /layer\s+mixing\s+feed-forward/);
  assert.match(text, /total\s+[\d,]+/);
});

test('unknown presets and bad options fail with a message, not a stack trace', () => {
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'model-info', '--preset', 'nope'], { encoding: 'utf8', stdio: 'pipe' }),
    (e: Error & { stderr?: string }) => /unknown preset 'nope'/.test(String(e.stderr)) && !/at Object\./.test(String(e.stderr)),
  );
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'smoke', '--steps', '-3'], { encoding: 'utf8', stdio: 'pipe' }),
    (e: Error & { stderr?: string }) => /expected a positive integer, got '-3'/.test(String(e.stderr)),
  );
});

test('bench ops --json prints ours against PyTorch per op, with ratios', { timeout: 120_000 }, () => {
  const report = JSON.parse(run('bench', 'ops', '--json', '--rounds', '1', '--round-seconds', '0.01')) as {
    results: { name: string; ours_us: number; pytorch_us: number | null; ratio: number | null }[];
    matmul_512: { ours_gflops: number };
  };
  const names = report.results.map((r) => r.name);
  for (const op of ['add', 'mul', 'matmul_64', 'linear', 'layer_norm', 'softmax', 'gelu', 'backward_small', 'matmul_512']) {
    assert.ok(names.includes(op), op);
  }
  for (const r of report.results) {
    assert.ok(r.ours_us > 0);
    if (r.pytorch_us !== null) assert.ok(Math.abs(r.ratio! - r.ours_us / r.pytorch_us) < 1e-9);
  }
  assert.ok(report.matmul_512.ours_gflops > 0);
});
