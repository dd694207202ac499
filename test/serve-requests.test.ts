// Bad requests and limits over real HTTP: malformed JSON, wrong shapes, wrong segment counts,
// inputs too long without truncate, too many inputs, bodies over the limit, more requests than
// allowed at once, unknown paths and methods. Each gets a status and a message that says what and
// where, and the server goes on answering. Also: a pre-trained workdir serves /embed only, and a
// sentence-pair model takes TEI's pair shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { assertClose } from './helpers';
import { call, finetuneSpam, metricValue, pretrainTiny, spamTexts } from './serve-fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-serve-requests-'));
const dataDir = path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
let workdir = '';
let server: sm.serve.InferenceServer;
const [longText] = spamTexts(40).filter((t) => t.length > 1000);

before(async () => {
  workdir = await finetuneSpam(root, 'spam');
  server = await sm.serve.serve({ workdir, port: 0, maxConcurrentRequests: 4, maxBodyBytes: 4096, maxClientBatchSize: 8, maxWaitMs: 300 });
});

after(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

async function expectError(body: unknown, status: number, message: RegExp, endpoint = '/predict') {
  const a = await call(`${server.url}${endpoint}`, { body });
  assert.equal(a.status, status, JSON.stringify(a.body));
  const e = a.body as { error: string; error_type: string };
  assert.match(e.error, message);
  assert.equal(typeof e.error_type, 'string');
}

test('malformed JSON and empty bodies: 400 quoting the parser', async () => {
  await expectError('{"inputs": "a"', 400, /^malformed JSON: /);
  await expectError('', 400, /the request body is empty/);
  await expectError({ inputs: [] }, 400, /'inputs' is an empty list/);
});

test('wrong shapes and types: 422 naming the field and the position', async () => {
  await expectError([1, 2], 422, /the body of \/predict must be a JSON object .* got a list/);
  await expectError({ text: 'a' }, 422, /unknown field 'text' .*known fields: inputs, truncate, raw_scores, truncation_direction/);
  await expectError({ truncate: true }, 422, /has no 'inputs'/);
  await expectError({ inputs: 5 }, 422, /'inputs' must be a string, a list of segments or a list of inputs, got a number/);
  await expectError({ inputs: ['a', 7] }, 422, /inputs\[1\]: expected a string or a list of strings \(the segments\), got a number/);
  await expectError({ inputs: [['a', null]] }, 422, /inputs\[0\]\[1\]: expected a string, got null/);
  await expectError({ inputs: 'a', raw_scores: 'yes' }, 422, /'raw_scores' must be true or false, got "yes"/);
  await expectError({ inputs: 'a', truncation_direction: 'Left' }, 422, /truncation_direction "Left" is not supported/);
  await expectError({ inputs: [{ text: 'a' }] }, 422, /inputs\[0\]: expected a string or a list of strings \(the segments\), got an object/, '/predict');
  await expectError({ inputs: ['a', ['b']] }, 422, /inputs\[1\]: expected a string, got a list/, '/embed');
});

test('wrong segment counts, too many inputs, too long without truncate: 422', async () => {
  await expectError({ inputs: [['a', 'b']] }, 422, /inputs\[0\]: the model takes 1 segment \(body\), got 2/);
  await expectError({ inputs: Array(9).fill('a') }, 422, /'inputs' holds 9 inputs, more than the 8 one request may send/);
  await expectError({ inputs: ['short', longText] }, 422, /inputs\[1\] is \d+ tokens long .* more than the model's 32; send "truncate": true/);
  await expectError({ inputs: longText }, 422, /^inputs is \d+ tokens long/);
  await expectError({ inputs: [longText] }, 422, /^inputs\[0\] is \d+ tokens long/, '/embed');
  const ok = await call(`${server.url}/predict`, { body: { inputs: ['short', longText], truncate: true } });
  assert.equal(ok.status, 200);
});

/** A POST whose body is written in chunks without a Content-Length. */
function chunkedPost(url: string, chunks: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

test('bodies over the limit: 413, with or without a Content-Length', async () => {
  const big = { inputs: 'x'.repeat(5000) };
  await expectError(big, 413, /the request body is \d+ bytes, more than the limit of 4096 \(--max-body-bytes\)/);
  const chunked = await chunkedPost(`${server.url}/predict`, [JSON.stringify(big).slice(0, 3000), 'y'.repeat(3000)]).catch((e: Error) => ({ status: 0, body: e.message }));
  // The server answers 413 as soon as it knows and closes the connection; a client still writing may
  // see the connection reset instead of the answer.
  assert.ok(chunked.status === 413 || /ECONNRESET|EPIPE|socket hang up/.test(chunked.body), `${chunked.status} ${chunked.body}`);
  assert.equal((await call(`${server.url}/health`)).status, 200);
});

test('more requests than --max-concurrent-requests: 429 with Retry-After; the rest are answered', async () => {
  // The server waits up to 300 ms for a batch to fill, so the first four are still in flight.
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => call(`${server.url}/predict`, { body: { inputs: `message ${i}` } })));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
  for (const a of answers.filter((x) => x.status === 429)) {
    assert.ok(Number(a.headers.get('retry-after')) >= 1);
    assert.match((a.body as { error: string }).error, /answering 4 requests, its limit \(--max-concurrent-requests\)/);
    assert.equal((a.body as { error_type: string }).error_type, 'Overloaded');
  }
});

test('a client that goes away before its answer: its inputs are dropped from the queue, nothing breaks', async () => {
  const before = server.stats().inputs;
  await new Promise<void>((resolve) => {
    const req = http.request(`${server.url}/predict`, { method: 'POST' });
    req.on('error', () => resolve()); // the socket we destroy
    req.end(JSON.stringify({ inputs: ['abandoned', 'as well'] }));
    // The server waits up to 300 ms for a batch to fill; leave while the inputs are queued.
    setTimeout(() => req.destroy(), 100);
  });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(server.stats().inputs, before, 'the abandoned inputs were not run');
  const metrics = String((await call(`${server.url}/metrics`)).body);
  assert.equal(metricValue(metrics, 'sparse_mixer_requests_in_flight'), 0, 'and its request is over');
  const after = await call(`${server.url}/predict`, { body: { inputs: 'next' } });
  assert.equal(after.status, 200);
  assert.equal(server.stats().inputs, before + 1);
});

test('unknown paths and wrong methods: 404 and 405; the server still answers', async () => {
  const missing = await call(`${server.url}/classify`, { body: { inputs: 'a' } });
  assert.equal(missing.status, 404);
  assert.match((missing.body as { error: string }).error, /no endpoint \/classify; the endpoints are POST \/predict, POST \/embed, GET \/health/);
  const wrong = await call(`${server.url}/predict`);
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
  const metrics = String((await call(`${server.url}/metrics`)).body);
  assert.match(metrics, /sparse_mixer_requests_total\{endpoint="\/predict",status="422"\} \d+/);
  assert.match(metrics, /sparse_mixer_requests_total\{endpoint="other",status="404"\} 1/);
  assert.equal((await call(`${server.url}/predict`, { body: { inputs: 'still here' } })).status, 200);
});

test('a pre-trained workdir serves /embed; /predict says it has no classifier', { timeout: 300_000 }, async () => {
  const encoder = await sm.serve.serve({ workdir: await pretrainTiny(root), port: 0 });
  try {
    assert.equal(encoder.model.kind, 'encoder');
    const e = await call(`${encoder.url}/embed`, { body: { inputs: ['a', 'b'] } });
    assert.equal(e.status, 200);
    assert.equal((e.body as number[][]).length, 2);
    const p = await call(`${encoder.url}/predict`, { body: { inputs: 'a' } });
    assert.equal(p.status, 400);
    assert.match((p.body as { error: string }).error, /is a pre-trained encoder without a classifier: it answers \/embed, not \/predict/);
    const info = (await call(`${encoder.url}/info`)).body as Record<string, unknown>;
    assert.deepEqual(info['model_type'], { embedding: { pooling: 'pooler' } });
  } finally {
    await encoder.close();
  }
});

test('a sentence-pair model: TEI pair shape, lists of pairs, wrong segment counts (GLUE RTE)', { timeout: 300_000 }, async (t) => {
  if (!fs.existsSync(path.join(dataDir, 'glue', 'RTE', 'train.tsv'))) {
    t.skip(`no GLUE data at ${dataDir}`);
    return;
  }
  const pairDir = await finetuneSpam(root, 'rte', { dataset_name: 'glue/rte', data_dir: dataDir, num_train_steps: 2 });
  const pairs = sm.data.tasks.getTask('glue/rte').read(path.join(dataDir, 'glue', 'RTE'), 'dev').examples.slice(0, 4).map((e) => e.segments as [string, string]);
  const pairServer = await sm.serve.serve({ workdir: pairDir, port: 0 });
  try {
    const predictor = sm.train.Predictor.load(pairDir);
    const offline = await predictor.predict(pairs);
    predictor.dispose();
    const one = await call(`${pairServer.url}/predict`, { body: { inputs: pairs[0], truncate: true } });
    assert.equal(one.status, 200);
    const single = one.body as { score: number; label: string }[];
    assert.equal(typeof single[0]!.score, 'number', 'a pair is one input: one list of scores');
    const many = await call(`${pairServer.url}/predict`, { body: { inputs: pairs, truncate: true } });
    (many.body as { score: number; label: string }[][]).forEach((list, i) => {
      const byLabel = Object.fromEntries(list.map((s) => [s.label, s.score]));
      assertClose(pairServer.model.labels.map((l) => byLabel[l]!), offline[i]!.scores, 1e-6);
    });
    const bad = await call(`${pairServer.url}/predict`, { body: { inputs: [pairs[0], ['only one']] } });
    assert.equal(bad.status, 422);
    assert.match((bad.body as { error: string }).error, /inputs\[1\]: the model takes 2 segments \(sentence1, sentence2\), got 1/);
  } finally {
    await pairServer.close();
  }
});
