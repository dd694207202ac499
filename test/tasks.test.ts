// Fine-tuning task readers: row counts and labels on the real GLUE/SuperGLUE files in
// ../shared/data (skipped when absent), the formats that folder lacks (MNLI, QQP, WNLI,
// ReCoRD, test files) on small files written here, every error path, and the spam task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as data from '../lib/data/tasks';
import { DataError } from '../lib/data/errors';

const DATA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
const real = fs.existsSync(DATA) ? {} : { skip: '../shared/data is absent' };

function read(task: string, folder: string, split: string, options?: data.ReadOptions): data.ReadResult {
  return data.getTask(task).read(folder, split, options);
}

function readReal(task: string, split: string): data.TaskExample[] {
  const t = data.getTask(task);
  return t.read(path.join(DATA, t.folderName!), split).examples;
}

function counts(examples: data.TaskExample[]): Map<number | undefined, number> {
  const m = new Map<number | undefined, number>();
  for (const e of examples) m.set(e.label, (m.get(e.label) ?? 0) + 1);
  return m;
}

function groups(examples: data.TaskExample[]): Map<string, data.TaskExample[]> {
  const m = new Map<string, data.TaskExample[]>();
  for (const e of examples) {
    assert.ok(e.group !== undefined, 'grouped task row without a group');
    const rows = m.get(e.group) ?? [];
    rows.push(e);
    m.set(e.group, rows);
  }
  return m;
}

/** A fresh folder with the given files (name -> lines, joined with '\n' plus a final newline). */
function folderWith(files: Record<string, string[]>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-tasks-'));
  for (const [name, lines] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), lines.join('\n') + '\n');
  return dir;
}

