// `bench models` end to end at tiny shapes: ours and the PyTorch peer timed side by side, the
// report's arithmetic (speed-ups, MFU, ratios) and its three renderings, and the CLI's files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchModels, speedups, splitPreset, stepFlops, type ModelRow } from '../bench/models';
import { formatModelsTable, modelsMarkdown, modelsSvg } from '../bench/models_report';
import * as sm from '../lib';

const PYTHON = process.env['SM_TEST_PYTHON'] || '/usr/bin/python3';
const hasTransformers = spawnSync(PYTHON, ['-c', 'import transformers'], { encoding: 'utf8' }).status === 0;
const noTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0 && `${PYTHON} cannot import torch`;
const root = path.resolve(__dirname, '..', '..');

test('bench models: ours and PyTorch side by side, same loss, speed-ups over BERT, reports', { skip: noTorch, timeout: 300_000 }, async () => {
  const lines: string[] = [];
  const report = await benchModels({
    models: ['bert-tiny', 'sparse-mixer-tiny'],
    batchSize: 2,
    seqLength: 32,
    vocabSize: 300,
    device: 'cpu',
    precision: 'float32',
    threads: 1,
    warmup: 1,
    repeats: 2,
    passes: ['train', 'infer'],
    python: PYTHON,
    peerDispatch: 'masked',
    hfBert: false,
    log: (line) => lines.push(line),
  });
  assert.equal(report.rows.length, 2);
  assert.ok(report.pytorch, 'the peer started');
  assert.ok(report.matmul_peak.ours_gflops > 0 && report.matmul_peak.pytorch_gflops! > 0);
  for (const row of report.rows) {
    assert.equal(row.batch_size, 2);
    assert.equal(row.seq_length, 32);
    assert.ok(row.parameters > 0);
    assert.ok(row.loss_difference !== null && row.loss_difference < 1e-4, `${row.model}: |Δloss| ${row.loss_difference}`);
    assert.ok(row.flops_per_step.train > 3 * row.flops_per_step.infer, 'a training step costs 3 forwards of the whole model');
    for (const pass of ['train', 'infer'] as const) {
      const p = row.passes[pass]!;
      assert.equal(p.ours.samples.length, 2);
      assert.equal(p.pytorch!.samples.length, 2);
      assert.ok(p.ours.seconds > 0 && p.pytorch!.seconds > 0);
      assertCloseRel(p.ratio!, p.ours.seconds / p.pytorch!.seconds);
      assertCloseRel(p.min_ratio!, Math.min(...p.ours.samples) / Math.min(...p.pytorch!.samples));
      assertCloseRel(p.ours.tokens_per_sec, (2 * 32) / p.ours.seconds);
      assertCloseRel(p.ours.mfu, row.flops_per_step[pass] / p.ours.seconds / (Math.max(report.matmul_peak.ours_gflops, report.matmul_peak.pytorch_gflops!) * 1e9));
      assert.ok(p.ours.peak_bytes! > 10 * 2 ** 20 && p.pytorch!.peak_bytes! > 10 * 2 ** 20, 'peak resident memory of each process');
    }
  }
  assert.deepEqual(
    report.speedups.map((s) => [s.model, s.pass, s.paper]),
    [['sparse-mixer-tiny', 'train', 1.65], ['sparse-mixer-tiny', 'infer', 1.61]],
  );
  const trainSpeedup = report.speedups[0]!;
  assertCloseRel(trainSpeedup.ours, report.rows[0]!.passes.train!.ours.seconds / report.rows[1]!.passes.train!.ours.seconds);

  const table = formatModelsTable(report);
  assert.match(table, /sparse-mixer-tiny\s+2×32\s+\S+M\s+train/);
  assert.match(table, /ours\/PyTorch\s+min ratio/);
  assert.match(table, /speed-up over BERT/);
  const md = modelsMarkdown(report, 'chart.svg');
  assert.match(md, /^# sparse-mixer bench models/);
  assert.match(md, /\| bert-tiny \| 2×32 \|/);
  assert.match(md, /!\[throughput, ours vs PyTorch\]\(chart\.svg\)/);
  const svg = modelsSvg(report);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<rect [^>]*fill="#3b6fb6"/g) ?? []).length, 5, 'one bar per model and pass for ours, plus the legend');
  assert.equal((svg.match(/<rect [^>]*fill="#e0892b"/g) ?? []).length, 5, 'one bar per model and pass for PyTorch, plus the legend');
  assert.ok(lines.some((l) => /sparse-mixer-tiny\s+train ours .* ratio/.test(l)), lines.join('\n'));
  assert.equal(sm.memory().numTensors, 0, 'the benchmark frees every tensor it made');
});

test('bench models --hf-bert times Hugging Face BERT after the port, or says why it cannot', { skip: noTorch, timeout: 300_000 }, async () => {
  const lines: string[] = [];
  const report = await benchModels({
    models: ['bert-tiny'], batchSize: 2, seqLength: 16, vocabSize: 100, device: 'cpu', precision: 'float32', threads: 1,
    warmup: 1, repeats: 2, passes: ['train', 'infer'], python: PYTHON, peerDispatch: 'masked', hfBert: true, log: (line) => lines.push(line),
  });
  const passes = report.rows[0]!.passes;
  // The port is timed before HF BERT replaces it in the peer: its loss still matches ours.
  assert.ok(report.rows[0]!.loss_difference! < 1e-4);
  for (const pass of ['train', 'infer'] as const) assert.equal(passes[pass]!.pytorch!.samples.length, 2);
  if (!hasTransformers) {
    assert.ok(lines.some((l) => /HF BERT: .*transformers/.test(l)), lines.join('\n'));
    assert.ok(!formatModelsTable(report).includes('HF BERT'), 'no HF columns without HF timings');
    return;
  }
  for (const pass of ['train', 'infer'] as const) {
    const hf = passes[pass]!.hf_bert!;
    assert.equal(hf.samples.length, 2);
    assert.ok(hf.seconds > 0);
  }
  assert.match(formatModelsTable(report), /HF BERT s\/step\s+ours\/HF/);
  assert.match(modelsMarkdown(report), /\| HF BERT s\/step \| ours\/HF \|/);
  assert.equal((modelsSvg(report).match(/<rect [^>]*fill="#5aa25a"/g) ?? []).length, 3, 'a bar per pass, plus the legend');
  assert.ok(lines.some((l) => /bert-tiny\s+infer HF BERT .* ours\/HF/.test(l)), lines.join('\n'));
});

