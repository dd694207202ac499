// Serving a fine-tuned workdir: load its config, vocabulary and latest checkpoint, and predict.
import * as path from 'path';
import { classificationBatch, encodeTaskExamples, tasks, Tokenizer } from '../data';
import type { TaskExample, TaskSpec } from '../data/tasks';
import { ClassificationModel } from '../model';
import { functional as F, noGrad, tidy, type Device } from '../tensor';
import { CheckpointStore, disposeCheckpoint } from './checkpoint';
import type { TrainConfig } from './config';
import { readWorkdirConfig } from './workdir';

export interface Prediction {
  /** The predicted class (undefined for regression tasks). */
  label: number | undefined;
  labelName: string | undefined;
  /** Class probabilities, or [score] for regression tasks. */
  scores: number[];
}

export class Predictor {
  private constructor(
    readonly config: TrainConfig,
    readonly task: TaskSpec,
    private readonly tokenizer: Tokenizer,
    private readonly model: ClassificationModel,
    readonly step: number,
  ) {}

  /** Loads a fine-tuning workdir (its config.json and latest checkpoint, or the given step). */
  static load(workdir: string, options: { step?: number; device?: Device } = {}): Predictor {
    const config = readWorkdirConfig(workdir);
    if (config.mode !== 'classification') throw new Error(`${workdir} holds a ${config.mode} run; predict needs a fine-tuned classifier`);
    const task = tasks.getTask(config.dataset_name);
    const tokenizer = Tokenizer.load(config.vocab_filepath);
    const model = new ClassificationModel(config, task.numClasses, task.regression).eval();
    const store = new CheckpointStore(path.join(workdir, 'checkpoints'), { keep: 1_000_000 });
    const ckpt = store.load(options.step);
    try {
      model.loadStateDict(ckpt.params);
    } finally {
      disposeCheckpoint(ckpt);
    }
    if (options.device) model.to(options.device);
    return new Predictor(config, task, tokenizer, model, ckpt.step);
  }

  /** Predicts for texts (one segment each) or segment lists (e.g. [sentence1, sentence2]). */
  async predict(inputs: readonly (string | readonly string[])[]): Promise<Prediction[]> {
    const need = this.task.segmentNames.length;
    const rows: TaskExample[] = inputs.map((input, i) => {
      const segments = typeof input === 'string' ? [input] : [...input];
      if (segments.length !== need) {
        throw new Error(`input ${i}: ${this.task.name} takes ${need} segment(s) (${this.task.segmentNames.join(', ')}), got ${segments.length}`);
      }
      return { segments, label: undefined, source: { file: '<input>', line: i + 1 } };
    });
    return this.predictRows(rows);
  }

  /** Predictions for task rows (e.g. a dev or test split). */
  async predictRows(rows: readonly TaskExample[]): Promise<Prediction[]> {
    const encoded = await encodeTaskExamples(rows, this.tokenizer, this.config.max_seq_length);
    const out: Prediction[] = [];
    const batchSize = this.config.eval_batch_size;
    for (let i = 0; i < encoded.length; i += batchSize) {
      // Labels are unknown here; the batch carries placeholders the logits never look at.
      const batch = encoded.slice(i, i + batchSize).map((e) => ({ ...e, label: 0 }));
      const scores = noGrad(() =>
        tidy(() => {
          const b = classificationBatch(batch, { regression: this.task.regression, device: this.model.encoder.embeddings.word.weight.device });
          const raw = this.model.logits(b.input_ids, b.type_ids).logits.float();
          return Array.from((this.task.regression ? raw : F.softmax(raw, -1)).dataSync() as Float32Array);
        }),
      );
      const k = this.task.numClasses;
      for (let r = 0; r < batch.length; r++) {
        const s = scores.slice(r * k, (r + 1) * k);
        const label = this.task.regression ? undefined : s.indexOf(Math.max(...s));
        out.push({ label, labelName: label === undefined ? undefined : this.task.labelNames[label], scores: s });
      }
    }
    return out;
  }

  dispose(): void {
    this.model.dispose();
    this.tokenizer.dispose();
  }
}
