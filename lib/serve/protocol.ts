// Messages between the server and its inference process (structured clone over Node's IPC
// channel, so typed arrays travel as they are).
import type { Device } from '../tensor';
import type { ModelInput, RoutingGroups } from '../train';

/** What the server needs to know about the model it serves. */
export interface ModelDescription {
  /** 'classifier': a fine-tuned workdir (/predict and /embed); 'encoder': a pre-trained one (/embed only). */
  kind: 'classifier' | 'encoder';
  workdir: string;
  preset: string;
  modelArch: string;
  /** The fine-tuning task (classifiers only). */
  task?: string;
  /** Output names in logit order: the task's labels, or ['score'] for regression tasks (classifiers only). */
  labels: string[];
  regression: boolean;
  /** Segment names a /predict input has (classifiers only; /embed inputs are one segment). */
  segments: string[];
  maxInputLength: number;
  /** Width of an embedding. */
  hiddenSize: number;
  /** True when batches may be cut to their longest input (attention-only models without MoE). */
  acceptsAnyWidth: boolean;
  routing: RoutingGroups;
  step: number;
  device: string;
  vocabFile: string;
}

/** One input laid out for the model: ids and type ids, max_seq_length wide; length = real tokens. */
export type EncodedRow = ModelInput;

export interface LoadMessage {
  type: 'load';
  workdir: string;
  step?: number;
  device?: Device;
  /** Inputs in the largest batch the server will send, for the warm-up. */
  warmupBatch: number;
}

export interface RunMessage {
  type: 'run';
  id: number;
  kind: 'predict' | 'embed';
  rows: EncodedRow[];
  padToLongest: boolean;
  normalize: boolean;
}

export type ToInference = LoadMessage | RunMessage;

export type FromInference =
  | { type: 'ready'; model: ModelDescription; liveTensors: number }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; values: Float32Array; logits?: Float32Array; liveTensors: number }
  | { type: 'error'; id: number; message: string };
