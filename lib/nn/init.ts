// Seeded parameter initialisation (REFERENCE §1: kernels and embeddings ~ Normal(0, 0.02),
// biases 0, LayerNorm scales 1).
import { Generator, ones, randn, tidy, zeros, type DType, type Device, type Tensor } from '../tensor';

export interface InitContext {
  generator: Generator;
  /** Standard deviation of kernels and embeddings. */
  std: number;
  dtype?: DType;
  device?: Device;
}

export function initContext(seed: number, std = 0.02, dtype?: DType, device?: Device): InitContext {
  return { generator: new Generator(seed), std, ...(dtype ? { dtype } : {}), ...(device ? { device } : {}) };
}

export function normal(ctx: InitContext, shape: readonly number[], std = ctx.std): Tensor {
  return tidy(() => randn(shape, { generator: ctx.generator, dtype: ctx.dtype ?? 'float32', device: ctx.device }).mul(std));
}

export function zerosParam(ctx: InitContext, shape: readonly number[]): Tensor {
  return zeros(shape, { dtype: ctx.dtype ?? 'float32', device: ctx.device });
}

export function onesParam(ctx: InitContext, shape: readonly number[]): Tensor {
  return ones(shape, { dtype: ctx.dtype ?? 'float32', device: ctx.device });
}
