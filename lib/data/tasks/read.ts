// Helpers shared by the GLUE (TSV) and SuperGLUE (JSON Lines) readers: locating a split's
// file, reading its lines, and turning a bad row into a DataError or a SkippedRow.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { excerpt, quote } from '../../util/excerpt';
import { DataError, type SkippedRow } from '../errors';
import type { ReadOptions, ReadResult, TaskExample, TaskSpec } from './types';

/** Thrown by row parsers with a reason only; `readRows` adds the file and line. */
export class BadRow extends Error {}

export function bad(reason: string): never {
  throw new BadRow(reason);
}

/** Splits whose rows have no labels: their label column/field is optional. */
export function isTestSplit(split: string): boolean {
  return split.startsWith('test');
}

/** The path of `split`'s file in `folder`, with errors that name the files the task expects. */
export function splitFile(task: string, splits: Record<string, string>, folder: string, split: string): string {
  const names = Object.keys(splits);
  const fileName = splits[split];
  if (fileName === undefined) {
    throw new DataError(`${task}: unknown split "${split}" (known splits: ${names.join(', ')})`);
  }
  const expected = `(expected ${Object.values(splits).join(', ')})`;
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw new DataError(`${task}: no folder ${folder} ${expected}`);
  }
  const file = path.join(folder, fileName);
  if (!fs.existsSync(file)) throw new DataError(`${task}: no file ${file} ${expected}`);
  return file;
}

/** A data file's lines, and which of them are not valid UTF-8 (they are rows to report, not text to guess at). */
export interface TextLines {
  file: string;
  lines: string[];
  /** 0-based indices of lines whose bytes are not valid UTF-8. */
  invalid: ReadonlySet<number>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The file's lines without line terminators. A UTF-8 BOM (MRPC has one) is dropped, and so are
 * blank lines at the end, which several published files have and which are not rows. A file with
 * no line at all is an error: there is nothing to read.
 */
export function readLines(file: string): TextLines {
  if (fs.statSync(file).isDirectory()) throw new DataError('is a folder, not a data file', file);
  let bytes = fs.readFileSync(file);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  const invalid = new Set<number>();
  let lines: string[];
  try {
    lines = utf8.decode(bytes).split('\n');
  } catch {
    // Decode line by line to find the lines at fault (a character never spans a newline byte).
    lines = [];
    for (let start = 0, i = 0; start <= bytes.length; i++) {
      const nl = bytes.indexOf(10, start);
      const end = nl < 0 ? bytes.length : nl;
      const piece = bytes.subarray(start, end);
      try {
        lines.push(utf8.decode(piece));
      } catch {
        invalid.add(i);
        lines.push(piece.toString('utf8'));
      }
      start = end + 1;
    }
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.endsWith('\r')) lines[i] = line.slice(0, -1);
  }
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '' && !invalid.has(lines.length - 1)) lines.pop();
  if (lines.length === 0) throw new DataError('the file is empty: no rows', file);
  return { file, lines, invalid };
}

/** A line's text, or the DataError of a line that is not valid UTF-8 (for headers, which cannot be skipped). */
export function headerLine(text: TextLines, index: number): string {
  if (text.invalid.has(index)) throw new DataError(INVALID_UTF8, text.file, index + 1);
  return text.lines[index]!;
}

const INVALID_UTF8 = 'the line is not valid UTF-8 (a binary file, or text in another encoding?)';

/**
 * Parses lines[first..] with `parse`, which returns the examples of one line (several for
 * the expanded tasks). A BadRow, or a line that is not valid UTF-8, becomes a DataError at
 * file:line, or with skipBadRows a SkippedRow; other errors are bugs and propagate unchanged.
 * A file whose data rows are all missing or all skipped is an error: it has nothing to train on.
 */
export function readRows(
  text: TextLines,
  first: number,
  options: ReadOptions | undefined,
  parse: (line: string, lineNumber: number) => TaskExample[],
): ReadResult {
  const { file, lines } = text;
  const examples: TaskExample[] = [];
  const skipped: SkippedRow[] = [];
  for (let i = first; i < lines.length; i++) {
    try {
      if (text.invalid.has(i)) bad(INVALID_UTF8);
      for (const example of parse(lines[i]!, i + 1)) examples.push(example);
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      if (!options?.skipBadRows) throw new DataError(e.message, file, i + 1);
      skipped.push({ file, line: i + 1, reason: excerpt(e.message, 200) });
    }
  }
  if (examples.length === 0) {
    if (skipped.length === 0) throw new DataError('no data rows (the file holds only a header or blank lines)', file);
    const firstBad = skipped[0]!;
    throw new DataError(`every row is malformed: ${skipped.length} skipped under skip_bad_rows, nothing left (the first, line ${firstBad.line}: ${firstBad.reason})`, file);
  }
  return { examples, skipped };
}

/** The class index of a raw label value (a TSV cell, or a JSON string, number or boolean). */
export function labelIndex(value: unknown, raw: readonly string[]): number {
  const text = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  const index = text === undefined ? -1 : raw.indexOf(text);
  if (index < 0) bad(`unknown label ${quote(value, 40)} (expected one of ${raw.join(', ')})`);
  return index;
}

type TaskFields = Omit<TaskSpec, 'numClasses' | 'regression' | 'grouped'> & { regression?: boolean; grouped?: boolean };

/** A TaskSpec whose logit count follows REFERENCE §3: 1 for scored tasks, else one per label. */
export function defineTask(fields: TaskFields): TaskSpec {
  const regression = fields.regression ?? false;
  return { ...fields, regression, grouped: fields.grouped ?? false, numClasses: regression ? 1 : fields.labelNames.length };
}
