// The model config: every field with its default (REFERENCE §1–§2, Sparse Mixer base), type and
// meaning; unknown keys and impossible combinations are rejected.
import { resolve, type Schema } from '../util/schema';

export const MODEL_ARCHS = ['BERT', 'LINEAR', 'F_NET', 'H_NET', 'C_NET', 'T_NET'] as const;
export type ModelArch = (typeof MODEL_ARCHS)[number];
export const LAYOUTS = ['BOTTOM', 'MIDDLE', 'MIXED', 'TOP'] as const;
export type Layout = (typeof LAYOUTS)[number];
export const ROUTER_TYPES = ['experts_choose', 'tokens_choose'] as const;
export type RouterType = (typeof ROUTER_TYPES)[number];
/** fused: native routing, dispatch and combine kernels (the default); masked: one-hot
 *  dispatch/combine tensors and einsums (the reference's default, the oracle); scatter: index-based
 *  gather/scatter written with tensor ops. */
export const DISPATCH_IMPLS = ['fused', 'masked', 'scatter'] as const;
export type DispatchImpl = (typeof DISPATCH_IMPLS)[number];

export interface ModelConfig {
  vocab_size: number;
  type_vocab_size: number;
  max_seq_length: number;
  pad_id: number;
  d_emb: number;
  d_model: number;
  d_ff: number;
  num_layers: number;
  num_heads: number;
  model_arch: ModelArch;
  num_attention_layers: number;
  attention_layout: Layout;
  num_moe_layers: number;
  moe_layout: Layout;
  num_experts: number;
  router_type: RouterType;
  dispatch_impl: DispatchImpl;
  deterministic_moe: boolean;
  num_selected_experts: number;
  batch_prioritized_routing: boolean;
  train_capacity_factor: number;
  eval_capacity_factor: number;
  min_expert_capacity: number;
  max_group_size: number;
  jitter_noise: number;
  auxiliary_loss_factor: number;
  router_z_loss_factor: number;
  dropout_rate: number;
  mixing_dropout_rate: number;
  expert_dropout_rate: number;
  layer_norm_epsilon: number;
  use_fft: boolean;
  mask_padding_in_mixing: boolean;
  init_std: number;
  seed: number;
}

