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
  const real = inputIds.ne(padId); // [B, N]
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

  /** x [B, N, d], mask [B, 1, N, N] (true = masked) -> [B, N, d]. */
  forward(x: Tensor, mask: Tensor): Tensor {
    const [B, N, d] = x.shape as [number, number, number];
    const h = this.heads;
    const split = (t: Tensor) => t.reshape([B, N, h, d / h]).transpose(1, 2); // [B, h, N, dh]
    const q = split(this.query.forward(x));
    const k = split(this.key.forward(x));
    const v = split(this.value.forward(x));
    const scores = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(d / h)).maskedFill(mask, -1e10);
    let weights = F.softmax(scores, -1);
    if (this.training && this.dropoutRate > 0) weights = F.dropout(weights, this.dropoutRate, true);
    const context = weights.matmul(v).transpose(1, 2).reshape([B, N, d]);
    return this.output.forward(context);
  }
}
