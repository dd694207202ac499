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

/** Inputs from --text values or a file: plain lines (one text each) or JSON lines (an array of segments, or a string). */
export function readInputs(texts: readonly string[], file?: string): (string | string[])[] {
  const out: (string | string[])[] = [...texts];
  if (file) {
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.trim() === '') return;
        if (!/^\s*[[{"]/.test(line)) return out.push(line);
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new DataError('bad JSON', file, i + 1);
        }
        if (typeof value === 'string') out.push(value);
        else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out.push(value as string[]);
        else throw new DataError('expected a string or an array of strings (the segments)', file, i + 1);
      });
  }
  if (out.length === 0) throw new Error('nothing to predict: give --text or --input');
  return out;
}
