// Multi-head self-attention with the padding mask of REFERENCE §1.
import { Dense } from '../nn/layers';
import { Module } from '../nn/module';
import type { InitContext } from '../nn/init';
import { functional as F, type Tensor } from '../tensor';
import type { ModelConfig } from './config';

/**
 * True where the query or the key is padding: [B, 1, N, N]. Masked scores are replaced by -1e10
 * (not offset by it: adding -1e10 to a float64 score leaves it ~1e-6 resolution, which wrecks
 * gradients). Rows of padded queries thus attend uniformly, as the reference's float32 bias does.
 */
export function attentionMask(inputIds: Tensor, padId: number): Tensor {
  return pairMask(inputIds.eq(padId));
}

/** attentionMask from the padding positions [B, N]. */
function pairMask(padding: Tensor): Tensor {
  const real = padding.logicalNot();
  return real.unsqueeze(2).logicalAnd(real.unsqueeze(1)).logicalNot().unsqueeze(1);
}

export class SelfAttention extends Module {
  readonly query: Dense;
  readonly key: Dense;
  readonly value: Dense;
  readonly output: Dense;
  private readonly heads: number;
  private readonly dropoutRate: number;

  constructor(ctx: InitContext, config: ModelConfig) {
    super();
    const d = config.d_model;
    this.heads = config.num_heads;
    this.dropoutRate = config.mixing_dropout_rate;
    this.query = this.child('query', new Dense(ctx, d, d));
    this.key = this.child('key', new Dense(ctx, d, d));
    this.value = this.child('value', new Dense(ctx, d, d));
    this.output = this.child('output', new Dense(ctx, d, d));
  }

  /** x [B, N, d], padding [B, N] (true at padding) -> [B, N, d]. */
  forward(x: Tensor, padding: Tensor): Tensor {
    const [B, N, d] = x.shape as [number, number, number];
    const h = this.heads;
    const split = (t: Tensor) => t.reshape([B, N, h, d / h]).transpose(1, 2); // [B, h, N, dh]
    const q = split(this.query.forward(x));
    const k = split(this.key.forward(x));
    const v = split(this.value.forward(x));
    const dropout = this.training ? this.dropoutRate : 0;
    const context = F.hasScaledDotProductAttention && q.dtype !== 'float64' ? fusedAttention(q, k, v, padding, dropout) : matmulAttention(q, k, v, padding, dropout);
    return this.output.forward(context.transpose(1, 2).reshape([B, N, d]));
  }
}

/** The scores materialised: softmax(q·kᵀ/√dh with masked scores replaced by -1e10)·v. */
function matmulAttention(q: Tensor, k: Tensor, v: Tensor, padding: Tensor, dropout: number): Tensor {
  // Scaled inside the product and masked in place: the scores are the largest tensor here
  // ([B, h, N, N]), and each extra pass over them costs more than their GEMM at short head sizes.
  // In place is safe for autograd: matmul's gradient needs q and k, not its output.
  const scores = F.scaledMatmul(q, k.transpose(-2, -1), 1 / Math.sqrt(q.shape[3]!)).maskedFillInPlace(pairMask(padding), -1e10);
  let weights = F.softmax(scores, -1);
  if (dropout > 0) weights = F.dropout(weights, dropout, true);
  return weights.matmul(v);
}

/**
 * The same function in one fused kernel (libtorch >= 2.0) that never materialises the scores.
 * Padded keys get an additive -1e10 (their weight underflows to 0 exactly, gradient included); a
 * padded query's row, all masked in matmulAttention and so uniform, is the mean of v here, which
 * gives the same values and gradients. (In training that row skips dropout, a difference only in
 * the noise on padding positions.)
 */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, padding: Tensor, dropout: number): Tensor {
  const [B, , N] = q.shape as [number, number, number];
  const keyBias = padding.reshape([B, 1, 1, N]).to(q.dtype).mul(-1e10);
  const attended = F.scaledDotProductAttention(q, k, v, { mask: keyBias, dropout });
  return F.where(padding.reshape([B, 1, N, 1]), v.mean([2], true), attended);
}
