// Which layers are attention and which are MoE (REFERENCE §1, layer placement rule).
import type { Layout, ModelConfig } from './config';

/** True when layer l of n is one of the k replacement layers under the layout. */
export function isReplacementLayer(layout: Layout, l: number, n: number, k: number): boolean {
  if (k <= 0) return false;
  switch (layout) {
    case 'BOTTOM':
      return l < k;
    case 'MIDDLE':
      return n - k <= 2 * l && 2 * l < n + k;
    case 'MIXED':
      return l % Math.floor(n / k) === 0;
    case 'TOP':
      return l >= n - k;
  }
}

export interface LayerPlan {
  index: number;
  attention: boolean;
  moe: boolean;
}

export function layerPlan(c: ModelConfig): LayerPlan[] {
  return Array.from({ length: c.num_layers }, (_, l) => ({
    index: l,
    attention: c.model_arch === 'BERT' || isReplacementLayer(c.attention_layout, l, c.num_layers, c.num_attention_layers),
    moe: isReplacementLayer(c.moe_layout, l, c.num_layers, c.num_moe_layers),
  }));
}
