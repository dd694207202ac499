// Evaluation metrics of REFERENCE §3 as pure functions over plain number arrays. Conventions follow
// scikit-learn / scipy / the official SuperGLUE scripts so that numbers are comparable with
// published ones; where those are undefined (a zero denominator) the choice is written down.

function checkLengths(a: readonly unknown[], b: readonly unknown[], what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} predictions but ${b.length} labels`);
  if (a.length === 0) throw new Error(`${what}: no examples`);
}

/** 0 instead of NaN for 0/0: scikit-learn's zero_division=0 (it warns, we document). */
function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

/** Fraction of positions where prediction equals label. */
export function accuracy(predictions: readonly number[], labels: readonly number[]): number {
  checkLengths(predictions, labels, 'accuracy');
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) right++;
  return right / labels.length;
}

export interface PrecisionRecallF1 {
  precision: number;
  recall: number;
  f1: number;
}

/**
 * Precision, recall and F1 of one class (default 1, the positive class). Each is 0 when its
 * denominator is 0, e.g. precision and F1 are 0 when the class is never predicted.
 */
export function f1(predictions: readonly number[], labels: readonly number[], positive = 1): PrecisionRecallF1 {
  checkLengths(predictions, labels, 'f1');
  let tp = 0;
  let predicted = 0;
  let actual = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i] === positive;
    const l = labels[i] === positive;
    if (p) predicted++;
    if (l) actual++;
    if (p && l) tp++;
  }
  const precision = ratio(tp, predicted);
  const recall = ratio(tp, actual);
  // 2·tp / (predicted + actual) is the harmonic mean of precision and recall without 0/0 traps.
  return { precision, recall, f1: ratio(2 * tp, predicted + actual) };
}

/**
 * Unweighted mean of the per-class F1 over the classes present in labels OR predictions (the
 * union, as scikit-learn's f1_score(average='macro') does without an explicit label list). A
 * class that appears in neither cannot be scored fairly, so it is left out rather than counted as 0.
 */
export function macroF1(predictions: readonly number[], labels: readonly number[]): number {
  checkLengths(predictions, labels, 'macroF1');
  const classes = [...new Set([...labels, ...predictions])];
  let sum = 0;
  for (const c of classes) sum += f1(predictions, labels, c).f1;
  return sum / classes.length;
}

/**
 * Matthews correlation coefficient, in the multiclass form of scikit-learn (Gorodkin's R_K):
 *   (c·s − Σ_k p_k·t_k) / sqrt((s² − Σ_k p_k²)·(s² − Σ_k t_k²))
 * with s examples, c correct, p_k / t_k the predicted / true count of class k. For two classes this
 * is the usual (tp·tn − fp·fn)/sqrt(...). 0 when the denominator is 0 (e.g. one class predicted).
 */
export function matthewsCorrcoef(predictions: readonly number[], labels: readonly number[]): number {
  checkLengths(predictions, labels, 'matthewsCorrcoef');
  const predCount = new Map<number, number>();
  const trueCount = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i]!;
    const t = labels[i]!;
    predCount.set(p, (predCount.get(p) ?? 0) + 1);
    trueCount.set(t, (trueCount.get(t) ?? 0) + 1);
    if (p === t) correct++;
  }
  const s = labels.length;
  let pt = 0;
  let pp = 0;
  let tt = 0;
  for (const [k, p] of predCount) pt += p * (trueCount.get(k) ?? 0);
  for (const p of predCount.values()) pp += p * p;
  for (const t of trueCount.values()) tt += t * t;
  const den = Math.sqrt((s * s - pp) * (s * s - tt));
  return den === 0 ? 0 : (correct * s - pt) / den;
}

/**
 * Pearson correlation. NaN when either input is constant (as scipy.stats.pearsonr, which warns):
 * no correlation is defined, and 0 would pass for a real value. Clamped to [-1, 1] against rounding.
 */
export function pearson(x: readonly number[], y: readonly number[]): number {
  checkLengths(x, y, 'pearson');
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  // Centred sums: the one-pass Σxy − n·x̄·ȳ form loses digits when the means are large.
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** 1-based ranks; tied values share the average of the ranks they span (scipy's 'average'). */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    start = end;
  }
  return ranks;
}

/** Spearman rank correlation: Pearson of the average ranks (NaN when either input is constant). */
export function spearman(x: readonly number[], y: readonly number[]): number {
  checkLengths(x, y, 'spearman');
  return pearson(averageRanks(x), averageRanks(y));
}

/** Row indices per group, groups in order of first appearance. */
export function groupRows(groups: readonly string[]): number[][] {
  const byGroup = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const rows = byGroup.get(g);
    if (rows === undefined) byGroup.set(g, [i]);
    else rows.push(i);
  });
  return [...byGroup.values()];
}

/** The row of `rows` with the highest score; the first one on ties (numpy's argmax). */
function bestRow(rows: readonly number[], scores: readonly number[]): number {
  let best = rows[0]!;
  for (const r of rows) if (scores[r]! > scores[best]!) best = r;
  return best;
}

/** COPA: fraction of groups whose highest-scoring row is labelled 1. */
export function copaAccuracy(scores: readonly number[], labels: readonly number[], groups: readonly string[]): number {
  checkLengths(scores, labels, 'copaAccuracy');
  checkLengths(groups, labels, 'copaAccuracy (groups)');
  const all = groupRows(groups);
  let right = 0;
  for (const rows of all) if (labels[bestRow(rows, scores)] === 1) right++;
  return right / all.length;
}

export interface MultircScores {
  /** Fraction of question groups with every answer predicted right. */
  exactMatch: number;
  /** Positive-class F1 over all answers (rows) of all questions. */
  f1a: number;
}

export function multircScores(predictions: readonly number[], labels: readonly number[], groups: readonly string[]): MultircScores {
  checkLengths(predictions, labels, 'multircScores');
  checkLengths(groups, labels, 'multircScores (groups)');
  const all = groupRows(groups);
  let exact = 0;
  for (const rows of all) if (rows.every((r) => predictions[r] === labels[r])) exact++;
  return { exactMatch: exact / all.length, f1a: f1(predictions, labels).f1 };
}

// The SQuAD v1.1 / ReCoRD evaluation script's punctuation set is Python's string.punctuation.
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
// Python's \b is Unicode-aware; JS's is ASCII-only, so spell the word boundary out.
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** SQuAD-style answer normalisation: lower-case, drop punctuation, drop a/an/the, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  const noPunct = [...s.toLowerCase()].filter((ch) => !PUNCTUATION.has(ch)).join('');
  return noPunct.replace(ARTICLES, ' ').split(/\s+/).filter((t) => t !== '').join(' ');
}

/** Token-level F1 of two answers after normalisation (SQuAD v1.1: 0 when no token is shared). */
export function tokenF1(prediction: string, gold: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter((t) => t !== '');
  const g = normalizeAnswer(gold).split(' ').filter((t) => t !== '');
  const goldCounts = new Map<string, number>();
  for (const t of g) goldCounts.set(t, (goldCounts.get(t) ?? 0) + 1);
  let same = 0; // multiset intersection size
  for (const t of p) {
    const left = goldCounts.get(t) ?? 0;
    if (left > 0) {
      same++;
      goldCounts.set(t, left - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

export interface RecordScores {
  exactMatch: number;
  f1: number;
}

/**
 * ReCoRD: per query group, the entity of the highest-scoring row is the prediction; it scores the
 * max over the group's gold answers of exact match and token F1 (after normalisation), averaged
 * over groups. `answers[i]` are the gold answers of row i's query (the same for every row of a
 * group; the group's first row is used). A group with no gold answers scores 0 (the official
 * script would crash on it).
 */
export function recordScores(
  scores: readonly number[],
  groups: readonly string[],
  entities: readonly string[],
  answers: readonly (readonly string[])[],
): RecordScores {
  checkLengths(scores, groups, 'recordScores (groups)');
  checkLengths(scores, entities, 'recordScores (entities)');
  checkLengths(scores, answers, 'recordScores (answers)');
  const all = groupRows(groups);
  let em = 0;
  let f = 0;
  for (const rows of all) {
    const predicted = normalizeAnswer(entities[bestRow(rows, scores)]!);
    const gold = answers[rows[0]!]!;
    em += gold.some((a) => normalizeAnswer(a) === predicted) ? 1 : 0;
    f += Math.max(0, ...gold.map((a) => tokenF1(predicted, a)));
  }
  return { exactMatch: em / all.length, f1: f / all.length };
}
