// Multi-head self-attention with the padding mask of REFERENCE §1.
import { Dense } from '../nn/layers';
import { Module } from '../nn/module';
import type { InitContext } from '../nn/init';
import { functional as F, type Tensor } from '../tensor';
import type { ModelConfig } from './config';

/** Additive bias that removes pairs where the query or the key is padding: [B, 1, N, N]. */
export function attentionBias(inputIds: Tensor, padId: number, dtype: Tensor['dtype']): Tensor {
  const keep = inputIds.ne(padId); // [B, N]
  const pair = keep.unsqueeze(2).logicalAnd(keep.unsqueeze(1)); // query and key both real
  return pair.logicalNot().to(dtype).mul(-1e10).unsqueeze(1);
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

  /** x [B, N, d], bias [B, 1, N, N] -> [B, N, d]. */
  forward(x: Tensor, bias: Tensor): Tensor {
    const [B, N, d] = x.shape as [number, number, number];
    const h = this.heads;
    const split = (t: Tensor) => t.reshape([B, N, h, d / h]).transpose(1, 2); // [B, h, N, dh]
    const q = split(this.query.forward(x));
    const k = split(this.key.forward(x));
    const v = split(this.value.forward(x));
    const scores = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(d / h)).add(bias.to(q.dtype));
    let weights = F.softmax(scores, -1);
    if (this.training && this.dropoutRate > 0) weights = F.dropout(weights, this.dropoutRate, true);
    const context = weights.matmul(v).transpose(1, 2).reshape([B, N, d]);
    return this.output.forward(context);
  }
}
