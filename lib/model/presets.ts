// Model presets: the three of REFERENCE §1, -small / -tiny variants that keep each one's
// structure (layer count, layout, routing) at widths that train on 2 CPU cores, and -quarter
// variants that also keep the models' relative widths (the base shapes divided by 4).
import { modelConfig, type ModelConfig } from './config';

const BERT_BASE: Partial<ModelConfig> = {
  model_arch: 'BERT',
  num_layers: 12,
  d_emb: 768,
  d_model: 768,
  d_ff: 3072,
  num_heads: 12,
  num_attention_layers: 12,
  num_moe_layers: 0,
};

const SPARSE_MIXER: Partial<ModelConfig> = {
  model_arch: 'LINEAR',
  num_layers: 14,
  d_emb: 512,
  d_model: 512,
  d_ff: 2048,
  num_heads: 8,
  num_attention_layers: 4,
  attention_layout: 'TOP',
  num_moe_layers: 4,
  moe_layout: 'MIDDLE',
  num_experts: 16,
  router_type: 'experts_choose',
  train_capacity_factor: 1.0,
  eval_capacity_factor: 1.0,
};

const FAST_SPARSE_MIXER: Partial<ModelConfig> = { ...SPARSE_MIXER, train_capacity_factor: 0.5, eval_capacity_factor: 0.5 };

const SMALL: Partial<ModelConfig> = { d_emb: 128, d_model: 128, d_ff: 512, num_heads: 2, max_seq_length: 128 };
const TINY: Partial<ModelConfig> = { d_emb: 64, d_model: 64, d_ff: 128, num_heads: 2, max_seq_length: 64 };

/**
 * A base preset with its widths, heads and sequence length divided by `k` (head size 64 and layout
 * kept). Unlike -small and -tiny, which give every model one width, each model keeps its own share
 * of the base width (BERT 768, Sparse Mixer 512), so the costs stand in the paper's proportions:
 * feed-forward and projections ∝ d², attention scores ∝ L·d with the same L/d, and a Sparse Mixer
 * step about 2.3× cheaper in FLOPs than BERT's, as at the base shapes (see `bench models`).
 */
function divided(base: Partial<ModelConfig>, k: number): Partial<ModelConfig> {
  const { d_emb, d_model, d_ff, num_heads } = base as Required<Pick<ModelConfig, 'd_emb' | 'd_model' | 'd_ff' | 'num_heads'>>;
  const length = base.max_seq_length ?? 512; // the base presets run at the schema's default, REFERENCE §1's 512
  return { ...base, d_emb: d_emb / k, d_model: d_model / k, d_ff: d_ff / k, num_heads: num_heads / k, max_seq_length: length / k };
}

const BASES: Record<string, Partial<ModelConfig>> = {
  'bert': BERT_BASE,
  'sparse-mixer': SPARSE_MIXER,
  'fast-sparse-mixer': FAST_SPARSE_MIXER,
};

export const PRESETS: Record<string, Partial<ModelConfig>> = {};
for (const [name, base] of Object.entries(BASES)) {
  PRESETS[name === 'bert' ? 'bert-base' : name] = base;
  PRESETS[`${name}-small`] = { ...base, ...SMALL };
  PRESETS[`${name}-tiny`] = { ...base, ...TINY };
  PRESETS[`${name}-quarter`] = divided(base, 4);
}

export const PRESET_NAMES = Object.keys(PRESETS);

/** A preset's config, with overrides applied and checked. */
export function presetConfig(name: string, overrides: Partial<ModelConfig> | Record<string, unknown> = {}): ModelConfig {
  const preset = PRESETS[name];
  if (!preset) throw new Error(`unknown preset '${name}'; known presets: ${PRESET_NAMES.join(', ')}`);
  return modelConfig({ ...preset, ...overrides });
}
