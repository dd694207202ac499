// Inference on a training workdir: the pooled encoder output of any workdir, fine-tuned or
// pre-trained (Embedder), and a fine-tuned classifier's predictions (Predictor).
//
// MoE routing at inference: the reference routes the tokens of a whole batch together (groups of up
// to max_group_size tokens, REFERENCE §2), so an input's result depends on which other inputs share
// its batch. A prediction must not change with its neighbours in a file or, when served, with other
// clients' requests, so by default each input is routed in a group of its own (max_group_size =
// max_seq_length). `routing: 'batch'` keeps the training loop's grouping: `eval` uses it so that
// its metrics are those the training run logged.
import * as path from 'path';
import { classificationBatch, encodeSegments, encodeTaskExamples, tasks, Tokenizer, type EncodedExample, type EncodedInput } from '../data';
import type { TaskExample, TaskSpec } from '../data/tasks';
import { ClassificationModel, Encoder, layerPlan, type ModelConfig } from '../model';
import type { Module } from '../nn';
import { functional as F, noGrad, tidy, type Device, type Tensor } from '../tensor';
import { CheckpointStore, disposeCheckpoint } from './checkpoint';
import type { TrainConfig } from './config';
import { encoderState } from './finetune';
import { readWorkdirConfig } from './workdir';

export interface Prediction {
  /** The predicted class (undefined for regression tasks). */
  label: number | undefined;
  labelName: string | undefined;
  /** Class probabilities, or [score] for regression tasks. */
  scores: number[];
}

/** What a forward pass needs of an encoded input (labels are not needed). */
export type ModelInput = Pick<EncodedExample, 'inputIds' | 'typeIds' | 'length'>;

/** 'input': every input is routed in its own MoE group (the default); 'batch': a batch's inputs share groups. */
export type RoutingGroups = 'input' | 'batch';

export interface InferenceOptions {
  /** Checkpoint step (default: the latest). */
  step?: number;
  device?: Device;
  routing?: RoutingGroups;
  /** Inputs per forward pass in predict(), predictRows() and embed() (default: the config's eval_batch_size). */
  batchSize?: number;
}

function routedConfig(config: TrainConfig, routing: RoutingGroups = 'input'): TrainConfig {
  return routing === 'input' ? { ...config, max_group_size: config.max_seq_length } : config;
}

/**
 * True when an input's result is the same at any padded width: every layer is attention (which masks
 * padding) and none is MoE. Only such models may run batches cut to their longest input; mixing
 * layers are max_seq_length wide and MoE routing sees the padding tokens.
 */
export function acceptsAnyWidth(config: ModelConfig): boolean {
  return layerPlan(config).every((l) => l.attention && !l.moe);
}

/**
 * Fills `model` from a workdir's checkpoint (`load` copies the parameters in), moves it to the device,
 * and hands it over with the workdir's tokenizer; frees the model and tokenizer if anything fails.
 */
function fromWorkdir<T>(
  workdir: string,
  config: TrainConfig,
  model: Module,
  options: InferenceOptions,
  load: (params: Map<string, Tensor>) => void,
  make: (tokenizer: Tokenizer, step: number, batchSize: number) => T,
): T {
  let tokenizer: Tokenizer | undefined;
  try {
    tokenizer = Tokenizer.load(config.vocab_filepath);
    const ckpt = new CheckpointStore(path.join(workdir, 'checkpoints'), { keep: 1_000_000 }).load(options.step);
    try {
      load(ckpt.params);
    } finally {
      disposeCheckpoint(ckpt);
    }
    if (options.device) model.to(options.device);
    return make(tokenizer, ckpt.step, options.batchSize ?? config.eval_batch_size);
  } catch (error) {
    model.dispose();
    tokenizer?.dispose();
    throw error;
  }
}

/** The pooled encoder output (tanh(dense(sequence[:, 0])), REFERENCE §1) of a workdir's model. */
export class Embedder {
  protected constructor(
    readonly config: TrainConfig,
    protected readonly tokenizer: Tokenizer,
    private readonly encoder: Encoder,
    /** What dispose() frees: the encoder, or the classifier that holds it. */
    private readonly owner: Module,
    readonly step: number,
    protected readonly batchSize: number,
  ) {}

  /** Loads a pre-training workdir's encoder, or a fine-tuning workdir's (then as a Predictor). */
  static load(workdir: string, options: InferenceOptions = {}): Embedder {
    const config = readWorkdirConfig(workdir);
    if (config.mode === 'classification') return Predictor.load(workdir, options);
    const encoder = new Encoder(routedConfig(config, options.routing)).eval();
    return fromWorkdir(
      workdir,
      config,
      encoder,
      options,
      (params) => encoder.loadStateDict(encoderState(params)),
      (tokenizer, step, batchSize) => new Embedder(config, tokenizer, encoder, encoder, step, batchSize),
    );
  }

  get acceptsAnyWidth(): boolean {
    return acceptsAnyWidth(this.config);
  }

  /** Segment lists in the classification layout, cut to max_seq_length (fullLength says by how much). */
  encode(inputs: readonly (readonly string[])[]): Promise<EncodedInput[]> {
    return encodeSegments(inputs, this.tokenizer, this.config.max_seq_length);
  }

