// Checks a run's config against this machine before any work or any change to the workdir: the
// device exists, and the model fits in memory. Without them, device=cuda on a CPU-only build fails
// after the workdir is made, and max_seq_length=100000 fails only at a 40 GB allocation.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { modelInfo } from '../model';
import { cuda } from '../tensor';
import type { TrainConfig } from './config';
import { readWorkdirConfig } from './workdir';

const GiB = 2 ** 30;

function checkDevice(device: string): void {
  if (!device.startsWith('cuda')) return;
  if (!cuda.isAvailable()) throw new Error(`device=${device}, but no CUDA device is available here (use device=cpu, or a CUDA build of libtorch on a GPU machine)`);
  const index = device.includes(':') ? Number(device.slice(5)) : 0;
  if (index >= cuda.deviceCount()) throw new Error(`device=${device}, but only ${cuda.deviceCount()} CUDA device(s) are visible`);
}

/**
 * A lower bound of the bytes a training step needs: parameters, gradients and both AdamW moments
 * (float32), and the attention scores of one layer for one micro-batch. Real use is well above it,
 * so a config refused by it could never run.
 */
export function minimumTrainingBytes(config: TrainConfig): { total: number; parameters: number; attention: number } {
  // Fine-tuning keeps the encoder (its head is a few values per class); pre-training has its heads too.
  const counts = modelInfo(config).parameters;
  const parameters = config.mode === 'classification' ? counts.encoder : counts.total;
  const attentionLayers = config.model_arch === 'BERT' ? config.num_layers : config.num_attention_layers;
  const microBatch = Math.ceil(config.train_batch_size / config.gradient_accum_steps);
  const attention = attentionLayers > 0 ? microBatch * config.num_heads * config.max_seq_length ** 2 * 4 : 0;
  return { total: parameters * 16 + attention, parameters: parameters * 16, attention };
}

/** The pre-training run's max_seq_length, when init_checkpoint_dir is a workdir (or a checkpoint in one). */
function pretrainedLength(dir: string): number | undefined {
  for (const workdir of [dir, path.dirname(path.dirname(dir))]) {
    if (fs.existsSync(path.join(workdir, 'config.json'))) return readWorkdirConfig(workdir).max_seq_length;
  }
  return undefined;
}

export function preflight(config: TrainConfig): void {
  checkDevice(config.device);
  if (!config.device.startsWith('cuda')) {
    const need = minimumTrainingBytes(config);
    if (need.total > os.totalmem()) {
      throw new Error(
        `this config needs at least ${(need.total / GiB).toFixed(1)} GiB (parameters, gradients and AdamW moments ${(need.parameters / GiB).toFixed(1)} GiB, ` +
          `one layer's attention scores ${(need.attention / GiB).toFixed(1)} GiB), more than this machine's ${(os.totalmem() / GiB).toFixed(1)} GiB: ` +
          `lower max_seq_length (${config.max_seq_length}), the model size or train_batch_size`,
      );
    }
  }
  if (config.mode === 'classification' && config.init_checkpoint_dir) {
    const length = pretrainedLength(config.init_checkpoint_dir);
    if (length !== undefined && length !== config.max_seq_length) {
      throw new Error(`max_seq_length ${config.max_seq_length} does not match the ${length} positions of the pre-trained model in ${config.init_checkpoint_dir}`);
    }
  }
}