function throwsData(fn: () => unknown, ...patterns: (string | RegExp)[]): DataError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DataError, `expected a DataError, got ${String(caught)}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
    else assert.match(caught.message, p);
  }
  return caught;
}

const jsonl = (...records: unknown[]) => records.map((r) => JSON.stringify(r));

test('registry: every task, aliases, and an error listing known names', () => {
  assert.deepEqual(
    data.TASKS.map((t) => t.name),
    [
      'glue/cola', 'glue/sst2', 'glue/mrpc', 'glue/qqp', 'glue/stsb', 'glue/mnli', 'glue/qnli', 'glue/rte', 'glue/wnli',
      'superglue/boolq', 'superglue/cb', 'superglue/copa', 'superglue/multirc', 'superglue/record', 'superglue/rte',
      'superglue/wic', 'spam',
    ],
  );
  assert.equal(data.getTask('SST-2').name, 'glue/sst2');
  assert.equal(data.getTask('GLUE/STS-B').name, 'glue/stsb');
  assert.equal(data.getTask('Glue/CoLA').name, 'glue/cola');
  assert.equal(data.getTask('superglue/MultiRC').name, 'superglue/multirc');
  assert.equal(data.getTask('rte').name, 'glue/rte');
  assert.throws(() => data.getTask('glue/nope'), /unknown task "glue\/nope".*glue\/cola.*superglue\/wic.*spam/);
  for (const t of data.TASKS) {
    const expected = ['glue/stsb', 'superglue/copa', 'superglue/record'].includes(t.name) ? 1 : ['glue/mnli', 'superglue/cb'].includes(t.name) ? 3 : 2;
    assert.equal(t.numClasses, expected, t.name);
    assert.equal(t.regression, expected === 1, t.name);
    assert.equal(t.grouped, ['superglue/copa', 'superglue/multirc', 'superglue/record'].includes(t.name), t.name);
    assert.equal(t.labelNames.length, t.regression ? 0 : t.numClasses, t.name);
    assert.ok(t.splits[t.evalSplit] !== undefined, t.name);
  }
  assert.deepEqual(data.getTask('glue/mnli').segmentNames, ['hypothesis', 'premise']);
  assert.deepEqual(data.getTask('glue/mnli').labelNames, ['contradiction', 'entailment', 'neutral']);
  assert.deepEqual(data.getTask('glue/cola').metrics, ['matthews_corrcoef', 'accuracy']);
  assert.deepEqual(data.getTask('superglue/multirc').metrics, ['exact_match', 'f1a']);
});

test('real GLUE files: row counts, labels, segments', real, () => {
  const expected: [string, string, number][] = [
    ['glue/cola', 'train', 8551], ['glue/cola', 'dev', 1043], ['glue/sst2', 'train', 67349], ['glue/sst2', 'dev', 872],
    ['glue/mrpc', 'train', 3668], ['glue/mrpc', 'dev', 408], ['glue/stsb', 'train', 5749], ['glue/stsb', 'dev', 1500],
    ['glue/qnli', 'dev', 5463], ['glue/rte', 'train', 2490], ['glue/rte', 'dev', 277],
  ];
  for (const [task, split, n] of expected) {
    const examples = readReal(task, split);
    assert.equal(examples.length, n, `${task} ${split}`);
    const spec = data.getTask(task);
    for (const e of examples) assert.equal(e.segments.length, spec.segmentNames.length);
    if (spec.regression) {
      const scores = examples.map((e) => e.label!);
      assert.equal(Math.min(...scores), 0, `${task} ${split}`);
      assert.equal(Math.max(...scores), 5, `${task} ${split}`);
    } else {
      const c = counts(examples);
      assert.deepEqual([...c.keys()].sort(), [0, 1], `${task} ${split}: ${[...c]}`);
      for (const v of c.values()) assert.ok(v > n / 10, `${task} ${split}: ${[...c]}`);
    }
  }
  // MRPC starts with a BOM; its header must still be found, its first row is a paraphrase.
  const mrpc = readReal('glue/mrpc', 'train');
  assert.equal(mrpc[0]!.label, 1);
  assert.match(mrpc[0]!.segments[0]!, /^Amrozi accused his brother/);
  // CoLA has no header and its dev file no final newline.
  const cola = readReal('glue/cola', 'dev');
  assert.equal(cola[0]!.segments[0], 'The sailors rode the breeze clear of the rocks.');
  assert.deepEqual(cola[0]!.source, { file: path.join(DATA, 'glue/CoLA/dev.tsv'), line: 1 });
  // RTE: sentence1 first; ids from the index column; line numbers count the header.
  const rte = readReal('glue/rte', 'dev');
  assert.match(rte[0]!.segments[0]!, /^Dana Reeve/);
  assert.equal(rte[0]!.segments[1], 'Christopher Reeve had an accident.');
  assert.deepEqual([rte[0]!.label, rte[0]!.source.id, rte[0]!.source.line], [1, '0', 2]);
  // QNLI keeps its quote artefacts: quotes are text, not CSV quoting.
  assert.ok(readReal('glue/qnli', 'dev').some((e) => e.segments.some((s) => s.startsWith('"'))));
  assert.equal(readReal('glue/stsb', 'dev')[0]!.label, 5);
});

test('real SuperGLUE files: row counts, expansion, cleaning, segment order', real, () => {
  const expected: [string, string, number][] = [
    ['superglue/boolq', 'val', 3270], ['superglue/cb', 'train', 250], ['superglue/cb', 'val', 56],
    ['superglue/copa', 'train', 800], ['superglue/copa', 'val', 200], ['superglue/multirc', 'train', 27243],
    ['superglue/multirc', 'val', 4848], ['superglue/rte', 'train', 2490], ['superglue/rte', 'val', 277],
    ['superglue/wic', 'train', 5428], ['superglue/wic', 'val', 638],
  ];
  for (const [task, split, n] of expected) {
    const examples = readReal(task, split);
    assert.equal(examples.length, n, `${task} ${split}`);
    const c = counts(examples);
    const classes = task === 'superglue/cb' ? [0, 1, 2] : [0, 1];
    assert.deepEqual([...c.keys()].sort(), classes, `${task} ${split}: ${[...c]}`);
  }
  assert.deepEqual([...counts(readReal('superglue/wic', 'train'))].sort(), [[0, 2714], [1, 2714]]);

  const cb = readReal('superglue/cb', 'val');
  assert.equal(cb[0]!.segments[0], 'Valence was helping'); // hypothesis first
  assert.equal(cb[0]!.label, 1); // contradiction
  const rte = readReal('superglue/rte', 'val');
  assert.equal(rte[0]!.segments[0], 'Christopher Reeve had an accident.');
  assert.match(rte[0]!.segments[1]!, /^Dana Reeve/);

  for (const split of ['train', 'val']) {
    const copa = groups(readReal('superglue/copa', split));
    assert.equal(copa.size, split === 'train' ? 400 : 100);
    for (const [g, rows] of copa) {
      assert.equal(rows.length, 2, g);
      assert.equal(rows.filter((r) => r.label === 1).length, 1, g);
      assert.ok(rows.every((r) => r.segments[1] === 'cause' || r.segments[1] === 'effect'), g);
      assert.equal(rows[0]!.segments[0], rows[1]!.segments[0]);
    }
    const multirc = readReal('superglue/multirc', split);
    assert.equal(groups(multirc).size, split === 'train' ? 5131 : 953);
    for (const e of multirc) for (const s of e.segments) assert.ok(!/<br>|<b>|<\/b>/.test(s));
  }
  const copaVal = readReal('superglue/copa', 'val');
  assert.deepEqual(copaVal.slice(0, 2).map((e) => [e.segments, e.label]), [
    [['The man turned on the faucet.', 'effect', 'The toilet filled with water.'], 0],
    [['The man turned on the faucet.', 'effect', 'Water flowed from the spout.'], 1],
  ]);
  const mrc = readReal('superglue/multirc', 'val');
  assert.equal(mrc[0]!.segments[0], 'Would the mass of a baseball affect how much force you have to use to pick it up?');
  assert.deepEqual(mrc.slice(0, 4).map((e) => [e.segments[1], e.label, e.source.id]), [
    ['No', 0, '0/0/0'], ['Yes', 1, '0/0/1'], ['Less the mass, less the force applied', 1, '0/0/2'], ['It depends on the shape of the baseball', 0, '0/0/3'],
  ]);
  const boolq = readReal('superglue/boolq', 'val');
  assert.equal(boolq[0]!.segments[0], 'does ethanol take more energy make that produces');
  assert.equal(boolq[0]!.label, 0);
});

const PARSES = ['( ( a ) )', '( ( b ) )', '(ROOT (S a))', '(ROOT (S b))'];
const MNLI_HEAD = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2'];

test('MNLI layouts: hypothesis first, gold_label, matched/mismatched, unlabeled test', () => {
  const row = (i: number, premise: string, hypothesis: string, ...labels: string[]) =>
    [String(i), '31193', `${i}n`, 'government', ...PARSES, premise, hypothesis, ...labels].join('\t');
  const dir = folderWith({
    'train.tsv': [[...MNLI_HEAD, 'label1', 'gold_label'].join('\t'), row(0, 'Premise "one.', 'Hypothesis one.', 'neutral', 'neutral'), row(1, 'P2', 'H2', 'entailment', 'entailment')],
    'dev_matched.tsv': [
      [...MNLI_HEAD, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'].join('\t'),
      row(7, 'P', 'H', 'contradiction', 'neutral', 'contradiction', 'contradiction', 'entailment', 'contradiction'),
    ],
    'dev_mismatched.tsv': [[...MNLI_HEAD, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'].join('\t'), row(3, 'Pm', 'Hm', 'neutral', 'neutral', 'neutral', 'neutral', 'neutral', 'neutral')],
    'test_matched.tsv': [MNLI_HEAD.join('\t'), row(0, 'Pt', 'Ht')],
  });
  const train = read('glue/mnli', dir, 'train').examples;
  assert.deepEqual(train.map((e) => [e.segments, e.label, e.source.id, e.source.line]), [
    [['Hypothesis one.', 'Premise "one.'], 2, '0', 2],
    [['H2', 'P2'], 1, '1', 3],
  ]);
  assert.deepEqual(read('glue/mnli', dir, 'dev_matched').examples.map((e) => [e.segments, e.label]), [[['H', 'P'], 0]]);
  assert.deepEqual(read('glue/mnli', dir, 'dev_mismatched').examples.map((e) => e.label), [2]);
  assert.deepEqual(read('glue/mnli', dir, 'test_matched').examples.map((e) => [e.segments, e.label]), [[['Ht', 'Pt'], undefined]]);
  throwsData(() => read('glue/mnli', dir, 'test_mismatched'), 'no file', 'test_mismatched.tsv', 'dev_matched.tsv, dev_mismatched.tsv');
  throwsData(() => read('glue/mnli', dir, 'dev'), 'unknown split "dev"', 'train, dev_matched, dev_mismatched, test_matched, test_mismatched');
});

test('QQP, WNLI, and test.tsv files without labels', () => {
  const qqp = folderWith({
    'train.tsv': ['id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate', '5\t11\t12\tWhat is "love?\tWhy "is it"\t1', '6\t13\t14\tA?\tB?\t0'],
    'test.tsv': ['id\tquestion1\tquestion2', '0\tQ1?\tQ2?'],
  });
  assert.deepEqual(read('glue/qqp', qqp, 'train').examples.map((e) => [e.segments, e.label, e.source.id]), [
    [['What is "love?', 'Why "is it"'], 1, '5'],
    [['A?', 'B?'], 0, '6'],
  ]);
  assert.deepEqual(read('glue/qqp', qqp, 'test').examples.map((e) => [e.segments, e.label, e.source.id]), [[['Q1?', 'Q2?'], undefined, '0']]);
  const wnli = folderWith({ 'dev.tsv': ['index\tsentence1\tsentence2\tlabel', '0\tThe cat sat.\tIt sat.\t1', '1\tA.\tB.\t0'] });
  assert.deepEqual(read('glue/wnli', wnli, 'dev').examples.map((e) => [e.segments, e.label]), [[['The cat sat.', 'It sat.'], 1], [['A.', 'B.'], 0]]);
  const sst = folderWith({ 'test.tsv': ['index\tsentence', '0\tuneasy mishmash of styles and genres .', '1\tthis film is n\'t \"good\"'] });
  assert.deepEqual(read('SST-2', sst, 'test').examples.map((e) => [e.segments, e.label, e.source.id]), [
    [['uneasy mishmash of styles and genres .'], undefined, '0'],
    [['this film is n\'t "good"'], undefined, '1'],
  ]);
  const cola = folderWith({ 'test.tsv': ['index\tsentence', '0\tBill whistled past the house.'] });
  assert.deepEqual(read('glue/cola', cola, 'test').examples.map((e) => [e.segments, e.label]), [[['Bill whistled past the house.'], undefined]]);
  const mrpc = folderWith({ 'test.tsv': ['\ufeffindex\t#1 ID\t#2 ID\t#1 String\t#2 String', '0\t1089874\t1089925\tS one.\tS two.'] });
  assert.deepEqual(read('glue/mrpc', mrpc, 'test').examples.map((e) => [e.segments, e.label]), [[['S one.', 'S two.'], undefined]]);
  // A train file must have its label column.
  throwsData(() => read('glue/qqp', folderWith({ 'train.tsv': ['id\tquestion1\tquestion2', '0\ta\tb'] }), 'train'), 'no label column "is_duplicate"', ':1:');
});

test('SuperGLUE test files, COPA expansion and MultiRC cleaning on written files', () => {
  const dir = folderWith({
    'test.jsonl': jsonl({ premise: 'P.', choice1: 'A.', choice2: 'B.', question: 'cause', idx: 9 }),
    'train.jsonl': jsonl({ premise: 'P.', choice1: 'A.', choice2: 'B.', question: 'effect', label: 1, idx: 0 }),
  });
  assert.deepEqual(read('superglue/copa', dir, 'test').examples.map((e) => [e.segments, e.label, e.group]), [
    [['P.', 'cause', 'A.'], undefined, '9'],
    [['P.', 'cause', 'B.'], undefined, '9'],
  ]);
  assert.deepEqual(read('superglue/copa', dir, 'train').examples.map((e) => e.label), [0, 1]);
  const mrc = folderWith({
    'val.jsonl': jsonl({
      idx: 4,
      passage: {
        text: '<b>Sent 1: </b>Tom ran.<br><b>Sent 2: </b>He won.<br>',
        questions: [{ question: 'Who <b>ran</b>?', answers: [{ text: 'Tom', idx: 0, label: 1 }, { text: 'Sam<br>', idx: 1, label: 0 }], idx: 2 }],
      },
    }),
  });
  const rows = read('superglue/multirc', mrc, 'val').examples;
  assert.deepEqual(rows.map((e) => [e.segments, e.label, e.group, e.source.id]), [
    [['Who  ran ?', 'Tom', ' Sent 1:  Tom ran.  Sent 2:  He won. '], 1, '4/2', '4/2/0'],
    [['Who  ran ?', 'Sam ', ' Sent 1:  Tom ran.  Sent 2:  He won. '], 0, '4/2', '4/2/1'],
  ]);
  const wic = folderWith({ 'test.jsonl': jsonl({ word: 'bank', sentence1: 'S1', sentence2: 'S2', idx: 3, start1: 0, end1: 1, start2: 0, end2: 1 }) });
  assert.deepEqual(read('superglue/wic', wic, 'test').examples, [
    { segments: ['bank', 'S1', 'S2'], label: undefined, source: { file: path.join(wic, 'test.jsonl'), line: 1, id: '3' } },
  ]);
});

test('ReCoRD: one row per distinct entity, labels, groups and answers', () => {
  const text = 'Anna met Bob in Paris. Bob left.\n@highlight\nAnna stayed';
  const at = (s: string, from = 0) => {
    const start = text.indexOf(s, from);
    return { start, end: start + s.length - 1 }; // end is inclusive
  };
  const record = {
    source: 'Daily mail',
    passage: { text, entities: [at('Anna'), at('Bob'), at('Paris'), at('Bob', 20), at('Anna', 30)] },
    qas: [
      { query: '@placeholder went to Paris', answers: [{ ...at('Bob'), text: 'Bob' }, { ...at('Bob', 20), text: 'Bob' }], idx: 0 },
      { query: 'Anna met @placeholder', answers: [{ ...at('Bob'), text: 'Bob' }], idx: 1 },
    ],
    idx: 7,
  };
  const dir = folderWith({ 'train.jsonl': jsonl(record), 'test.jsonl': jsonl({ ...record, qas: [{ query: 'Q @placeholder', idx: 5 }] }) });
  const rows = read('superglue/record', dir, 'train').examples;
  assert.deepEqual(rows.map((e) => [e.segments.slice(0, 2), e.label, e.group, e.entity, e.answers]), [
    [['Anna', '@placeholder went to Paris'], 0, '7/0', 'Anna', ['Bob', 'Bob']],
    [['Bob', '@placeholder went to Paris'], 1, '7/0', 'Bob', ['Bob', 'Bob']],
    [['Paris', '@placeholder went to Paris'], 0, '7/0', 'Paris', ['Bob', 'Bob']],
    [['Anna', 'Anna met @placeholder'], 0, '7/1', 'Anna', ['Bob']],
    [['Bob', 'Anna met @placeholder'], 1, '7/1', 'Bob', ['Bob']],
    [['Paris', 'Anna met @placeholder'], 0, '7/1', 'Paris', ['Bob']],
  ]);
  assert.ok(rows.every((e) => e.segments[2] === text));
  const test = read('superglue/record', dir, 'test').examples;
  assert.deepEqual(test.map((e) => [e.entity, e.label, e.answers, e.group]), [
    ['Anna', undefined, undefined, '7/5'], ['Bob', undefined, undefined, '7/5'], ['Paris', undefined, undefined, '7/5'],
  ]);
  const outside = { ...record, passage: { text, entities: [{ start: 50, end: 80 }] } };
  throwsData(() => read('superglue/record', folderWith({ 'val.jsonl': jsonl(outside) }), 'val'), 'val.jsonl:1:', 'outside the passage');
  throwsData(() => read('superglue/record', folderWith({ 'val.jsonl': jsonl({ ...record, qas: [{ query: 'q', idx: 0 }] }) }), 'val'), 'missing field "qas[0].answers"');
});

test('missing folders and files name the path and the expected files; unknown splits list known ones', () => {
  const none = path.join(os.tmpdir(), 'sm-tasks-no-such-folder', 'SST-2');
  throwsData(() => read('glue/sst2', none, 'dev'), `glue/sst2: no folder ${none} (expected train.tsv, dev.tsv, test.tsv)`);
  const empty = folderWith({});
  throwsData(() => read('glue/sst2', empty, 'dev'), `glue/sst2: no file ${path.join(empty, 'dev.tsv')} (expected train.tsv, dev.tsv, test.tsv)`);
  throwsData(() => read('superglue/cb', empty, 'val'), path.join(empty, 'val.jsonl'), 'expected train.jsonl, val.jsonl, test.jsonl');
  throwsData(() => read('superglue/cb', empty, 'dev'), 'superglue/cb: unknown split "dev" (known splits: train, val, test)');
  throwsData(() => read('glue/rte', empty, 'val'), 'known splits: train, dev, test');
  throwsData(() => data.getTask('spam').read('', 'test'), 'known splits: train, dev');
});

test('malformed rows: file and line, first one throws, skipBadRows skips and lists them', () => {
  const rte = folderWith({
    'dev.tsv': ['index\tsentence1\tsentence2\tlabel', '0\ta\tb\tentailment', '1\ta\tb', '2\ta\tb\tmaybe', '3\ta\tb\tnot_entailment', '', ''],
  });
  const file = path.join(rte, 'dev.tsv');
  const e = throwsData(() => read('glue/rte', rte, 'dev'), `${file}:3: expected 4 tab-separated columns, got 3`);
  assert.deepEqual([e.file, e.line], [file, 3]);
  const r = read('glue/rte', rte, 'dev', { skipBadRows: true });
  assert.deepEqual(r.examples.map((x) => [x.source.id, x.label]), [['0', 0], ['3', 1]]); // trailing blank lines are not rows
  assert.deepEqual(r.skipped, [
    { file, line: 3, reason: 'expected 4 tab-separated columns, got 3' },
    { file, line: 4, reason: 'unknown label "maybe" (expected one of entailment, not_entailment)' },
  ]);

  const stsb = folderWith({ 'train.tsv': ['index\tsentence1\tsentence2\tscore', '0\ta\tb\t3.5', '1\ta\tb\tn/a', '2\ta\tb\t', '3\ta\tb\t7'] });
  throwsData(() => read('glue/stsb', stsb, 'train'), 'train.tsv:3: score "n/a" is not a number');
  const s = read('glue/stsb', stsb, 'train', { skipBadRows: true });
  assert.deepEqual(s.examples.map((x) => x.label), [3.5]);
  assert.deepEqual(s.skipped.map((x) => [x.line, x.reason]), [[3, 'score "n/a" is not a number'], [4, 'score "" is not a number'], [5, 'score 7 is outside 0-5']]);

  // An empty line in the middle of a headerless CoLA file is a bad row, not an end of file.
  const cola = folderWith({ 'train.tsv': ['gj04\t1\t\tOk.', '', 'gj04\t2\t*\tBad.'] });
  const c = read('glue/cola', cola, 'train', { skipBadRows: true });
  assert.deepEqual(c.skipped.map((x) => [x.line, x.reason]), [[2, 'expected 4 tab-separated columns, got 1'], [3, 'unknown label "2" (expected one of 0, 1)']]);
  assert.equal(c.examples.length, 1);

  const cb = folderWith({
    'val.jsonl': [
      JSON.stringify({ premise: 'p', hypothesis: 'h', label: 'neutral', idx: 0 }),
      '{"premise": "p", "hypothesis": ',
      JSON.stringify({ premise: 'p', label: 'neutral', idx: 2 }),
      JSON.stringify({ premise: 'p', hypothesis: 'h', label: 'yes', idx: 3 }),
      JSON.stringify({ premise: 'p', hypothesis: 'h', idx: 4 }),
      '[1, 2]',
      JSON.stringify({ premise: 'p', hypothesis: 7, label: 'neutral', idx: 6 }),
    ],
  });
  throwsData(() => read('superglue/cb', cb, 'val'), 'val.jsonl:2: bad JSON');
  const b = read('superglue/cb', cb, 'val', { skipBadRows: true });
  assert.deepEqual(b.examples.map((x) => [x.segments, x.label, x.source.id]), [[['h', 'p'], 2, '0']]);
  assert.deepEqual(b.skipped.map((x) => x.line), [2, 3, 4, 5, 6, 7]);
  assert.match(b.skipped[1]!.reason, /missing field "hypothesis"/);
  assert.match(b.skipped[2]!.reason, /unknown label "yes"/);
  assert.match(b.skipped[3]!.reason, /missing field "label"/);
  assert.match(b.skipped[4]!.reason, /not a JSON object/);
  assert.match(b.skipped[5]!.reason, /field "hypothesis" is not a string/);

  const mrc = folderWith({ 'train.jsonl': jsonl({ idx: 0, passage: { text: 't', questions: [{ question: 'q', idx: 0, answers: [{ text: 'a', idx: 0 }] }] } }) });
  throwsData(() => read('superglue/multirc', mrc, 'train'), 'train.jsonl:1: missing field "passage.questions[0].answers[0].label"');
  const copa = folderWith({ 'train.jsonl': jsonl({ premise: 'p', choice1: 'a', choice2: 'b', question: 'why', label: 0, idx: 0 }) });
  throwsData(() => read('superglue/copa', copa, 'train'), 'not "cause" or "effect"');
});

test('spam: 6046 mails, a fixed 80/20 split by hash of the id, both labels, bodies only', () => {
  const spam = data.getTask('spam');
  const train = spam.read('', 'train').examples;
  const dev = spam.read('/ignored', 'dev').examples;
  assert.equal(train.length + dev.length, 6046);
  assert.equal(dev.length, Math.round(0.2 * 6046));
  const ids = (xs: data.TaskExample[]) => xs.map((x) => x.source.id!);
  assert.equal(new Set([...ids(train), ...ids(dev)]).size, 6046);
  assert.deepEqual(ids(spam.read('', 'dev').examples), ids(dev));
  for (const split of [train, dev]) {
    const c = counts(split);
    assert.deepEqual([...c.keys()].sort(), [0, 1]);
    assert.ok(c.get(1)! > split.length * 0.2 && c.get(1)! < split.length * 0.45, `${[...c]}`);
    for (const x of split) {
      assert.equal(x.segments.length, 1);
      assert.ok(x.segments[0]!.length <= 2000 && !/\s\s|\n/.test(x.segments[0]!));
      assert.equal(x.label, x.source.id!.startsWith('spam') ? 1 : 0);
    }
  }
  assert.ok(!train.some((x) => x.segments[0]!.startsWith('From ') && x.segments[0]!.includes('Return-Path:')));
  // The split depends on the set of ids, not their order.
  const keys = [...ids(train), ...ids(dev)];
  assert.deepEqual([...data.devKeys([...keys].reverse())].sort(), [...ids(dev)].sort());
  assert.equal(data.mailBody('From: a\nSubject: b\n\nHello\n\n  world\t!'), 'Hello world !');
  assert.equal(data.mailBody('Subject: no body'), '');
});

test('holding out training rows: the same rows every time, whole groups, both parts in file order', () => {
  const rows = (n: number, group?: (i: number) => string): data.TaskExample[] =>
    Array.from({ length: n }, (_, i) => ({ segments: [`row ${i}`], label: i % 2, source: { file: 'train.tsv', line: i + 2 }, ...(group ? { group: group(i) } : {}) }));
  const plain = rows(50);
  const split = data.holdOutRows(plain, 7);
  assert.equal(split.heldOut.length, 7);
  assert.equal(split.train.length, 43);
  const lines = (xs: data.TaskExample[]) => xs.map((x) => x.source.line);
  assert.deepEqual([...lines(split.train), ...lines(split.heldOut)].sort((a, b) => a - b), lines(plain), 'a partition of the rows');
  for (const part of [split.train, split.heldOut]) assert.deepEqual(lines(part), [...lines(part)].sort((a, b) => a - b));
  assert.deepEqual(data.holdOutRows(plain, 7), split, 'drawn with a fixed seed');
  assert.notDeepEqual(lines(split.heldOut), lines(plain.slice(0, 7)), 'drawn, not the first rows');
  // Grouped rows (COPA, MultiRC, ReCoRD) move together: 3 groups of 4 rows.
  const grouped = data.holdOutRows(rows(40, (i) => `q${Math.floor(i / 4)}`), 3);
  assert.equal(grouped.heldOut.length, 12);
  assert.equal(new Set(grouped.heldOut.map((x) => x.group)).size, 3);
  assert.ok(!grouped.train.some((x) => grouped.heldOut.some((h) => h.group === x.group)));
  assert.throws(() => data.holdOutRows(plain, 50), /cannot hold out 50 of 50 training rows: none would be left to train on/);
  assert.throws(() => data.holdOutRows(rows(8, (i) => `q${i % 2}`), 2), /cannot hold out 2 of 2 training groups/);
  assert.throws(() => data.holdOutRows(plain, 0), /positive integer/);
});