  /** Pooled outputs [B · d_model] of one batch in one forward pass, L2-normalised when asked. */
  embedBatch(examples: readonly ModelInput[], options: { normalize?: boolean; padToLongest?: boolean } = {}): Float32Array {
    return noGrad(() =>
      tidy(() => {
        const b = this.batchTensors(examples, options.padToLongest);
        let pooled = this.encoder.forward(b.input_ids, b.type_ids).pooled.float();
        if (options.normalize) pooled = pooled.div(pooled.square().sum(-1, true).sqrt().clamp(1e-12));
        return pooled.dataSync() as Float32Array;
      }),
    );
  }

  /** Embeddings of texts (one segment each) or segment lists, in batches of batchSize. */
  async embed(inputs: readonly (string | readonly string[])[], options: { normalize?: boolean } = {}): Promise<number[][]> {
    const encoded = await this.encode(inputs.map((input) => (typeof input === 'string' ? [input] : input)));
    const out: number[][] = [];
    for (let i = 0; i < encoded.length; i += this.batchSize) {
      const batch = encoded.slice(i, i + this.batchSize);
      const flat = this.embedBatch(batch, options);
      const d = flat.length / batch.length;
      for (let r = 0; r < batch.length; r++) out.push(Array.from(flat.subarray(r * d, (r + 1) * d)));
    }
    return out;
  }

  /** Input and type ids of a batch, fixed-width or cut to its longest input. */
  protected batchTensors(examples: readonly ModelInput[], padToLongest = false) {
    if (padToLongest && !this.acceptsAnyWidth) {
      throw new Error('only models whose every layer is attention, without MoE layers, take batches cut to their longest input');
    }
    const device = this.encoder.embeddings.word.weight.device;
    // Labels are unknown here; the batch carries placeholders the model never looks at.
    return classificationBatch(examples.map((e) => ({ ...e, label: 0 })), { regression: false, padToLongest, device });
  }

  dispose(): void {
    this.owner.dispose();
    this.tokenizer.dispose();
  }
}

export class Predictor extends Embedder {
  private constructor(
    config: TrainConfig,
    readonly task: TaskSpec,
    tokenizer: Tokenizer,
    private readonly model: ClassificationModel,
    step: number,
    batchSize: number,
  ) {
    super(config, tokenizer, model.encoder, model, step, batchSize);
  }

  /** Loads a fine-tuning workdir (its config.json and latest checkpoint, or the given step). */
  static override load(workdir: string, options: InferenceOptions = {}): Predictor {
    const config = readWorkdirConfig(workdir);
    if (config.mode !== 'classification') throw new Error(`${workdir} holds a ${config.mode} run; predict needs a fine-tuned classifier`);
    const task = tasks.getTask(config.dataset_name);
    const model = new ClassificationModel(routedConfig(config, options.routing), task.numClasses, task.regression).eval();
    return fromWorkdir(
      workdir,
      config,
      model,
      options,
      (params) => model.loadStateDict(params),
      (tokenizer, step, batchSize) => new Predictor(config, task, tokenizer, model, step, batchSize),
    );
  }

  /** Names of the model's outputs: the task's labels, or ['score'] for a regression task. */
  get outputNames(): string[] {
    return this.task.regression ? ['score'] : this.task.labelNames;
  }

  /** Predicts for texts (one segment each) or segment lists (e.g. [sentence1, sentence2]). */
  async predict(inputs: readonly (string | readonly string[])[]): Promise<Prediction[]> {
    const need = this.task.segmentNames.length;
    const rows: TaskExample[] = inputs.map((input, i) => {
      const segments = typeof input === 'string' ? [input] : [...input];
      if (segments.length !== need) {
        throw new Error(`input ${i + 1}: ${this.task.name} takes ${need} segment(s) (${this.task.segmentNames.join(', ')}), got ${segments.length}`);
      }
      return { segments, label: undefined, source: { file: '<input>', line: i + 1 } };
    });
    return this.predictRows(rows);
  }

  /** Predictions for task rows (e.g. a dev or test split). */
  async predictRows(rows: readonly TaskExample[]): Promise<Prediction[]> {
    const encoded = await encodeTaskExamples(rows, this.tokenizer, this.config.max_seq_length);
    const out: Prediction[] = [];
    for (let i = 0; i < encoded.length; i += this.batchSize) out.push(...this.predictions(this.scoreBatch(encoded.slice(i, i + this.batchSize)).scores));
    return out;
  }

  /**
   * Logits and scores (class probabilities, or the regression output) of one batch in one forward
   * pass, numClasses values per example.
   */
  scoreBatch(examples: readonly ModelInput[], options: { padToLongest?: boolean } = {}): { logits: Float32Array; scores: Float32Array } {
    return noGrad(() =>
      tidy(() => {
        const b = this.batchTensors(examples, options.padToLongest);
        const logits = this.model.logits(b.input_ids, b.type_ids).logits.float();
        const scores = this.task.regression ? logits : F.softmax(logits, -1);
        return { logits: logits.dataSync() as Float32Array, scores: scores.dataSync() as Float32Array };
      }),
    );
  }

  /** One Prediction per example from scoreBatch's scores. */
  private predictions(scores: Float32Array): Prediction[] {
    const k = this.task.numClasses;
    const out: Prediction[] = [];
    for (let r = 0; r < scores.length / k; r++) {
      const s = Array.from(scores.subarray(r * k, (r + 1) * k));
      const label = this.task.regression ? undefined : s.indexOf(Math.max(...s));
      out.push({ label, labelName: label === undefined ? undefined : this.task.labelNames[label], scores: s });
    }
    return out;
  }
}
