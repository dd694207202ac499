// The basic layers: Dense, LayerNorm, Embedding, Dropout.
import { functional as F, type Tensor } from '../tensor';
import { normal, onesParam, zerosParam, type InitContext } from './init';
import { Module } from './module';

/** y = x Wᵀ + b with W [out, in] (PyTorch's layout). */
export class Dense extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;

  constructor(ctx: InitContext, readonly inFeatures: number, readonly outFeatures: number, useBias = true) {
    super();
    this.weight = this.param('weight', normal(ctx, [outFeatures, inFeatures]));
    this.bias = useBias ? this.param('bias', zerosParam(ctx, [outFeatures])) : undefined;
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(ctx: InitContext, readonly size: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', onesParam(ctx, [size]));
    this.bias = this.param('bias', zerosParam(ctx, [size]));
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, [this.size], this.weight, this.bias, this.eps);
  }
}

/** A lookup that delivers the table's gradient as rows somewhere else (see Embedding.lookupWith). */
export interface RowLookup {
  lookup(table: Tensor, ids: Tensor): Tensor;
}

export class Embedding extends Module {
  readonly weight: Tensor;
  private rowLookup: RowLookup | undefined;

  constructor(ctx: InitContext, readonly count: number, readonly size: number) {
    super();
    this.weight = this.param('weight', normal(ctx, [count, size]));
  }

  forward(ids: Tensor): Tensor {
    return this.rowLookup ? this.rowLookup.lookup(this.weight, ids) : F.embedding(this.weight, ids);
  }

  /**
   * Looks rows up through `lookup` from now on (undefined: back to the plain lookup). Distributed
   * training uses it to reduce the looked-up rows' gradients as rows rather than as a dense table.
   */
  lookupWith(lookup: RowLookup | undefined): void {
    this.rowLookup = lookup;
  }
}

/** Dropout that follows the module's training flag. */
export class Dropout extends Module {
  constructor(readonly rate: number) {
    super();
    if (!(rate >= 0 && rate < 1)) throw new RangeError(`dropout rate must be in [0, 1), got ${rate}`);
  }

  forward(x: Tensor): Tensor {
    return this.training && this.rate > 0 ? F.dropout(x, this.rate, true) : x;
  }
}
