// Mirrors the original's configs/pretraining.py: BERT-style MLM + NSP pre-training of a Sparse
// Mixer (REFERENCE §4). Override any field: --config.FIELD=VALUE (or --set FIELD=VALUE).
export function getConfig(): Record<string, unknown> {
  return {
    mode: 'pretraining',
    preset: 'sparse-mixer',
    train_batch_size: 64,
    eval_batch_size: 64,
    learning_rate: 1e-4,
    warmup_steps: 10_000,
    num_train_steps: 1_000_000,
    max_predictions_per_seq: 80,
    save_checkpoints_steps: 20_000,
    checkpoint_keep: 2,
    eval_frequency: 2_000,
    max_num_eval_steps: 1_000,
    expert_dropout_rate: 0.1,
    seed: 0,
  };
}
