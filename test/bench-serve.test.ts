// `sparse-mixer bench serve --json` end to end at a tiny size: the server under closed-loop clients
// and offline predict, one row each, with figures that agree with each other. (The speeds themselves
// are the bench's to measure, not a test's.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ServeBenchReport } from '../bench/serve';
import { finetuneSpam } from './serve-fixtures';

const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

test('bench serve --json: offline predict and each concurrency level, with the targets evaluated', { timeout: 300_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-serve-'));
  try {
    const workdir = await finetuneSpam(root, 'spam');
    const args = ['bench', 'serve', '--json', '--workdir', workdir, '--concurrency', '1', '--concurrency', '4', '--concurrency', '32', '--seconds', '1', '--warmup-seconds', '0.5', '--rounds', '1', '--inputs', '40'];
    const { stdout } = await promisify(execFile)(process.execPath, [cli, ...args], { encoding: 'utf8' });
    const report = JSON.parse(stdout) as ServeBenchReport;
    const offline = report.rows[0]!;
    assert.deepEqual(report.rows.map((r) => [r.concurrency, r.offline_batch]), [[0, 32], [0, 1], [1, null], [4, null], [32, null]]);
    assert.ok(Math.abs(report.offline_batching_gain - offline.requests_per_sec / report.rows[1]!.requests_per_sec) < 1e-9);
    for (const r of report.rows) {
      assert.ok(r.requests_per_sec > 0 && r.tokens_per_sec > 0, JSON.stringify(r));
      assert.ok(Math.abs(r.vs_offline - r.requests_per_sec / offline.requests_per_sec) < 1e-9);
      if (r.concurrency > 0) {
        assert.ok(r.p50_ms! > 0 && r.p99_ms! >= r.p50_ms!);
        assert.ok(r.mean_batch >= 1 && r.mean_batch <= Math.max(1, r.concurrency), `mean batch ${r.mean_batch} with ${r.concurrency} clients`);
      }
    }
    assert.equal(report.rows[2]!.mean_batch, 1, 'one client: batches of one');
    assert.deepEqual(report.targets.map((t) => t.name), ['throughput at 32 clients / offline', 'throughput at 32 clients / 1 client', 'p99 / p50 latency at 32 clients']);
    assert.equal(report.settings.workdir, workdir);
    assert.match(report.command!, /^sparse-mixer bench serve --json/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