test('bench models without a peer reports our figures and says why', { timeout: 120_000 }, async () => {
  const lines: string[] = [];
  const report = await benchModels({
    models: ['bert-tiny'],
    batchSize: 1,
    seqLength: 16,
    vocabSize: 100,
    device: 'cpu',
    precision: 'float32',
    threads: 1,
    warmup: 1,
    repeats: 1,
    passes: ['infer'],
    python: '/nonexistent/python3',
    peerDispatch: 'masked',
    hfBert: false,
    log: (line) => lines.push(line),
  });
  assert.equal(report.pytorch, null);
  assert.match(report.peer_note!, /PyTorch peer unavailable .*nonexistent/);
  assert.equal(report.rows[0]!.passes.infer!.pytorch, null);
  assert.equal(report.rows[0]!.passes.train, undefined);
  assert.match(formatModelsTable(report), /bert-tiny\s+1×16\s+\S+\s+infer\s+\S+\s+–/);
});

test('speed-ups pair each Sparse Mixer with the BERT of its size; presets split into base and family', () => {
  const m = (s: number) => ({ seconds: s, samples: [s], examples_per_sec: 1 / s, tokens_per_sec: 1 / s, peak_bytes: null, mfu: 0 });
  const row = (model: string, train: number, torchTrain: number): ModelRow => ({
    model,
    batch_size: 2,
    seq_length: 512,
    parameters: 1,
    flops_per_step: { train: 1, infer: 1 },
    loss_difference: null,
    passes: { train: { ours: m(train), pytorch: m(torchTrain), ratio: train / torchTrain, min_ratio: train / torchTrain } },
  });
  const rows = [row('bert-base', 10, 9), row('sparse-mixer', 5, 6), row('fast-sparse-mixer', 4, 6), row('sparse-mixer-small', 1, 1)];
  assert.deepEqual(speedups(rows), [
    { family: 'base', model: 'sparse-mixer', pass: 'train', ours: 2, pytorch: 1.5, paper: 1.65 },
    { family: 'base', model: 'fast-sparse-mixer', pass: 'train', ours: 2.5, pytorch: 1.5, paper: 1.89 },
  ]);
  // The -quarter family pairs the same way (a BERT of its own, wider than the Sparse Mixer).
  assert.deepEqual(speedups([row('sparse-mixer-quarter', 1, 2), row('bert-quarter', 2, 3)]), [{ family: 'quarter', model: 'sparse-mixer-quarter', pass: 'train', ours: 2, pytorch: 1.5, paper: 1.65 }]);
  assert.deepEqual(splitPreset('fast-sparse-mixer-small'), { base: 'fast-sparse-mixer', family: 'small' });
  assert.deepEqual(splitPreset('sparse-mixer-quarter'), { base: 'sparse-mixer', family: 'quarter' });
  assert.deepEqual(splitPreset('bert-base'), { base: 'bert', family: 'base' });
  assert.deepEqual(splitPreset('sparse-mixer'), { base: 'sparse-mixer', family: 'base' });
});

test('analytic step FLOPs: BERT-base at 2×512 is 3 × (encoder + MLM head) for training', () => {
  const c = sm.presetConfig('bert-base', { vocab_size: 32000 });
  const f = stepFlops(c, 2, 80);
  const encoderPerToken = sm.modelInfo(c).flopsPerToken.total;
  const encoder = 2 * 512 * encoderPerToken + 2 * 2 * 768 * 768;
  assert.equal(f.infer, encoder);
  assert.equal(f.train, 3 * (encoder + 2 * 80 * (2 * 768 * 768 + 2 * 768 * 32000) + 2 * 4 * 768));
});

test('CLI: bench models --out writes models.json, models.md and models.svg', { timeout: 120_000 }, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-models-cli-'));
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'bench', 'models', '--model', 'sparse-mixer-tiny', '--batch-size', '1', '--seq-length', '16',
      '--vocab-size', '100', '--repeats', '1', '--pass', 'infer', '--no-peer', '--threads', '1', '--out', out],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sparse-mixer-tiny\s+1×16/);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'models.json'), 'utf8')) as { rows: unknown[]; command: string };
  assert.equal(json.rows.length, 1);
  assert.match(json.command, /^sparse-mixer bench models --model sparse-mixer-tiny/);
  assert.match(fs.readFileSync(path.join(out, 'models.md'), 'utf8'), /sparse-mixer bench models --model sparse-mixer-tiny/);
  assert.match(fs.readFileSync(path.join(out, 'models.svg'), 'utf8'), /<\/svg>\n$/);
  const bad = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'bench', 'models', '--pass', 'backward', '--no-peer'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--pass must be train or infer, got 'backward'/);
  fs.rmSync(out, { recursive: true, force: true });
});

function assertCloseRel(actual: number, expected: number, rel = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${actual} != ${expected}`);
}
