export { modelConfig, MODEL_SCHEMA, MODEL_ARCHS, LAYOUTS, ROUTER_TYPES, DISPATCH_IMPLS, type ModelConfig, type ModelArch, type Layout, type RouterType, type DispatchImpl } from './config';
export { presetConfig, PRESETS, PRESET_NAMES } from './presets';
export { layerPlan, isReplacementLayer, type LayerPlan } from './layout';
export * as routing from './routing';
export { MoeLayer, Experts, type MoeStats, type ExpertExchange } from './moe';
export { Mixing, circulant, type MixingKind } from './mixing';
export { SelfAttention, attentionMask } from './attention';
export { Encoder, EncoderBlock, Embeddings, FeedForward, type EncoderOutput } from './encoder';
export {
  PretrainingModel,
  ClassificationModel,
  MlmHead,
  moeTerms,
  type PretrainingBatch,
  type ClassificationBatch,
  type ModelOutput,
  type RawStats,
} from './heads';
export { modelInfo, formatModelInfo, type ModelInfo, type LayerInfo } from './info';
