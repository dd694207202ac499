// Issue 15's faults, one by one: each test is a case that crashed the process or was accepted
// without a word before, and now is a clear error (or works). The fuzzer (fuzz.test.ts) and the
// fault suite (faults.test.ts) cover the same classes at random.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { readWorkdirConfig } from '../lib/train/workdir';
import { makeDirs } from '../lib/util/files';
import { resolveTrainConfig } from '../lib/cli/train';
import { ensureVocab, faultConfig, trainLosses } from '../bench/faults/training';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-reliability-'));
const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');
const ckpt = sm.train.checkpoint;

function live(): number {
  return sm.memory().numTensors;
}

// ---- native entry points validate before touching memory ----

test('fusedMoe.combine refuses slot weights of the wrong shape (it read out of bounds), forward and backward', () => {
  const before = live();
  sm.tidy(() => {
    const E = 64;
    const C = 1 << 16;
    // The issue's reproduction at a quarter of its size: a weight of shape [1] for a [1, E, C] slot table.
    assert.throws(
      () => sm.fusedMoe.combine(sm.ones([E, C, 1]), sm.zeros([1, E, C], { dtype: 'int64' }), sm.ones([1]), 1),
      /moeCombine: the combine weights must have the slot table's shape \[1, 64, 65536\], got \[1\]/,
    );
    const y = sm.ones([2, 4, 3]).requiresGrad_();
    const w = sm.ones([1, 2, 3]).requiresGrad_();
    assert.throws(() => sm.fusedMoe.combine(y, sm.zeros([1, 2, 4], { dtype: 'int64' }), w, 2), /combine weights must have the slot table's shape/);
    // Slot indices past the token count, and tensors on a device without data.
    assert.throws(() => sm.fusedMoe.combine(y, sm.full([1, 2, 4], 3, { dtype: 'int64' }), sm.ones([1, 2, 4]), 2), /token index 3 outside \[0, 2\]/);
    assert.throws(() => sm.fusedMoe.dispatch(sm.ones([1, 4, 3]), sm.full([1, 2, 2], -1, { dtype: 'int64' })), /token index -1 outside \[0, 4\]/);
    assert.throws(() => sm.fusedMoe.dispatch(sm.zeros([1, 4, 3], { device: 'meta' }), sm.zeros([1, 2, 2], { dtype: 'int64', device: 'meta' })), /CPU or CUDA tensors/);
    assert.throws(() => sm.fusedMoe.combine(y, sm.zeros([1, 2, 4], { dtype: 'int64' }), sm.ones([1, 2, 4]), -1), /tokens per group must be a non-negative count/);
    // A valid call still works, gradients included.
    const out = sm.fusedMoe.combine(y, sm.zeros([1, 2, 4], { dtype: 'int64' }), sm.ones([1, 2, 4]).requiresGrad_(), 2);
    out.sum().backward();
    assert.deepEqual(y.grad!.shape, [2, 4, 3]);
  });
  assert.equal(live(), before);
});

test('thread counts are bounded by the CPUs: 1e9 no longer kills the process later, 100000 no longer hangs', () => {
  const cpus = os.availableParallelism();
  for (const n of [1e9, 100000, cpus + 1]) assert.throws(() => sm.setNumThreads(n), new RegExp(`setNumThreads: expected an integer from 1 to ${cpus}`));
  // The addon itself refuses too (it is what the JavaScript check protects).
  const { N } = require('../lib/tensor/native') as typeof import('../lib/tensor/native');
  assert.throws(() => N.setNumThreads(1e9), /thread count must be between 1 and \d+ \(the CPUs this process can run on\), got 1000000000/);
  // The next parallel op runs.
  assert.equal(sm.tidy(() => sm.ones([256, 256]).matmul(sm.ones([256, 256])).sum().item()), 256 ** 3);
  const r = spawnSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env: { ...process.env, SPARSE_MIXER_NUM_THREADS: String(cpus + 1) } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`SPARSE_MIXER_NUM_THREADS must be at most ${cpus}`));
});