const int = (min?: number, max?: number) => ({ kind: 'int' as const, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
const num = (min: number, max?: number, exclusiveMin = false) => ({ kind: 'number' as const, min, ...(max !== undefined ? { max } : {}), exclusiveMin });
const rate = num(0, 1);

export const MODEL_SCHEMA: Schema = {
  vocab_size: { type: int(1), default: 32000, doc: 'word-piece vocabulary size (the SentencePiece model\'s piece count)' },
  type_vocab_size: { type: int(1), default: 4, doc: 'number of segment (type) ids' },
  max_seq_length: { type: int(1), default: 512, doc: 'sequence length L; inputs are padded to it (mixing matrices are L×L)' },
  pad_id: { type: int(0), default: 0, doc: 'id of the padding piece (attention and mixing masks)' },
  d_emb: { type: int(1), default: 512, doc: 'embedding width (projected to d_model by hidden_mapping_in)' },
  d_model: { type: int(1), default: 512, doc: 'hidden width of the encoder' },
  d_ff: { type: int(1), default: 2048, doc: 'feed-forward width, dense and per expert' },
  num_layers: { type: int(1), default: 14, doc: 'number of encoder blocks' },
  num_heads: { type: int(1), default: 8, doc: 'attention heads (attention layers only)' },
  model_arch: { type: { kind: 'enum', values: MODEL_ARCHS }, default: 'LINEAR', doc: 'mixing in non-attention layers; BERT makes every layer attention' },
  num_attention_layers: { type: int(0), default: 4, doc: 'layers that use self-attention instead of mixing' },
  attention_layout: { type: { kind: 'enum', values: LAYOUTS }, default: 'TOP', doc: 'where the attention layers go' },
  num_moe_layers: { type: int(0), default: 4, doc: 'layers whose feed-forward is a mixture of experts' },
  moe_layout: { type: { kind: 'enum', values: LAYOUTS }, default: 'MIDDLE', doc: 'where the MoE layers go' },
  num_experts: { type: int(1), default: 16, doc: 'experts per MoE layer' },
  router_type: { type: { kind: 'enum', values: ROUTER_TYPES }, default: 'experts_choose', doc: 'experts choose their top-C tokens, or tokens choose their top-k experts' },
  dispatch_impl: { type: { kind: 'enum', values: DISPATCH_IMPLS }, default: 'fused', doc: 'MoE dispatch: native fused kernels, the reference\'s one-hot masked einsums, or tensor-op scatter' },
  deterministic_moe: { type: { kind: 'boolean' }, default: true, doc: 'CUDA: combine by per-token sums (bit-reproducible) instead of atomic adds' },
  num_selected_experts: { type: int(1), default: 1, doc: 'k of tokens-choose top-k routing' },
  batch_prioritized_routing: { type: { kind: 'boolean' }, default: true, doc: 'tokens-choose: serve confident tokens first' },
  train_capacity_factor: { type: num(0, undefined, true), default: 1.0, doc: 'expert capacity factor in training' },
  eval_capacity_factor: { type: num(0, undefined, true), default: 1.0, doc: 'expert capacity factor in evaluation' },
  min_expert_capacity: { type: int(1), default: 4, doc: 'lower bound of the expert capacity' },
  max_group_size: { type: int(1), default: 4096, doc: 'tokens per routing group at most' },
  jitter_noise: { type: num(0, 1), default: 0, doc: 'router input multiplied by Uniform(1-ε, 1+ε) in training' },
  auxiliary_loss_factor: { type: num(0), default: 0.01, doc: 'weight of the load-balancing loss' },
  router_z_loss_factor: { type: num(0), default: 1e-4, doc: 'weight of the router z-loss' },
  dropout_rate: { type: rate, default: 0.1, doc: 'dropout after embeddings and feed-forward layers' },
  mixing_dropout_rate: { type: rate, default: 0.1, doc: 'dropout on attention weights and mixing outputs' },
  expert_dropout_rate: { type: rate, default: 0.1, doc: 'dropout in experts (0.1 pre-training, 0.2 fine-tuning)' },
  layer_norm_epsilon: { type: num(0, undefined, true), default: 1e-12, doc: 'LayerNorm epsilon' },
  use_fft: { type: { kind: 'boolean' }, default: true, doc: 'F_NET/H_NET/C_NET/T_NET: FFT form (else explicit matrices)' },
  mask_padding_in_mixing: { type: { kind: 'boolean' }, default: false, doc: 'zero padded positions before mixing layers (ours; off in the reference)' },
  init_std: { type: num(0), default: 0.02, doc: 'standard deviation of kernel and embedding initialisation' },
  seed: { type: int(0), default: 0, doc: 'initialisation seed' },
};

/** A complete, checked model config from partial values (defaults: Sparse Mixer base). */
export function modelConfig(values: Partial<ModelConfig> | Record<string, unknown> = {}): ModelConfig {
  const c = resolve<ModelConfig>(MODEL_SCHEMA, values as Record<string, unknown>, 'model config');
  const problems: string[] = [];
  const attentionLayers = c.model_arch === 'BERT' ? c.num_layers : c.num_attention_layers;
  if (attentionLayers > c.num_layers) problems.push(`num_attention_layers (${c.num_attention_layers}) exceeds num_layers (${c.num_layers})`);
  if (c.num_moe_layers > c.num_layers) problems.push(`num_moe_layers (${c.num_moe_layers}) exceeds num_layers (${c.num_layers})`);
  if (attentionLayers > 0 && c.d_model % c.num_heads !== 0) problems.push(`num_heads (${c.num_heads}) does not divide d_model (${c.d_model})`);
  if (c.num_moe_layers > 0 && c.num_selected_experts > c.num_experts) {
    problems.push(`num_selected_experts (${c.num_selected_experts}) exceeds num_experts (${c.num_experts})`);
  }
  if (c.pad_id >= c.vocab_size) problems.push(`pad_id (${c.pad_id}) is not below vocab_size (${c.vocab_size})`);
  if (problems.length) throw new Error(`invalid model config: ${problems.join('; ')}`);
  return c;
}
