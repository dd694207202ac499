// GLUE readers for the TSV files written by download_glue_data.py. Columns are found by header
// name, so train/dev/test layouts (test has no label column) share one description per task.
// The files are not CSV-quoted: cells are split on tabs only and quotes are ordinary text.
import { DataError } from '../errors';
import { excerpt, quote } from '../../util/excerpt';
import { bad, defineTask, headerLine, isTestSplit, labelIndex, readLines, readRows, splitFile } from './read';
import type { ReadOptions, ReadResult, TaskExample, TaskSpec } from './types';

type GlueLabel =
  | { column: string; /** Cell values in class order. */ raw: string[]; names: string[] }
  | { column: string; /** A similarity score in [0, 5] (STS-B). */ score: true };

interface GlueLayout {
  name: string;
  folderName: string;
  /** [segment name, header column] in segment order. */
  segments: [string, string][];
  label: GlueLabel;
  metrics: string[];
  splits?: Record<string, string>;
  evalSplit?: string;
  /** Column names for files without a header (CoLA's train and dev; its test.tsv has one). */
  headerless?: string[];
}

const SPLITS = { train: 'train.tsv', dev: 'dev.tsv', test: 'test.tsv' };
const BINARY = ['0', '1'];
const ENTAILMENT = ['entailment', 'not_entailment'];

function parseScore(cell: string): number {
  const score = Number(cell);
  if (cell.trim() === '' || !Number.isFinite(score)) bad(`score ${quote(cell, 40)} is not a number`);
  if (score < 0 || score > 5) bad(`score ${score} is outside 0-5`);
  return score;
}

function readGlue(layout: GlueLayout, folder: string, split: string, options?: ReadOptions): ReadResult {
  const file = splitFile(layout.name, layout.splits ?? SPLITS, folder, split);
  const text = readLines(file);
  // A headerless file's first line is a row: bad bytes there are a bad row, not a bad header.
  const firstCells = (layout.headerless !== undefined && text.invalid.has(0) ? '' : headerLine(text, 0)).split('\t');
  const hasHeader = layout.headerless === undefined || layout.segments.every(([, column]) => firstCells.includes(column));
  const columns = hasHeader ? firstCells : layout.headerless!;
  const headerError = (what: string) =>
    new DataError(`${layout.name}: ${what} in the header (columns: ${excerpt(columns.join(', '), 120)})`, file, 1);
  const segmentColumns = layout.segments.map(([, column]) => {
    const index = columns.indexOf(column);
    if (index < 0) throw headerError(`no column "${column}"`);
    return index;
  });
  const labelColumn = columns.indexOf(layout.label.column);
  // Only test files may lack labels; a train file without them is a wrong file, not a test set.
  if (labelColumn < 0 && !isTestSplit(split)) throw headerError(`no label column "${layout.label.column}"`);
  const idColumn = columns.includes('index') ? columns.indexOf('index') : columns.indexOf('id');
  const label = layout.label;
  return readRows(text, hasHeader ? 1 : 0, options, (line, lineNumber) => {
    const cells = line.split('\t');
    if (cells.length !== columns.length) bad(`expected ${columns.length} tab-separated columns, got ${cells.length}`);
    const cell = labelColumn < 0 ? undefined : cells[labelColumn]!;
    const example: TaskExample = {
      segments: segmentColumns.map((i) => cells[i]!),
      label: cell === undefined ? undefined : 'score' in label ? parseScore(cell) : labelIndex(cell, label.raw),
      source: { file, line: lineNumber },
    };
    if (idColumn >= 0) example.source.id = cells[idColumn];
    return [example];
  });
}

const LAYOUTS: GlueLayout[] = [
  {
    name: 'glue/cola', folderName: 'glue/CoLA', segments: [['sentence', 'sentence']],
    label: { column: 'label', raw: BINARY, names: ['unacceptable', 'acceptable'] },
    metrics: ['matthews_corrcoef', 'accuracy'], headerless: ['source', 'label', 'original_label', 'sentence'],
  },
  {
    name: 'glue/sst2', folderName: 'glue/SST-2', segments: [['sentence', 'sentence']],
    label: { column: 'label', raw: BINARY, names: ['negative', 'positive'] }, metrics: ['accuracy'],
  },
  {
    name: 'glue/mrpc', folderName: 'glue/MRPC', segments: [['sentence1', '#1 String'], ['sentence2', '#2 String']],
    label: { column: 'Quality', raw: BINARY, names: ['not_equivalent', 'equivalent'] }, metrics: ['accuracy', 'f1'],
  },
  {
    name: 'glue/qqp', folderName: 'glue/QQP', segments: [['question1', 'question1'], ['question2', 'question2']],
    label: { column: 'is_duplicate', raw: BINARY, names: ['not_duplicate', 'duplicate'] }, metrics: ['accuracy', 'f1'],
  },
  {
    name: 'glue/stsb', folderName: 'glue/STS-B', segments: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']],
    label: { column: 'score', score: true }, metrics: ['pearson', 'spearman'],
  },
  {
    // REFERENCE §3 puts the hypothesis (sentence2) first.
    name: 'glue/mnli', folderName: 'glue/MNLI', segments: [['hypothesis', 'sentence2'], ['premise', 'sentence1']],
    label: { column: 'gold_label', raw: ['contradiction', 'entailment', 'neutral'], names: ['contradiction', 'entailment', 'neutral'] },
    metrics: ['accuracy'], evalSplit: 'dev_matched',
    splits: {
      train: 'train.tsv', dev_matched: 'dev_matched.tsv', dev_mismatched: 'dev_mismatched.tsv',
      test_matched: 'test_matched.tsv', test_mismatched: 'test_mismatched.tsv',
    },
  },
  {
    name: 'glue/qnli', folderName: 'glue/QNLI', segments: [['question', 'question'], ['sentence', 'sentence']],
    label: { column: 'label', raw: ENTAILMENT, names: ENTAILMENT }, metrics: ['accuracy'],
  },
  {
    name: 'glue/rte', folderName: 'glue/RTE', segments: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']],
    label: { column: 'label', raw: ENTAILMENT, names: ENTAILMENT }, metrics: ['accuracy'],
  },
  {
    // WNLI's 1 means entailment.
    name: 'glue/wnli', folderName: 'glue/WNLI', segments: [['sentence1', 'sentence1'], ['sentence2', 'sentence2']],
    label: { column: 'label', raw: BINARY, names: ['not_entailment', 'entailment'] }, metrics: ['accuracy'],
  },
];

export const GLUE_TASKS: TaskSpec[] = LAYOUTS.map((layout) =>
  defineTask({
    name: layout.name,
    benchmark: 'glue',
    regression: 'score' in layout.label,
    segmentNames: layout.segments.map(([name]) => name),
    labelNames: 'names' in layout.label ? layout.label.names : [],
    metrics: layout.metrics,
    splits: layout.splits ?? SPLITS,
    evalSplit: layout.evalSplit ?? 'dev',
    folderName: layout.folderName,
    read: (folder, split, options) => readGlue(layout, folder, split, options),
  }),
);