test('JavaScript values a dtype cannot hold are errors, not silent conversions', () => {
  const before = live();
  sm.tidy(() => {
    assert.throws(() => sm.tensor([NaN], { dtype: 'int64' }), /the value NaN at index 0 cannot be stored as int64: not a number/);
    assert.throws(() => sm.tensor([1, 1e20], { dtype: 'int64' }), /the value 1e\+20 at index 1 cannot be stored as int64: out of range/);
    assert.throws(() => sm.tensor(Float64Array.from([Infinity]), { dtype: 'int32' }), /cannot be stored as int32: not a finite number/);
    assert.throws(() => sm.tensor([300], { dtype: 'uint8' }), /300 at index 0 cannot be stored as uint8: out of range/);
    assert.throws(() => sm.full([2], 2 ** 31, { dtype: 'int32' }), /the fill value 2147483648 cannot be stored as int32/);
    assert.throws(() => sm.zeros([2], { dtype: 'int64' }).fillInPlace(NaN), /cannot be stored as int64/);
    assert.throws(() => sm.zeros([2], { dtype: 'int32' }).add(2 ** 40), /addScalar: the scalar 1099511627776 cannot be stored as int32/);
    assert.throws(() => sm.zeros([2], { dtype: 'int32' }).eq(2 ** 32), /cannot be stored as int32/); // 2^32 wrapped to 0: "equal"
    assert.throws(() => sm.arange(0, 300, 1, { dtype: 'uint8' }), /arange's last value 299 cannot be stored as uint8/);
    // What torch defines stays: fractions truncate, bool means "not zero", floats round.
    assert.deepEqual(sm.tensor([1.7, -2.7], { dtype: 'int32' }).toArray(), [1, -2]);
    assert.deepEqual(sm.tensor([0, -1, 2.5], { dtype: 'bool' }).toArray(), [false, true, true]);
    assert.deepEqual(sm.tensor([1e6], { dtype: 'float16' }).toArray(), [Infinity]);
    // A negative integer scalar keeps an integer tensor integral (it was taken as a float: int64 -> float32).
    const big = sm.tensor([2 ** 40 + 1]);
    assert.equal(big.add(-1).dtype, 'int64');
    assert.deepEqual(big.add(-1).toArray(), [2 ** 40]);
  });
  assert.equal(live(), before);
});

test('chunk of an empty dim into 2^31 pieces is refused at once (it never finished making them)', () => {
  sm.tidy(() => {
    const empty = sm.zeros([1, 4, 0, 2]);
    const started = Date.now();
    assert.throws(() => empty.chunk(2 ** 31, 2), /chunk: 2147483648 chunks of an empty dim would be as many empty tensors/);
    assert.ok(Date.now() - started < 5000);
    assert.equal(empty.chunk(3, 2).length, 3, "torch's answer for a reasonable count stays");
  });
});

test('backward refuses a gradient of another shape (libtorch summed it silently)', () => {
  sm.tidy(() => {
    const x = sm.ones([3]).requiresGrad_();
    assert.throws(() => x.sum().backward(sm.ones([2])), /the gradient must have the output's shape: expected float32\[\], got float32\[2\]/);
    assert.throws(() => x.mul(2).backward(sm.ones([1, 3])), /expected float32\[3\], got float32\[1, 3\]/);
  });
});

test('optimizer settings that poison every parameter are refused: beta1 = 1, a NaN rate, a negative epsilon', () => {
  sm.tidy(() => {
    const p = sm.ones([2]).requiresGrad_();
    p.sum().backward();
    const step = (h: Partial<sm.optim.AdamWHyper>) => sm.optim.adamwStep([p], [sm.zeros([2])], [sm.zeros([2])], [true], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, ...h });
    assert.throws(() => step({ beta1: 1 }), /beta1 must be in \[0, 1\), got 1/);
    assert.throws(() => step({ lr: NaN }), /the learning rate must be a finite number >= 0, got NaN/);
    assert.throws(() => step({ eps: -1e-8 }), /epsilon must be a finite number > 0, got -1e-08/);
    assert.deepEqual(p.toArray(), [1, 1], 'a refused update changes nothing');
    assert.throws(() => sm.functional.crossEntropy(sm.zeros([2, 3]), sm.tensor([0, 1]), { labelSmoothing: NaN }), /label smoothing must be in \[0, 1\], got NaN/);
    assert.throws(() => sm.functional.layerNorm(sm.ones([2, 3]), [3], undefined, undefined, NaN), /epsilon must be in/);
  });
});

// ---- configs: ranges up front, clear messages ----

test('the config schema checks ranges up front and quotes what was typed', () => {
  const { trainConfig, parseOverrides } = sm.train;
  assert.throws(() => trainConfig({ adam_beta1: 1 }), /adam_beta1 must be a number >= 0 and < 1, got 1/);
  assert.throws(() => trainConfig({ adam_epsilon: -1e-6 }), /adam_epsilon must be a number > 0, got -0.000001/);
  assert.throws(() => trainConfig({ adam_epsilon: 0 }), /adam_epsilon must be a number > 0/);
  assert.throws(() => trainConfig({ learning_rate: NaN }), /learning_rate must be a number >= 0, got NaN/);
  assert.throws(() => trainConfig({ train_batch_size: 1e300 }), /train_batch_size must be an integer >= 1, got 1e\+300/);
  assert.throws(() => parseOverrides(['learning_rate=abc']), /learning_rate must be a number >= 0, got 'abc'/);
  assert.throws(() => parseOverrides(['device=tpu']), /device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'/);
  assert.throws(() => parseOverrides(['num_experts=\u001b[2J']), (e: Error) => e.message.includes("got '\\u001b[2J'") && !e.message.includes('\u001b'));
  assert.throws(() => trainConfig({ weight_decay: 1n }), /weight_decay must be a number >= 0, got 1n/);
});

test('a config file that is not JSON, or a folder, is named in the message', () => {
  const bad = path.join(root, 'bad.json');
  fs.writeFileSync(bad, '{"learning_rate": 0.1,');
  assert.throws(() => resolveTrainConfig(bad, undefined, []), (e: Error) => e.message.startsWith(`--config ${bad}: not valid JSON`));
  const wrong = path.join(root, 'wrong.json');
  fs.writeFileSync(wrong, JSON.stringify({ adam_beta1: 1 }));
  assert.throws(() => resolveTrainConfig(wrong, undefined, []), (e: Error) => e.message.startsWith(`--config ${wrong}: invalid config: adam_beta1`));
  const folder = path.join(root, 'a-folder.json');
  fs.mkdirSync(folder);
  assert.throws(() => resolveTrainConfig(folder, undefined, []), new RegExp(`--config ${folder}: is a folder`));
});

test('the max_seq_length that failed at a 40 GB allocation is refused before any work', () => {
  const config = sm.train.trainConfig({ preset: 'sparse-mixer', max_seq_length: 100000, vocab_filepath: 'x' });
  const { preflight } = require('../lib/train/preflight') as typeof import('../lib/train/preflight');
  const started = Date.now();
  assert.throws(() => preflight(config), /this config needs at least [\d.]+ GiB .* lower max_seq_length \(100000\)/);
  assert.ok(Date.now() - started < 20_000);
  preflight(sm.train.trainConfig({ preset: 'sparse-mixer-tiny', vocab_filepath: 'x' })); // a config that fits passes
});

// ---- data: invalid UTF-8, empty inputs, short escaped excerpts ----

function taskFolder(name: string, files: Record<string, Buffer | string>): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

test('invalid UTF-8 in a task file is reported with file:line, or skipped and listed under skipBadRows', () => {
  const rows = Buffer.concat([Buffer.from('sentence\tlabel\ngood film\t1\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from(' film\t0\nfine\t1\n')]);
  const dir = taskFolder('utf8', { 'train.tsv': rows });
  const sst2 = sm.data.tasks.getTask('glue/sst2');
  const file = path.join(dir, 'train.tsv');
  assert.throws(() => sst2.read(dir, 'train'), (e: Error) => e.message.startsWith(`${file}:3: the line is not valid UTF-8`));
  const r = sst2.read(dir, 'train', { skipBadRows: true });
  assert.deepEqual(r.skipped.map((s) => s.line), [3]);
  assert.deepEqual(r.examples.map((e) => e.segments[0]), ['good film', 'fine'], 'no U+FFFD text is trained on');
});

test('empty, header-only and all-skipped task files stop with the file named (they ended in an internal TypeError)', () => {
  const sst2 = sm.data.tasks.getTask('glue/sst2');
  for (const [name, content, message] of [
    ['empty', '', /the file is empty: no rows/],
    ['header-only', 'sentence\tlabel\n', /no data rows \(the file holds only a header or blank lines\)/],
    ['blank', '\n\n\n', /the file is empty: no rows/],
  ] as const) {
    const dir = taskFolder(name, { 'train.tsv': content });
    assert.throws(() => sst2.read(dir, 'train'), (e: Error) => e.message.startsWith(path.join(dir, 'train.tsv')) && message.test(e.message), name);
  }
  const dir = taskFolder('all-bad', { 'train.tsv': 'sentence\tlabel\na\tmaybe\nb\t7\n' });
  assert.throws(() => sst2.read(dir, 'train', { skipBadRows: true }), /every row is malformed: 2 skipped under skip_bad_rows, nothing left \(the first, line 2: unknown label "maybe"/);
});

test('errors quote a short, escaped excerpt of a bad row, never raw control characters', () => {
  const cell = `\u001b[2J${'x'.repeat(100_000)}\u0007`;
  const dir = taskFolder('long', { 'train.tsv': `sentence\tlabel\nok\t1\nfilm\t${cell}\n` });
  const sst2 = sm.data.tasks.getTask('glue/sst2');
  assert.throws(
    () => sst2.read(dir, 'train'),
    (e: Error) => e.message.length < 600 && e.message.includes('unknown label "\\u001b[2Jxxx') && !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(e.message),
  );
  const skipped = sst2.read(dir, 'train', { skipBadRows: true }).skipped;
  assert.ok(skipped[0]!.reason.length < 200);
});

test('a corpus line that is not valid UTF-8 stops the stream at file:line', async () => {
  const file = path.join(root, 'corpus.jsonl');
  fs.writeFileSync(file, Buffer.concat([Buffer.from('{"text": "fine"}\n{"text": "bad '), Buffer.from([0xc0, 0xaf]), Buffer.from('"}\n')]));
  const stream = new sm.data.CorpusStream({ spec: [file] });
  try {
    assert.equal((await stream.next())?.text, 'fine');
    await assert.rejects(() => stream.next(), new RegExp(`${file}:2: the line is not valid UTF-8`));
  } finally {
    await stream.close();
  }
});

test('Tokenizer.decode refuses ids that Int32Array would have changed silently', async () => {
  const vocab = await ensureVocab(root);
  const tok = sm.data.Tokenizer.load(vocab);
  try {
    for (const id of [1.5, NaN, 2 ** 31, -1, tok.vocabSize]) assert.throws(() => tok.decode([5, id]), /decode: ids\[1\] is .*, not an id of this vocabulary/);
    assert.equal(typeof tok.decode([5, 6]), 'string');
  } finally {
    tok.dispose();
  }
  await assert.rejects(() => sm.data.trainTokenizer(['a b c'], { vocabSize: 8, threads: 1e9 }), /threads must be an integer from 1 to/);
  await assert.rejects(() => sm.data.trainTokenizer(['a b c'], { vocabSize: 8, modelType: 'bpe --input=/etc/passwd' as 'bpe' }), /modelType must be 'bpe' or 'unigram'/);
});

// ---- checkpoints: checksums, validated state, falling back ----

function checkpointFixture(name: string): { store: sm.train.checkpoint.CheckpointStore; dir: string } {
  const dir = path.join(root, name);
  const store = new ckpt.CheckpointStore(dir, { keep: 3 });
  sm.tidy(() => {
    for (const step of [1, 2]) store.save(step, { params: new Map([['w', sm.full([4, 4], step)]]), state: { step, note: 'x' } });
  });
  return { store, dir };
}

test('a flipped bit in tensor data is an error naming the file, not a NaN later', () => {
  const { store } = checkpointFixture('bitflip');
  const file = path.join(store.pathFor(2), 'model.safetensors');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 3] ^= 0x01; // a float that stays finite
  fs.writeFileSync(file, bytes);
  assert.throws(() => store.load(2), (e: Error) => e instanceof ckpt.CheckpointError && e.message.includes(file) && /does not match its checksum|field 'data'/.test(e.message));
  // On its own, the file still verifies its data against the digest in its own metadata.
  assert.throws(() => ckpt.loadSafetensors(file), /the tensor data does not match its checksum/);
});

test("state.json is checked: a step that contradicts its folder, or an edited field, is named", () => {
  const { store } = checkpointFixture('state');
  const file = path.join(store.pathFor(2), 'state.json');
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(file, JSON.stringify({ ...state, note: 'y' }));
  assert.throws(() => store.load(2), new RegExp(`checkpoint file ${file}, field 'note': does not match the checksum`));
  const { __integrity__: _, ...plain } = state;
  fs.writeFileSync(file, JSON.stringify({ ...plain, step: 5 }));
  assert.throws(() => store.load(2), /field '__integrity__': is missing though the tensor files carry checksums|field 'step': is 5, but the checkpoint folder ckpt-000000002 is step 2/);
});

test('resuming skips a damaged newest checkpoint with a note naming the file and uses the one before', () => {
  const { store } = checkpointFixture('fallback');
  const file = path.join(store.pathFor(2), 'optimizer.safetensors');
  fs.truncateSync(file, 20);
  const notes: string[] = [];
  const loaded = store.loadLatestValid({ onNote: (n) => notes.push(n) })!;
  assert.equal(loaded.step, 1);
  assert.equal(notes.length, 1);
  assert.ok(notes[0]!.startsWith('skipping the damaged checkpoint at step 2: ') && notes[0]!.includes(file));
  ckpt.disposeCheckpoint(loaded);
});

// ---- workdirs that survive ----

test('a workdir stores absolute paths: eval works from another folder', { timeout: 300_000 }, async () => {
  const vocab = await ensureVocab(root);
  const work = path.join(root, 'relative');
  fs.mkdirSync(work);
  const lines = ['sentence\tlabel', ...Array.from({ length: 24 }, (_, i) => `${i % 2 ? 'a great' : 'a dull'} film number ${i}\t${i % 2}`)];
  taskFolder(path.join('relative', 'data', 'glue', 'SST-2'), { 'train.tsv': lines.join('\n'), 'dev.tsv': lines.slice(0, 9).join('\n') });
  fs.copyFileSync(vocab, path.join(work, 'vocab.model'));
  const cwd = process.cwd();
  process.chdir(work);
  try {
    const config = sm.train.trainConfig({ ...faultConfig('vocab.model', 2), mode: 'classification', dataset_name: 'glue/sst2', data_dir: 'data', num_train_steps: 2 });
    await sm.train.finetune(config, { workdir: 'run', log: () => {} });
  } finally {
    process.chdir(cwd);
  }
  const saved = readWorkdirConfig(path.join(work, 'run'));
  assert.equal(saved.vocab_filepath, path.join(work, 'vocab.model'));
  assert.equal(saved.data_dir, path.join(work, 'data'));
  const r = spawnSync(process.execPath, [cli, 'eval', '--workdir', path.join(work, 'run')], { encoding: 'utf8', cwd: os.tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { rows: number }).rows, 8);
});

test('a run that failed before its first step leaves a workdir the corrected command can use', { timeout: 300_000 }, async () => {
  const vocab = await ensureVocab(root);
  const workdir = path.join(root, 'failed-early');
  const config = (corpus: string) => sm.train.trainConfig({ ...faultConfig(vocab, 1), corpus });
  await assert.rejects(() => sm.train.pretrain(config(path.join(root, 'no-such-corpus.jsonl')), { workdir, log: () => {} }), /no such file or folder/);
  assert.ok(fs.existsSync(path.join(workdir, 'config.json')), 'the failed run got as far as the workdir');
  const notes: string[] = [];
  const warn = console.warn;
  console.warn = (l: string) => notes.push(l);
  try {
    const run = await sm.train.pretrain(config('sotu'), { workdir, log: () => {} });
    assert.equal(run.step, 1);
  } finally {
    console.warn = warn;
  }
  assert.match(notes.join('\n'), /replacing the config of a run that never wrote a checkpoint \(corpus changed\)/);
  // device=cuda without CUDA fails before the workdir is even made.
  if (!sm.cuda.isAvailable()) {
    const other = path.join(root, 'cuda-less');
    await assert.rejects(() => sm.train.pretrain(sm.train.trainConfig({ ...faultConfig(vocab, 1), device: 'cuda' }), { workdir: other, log: () => {} }), /device=cuda, but no CUDA device is available/);
    assert.ok(!fs.existsSync(other));
  }
});

test('metrics.jsonl holds each step once after a run is resumed', { timeout: 300_000 }, async () => {
  const vocab = await ensureVocab(root);
  const workdir = path.join(root, 'metrics-once');
  const config = sm.train.trainConfig(faultConfig(vocab, 5));
  // A crash after step 3 was logged: the checkpoint is at step 2, so steps 3.. run (and log) again.
  await assert.rejects(
    () => sm.train.pretrain(config, { workdir, log: () => {}, onStep: (step) => { if (step === 4) throw new Error('crash'); } }),
    /crash/,
  );
  await sm.train.pretrain(config, { workdir, log: () => {} });
  assert.deepEqual([...trainLosses(workdir).keys()], [1, 2, 3, 4, 5]);
});

test('summaries are written inside the workdir only: a symlinked metrics file is refused', () => {
  const workdir = path.join(root, 'symlinked');
  fs.mkdirSync(workdir);
  const outside = path.join(root, 'outside.jsonl');
  fs.writeFileSync(outside, '');
  fs.symlinkSync(outside, path.join(workdir, 'metrics.jsonl'));
  assert.throws(() => new sm.train.summaries.Summaries(workdir), /metrics\.jsonl is a symbolic link: summaries are written inside the workdir only/);
  fs.symlinkSync(root, path.join(workdir, 'train'));
  fs.rmSync(path.join(workdir, 'metrics.jsonl'));
  const s = new sm.train.summaries.Summaries(workdir);
  try {
    assert.throws(() => s.log('train', 1, { loss: 1 }), /train is a symbolic link/);
  } finally {
    s.close();
  }
  assert.equal(fs.readFileSync(outside, 'utf8'), '');
});

test('a folder that cannot be made is named with its real error (Node says ENOENT on a read-only file system)', (t) => {
  const file = path.join(root, 'a-file');
  fs.writeFileSync(file, '');
  assert.throws(() => makeDirs(path.join(file, 'sub', 'dir')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' && e.message.includes(path.join(file, 'sub')));
  const probe = path.join(root, 'make-dirs.js');
  fs.writeFileSync(probe, `require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'util', 'files.js'))}).makeDirs(${JSON.stringify(`${root}/ro/a/b`)});`);
  const script = `mkdir -p ${root}/ro && mount -t tmpfs -o ro tmpfs ${root}/ro && ${process.execPath} ${probe}`;
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], { encoding: 'utf8' });
  if (r.error || /unshare:|mount:/.test(r.stderr)) {
    t.skip(`no private read-only mount here (${(r.stderr || String(r.error)).trim().split('\n')[0]})`);
    return;
  }
  assert.match(r.stderr, /EROFS: read-only file system, mkdir '.*\/ro\/a'/);
});
