// Fused MoE routing, dispatch and combine (native kernels; see native/moe_kernels.h). Nothing of
// size tokens·experts·capacity is built.
import { N } from './native';
import { checkInt, handleOf, Tensor } from './tensor';

export interface FusedRouting {
  /** [G, E, C] int64: token index within its group, or T for an empty slot. */
  slotToken: Tensor;
  /** [G, E]: share of each group's tokens with the expert among their top-k (0 for experts-choose). */
  expertFraction: Tensor;
  /** int64 scalar: tokens that reached at least one expert. */
  dispatchedTokens: Tensor;
  /** int64 scalar: slots holding a token. */
  filledSlots: Tensor;
}

/** One pass over router probabilities [G, T, E] (not differentiable: indices only). */
export function route(
  probs: Tensor,
  routerType: 'experts_choose' | 'tokens_choose',
  options: { k?: number; capacity: number; batchPrioritized?: boolean },
): FusedRouting {
  const r = N.moeRoute(
    handleOf(probs, 'probs'),
    routerType,
    checkInt(options.k ?? 1, 'k'),
    checkInt(options.capacity, 'capacity'),
    options.batchPrioritized ?? true,
  );
  return {
    slotToken: Tensor._wrap(r.slotToken),
    expertFraction: Tensor._wrap(r.expertFraction),
    dispatchedTokens: Tensor._wrap(r.dispatchedTokens),
    filledSlots: Tensor._wrap(r.filledSlots),
  };
}

/** Tokens [G, T, H] into expert buffers [E, G·C, H] (empty slots zero). Differentiable in x. */
export function dispatch(x: Tensor, slotToken: Tensor): Tensor {
  return Tensor._wrap(N.moeDispatch(handleOf(x, 'x'), handleOf(slotToken, 'slotToken')));
}

/**
 * Expert outputs [E, G·C, H] back to tokens [G, T, H], weighted by slotWeight [G, E, C].
 * Differentiable in y and slotWeight. deterministic picks per-token sums over atomic adds on CUDA
 * (the CPU is always deterministic).
 */
export function combine(y: Tensor, slotToken: Tensor, slotWeight: Tensor, tokensPerGroup: number, deterministic = true): Tensor {
  return Tensor._wrap(
    N.moeCombine(handleOf(y, 'y'), handleOf(slotToken, 'slotToken'), handleOf(slotWeight, 'slotWeight'), checkInt(tokensPerGroup, 'tokensPerGroup'), deterministic),
  );
}
