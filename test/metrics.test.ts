// Evaluation metrics (REFERENCE §3) against values worked out by hand (arithmetic in comments),
// the edge cases where the definitions need a convention, batch accumulation equalling the
// metric over the concatenated batch, and computeTaskMetrics on hand-made rows of real tasks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { getTask, type TaskExample } from '../lib/data/tasks';
import * as m from '../lib/train/metrics';

function close(actual: number, expected: number, msg?: string, tol = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${msg ?? ''} ${actual} != ${expected}`);
}

function closeRecord(actual: Record<string, number>, expected: Record<string, number>, tol = 1e-9): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const k of Object.keys(expected)) close(actual[k]!, expected[k]!, k, tol);
}

// Binary case used several times: tp = 2 (rows 0, 3), fp = 1 (row 1), tn = 1 (row 2), fn = 1 (row 4).
const P5 = [1, 1, 0, 1, 0];
const L5 = [1, 0, 0, 1, 1];

test('accuracy', () => {
  // rows 0 and 2 agree: 2/4
  assert.equal(m.accuracy([1, 0, 1, 1], [1, 1, 1, 0]), 0.5);
  assert.equal(m.accuracy(P5, L5), 3 / 5);
  assert.throws(() => m.accuracy([1], [1, 0]), /1 predictions but 2 labels/);
  assert.throws(() => m.accuracy([], []), /no examples/);
});

test('f1 of the positive class, with precision and recall', () => {
  // precision = tp/(tp+fp) = 2/3, recall = tp/(tp+fn) = 2/3, F1 = 2/3
  const r = m.f1(P5, L5);
  close(r.precision, 2 / 3);
  close(r.recall, 2 / 3);
  close(r.f1, 2 / 3);
  // No positive predictions: precision 0/0 -> 0, recall 0/2 = 0, F1 0.
  assert.deepEqual(m.f1([0, 0, 0], [1, 0, 1]), { precision: 0, recall: 0, f1: 0 });
  // Everything predicted positive: precision 2/4, recall 2/2, F1 = 2·0.5·1/1.5 = 2/3.
  const all = m.f1([1, 1, 1, 1], [1, 0, 1, 0]);
  close(all.precision, 0.5);
  close(all.recall, 1);
  close(all.f1, 2 / 3);
  // The other class as positive: tp = 1 (row 2), predicted 0 twice, actual 0 twice -> 1/2 each.
  assert.deepEqual(m.f1(P5, L5, 0), { precision: 0.5, recall: 0.5, f1: 0.5 });
});

test('macro F1 over three classes, and over the union of label and predicted classes', () => {
  // labels [0,0,1,1,2,2], predictions [0,1,1,1,2,0]
  // class 0: tp 1, predicted 2, actual 2 -> 2·1/(2+2) = 1/2
  // class 1: tp 2, predicted 3, actual 2 -> 2·2/(3+2) = 4/5
  // class 2: tp 1, predicted 1, actual 2 -> 2·1/(1+2) = 2/3
  // mean = (15 + 24 + 20)/30 / 3 = 59/90
  close(m.macroF1([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]), 59 / 90);
  // Class 2 only predicted: class 0 -> 2/3, class 1 -> 1, class 2 -> 0; mean 5/9.
  close(m.macroF1([0, 2, 1], [0, 0, 1]), 5 / 9);
  assert.equal(m.macroF1([1, 0, 2], [1, 0, 2]), 1);
});

test('Matthews correlation: binary, multiclass, perfect, inverse, one class predicted', () => {
  // (tp·tn − fp·fn)/sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 − 1)/sqrt(3·3·2·2) = 1/6
  close(m.matthewsCorrcoef(P5, L5), 1 / 6);
  assert.equal(m.matthewsCorrcoef(L5, L5), 1);
  assert.equal(m.matthewsCorrcoef(L5.map((l) => 1 - l), L5), -1);
  // One class predicted: s² − Σp² = 3² − 3² = 0 -> defined as 0 (scikit-learn), also all-one.
  assert.equal(m.matthewsCorrcoef([0, 0, 0], [1, 0, 1]), 0);
  assert.equal(m.matthewsCorrcoef([1, 1, 1, 1], [1, 0, 1, 0]), 0);
  // Multiclass: labels [0,0,1,1,2,2], predictions [0,1,1,1,2,0]: s = 6, c = 4,
  // p = {0:2, 1:3, 2:1}, t = {0:2, 1:2, 2:2}; Σp·t = 4 + 6 + 2 = 12; Σp² = 14; Σt² = 12
  // (6·4 − 12)/sqrt((36 − 14)(36 − 12)) = 12/sqrt(528)
  close(m.matthewsCorrcoef([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]), 12 / Math.sqrt(528));
});

test('Pearson: perfect, inverse, worked example, constant input', () => {
  assert.equal(m.pearson([1, 2, 3, 4], [2, 4, 6, 8]), 1);
  assert.equal(m.pearson([1, 2, 3, 4], [8, 6, 4, 2]), -1);
  // x − x̄ = [-1,0,1], y − ȳ = [-1,1,0]: Σdxdy = 1, Σdx² = Σdy² = 2 -> 1/2
  close(m.pearson([1, 2, 3], [1, 3, 2]), 0.5);
  // Large offsets do not cost precision (centred sums).
  close(m.pearson([1e9 + 1, 1e9 + 2, 1e9 + 3], [1, 3, 2]), 0.5);
  assert.ok(Number.isNaN(m.pearson([2, 2, 2], [1, 2, 3])), 'constant input has no correlation');
});

test('Spearman: average ranks for ties, monotone ±1', () => {
  // 10s take ranks 1..3 -> 2 each; 20 -> 4; 30 -> 5
  assert.deepEqual(m.averageRanks([10, 20, 10, 30, 10]), [2, 4, 2, 5, 2]);
  // Monotone but not linear: ranks equal -> 1; reversed -> -1.
  assert.equal(m.spearman([1, 2, 3, 4], [1, 4, 9, 100]), 1);
  assert.equal(m.spearman([1, 2, 3, 4], [100, 9, 4, 1]), -1);
  // x ranks [1, 2.5, 2.5, 4], y ranks [1,2,3,4]; centred: [-1.5,0,0,1.5], [-1.5,-.5,.5,1.5]
  // Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 -> 4.5/sqrt(22.5) = sqrt(0.9)
  close(m.spearman([1, 2, 2, 3], [1, 2, 3, 4]), Math.sqrt(0.9));
});

test('COPA accuracy: the highest-scoring row of each group must be labelled 1', () => {
  // g1: 0.9 > 0.2 picks row 1 (label 1) right; g2: 0.7 picks row 0 (label 0) wrong;
  // g3: tie picks the first row (label 1) right -> 2/3. Groups need not be contiguous.
  const scores = [0.2, 0.7, 0.9, 0.1, 0.5, 0.5];
  const labels = [0, 0, 1, 1, 1, 0];
  const groups = ['g1', 'g2', 'g1', 'g2', 'g3', 'g3'];
  close(m.copaAccuracy(scores, labels, groups), 2 / 3);
  assert.deepEqual(m.groupRows(groups), [[0, 2], [1, 3], [4, 5]]);
});

test('MultiRC: exact match needs every answer of the question right; F1a over all answers', () => {
  // q1 all three right, q2 misses its second answer, q3 right -> EM 2/3
  // over rows: tp 3, predicted 3, actual 4 -> F1a = 2·3/(3+4) = 6/7
  const labels = [1, 0, 1, 0, 1, 1];
  const preds = [1, 0, 1, 0, 0, 1];
  const groups = ['q1', 'q1', 'q1', 'q2', 'q2', 'q3'];
  const r = m.multircScores(preds, labels, groups);
  close(r.exactMatch, 2 / 3);
  close(r.f1a, 6 / 7);
});

test('ReCoRD normalisation and token F1', () => {
  assert.equal(m.normalizeAnswer('The Beatles!'), 'beatles');
  assert.equal(m.normalizeAnswer('beatles'), 'beatles');
  assert.equal(m.normalizeAnswer('  An apple,  a day '), 'apple day');
  // Articles only as whole words: "theatre" and "Anna" keep their letters; "Thé" is not "the".
  assert.equal(m.normalizeAnswer('The theatre of Anna'), 'theatre of anna');
  assert.equal(m.normalizeAnswer('Théa'), 'théa');
  // "John Smith" vs "Smith": 1 shared token, precision 1/2, recall 1/1 -> 2·(1/2)/(3/2) = 2/3
  close(m.tokenF1('John Smith', 'Smith'), 2 / 3);
  // Repeated tokens count once per occurrence: "a b b" vs "b c" -> "b b" vs "b c": 1 shared,
  // precision 1/2, recall 1/2 -> 1/2 (a is an article and is dropped).
  close(m.tokenF1('a b b', 'b c'), 0.5);
  assert.equal(m.tokenF1('Paris', 'London'), 0);
});

test('ReCoRD scores: best entity per query, max over gold answers', () => {
  // q1: "The Beatles!" (0.8) beats "Paul" (0.1); vs "beatles": EM 1, F1 1.
  // q2: "New York City" (2) beats "Boston"; vs "New York": 2 shared of 3 predicted / 2 gold ->
  //     P 2/3, R 1, F1 0.8; vs "NYC": 0. EM 0, F1 0.8.  Means: EM 1/2, F1 0.9.
  const r = m.recordScores(
    [0.1, 0.8, 2, 1],
    ['q1', 'q1', 'q2', 'q2'],
    ['Paul', 'The Beatles!', 'New York City', 'Boston'],
    [['beatles'], ['beatles'], ['New York', 'NYC'], ['New York', 'NYC']],
  );
  close(r.exactMatch, 0.5);
  close(r.f1, 0.9);
  // A query without gold answers scores 0.
  assert.deepEqual(m.recordScores([1], ['q'], ['x'], [[]]), { exactMatch: 0, f1: 0 });
});

// Pre-training statistics of one batch from per-position / per-example values, as the model sums them.
function pretrainingStats(mlm: { ce: number; w: number; right: boolean }[], nsp: { ce: number; right: boolean }[]): Record<string, number> {
  return {
    masked_lm_loss_sum: mlm.reduce((s, p) => s + p.ce * p.w, 0),
    masked_lm_weight_sum: mlm.reduce((s, p) => s + p.w, 0),
    masked_lm_correct_sum: mlm.reduce((s, p) => s + (p.right ? p.w : 0), 0),
    next_sentence_loss_sum: nsp.reduce((s, e) => s + e.ce, 0),
    next_sentence_correct_sum: nsp.filter((e) => e.right).length,
    next_sentence_count: nsp.length,
  };
}

test('MetricAccumulator (pre-training): weighted means over batches, not means of means', () => {
  const acc = new m.MetricAccumulator();
  // batch 1: MLM 6/3 = 2 per weight, NSP 2/2; batch 2: MLM 4/1 = 4, NSP 1.2/4.
  acc.add({
    masked_lm_loss_sum: 6, masked_lm_weight_sum: 3, masked_lm_correct_sum: 2,
    next_sentence_loss_sum: 2, next_sentence_correct_sum: 1, next_sentence_count: 2,
    auxiliary_loss: 1, router_z_loss: 10, fraction_tokens_left_behind: 0.1, expert_usage: 1, router_confidence: 0.5,
  });
  acc.add({
    masked_lm_loss_sum: 4, masked_lm_weight_sum: 1, masked_lm_correct_sum: 1,
    next_sentence_loss_sum: 1.2, next_sentence_correct_sum: 3, next_sentence_count: 4,
    auxiliary_loss: 3, router_z_loss: 30, fraction_tokens_left_behind: 0.3, expert_usage: 1, router_confidence: 0.7,
  });
  assert.equal(acc.batches, 2);
  // masked_lm_loss = (6+4)/(3+1) = 2.5 (the mean of means would be 3)
  // masked_lm_accuracy = (2+1)/4 = 0.75; next_sentence_loss = 3.2/6; accuracy 4/6
  // MoE means: aux 2, z 20, left behind 0.2, usage 1, confidence 0.6
  // loss = 2.5 + 3.2/6 + 0.01·2 + 1e-4·20
  closeRecord(acc.result(), {
    masked_lm_loss: 2.5,
    masked_lm_accuracy: 0.75,
    next_sentence_loss: 3.2 / 6,
    next_sentence_accuracy: 4 / 6,
    loss: 2.5 + 3.2 / 6 + 0.02 + 0.002,
    auxiliary_loss: 2,
    router_z_loss: 20,
    fraction_tokens_left_behind: 0.2,
    expert_usage: 1,
    router_confidence: 0.6,
  });
});

test('MetricAccumulator: two batches give the metrics of the concatenated batch', () => {
  // Padding positions have weight 0 and must not count.
  const a = {
    mlm: [{ ce: 1.5, w: 1, right: true }, { ce: 3, w: 1, right: false }, { ce: 9, w: 0, right: true }],
    nsp: [{ ce: 0.7, right: true }],
  };
  const b = {
    mlm: [{ ce: 0.25, w: 1, right: true }, { ce: 2, w: 1, right: true }, { ce: 1, w: 1, right: false }, { ce: 4, w: 1, right: false }],
    nsp: [{ ce: 0.1, right: true }, { ce: 2.3, right: false }, { ce: 0.4, right: true }],
  };
  const split = new m.MetricAccumulator();
  split.add(pretrainingStats(a.mlm, a.nsp));
  split.add(pretrainingStats(b.mlm, b.nsp));
  const whole = new m.MetricAccumulator();
  whole.add(pretrainingStats([...a.mlm, ...b.mlm], [...a.nsp, ...b.nsp]));
  closeRecord(split.result(), whole.result(), 1e-12);
  // By hand: MLM (1.5 + 3 + 0.25 + 2 + 1 + 4)/6 = 11.75/6, accuracy 3/6; NSP 3.5/4, accuracy 3/4.
  closeRecord(whole.result(), {
    masked_lm_loss: 11.75 / 6, masked_lm_accuracy: 0.5, next_sentence_loss: 3.5 / 4, next_sentence_accuracy: 0.75,
    loss: 11.75 / 6 + 3.5 / 4,
  });
});

test('MetricAccumulator (classification) and its errors', () => {
  const acc = new m.MetricAccumulator({ auxiliaryLossFactor: 0.5, routerZLossFactor: 0 });
  // (3 + 1)/(2 + 6) = 0.5, not (1.5 + 1/6)/2; MoE: aux mean 0.3 -> +0.5·0.3
  acc.add({ loss_sum: 3, count: 2, auxiliary_loss: 0.2 });
  acc.add({ loss_sum: 1, count: 6, auxiliary_loss: 0.4 });
  closeRecord(acc.result(), { loss: 0.65, auxiliary_loss: 0.3 });
  assert.throws(() => acc.add({ loss_sum: 1, count: 1, typo_metric: 1 }), /unknown batch statistic "typo_metric"/);
  assert.throws(() => acc.add({ loss_sum: 1 }), /lack count/);
  assert.throws(() => acc.add({ masked_lm_loss_sum: 1, masked_lm_weight_sum: 1, masked_lm_correct_sum: 1,
    next_sentence_loss_sum: 1, next_sentence_correct_sum: 1, next_sentence_count: 1 }), /pretraining batch added to classification/);
  assert.throws(() => acc.add({ auxiliary_loss: 1 }), /neither/);
  assert.equal(acc.batches, 2, 'rejected batches leave the accumulator unchanged');
  assert.throws(() => new m.MetricAccumulator().result(), /no batches/);
});

function rows(labels: (number | undefined)[], extra: (i: number) => Partial<TaskExample> = () => ({})): TaskExample[] {
  return labels.map((label, i) => ({ segments: ['x'], label, source: { file: 'hand-made', line: i + 1 }, ...extra(i) }));
}

// Two-class logits that argmax to the given predictions.
const logits2 = (preds: number[]) => preds.map((p) => (p === 1 ? [-0.5, 0.5] : [0.3, -0.2]));

test('computeTaskMetrics: cola, spam, cb', () => {
  // P5 vs L5: MCC 1/6, accuracy 3/5, F1 2/3 (worked out above)
  closeRecord(m.computeTaskMetrics(getTask('glue/cola'), rows(L5), { logits: logits2(P5) }), { matthews_corrcoef: 1 / 6, accuracy: 0.6 });
  closeRecord(m.computeTaskMetrics(getTask('spam'), rows(L5), { logits: logits2(P5) }), { accuracy: 0.6, f1: 2 / 3 });
  // CB: three classes, predictions [0,1,1,1,2,0] vs [0,0,1,1,2,2]: accuracy 4/6, macro F1 59/90
  const onehot = [0, 1, 1, 1, 2, 0].map((p) => [0, 1, 2].map((k) => (k === p ? 1 : -1)));
  closeRecord(m.computeTaskMetrics(getTask('superglue/cb'), rows([0, 0, 1, 1, 2, 2]), { logits: onehot }), { accuracy: 4 / 6, macro_f1: 59 / 90 });
});

test('computeTaskMetrics: stsb scores are logit 0', () => {
  // scores [1,2,3] vs labels [1,3,2]: Pearson 1/2 (above); ranks equal the values -> Spearman 1/2
  closeRecord(m.computeTaskMetrics(getTask('stsb'), rows([1, 3, 2]), { logits: [[1], [2], [3]] }), { pearson: 0.5, spearman: 0.5 });
});

test('computeTaskMetrics: copa, multirc, record (grouped)', () => {
  // COPA: group 0 picks row 1 (label 1) right, group 1 picks row 2 (label 0) wrong -> 1/2
  const copa = rows([0, 1, 0, 1], (i) => ({ group: String(i >> 1) }));
  closeRecord(m.computeTaskMetrics(getTask('superglue/copa'), copa, { logits: [[0.2], [0.9], [0.7], [0.1]] }), { accuracy: 0.5 });
  // MultiRC: the rows of the MultiRC test above -> EM 2/3, F1a 6/7
  const groups = ['q1', 'q1', 'q1', 'q2', 'q2', 'q3'];
  const multirc = rows([1, 0, 1, 0, 1, 1], (i) => ({ group: groups[i] }));
  closeRecord(m.computeTaskMetrics(getTask('superglue/multirc'), multirc, { logits: logits2([1, 0, 1, 0, 0, 1]) }), {
    exact_match: 2 / 3,
    f1a: 6 / 7,
  });
  // ReCoRD: the rows of the ReCoRD test above -> EM 1/2, F1 0.9
  const ents = ['Paul', 'The Beatles!', 'New York City', 'Boston'];
  const gold = [['beatles'], ['beatles'], ['New York', 'NYC'], ['New York', 'NYC']];
  const record = rows([0, 1, 0, 0], (i) => ({ group: i < 2 ? 'q1' : 'q2', entity: ents[i], answers: gold[i] }));
  closeRecord(m.computeTaskMetrics(getTask('superglue/record'), record, { logits: [[0.1], [0.8], [2], [1]] }), { exact_match: 0.5, f1: 0.9 });
});

test('computeTaskMetrics rejects unlabeled rows and mis-shaped logits', () => {
  const cola = getTask('glue/cola');
  assert.throws(() => m.computeTaskMetrics(cola, rows([1, undefined]), { logits: logits2([1, 1]) }), /unlabeled example \(hand-made:2\)/);
  assert.throws(() => m.computeTaskMetrics(cola, rows([1, 0]), { logits: logits2([1]) }), /1 rows of logits for 2 examples/);
  assert.throws(() => m.computeTaskMetrics(cola, rows([1]), { logits: [[1, 2, 3]] }), /3 values, expected 2/);
  assert.throws(() => m.computeTaskMetrics(getTask('superglue/copa'), rows([1]), { logits: [[1]] }), /without a group/);
});

// Cross-check against scipy / scikit-learn, only where /usr/bin/python3 can import them.
const python = spawnSync('/usr/bin/python3', ['-c', 'import scipy, sklearn'], { encoding: 'utf8' });
const pythonSkip = python.status === 0 ? {} : { skip: '/usr/bin/python3 cannot import scipy and sklearn' };

test('Pearson, Spearman, MCC and macro F1 agree with scipy / scikit-learn', pythonSkip, () => {
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const x = Array.from({ length: 50 }, () => Math.round(rand() * 10) / 2); // ties on purpose
  const y = x.map((v) => v + Math.round(rand() * 6) / 2);
  const p = Array.from({ length: 50 }, () => Math.floor(rand() * 3));
  const l = p.map((v) => (rand() < 0.6 ? v : Math.floor(rand() * 3)));
  const script = `
import json, sys
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import matthews_corrcoef, f1_score
d = json.load(sys.stdin)
print(json.dumps([pearsonr(d['x'], d['y'])[0], spearmanr(d['x'], d['y'])[0],
  matthews_corrcoef(d['l'], d['p']), f1_score(d['l'], d['p'], average='macro')]))`;
  const out = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify({ x, y, p, l }), encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const [pe, sp, mcc, mf1] = JSON.parse(out.stdout) as number[];
  close(m.pearson(x, y), pe!, 'pearson', 1e-12);
  close(m.spearman(x, y), sp!, 'spearman', 1e-12);
  close(m.matthewsCorrcoef(p, l), mcc!, 'mcc', 1e-12);
  close(m.macroF1(p, l), mf1!, 'macro f1', 1e-12);
});
