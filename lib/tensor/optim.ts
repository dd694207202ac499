// Fused parameter updates over many tensors in one native call.
import { N } from './native';
import { handleOf, type Tensor } from './tensor';

const handles = (ts: readonly Tensor[]) => ts.map((t, i) => handleOf(t, `params[${i}]`));

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for the bias corrections. */
  step: number;
}

/** AdamW on every parameter with a gradient; decay[i] says whether parameter i is decayed. */
export function adamwStep(params: readonly Tensor[], m: readonly Tensor[], v: readonly Tensor[], decay: readonly boolean[], h: AdamWHyper): void {
  N.adamwStep(handles(params), handles(m), handles(v), Uint8Array.from(decay, Number), h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.step);
}

/** L2 norm of all gradients together (parameters without a gradient count as zero). */
export function gradNorm(params: readonly Tensor[]): number {
  return N.gradNorm(handles(params));
}

/**
 * Scales gradients so their global norm is at most maxNorm; returns the norm before. `norm`, when
 * given, is the norm to clip against (computed elsewhere, e.g. over several processes).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, norm?: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  return N.clipGradNorm(handles(params), maxNorm, norm);
}
