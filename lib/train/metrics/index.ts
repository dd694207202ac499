// Evaluation metrics (REFERENCE §3): pure metric functions, task metrics from model outputs, and
// the accumulation of per-batch statistics.
export {
  accuracy,
  averageRanks,
  copaAccuracy,
  f1,
  groupRows,
  macroF1,
  matthewsCorrcoef,
  multircScores,
  normalizeAnswer,
  pearson,
  recordScores,
  spearman,
  tokenF1,
} from './classification';
export type { MultircScores, PrecisionRecallF1, RecordScores } from './classification';
export {
  CLASSIFICATION_SUMS,
  MOE_AVERAGES,
  MetricAccumulator,
  PRETRAINING_SUMS,
  argmax,
  computeTaskMetrics,
} from './task-metrics';
export type { AccumulatorOptions } from './task-metrics';
