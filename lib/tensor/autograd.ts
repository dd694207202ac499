// Grad-mode and autocast scopes.
import { dtypeCode, type DType } from './dtype';
import { N } from './native';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = N.isGradEnabled();
  N.setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    N.setGradEnabled(previous);
  }
}

/** Runs fn without recording operations for autograd (like torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return N.isGradEnabled();
}

export interface AutocastOptions {
  /** 'cuda' (the default) or 'cpu'. */
  device?: 'cuda' | 'cpu';
  /** Lower-precision dtype for eligible ops: bfloat16 (default) or float16. */
  dtype?: 'bfloat16' | 'float16';
  /** false turns autocast off inside fn (like torch.autocast(enabled=False)), e.g. for a float32 router. */
  enabled?: boolean;
}

/**
 * Runs fn with automatic mixed precision: matmuls and linear layers run in the lower precision,
 * precision-sensitive ops (softmax, losses, norms) stay in float32. fn must be synchronous.
 */
export function autocast<T>(fn: () => T, options: AutocastOptions = {}): T {
  const device = options.device ?? 'cuda';
  const dtype: DType = options.dtype ?? 'bfloat16';
  if (device !== 'cuda' && device !== 'cpu') throw new TypeError(`autocast: device must be 'cuda' or 'cpu'`);
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw new TypeError(`autocast: dtype must be 'bfloat16' or 'float16'`);
  const previous = N.autocastEnter(device, dtypeCode(dtype), options.enabled ?? true);
  try {
    return fn();
  } finally {
    N.autocastExit(device, previous.enabled, previous.dtype);
  }
}

export function isAutocastEnabled(device: 'cuda' | 'cpu' = 'cuda'): boolean {
  return N.isAutocastEnabled(device);
}
