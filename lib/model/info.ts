// `model-info`: parameter counts, the layer table and forward FLOPs per token of a config.
// Models are built on the 'meta' device: shapes without memory, so base presets cost nothing.
import { initContext } from '../nn/init';
import type { Module } from '../nn/module';
import type { ModelConfig } from './config';
import { PretrainingModel } from './heads';
import { layerPlan } from './layout';
import { expertCapacity } from './routing';

export interface LayerInfo {
  index: number;
  mixing: string;
  attention: boolean;
  moe: boolean;
  experts: number;
  /** Expert capacity at a full group of max_group_size tokens (train / eval factors). */
  capacity: { train: number; eval: number } | null;
  parameters: number;
  flopsPerToken: number;
}

export interface ModelInfo {
  config: ModelConfig;
  parameters: {
    total: number;
    /** Encoder only (embeddings + layers + pooler): what fine-tuning keeps. */
    encoder: number;
    byModule: Record<string, number>;
  };
  layers: LayerInfo[];
  flopsPerToken: { total: number; embeddings: number; layers: number; note: string };
}

const count = (m: Module) => m.numParameters();

/** Forward FLOPs per token of one encoder block (multiply-adds count 2). */
function layerFlops(c: ModelConfig, attention: boolean, moe: boolean, capacity: number): number {
  const N = c.max_seq_length;
  const D = c.d_model;
  let mixing: number;
  if (attention) {
    mixing = 8 * D * D + 4 * N * D; // q/k/v/o projections, scores and weighted sum
  } else {
    const fft = (m: number) => (5 * m * Math.log2(m)) / N; // one complex FFT of m points, per token
    switch (c.model_arch) {
      case 'LINEAR':
        mixing = 2 * N * D + 2 * D * D;
        break;
      case 'F_NET':
        mixing = c.use_fft ? fft(N * D) : 4 * N * D + 4 * D * D;
        break;
      case 'H_NET':
        mixing = c.use_fft ? fft(N * D) : 8 * N * D + 8 * D * D;
        break;
      case 'C_NET':
        mixing = c.use_fft ? 2 * fft(N * D) : 2 * N * D + 2 * D * D;
        break;
      default: // T_NET: FFTs of the (2N-1)(2D-1) embedding
        mixing = c.use_fft ? 2 * fft((2 * N - 1) * (2 * D - 1)) : 2 * N * D + 2 * D * D;
    }
  }
  const T = c.max_group_size;
  const ff = moe ? 2 * D * c.num_experts + ((c.num_experts * capacity) / T) * 4 * D * c.d_ff : 4 * D * c.d_ff;
  return mixing + ff;
}

export function modelInfo(config: ModelConfig): ModelInfo {
  const model = new PretrainingModel(config, initContext(config.seed, config.init_std, 'float32', 'meta'));
  try {
    const plan = layerPlan(config);
    const T = config.max_group_size;
    const layers: LayerInfo[] = plan.map((p, i) => {
      const cap = (factor: number) => {
        const c = expertCapacity(T, config.num_experts, factor, config.min_expert_capacity);
        return config.router_type === 'experts_choose' ? Math.min(c, T) : c;
      };
      const capacity = p.moe ? { train: cap(config.train_capacity_factor), eval: cap(config.eval_capacity_factor) } : null;
      return {
        index: p.index,
        mixing: p.attention ? 'attention' : config.model_arch,
        attention: p.attention,
        moe: p.moe,
        experts: p.moe ? config.num_experts : 0,
        capacity,
        parameters: count(model.encoder.layers.items[i]!),
        flopsPerToken: layerFlops(config, p.attention, p.moe, capacity?.eval ?? 0),
      };
    });
    const byModule = {
      embeddings: count(model.encoder.embeddings),
      layers: count(model.encoder.layers),
      pooler: count(model.encoder.pooler),
      mlm_head: count(model.mlm),
      nsp_head: count(model.nsp),
    };
    const embeddings = 2 * config.d_emb * config.d_model;
    const layerTotal = layers.reduce((s, l) => s + l.flopsPerToken, 0);
    return {
      config,
      parameters: {
        total: model.numParameters(),
        encoder: byModule.embeddings + byModule.layers + byModule.pooler,
        byModule,
      },
      layers,
      flopsPerToken: {
        total: embeddings + layerTotal,
        embeddings,
        layers: layerTotal,
        note: 'encoder forward, multiply-adds counted as 2 FLOPs, MoE at full groups of max_group_size tokens and eval capacity, FFTs as 5·M·log2(M)',
      },
    };
  } finally {
    model.dispose();
  }
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(Math.round(n));
}

/** A Keras-summary-like table. */
export function formatModelInfo(info: ModelInfo, name = 'model'): string {
  const c = info.config;
  const rows = [['layer', 'mixing', 'feed-forward', 'capacity (train/eval)', 'params', 'FLOPs/token']];
  for (const l of info.layers) {
    rows.push([
      String(l.index),
      l.mixing,
      l.moe ? `MoE ${l.experts} experts (${c.router_type})` : 'dense',
      l.capacity ? `${l.capacity.train} / ${l.capacity.eval}` : '-',
      l.parameters.toLocaleString('en-US'),
      human(l.flopsPerToken),
    ]);
  }
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => r.map((cell, k) => cell.padEnd(widths[k]!)).join('  ');
  const rule = '─'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const p = info.parameters;
  return [
    `${name}: ${c.num_layers} layers, d_emb ${c.d_emb}, d_model ${c.d_model}, d_ff ${c.d_ff}, vocab ${c.vocab_size}, max_seq_length ${c.max_seq_length}`,
    rule,
    line(rows[0]!),
    rule,
    ...rows.slice(1).map(line),
    rule,
    ...Object.entries(p.byModule).map(([k, v]) => `${k.padEnd(12)} ${v.toLocaleString('en-US').padStart(14)}`),
    `${'encoder'.padEnd(12)} ${p.encoder.toLocaleString('en-US').padStart(14)}`,
    `${'total'.padEnd(12)} ${p.total.toLocaleString('en-US').padStart(14)}`,
    `forward FLOPs per token: ${human(info.flopsPerToken.total)} (${info.flopsPerToken.note})`,
  ].join('\n');
}
