// The server's lifecycle: SIGTERM to `sparse-mixer serve` with requests in flight answers them all
// and exits 0 with its inference process gone; close() takes no new requests; an inference process
// that dies fails only the batch it was running and is replaced; and a BERT (attention only, no MoE)
// runs batches cut to their longest input, with the offline results.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { assertClose } from './helpers';
import { call, finetuneSpam, metricValue, spamTexts } from './serve-fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-serve-life-'));
const cliPath = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');
let classifier: Promise<string> | undefined;
const spamWorkdir = () => (classifier ??= finetuneSpam(root, 'spam'));

after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Pids of this process's children (or another's) running the inference process. */
function inferenceChildren(parent: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('inference-process.js'))
      .map((l) => Number(l.trim().split(/\s+/)[0]));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('what cannot be served is refused at start with the reason, leaving no process behind', { timeout: 300_000 }, async () => {
  const workdir = await spamWorkdir();
  await assert.rejects(sm.serve.serve({ workdir: path.join(root, 'nowhere'), port: 0 }), /nowhere has no config\.json: not a training workdir/);
  await assert.rejects(sm.serve.serve({ workdir, port: 0, maxBatchTokens: 16 }), /maxBatchTokens \(16\) must be at least the model's max_seq_length \(32\)/);
  await assert.rejects(sm.serve.serve({ workdir, port: 0, device: 'gpu' }), /invalid device "gpu"/);
  // A config without checkpoints: the inference process says why and ends.
  const empty = path.join(root, 'no-checkpoints');
  fs.mkdirSync(empty, { recursive: true });
  fs.copyFileSync(path.join(workdir, 'config.json'), path.join(empty, 'config.json'));
  await assert.rejects(sm.serve.serve({ workdir: empty, port: 0 }), /the model could not be loaded: .*checkpoint/i);
  const cli = spawn(process.execPath, [cliPath, 'serve', '--workdir', path.join(root, 'nowhere'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  cli.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  assert.equal(await new Promise((resolve) => cli.on('exit', resolve)), 1);
  assert.match(stderr, /^sparse-mixer: .*nowhere has no config\.json/);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(inferenceChildren(process.pid), []);
});

test('SIGTERM: every request in flight is answered, then the CLI exits 0 and its inference process is gone', { timeout: 300_000 }, async () => {
  const workdir = await spamWorkdir();
  // Batches wait up to 5 s to fill, so the requests are still queued when the signal arrives.
  const child = spawn(process.execPath, [cliPath, 'serve', '--workdir', workdir, '--port', '0', '--max-wait-ms', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The server's log lines go to stderr (stdout carries results, and a server has none).
  await until('the server to listen', async () => /listening on (http:\/\/\S+):/.test(stderr) || child.exitCode !== null);
  const url = /listening on (http:\/\/\S+):/.exec(stderr)?.[1];
  assert.ok(url, `no listening line; stderr: ${stderr}`);
  const [inference] = inferenceChildren(child.pid!);
  assert.ok(inference && alive(inference), 'the inference process runs');

  const texts = spamTexts(20);
  const answers = Promise.all(texts.map((t) => call(`${url}/predict`, { body: { inputs: t, truncate: true } })));
  await until('20 requests in flight', async () => metricValue(String((await call(`${url}/metrics`)).body), 'sparse_mixer_requests_in_flight') === 20);
  const signalled = performance.now();
  child.kill('SIGTERM');
  const answered = await answers;
  assert.deepEqual(answered.map((a) => a.status), Array(20).fill(200), 'all answered');
  assert.ok(performance.now() - signalled < 4000, 'the queue did not sit out its 5 s wait: stopping flushes it');
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /SIGTERM: taking no new requests, answering the ones in flight\nstopped\n/);
  assert.equal(stdout, '');
  assert.equal(alive(inference), false, 'the inference process ended too');
});

test('close() takes no new requests: a new one is refused or answered 503', { timeout: 300_000 }, async () => {
  const server = await sm.serve.serve({ workdir: await spamWorkdir(), port: 0, maxWaitMs: 500 });
  const first = call(`${server.url}/predict`, { body: { inputs: 'in flight' } });
  await until('the request in flight', async () => metricValue(String((await call(`${server.url}/metrics`)).body), 'sparse_mixer_requests_in_flight') === 1);
  const closing = server.close();
  const late = await call(`${server.url}/predict`, { body: { inputs: 'too late' } }).catch((e: Error) => ({ status: 0, body: String((e as { cause?: Error }).cause?.message ?? e.message) }));
  assert.ok(late.status === 503 || /ECONNREFUSED|other side closed|socket/.test(String(late.body)), `${late.status} ${JSON.stringify(late.body)}`);
  assert.equal((await first).status, 200);
  await closing;
  assert.deepEqual(inferenceChildren(process.pid), []);
});

test('an inference process that dies fails only its batch; queued requests wait for the new one', { timeout: 300_000 }, async () => {
  const server = await sm.serve.serve({ workdir: await spamWorkdir(), port: 0, maxWaitMs: 0 });
  try {
    const before = await call(`${server.url}/predict`, { body: { inputs: 'a message' } });
    const [pid] = inferenceChildren(process.pid);
    assert.ok(pid);
    // Freeze it, so that the next batch is certainly running in it when it dies.
    process.kill(pid, 'SIGSTOP');
    const lost = call(`${server.url}/predict`, { body: { inputs: 'lost with the process' } });
    await until('the batch to be sent', async () => {
      const m = String((await call(`${server.url}/metrics`)).body);
      return metricValue(m, 'sparse_mixer_requests_in_flight') === 1 && metricValue(m, 'sparse_mixer_queue_inputs') === 0;
    });
    const queued = call(`${server.url}/predict`, { body: { inputs: 'a message' } });
    process.kill(pid, 'SIGKILL');
    const l = await lost;
    assert.equal(l.status, 500);
    assert.match((l.body as { error: string }).error, /the inference process ended \(signal SIGKILL\) while running this batch; the server is starting a new one/);
    const health = await call(`${server.url}/health`);
    assert.equal(health.status, 503, 'unhealthy while the new process loads');
    const q = await queued;
    assert.equal(q.status, 200);
    assert.deepEqual(q.body, before.body, 'the new process answers as the old one did');
    assert.equal((await call(`${server.url}/health`)).status, 200);
    assert.equal(server.stats().inferenceRestarts, 1);
    assert.equal(alive(pid), false);
  } finally {
    await server.close();
  }
});

test('when the model cannot be loaded again, the server says 503 instead of starting processes forever', { timeout: 300_000 }, async () => {
  const workdir = path.join(root, 'copy');
  fs.cpSync(await spamWorkdir(), workdir, { recursive: true });
  const server = await sm.serve.serve({ workdir, port: 0, maxWaitMs: 0 });
  try {
    const [pid] = inferenceChildren(process.pid);
    fs.rmSync(path.join(workdir, 'checkpoints'), { recursive: true });
    process.kill(pid!, 'SIGKILL');
    await until('the failed restart', async () => server.stats().inferenceRestarts === 1 && inferenceChildren(process.pid).length === 0);
    const p = await call(`${server.url}/predict`, { body: { inputs: 'a message' } });
    assert.equal(p.status, 503);
    assert.match((p.body as { error: string }).error, /the model could not be loaded: /);
    assert.equal((await call(`${server.url}/health`)).status, 503);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(server.stats().inferenceRestarts, 1, 'one attempt, not a loop');
    assert.deepEqual(inferenceChildren(process.pid), []);
  } finally {
    await server.close();
  }
});

test('a BERT runs batches cut to their longest input, with the results of offline predict', { timeout: 300_000 }, async (t) => {
  const workdir = await finetuneSpam(root, 'bert', { preset: 'bert-tiny', num_layers: 2, num_attention_layers: 2, num_moe_layers: 0, max_seq_length: 64 });
  // Short texts of many lengths, so that widths vary from batch to batch.
  const texts = spamTexts(96).map((t, i) => t.split(' ').slice(0, 2 + (i % 20)).join(' '));
  const server = await sm.serve.serve({ workdir, port: 0, maxWaitMs: 20, maxBatchRequests: 16 });
  try {
    assert.equal(server.model.acceptsAnyWidth, true);
    const answers = await Promise.all(texts.map((t) => call(`${server.url}/predict`, { body: { inputs: t, truncate: true } })));
    const predictor = sm.train.Predictor.load(workdir);
    const offline = await predictor.predict(texts);
    predictor.dispose();
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      const byLabel = Object.fromEntries((a.body as { score: number; label: string }[]).map((s) => [s.label, s.score]));
      // Offline batches are max_seq_length wide: the same result up to float32 round-off.
      assertClose([byLabel['ham']!, byLabel['spam']!], offline[i]!.scores, 1e-5, `text ${i}`);
    });
    const s = server.stats();
    t.diagnostic(`${s.inputs} inputs in ${s.batches} batches, mean width ${(s.paddedTokens / s.inputs).toFixed(1)}, ${((100 * s.inputTokens) / s.paddedTokens).toFixed(0)}% real tokens`);
    assert.ok(s.paddedTokens / s.inputs < 64 * 0.75, `mean width ${(s.paddedTokens / s.inputs).toFixed(1)} of 64`);
    assert.ok(s.inputTokens / s.paddedTokens > 0.6, `${((100 * s.inputTokens) / s.paddedTokens).toFixed(0)}% of the batch tokens are real`);
  } finally {
    await server.close();
  }
});
