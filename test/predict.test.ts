// Offline inference on workdirs: a prediction does not depend on the inputs it is batched with (MoE
// routing per input), `eval` reproduces the metrics the training run logged (routing per batch, as
// in training), and embeddings of fine-tuned and pre-trained workdirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { evaluateWorkdir } from '../lib/cli/predict';
import { assertClose } from './helpers';
import { finetuneSpam, pretrainTiny, spamTexts } from './serve-fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-predict-'));
const texts = spamTexts(24);
let classifier: Promise<string> | undefined;
const spamWorkdir = () => (classifier ??= finetuneSpam(root, 'spam'));

/** Each text predicted alone against all of them predicted in one call (batches of 64). */
async function aloneVersusTogether(routing: sm.train.RoutingGroups) {
  const p = sm.train.Predictor.load(await spamWorkdir(), { routing });
  try {
    const together = await p.predict(texts);
    const alone = [];
    for (const t of texts) alone.push((await p.predict([t]))[0]!);
    const encoded = await p.encode(texts.map((t) => [t]));
    const pooledTogether = p.embedBatch(encoded);
    const pooledAlone = encoded.flatMap((e) => Array.from(p.embedBatch([e])));
    return { together, alone, pooledTogether: Array.from(pooledTogether), pooledAlone };
  } finally {
    p.dispose();
  }
}

test('a prediction does not depend on the inputs it is batched with (each input routed on its own)', { timeout: 300_000 }, async () => {
  const before = sm.memory().numTensors;
  const r = await aloneVersusTogether('input');
  // Equal up to float32 round-off: BLAS rounds a little differently at another batch size.
  r.together.forEach((p, i) => {
    assertClose(r.alone[i]!.scores, p.scores, 1e-6, `text ${i}`);
    assert.equal(r.alone[i]!.label, p.label);
  });
  assertClose(r.pooledAlone, r.pooledTogether, 1e-5, 'pooled outputs');
  assert.equal(sm.memory().numTensors, before, 'nothing leaked');
});

test("routing per batch (the training loop's grouping) makes an input's result depend on its batch", { timeout: 300_000 }, async () => {
  // Why per-input routing is the default: experts choose their tokens among the whole batch.
  const r = await aloneVersusTogether('batch');
  const gap = Math.max(...r.pooledTogether.map((v, i) => Math.abs(v - r.pooledAlone[i]!)));
  assert.ok(gap > 1e-4, `pooled outputs moved by ${gap} only`);
});

test('eval (routing per batch) reproduces the dev metrics the training run logged', { timeout: 300_000 }, async () => {
  const workdir = await spamWorkdir();
  const logged = fs
    .readFileSync(path.join(workdir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .filter((l) => l['split'] === 'eval')
    .pop()!;
  const r = await evaluateWorkdir(workdir, { output: path.join(root, 'predictions.jsonl') });
  assert.equal(r.metrics!['accuracy'], logged['accuracy']);
  assert.equal(r.metrics!['f1'], logged['f1']);
  assert.equal(fs.readFileSync(r.output, 'utf8').trim().split('\n').length, r.rows);
});

test('embeddings of a pre-trained workdir: unit length when normalised, the pooled output otherwise', { timeout: 300_000 }, async () => {
  const e = sm.train.Embedder.load(await pretrainTiny(root));
  try {
    assert.ok(!(e instanceof sm.train.Predictor), 'a pre-training workdir has no classifier');
    const raw = await e.embed(texts.slice(0, 5));
    const unit = await e.embed(texts.slice(0, 5), { normalize: true });
    unit.forEach((v, i) => {
      const norm = Math.hypot(...raw[i]!);
      assert.equal(v.length, e.config.d_model);
      assertClose(Math.hypot(...v), 1, 1e-5);
      assertClose(v, raw[i]!.map((x) => x / norm), 1e-5);
    });
    assert.throws(() => sm.train.Predictor.load(path.join(root, 'pretrained')), /holds a pretraining run; predict needs a fine-tuned classifier/);
  } finally {
    e.dispose();
  }
});

test('predict: a bad input stops with its file:line (1-based); --skip-bad-rows answers the good ones and lists the rest', { timeout: 300_000 }, async () => {
  const workdir = await spamWorkdir();
  const file = path.join(root, 'inputs.jsonl');
  fs.writeFileSync(file, ['plain text line', '"a JSON string"', '["bad json"', '["one", "two"]', '["just one segment"]'].join('\n') + '\n');
  const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');
  const run = (...extra: string[]) => spawnSync(process.execPath, [cli, 'predict', '--workdir', workdir, '--input', file, ...extra], { encoding: 'utf8' });
  const strict = run();
  assert.equal(strict.status, 1);
  assert.match(strict.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: bad JSON`));
  assert.equal(strict.stdout, '');
  const lenient = run('--skip-bad-rows');
  assert.equal(lenient.status, 0, lenient.stderr);
  const answered = lenient.stdout.trim().split('\n').map((l) => JSON.parse(l) as { input: string | string[]; labelName: string });
  assert.deepEqual(answered.map((a) => a.input), ['plain text line', 'a JSON string', ['just one segment']]);
  assert.ok(answered.every((a) => a.labelName === 'spam' || a.labelName === 'ham'));
  assert.match(lenient.stderr, /skipped .*inputs\.jsonl:3: bad JSON/);
  assert.match(lenient.stderr, /skipped .*inputs\.jsonl:4: the model takes 1 segment\(s\), got 2/);
  assert.match(lenient.stderr, /3 input\(s\) answered, 2 skipped/);
});
