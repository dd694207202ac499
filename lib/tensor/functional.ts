// Functions over several tensors, and the neural-network functions the models use.
import { dtypeCode, type DType } from './dtype';
import { N } from './native';
import type { Reduction } from './native-api';
import { checkDims, checkInt, handleOf, Tensor } from './tensor';

function handles(ts: readonly Tensor[], what: string): number[] {
  if (!Array.isArray(ts)) throw new TypeError(`${what} must be an array of Tensors`);
  return ts.map((t, i) => handleOf(t, `${what}[${i}]`));
}

function optionalHandle(t: Tensor | undefined, what: string): number | undefined {
  return t === undefined ? undefined : handleOf(t, what);
}

export function cat(ts: readonly Tensor[], dim = 0): Tensor {
  return Tensor._wrap(N.cat(handles(ts, 'tensors'), checkInt(dim, 'dim')));
}

export function stack(ts: readonly Tensor[], dim = 0): Tensor {
  return Tensor._wrap(N.stack(handles(ts, 'tensors'), checkInt(dim, 'dim')));
}

/** Elements of a where condition is true, else of b. */
export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return Tensor._wrap(N.where(handleOf(condition, 'condition'), handleOf(a, 'a'), handleOf(b, 'b')));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}

/** scale · (a @ b), with the scale applied inside the product (no extra pass over the result). */
export function scaledMatmul(a: Tensor, b: Tensor, scale: number): Tensor {
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new TypeError(`scaledMatmul: scale must be a finite number, got ${String(scale)}`);
  return Tensor._wrap(N.matmul(handleOf(a, 'a'), handleOf(b, 'b'), scale));
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  return a.bmm(b);
}

/** beta * input + alpha * (batch1 @ batch2) */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, beta = 1, alpha = 1): Tensor {
  return Tensor._wrap(N.baddbmm(handleOf(input, 'input'), handleOf(batch1, 'batch1'), handleOf(batch2, 'batch2'), beta, alpha));
}

/** beta * input + alpha * (m1 @ m2) */
export function addmm(input: Tensor, m1: Tensor, m2: Tensor, beta = 1, alpha = 1): Tensor {
  return Tensor._wrap(N.addmm(handleOf(input, 'input'), handleOf(m1, 'm1'), handleOf(m2, 'm2'), beta, alpha));
}

export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  if (typeof equation !== 'string') throw new TypeError('einsum: equation must be a string');
  return Tensor._wrap(N.einsum(equation, handles(operands, 'operands')));
}

/** N-dimensional discrete Fourier transform over dims (complex result; see real()/imag()). */
export function fftn(t: Tensor, dims: readonly number[]): Tensor {
  return Tensor._wrap(N.fftn(handleOf(t, 'input'), checkDims(dims, 'dims'), false));
}

export function ifftn(t: Tensor, dims: readonly number[]): Tensor {
  return Tensor._wrap(N.fftn(handleOf(t, 'input'), checkDims(dims, 'dims'), true));
}

/** x @ weightᵀ + bias, with weight [out, in]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return Tensor._wrap(N.linear(handleOf(x, 'input'), handleOf(weight, 'weight'), optionalHandle(bias, 'bias')));
}

export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor,
  bias?: Tensor,
  eps = 1e-5,
): Tensor {
  return Tensor._wrap(
    N.layerNorm(handleOf(x, 'input'), checkDims(normalizedShape, 'normalizedShape'), optionalHandle(weight, 'weight'), optionalHandle(bias, 'bias'), eps),
  );
}

/** GELU; approximate 'tanh' (the reference's choice) or 'none' (exact, with erf). */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'none'): Tensor {
  if (approximate !== 'tanh' && approximate !== 'none') throw new TypeError(`gelu: approximate must be 'tanh' or 'none'`);
  return Tensor._wrap(N.gelu(handleOf(x, 'input'), approximate === 'tanh'));
}

export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return Tensor._wrap(N.softmax(handleOf(x, 'input'), checkInt(dim, 'dim'), dtype && dtypeCode(dtype)));
}

export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return Tensor._wrap(N.logSoftmax(handleOf(x, 'input'), checkInt(dim, 'dim'), dtype && dtypeCode(dtype)));
}

/** Zeroes elements with probability p and scales the rest by 1/(1-p) when training. */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return Tensor._wrap(N.dropout(handleOf(x, 'input'), p, training));
}

/** Whether scaledDotProductAttention exists here: the addon was built against libtorch 2.0 or newer. */
export const hasScaledDotProductAttention: boolean = N.hasScaledDotProductAttention;

/**
 * softmax(q·kᵀ/√d + mask)·v for q, k, v [..., N, d] in one fused kernel that never materialises the
 * scores; mask is an additive bias broadcastable to [..., N, N]. Dropout applies to the weights.
 * Throws where hasScaledDotProductAttention is false.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: { mask?: Tensor; dropout?: number } = {}): Tensor {
  const p = options.dropout ?? 0;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`scaledDotProductAttention: dropout must be in [0, 1], got ${p}`);
  return Tensor._wrap(N.scaledDotProductAttention(handleOf(q, 'query'), handleOf(k, 'key'), handleOf(v, 'value'), optionalHandle(options.mask, 'mask'), p));
}

export function embedding(weight: Tensor, indices: Tensor, paddingIdx = -1): Tensor {
  return Tensor._wrap(N.embedding(handleOf(weight, 'weight'), handleOf(indices, 'indices'), checkInt(paddingIdx, 'paddingIdx')));
}

export interface CrossEntropyOptions {
  /** A weight per class. */
  weight?: Tensor;
  reduction?: Reduction;
  /** Targets with this value contribute nothing. */
  ignoreIndex?: number;
  labelSmoothing?: number;
}

/** Cross-entropy of logits [N, C] (or [N, C, ...]) against class indices. */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  return Tensor._wrap(
    N.crossEntropy(
      handleOf(logits, 'logits'),
      handleOf(target, 'target'),
      optionalHandle(options.weight, 'weight'),
      options.reduction ?? 'mean',
      checkInt(options.ignoreIndex ?? -100, 'ignoreIndex'),
      options.labelSmoothing ?? 0,
    ),
  );
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return Tensor._wrap(N.mseLoss(handleOf(input, 'input'), handleOf(target, 'target'), reduction));
}

export function oneHot(indices: Tensor, numClasses: number): Tensor {
  return Tensor._wrap(N.oneHot(handleOf(indices, 'indices'), checkInt(numClasses, 'numClasses')));
}

export function relu(x: Tensor): Tensor {
  return x.relu();
}

export function tanh(x: Tensor): Tensor {
  return x.tanh();
}

export function sigmoid(x: Tensor): Tensor {
  return x.sigmoid();
}
