// The training layer: config, optimizer and schedule, runs, checkpoints, metrics, summaries.
export { trainConfig, parseOverrides, TRAIN_SCHEMA, type TrainConfig } from './config';
export { AdamW, isBiasOrNorm, type AdamWOptions } from './optimizer';
export { learningRate, type ScheduleKind, type ScheduleOptions } from './schedule';
export { pretrain } from './pretrain';
export { finetune, loadPretrainedEncoder } from './finetune';
export { NonFiniteLossError, type RunOptions, type RunResult } from './loop';
export * as checkpoint from './checkpoint';
export * as metrics from './metrics';
export * as summaries from './summaries';
export { Embedder, Predictor, acceptsAnyWidth, type InferenceOptions, type ModelInput, type Prediction, type RoutingGroups } from './predict';
export { readWorkdirConfig } from './workdir';
