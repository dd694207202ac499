// Mirrors the original's configs/classification.py: fine-tuning on a GLUE/SuperGLUE task from a
// pre-trained checkpoint (REFERENCE §4). Set dataset_name, data_dir and init_checkpoint_dir.
export function getConfig(): Record<string, unknown> {
  return {
    mode: 'classification',
    preset: 'sparse-mixer',
    dataset_name: 'glue/rte',
    data_dir: '../shared/data',
    train_batch_size: 64,
    eval_batch_size: 64,
    learning_rate: 1e-5,
    num_train_epochs: 5,
    num_train_steps: 0,
    warmup_proportion: 0.1,
    eval_frequency: 0,
    save_checkpoints_steps: 1_000,
    expert_dropout_rate: 0.2,
    seed: 0,
  };
}
