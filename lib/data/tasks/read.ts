// Helpers shared by the GLUE (TSV) and SuperGLUE (JSON Lines) readers: locating a split's
// file, reading its lines, and turning a bad row into a DataError or a SkippedRow.
import * as fs from 'node:fs';
import * as path from 'node:path';
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

/**
 * The file's lines without line terminators. A UTF-8 BOM (MRPC has one) is dropped, and so
 * are blank lines at the end, which several published files have and which are not rows.
 */
export function readLines(file: string): string[] {
  let text = fs.readFileSync(file, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.endsWith('\r')) lines[i] = line.slice(0, -1);
  }
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines;
}

/**
 * Parses lines[first..] with `parse`, which returns the examples of one line (several for
 * the expanded tasks). A BadRow becomes a DataError at file:line, or with skipBadRows a
 * SkippedRow; other errors are bugs and propagate unchanged.
 */
export function readRows(
  file: string,
  lines: string[],
  first: number,
  options: ReadOptions | undefined,
  parse: (line: string, lineNumber: number) => TaskExample[],
): ReadResult {
  const examples: TaskExample[] = [];
  const skipped: SkippedRow[] = [];
  for (let i = first; i < lines.length; i++) {
    try {
      for (const example of parse(lines[i]!, i + 1)) examples.push(example);
    } catch (e) {
      if (!(e instanceof BadRow)) throw e;
      if (!options?.skipBadRows) throw new DataError(e.message, file, i + 1);
      skipped.push({ file, line: i + 1, reason: e.message });
    }
  }
  return { examples, skipped };
}

/** The class index of a raw label value (a TSV cell, or a JSON string, number or boolean). */
export function labelIndex(value: unknown, raw: readonly string[]): number {
  const text = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  const index = text === undefined ? -1 : raw.indexOf(text);
  if (index < 0) bad(`unknown label ${JSON.stringify(value)} (expected one of ${raw.join(', ')})`);
  return index;
}

type TaskFields = Omit<TaskSpec, 'numClasses' | 'regression' | 'grouped'> & { regression?: boolean; grouped?: boolean };

/** A TaskSpec whose logit count follows REFERENCE §3: 1 for scored tasks, else one per label. */
export function defineTask(fields: TaskFields): TaskSpec {
  const regression = fields.regression ?? false;
  return { ...fields, regression, grouped: fields.grouped ?? false, numClasses: regression ? 1 : fields.labelNames.length };
}
