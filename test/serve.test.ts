// The inference server over real HTTP on loopback: hundreds of concurrent requests, all answered
// from shared batches and equal to offline predictions; /embed against the offline Embedder;
// /health answered while a batch runs; /info and /metrics; and the README's curl example.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as sm from '../lib';
import { assertClose } from './helpers';
import { call, finetuneSpam, metricValue, spamTexts } from './serve-fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-serve-'));
let workdir = '';
let server: sm.serve.InferenceServer;
const texts = spamTexts(150);

type Scored = { score: number; label: string };

before(async () => {
  workdir = await finetuneSpam(root, 'spam');
  server = await sm.serve.serve({ workdir, port: 0, maxWaitMs: 20 });
});

after(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('hundreds of concurrent requests are all answered, in shared batches, equal to offline predict', { timeout: 600_000 }, async (t) => {
  const liveBefore = metricValue(String((await call(`${server.url}/metrics`)).body), 'sparse_mixer_inference_live_tensors');
  const statsBefore = server.stats();
  // 300 requests at once: single texts, lists of one to three, some with raw scores. Mails are longer
  // than the model's 32 tokens, so every request asks for truncation.
  const requests = Array.from({ length: 300 }, (_, i) => {
    const n = i % 4;
    const picked = Array.from({ length: Math.max(1, n) }, (_, k) => texts[(i * 7 + k) % texts.length]!);
    return { picked, single: n === 0, raw: i % 5 === 0 };
  });
  const answers = await Promise.all(
    requests.map((r) => call(`${server.url}/predict`, { body: { inputs: r.single ? r.picked[0] : r.picked, truncate: true, raw_scores: r.raw } })),
  );
  const predictor = sm.train.Predictor.load(workdir);
  const offline = new Map((await predictor.predict(texts)).map((p, i) => [texts[i]!, p]));
  predictor.dispose();
  answers.forEach((a, i) => {
    const r = requests[i]!;
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const lists = (r.single ? [a.body] : a.body) as Scored[][];
    assert.equal(lists.length, r.picked.length);
    lists.forEach((list, k) => {
      const expected = offline.get(r.picked[k]!)!;
      assert.deepEqual([...list].sort((x, y) => y.score - x.score), list, 'sorted by score');
      const byLabel = Object.fromEntries(list.map((s) => [s.label, s.score]));
      const probs = ['ham', 'spam'].map((l) => byLabel[l]!);
      // Raw scores are logits: their softmax is the offline probabilities.
      const scores = r.raw ? probs.map((x) => Math.exp(x) / probs.reduce((t, y) => t + Math.exp(y), 0)) : probs;
      assertClose(scores, expected.scores, 1e-6, `request ${i} input ${k}`);
      assert.equal(list[0]!.label, expected.labelName);
    });
  });
  const stats = server.stats();
  const inputs = stats.inputs - statsBefore.inputs;
  const batches = stats.batches - statsBefore.batches;
  assert.equal(inputs, requests.reduce((n, r) => n + r.picked.length, 0));
  t.diagnostic(`${requests.length} requests, ${inputs} inputs in ${batches} batches`);
  assert.ok(inputs / batches >= 4, `mean batch ${inputs / batches} inputs: the requests were batched together`);
  const metrics = String((await call(`${server.url}/metrics`)).body);
  assert.equal(metricValue(metrics, 'sparse_mixer_inference_live_tensors'), liveBefore, 'the inference process leaks no tensors');
  assert.equal(metricValue(metrics, 'sparse_mixer_queue_inputs'), 0);
  assert.equal(metricValue(metrics, 'sparse_mixer_requests_in_flight'), 0);
});

test('/embed answers the offline pooled output, unit length unless normalize is false', { timeout: 300_000 }, async () => {
  const some = texts.slice(0, 6);
  const embedder = sm.train.Embedder.load(workdir);
  const unit = await embedder.embed(some, { normalize: true });
  const raw = await embedder.embed(some);
  embedder.dispose();
  const a = await call(`${server.url}/embed`, { body: { inputs: some, truncate: true } });
  const b = await call(`${server.url}/embed`, { body: { inputs: some[0], truncate: true, normalize: false } });
  assert.equal(a.status, 200);
  const vectors = a.body as number[][];
  vectors.forEach((v, i) => {
    assertClose(v, unit[i]!, 1e-6);
    assertClose(Math.hypot(...v), 1, 1e-5);
  });
  assertClose((b.body as number[][])[0]!, raw[0]!, 1e-6);
});

test('/info describes the model and the limits; /metrics is Prometheus text', async () => {
  const info = (await call(`${server.url}/info`)).body as Record<string, unknown>;
  assert.deepEqual(info['model_type'], { classifier: { id2label: { '0': 'ham', '1': 'spam' }, label2id: { ham: 0, spam: 1 } } });
  assert.equal(info['max_input_length'], 32);
  assert.equal(info['max_batch_requests'], sm.serve.SERVE_DEFAULTS.maxBatchRequests);
  assert.equal(info['task'], 'spam');
  assert.equal(info['preset'], 'sparse-mixer-tiny');
  assert.match(String(info['version']), /^\d+\.\d+\.\d+/);
  const m = await call(`${server.url}/metrics`);
  assert.match(String(m.headers.get('content-type')), /^text\/plain; version=0\.0\.4/);
  const text = String(m.body);
  for (const name of ['sparse_mixer_request_duration_seconds_bucket', 'sparse_mixer_queue_duration_seconds_count', 'sparse_mixer_batch_inputs_sum', 'sparse_mixer_tokens_per_second', 'nodejs_eventloop_lag_seconds']) {
    assert.ok(text.includes(name), name);
  }
  assert.match(text, /^sparse_mixer_requests_total\{endpoint="\/predict",status="200"\} \d+$/m);
  assert.ok(metricValue(text, 'sparse_mixer_tokens_per_second') > 0);
});

test('health checks are answered while a batch runs (the model runs in another process)', { timeout: 300_000 }, async (t) => {
  // One big batch: 8 requests of 32 inputs in a server that waits for them and takes 256 at once.
  const slow = await sm.serve.serve({ workdir, port: 0, maxBatchRequests: 256, maxWaitMs: 1000 });
  try {
    const started = performance.now();
    let done = false;
    const predicts = Promise.all(Array.from({ length: 8 }, (_, i) => call(`${slow.url}/predict`, { body: { inputs: texts.slice(i * 16, i * 16 + 32), truncate: true } }))).then((r) => {
      done = true;
      return r;
    });
    const health: number[] = [];
    while (!done) {
      const t = performance.now();
      const h = await call(`${slow.url}/health`);
      if (!done) health.push(performance.now() - t);
      assert.equal(h.status, 200);
      await new Promise((r) => setTimeout(r, 2));
    }
    const answers = await predicts;
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(slow.stats().batches, 1, 'one batch of 256 inputs');
    const batchMs = performance.now() - started;
    t.diagnostic(`${health.length} health checks during ${batchMs.toFixed(0)} ms, slowest ${Math.max(...health).toFixed(1)} ms`);
    // A blocked event loop would answer one health check per batch; this one answers many during it.
    assert.ok(health.length >= 5, `${health.length} health checks answered during a ${batchMs.toFixed(0)} ms batch`);
    assert.ok(Math.max(...health) < batchMs / 2, `slowest health check ${Math.max(...health).toFixed(1)} ms of ${batchMs.toFixed(0)} ms`);
  } finally {
    await slow.close();
  }
});

test("the README's curl example gets an answer of the shape the README shows", { timeout: 60_000 }, async (t) => {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
  const m = /<!-- example:serve -->\s*```sh\n([\s\S]*?)```\s*```json\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the serving example');
  const curl = m[1]!.split('\n').find((l) => l.startsWith('curl '));
  assert.ok(curl, 'the example has a curl command');
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('curl is not installed');
    return;
  }
  // The README's numbers come from the quickstart model; this server's tiny model scores differently,
  // so the test checks what the answer is made of: the labels, their order by score, probabilities.
  // (Asynchronously: the server answering curl runs on this process's event loop.)
  const { stdout: out } = await promisify(execFile)('bash', ['-c', curl.replace('localhost:3000', server.url.replace('http://', ''))], { encoding: 'utf8', timeout: 30_000 });
  const shown = JSON.parse(m[2]!) as Scored[];
  const got = JSON.parse(out) as Scored[];
  assert.deepEqual(got.map((s) => Object.keys(s)), shown.map((s) => Object.keys(s)));
  assert.deepEqual(new Set(got.map((s) => s.label)), new Set(shown.map((s) => s.label)));
  assert.ok(got[0]!.score >= got[1]!.score && shown[0]!.score >= shown[1]!.score);
  assertClose(got.reduce((n, s) => n + s.score, 0), 1, 1e-6);
  assertClose(shown.reduce((n, s) => n + s.score, 0), 1, 1e-6);
});
