// `sparse-mixer eval` and `sparse-mixer predict` on a fine-tuned workdir (offline; `serve` is in serve.ts).
import * as fs from 'fs';
import * as path from 'path';
import { DataError } from '../data';
import { Predictor } from '../train';
import { computeTaskMetrics } from '../train/metrics';

/** Evaluates a task split (labels give metrics) and writes one JSON line of predictions per row. */
export async function evaluateWorkdir(workdir: string, options: { split?: string; output?: string; step?: number }): Promise<{ split: string; rows: number; metrics?: Record<string, number>; output: string }> {
  // The training loop's MoE routing groups, so that the metrics are those the run logged.
  const predictor = Predictor.load(workdir, { routing: 'batch', ...(options.step === undefined ? {} : { step: options.step }) });
  try {
    const { config, task } = predictor;
    const split = options.split ?? task.evalSplit;
    const folder = task.benchmark === 'builtin' ? '' : path.join(config.data_dir || '.', task.folderName ?? task.name);
    const rows = task.read(folder, split, { skipBadRows: config.skip_bad_rows }).examples;
    const predictions = await predictor.predictRows(rows);
    const output = options.output ?? path.join(workdir, `predictions-${split}-step${predictor.step}.jsonl`);
    const lines = predictions.map((p, i) => JSON.stringify({ id: rows[i]!.source.id ?? `${rows[i]!.source.file}:${rows[i]!.source.line}`, group: rows[i]!.group, ...p }));
    fs.writeFileSync(output, lines.join('\n') + '\n');
    const labeled = rows.every((r) => r.label !== undefined);
    const metrics = labeled
      ? computeTaskMetrics(task, rows, { logits: predictions.map((p) => (task.regression ? p.scores : p.scores.map((s) => Math.log(Math.max(s, 1e-30))))) })
      : undefined;
    return { split, rows: rows.length, ...(metrics ? { metrics } : {}), output };
  } finally {
    predictor.dispose();
  }
}

/** An input to predict, and where it came from (1-based, as every message here counts). */
export interface InputRow {
  input: string | string[];
  where: string;
}

/**
 * Inputs from --text values or a file: plain lines (one text each) or JSON lines (an array of
 * segments, or a string). A bad line, or an input with the wrong number of segments for the
 * model (`segments`), stops with its file:line, or with skipBadRows is left out and listed.
 */
export function readInputs(texts: readonly string[], file?: string, options: { segments?: number; skipBadRows?: boolean } = {}): { rows: InputRow[]; skipped: { where: string; reason: string }[] } {
  const rows: InputRow[] = texts.map((t, k) => ({ input: t, where: `--text #${k + 1}` }));
  const skipped: { where: string; reason: string }[] = [];
  const bad = (where: string, reason: string, line?: number) => {
    if (!options.skipBadRows) throw line === undefined ? new Error(`${where}: ${reason}`) : new DataError(reason, file!, line);
    skipped.push({ where, reason });
  };
  if (file) {
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.trim() === '') return;
        const where = `${file}:${i + 1}`;
        if (!/^\s*[[{"]/.test(line)) return void rows.push({ input: line, where });
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          return bad(where, 'bad JSON', i + 1);
        }
        if (typeof value === 'string') rows.push({ input: value, where });
        else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) rows.push({ input: value as string[], where });
        else bad(where, 'expected a string or an array of strings (the segments)', i + 1);
      });
  }
  const fitting = rows.filter((r) => {
    const n = typeof r.input === 'string' ? 1 : r.input.length;
    if (options.segments === undefined || n === options.segments) return true;
    bad(r.where, `the model takes ${options.segments} segment(s), got ${n}`);
    return false;
  });
  if (fitting.length === 0 && skipped.length === 0) throw new Error('nothing to predict: give --text or --input');
  return { rows: fitting, skipped };
}
