// `sparse-mixer quickstart`: the whole job on the embedded data, in minutes on 2 CPU cores:
// a vocabulary on sotu, a sparse-mixer-tiny pre-trained on sotu + moby-dick, fine-tuned on spam.
import * as path from 'path';
import { finetune, pretrain, trainConfig } from '../train';
import { trainVocab } from '../data';

export interface QuickstartOptions {
  workdir: string;
  pretrainSteps: number;
  finetuneEpochs: number;
  /** Seed of the models' initialisation, dropout and data order (default 0). */
  seed?: number;
  log: (line: string) => void;
}

export async function quickstart(o: QuickstartOptions): Promise<{ workdir: string; metrics: Record<string, number> }> {
  const vocab = path.join(o.workdir, 'vocab.model');
  await trainVocab({ corpus: ['sotu'], output: vocab, vocabSize: 8000, modelType: 'bpe', characterCoverage: 0.9995, maxSentences: 1_000_000 }, o.log);
  const pretrainDir = path.join(o.workdir, 'pretrain');
  const common = { preset: 'sparse-mixer-tiny', vocab_filepath: vocab, seed: o.seed ?? 0 };
  o.log(`pre-training sparse-mixer-tiny for ${o.pretrainSteps} steps on sotu + moby-dick in ${pretrainDir}`);
  await pretrain(
    trainConfig({
      ...common,
      mode: 'pretraining',
      corpus: 'sotu,moby-dick',
      train_batch_size: 32,
      eval_batch_size: 32,
      learning_rate: 1e-3,
      warmup_steps: Math.round(o.pretrainSteps / 10),
      num_train_steps: o.pretrainSteps,
      max_predictions_per_seq: 10,
      save_checkpoints_steps: o.pretrainSteps,
      eval_frequency: o.pretrainSteps,
      max_num_eval_steps: 20,
      log_frequency: 50,
    }),
    { workdir: pretrainDir, force: true, log: o.log },
  );
  const finetuneDir = path.join(o.workdir, 'spam');
  o.log(`fine-tuning on the built-in spam task in ${finetuneDir}`);
  const result = await finetune(
    trainConfig({
      ...common,
      mode: 'classification',
      dataset_name: 'spam',
      init_checkpoint_dir: pretrainDir,
      train_batch_size: 32,
      eval_batch_size: 128,
      learning_rate: 1e-3,
      num_train_epochs: o.finetuneEpochs,
      num_train_steps: 0,
      expert_dropout_rate: 0.2,
      eval_frequency: 0, // about ten evaluations over the run
      log_frequency: 50,
      save_checkpoints_steps: 100_000,
    }),
    { workdir: finetuneDir, force: true, log: o.log },
  );
  return { workdir: o.workdir, metrics: result.eval ?? {} };
}
