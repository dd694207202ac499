// MoE routing (REFERENCE §2): which tokens each expert processes and with what weight.
//
// Two output forms:
// - masked: one-hot dispatch[G,T,E,C] and combine[G,T,E,C] tensors, as in the reference (the
//   correctness oracle; O(T·E·C) memory);
// - slots: for every expert slot, the token (index in its group) that fills it and its weight,
//   [G,E,C] each; an empty slot holds token T (a zero row) and weight 0. Dispatch and combine
//   are then a gather and a weighted scatter-add.
// Ties are broken towards the lower index everywhere (stable sorts), like JAX's top_k.
import { arange, functional as F, full, type Tensor, zeros } from '../tensor';

export interface SlotRouting {
  /** [G, E, C] int64: token index within the group, or T for an empty slot. */
  slotToken: Tensor;
  /** [G, E, C] float32: combine weight (router probability), 0 for an empty slot. */
  slotWeight: Tensor;
  /** Scalar load-balancing loss (0 for experts-choose). */
  auxLoss: Tensor;
}

export interface MaskedRouting {
  /** [G, T, E, C] 0/1. */
  dispatch: Tensor;
  /** [G, T, E, C] router probability where dispatched, else 0. */
  combine: Tensor;
  auxLoss: Tensor;
}

export interface TokensChooseOptions {
  k: number;
  capacity: number;
  batchPrioritized: boolean;
}

/** Top-k along the last dim; equal values keep index order (lower index first). */
export function stableTopK(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const { values, indices } = x.sort(-1, true);
  return { values: values.narrow(-1, 0, k), indices: indices.narrow(-1, 0, k) };
}

/** Router z-loss: mean over tokens of logsumexp(logits)². */
export function routerZLoss(logits: Tensor): Tensor {
  return logits.logsumexp(-1).square().mean();
}

/**
 * Switch-Transformer load-balancing loss: E² · mean over groups and experts of (fraction of the
 * group's tokens with the expert among their top-k) · (mean router probability of the expert).
 */
export function loadBalancingLoss(probs: Tensor, expertIndex: Tensor): Tensor {
  const E = probs.shape[2]!;
  const chosen = F.oneHot(expertIndex, E).maxAlong(2).values.to(probs.dtype); // [G, T, E]
  return chosen.mean(1).mul(probs.mean(1)).mean().mul(E * E);
}

/**
 * Tokens-choose priorities: for each of a token's k choices, its slot in that expert's buffer
 * (its rank among the tokens sent there, top-1 choices of all tokens before any top-2 choice,
 * tokens in BPR order or in token order). Returns [G, T, K] int64 and the chosen experts.
 */
function tokenPriorities(probs: Tensor, o: TokensChooseOptions): { gate: Tensor; expert: Tensor; priority: Tensor } {
  const [G, T, E] = probs.shape as [number, number, number];
  const { values: gate, indices: expert } = stableTopK(probs, o.k); // [G, T, K]
  let order: Tensor | undefined;
  let orderedExpert = expert;
  if (o.batchPrioritized) {
    order = gate.select(2, 0).argsort(-1, true); // [G, T], most confident first
    orderedExpert = expert.gather(1, order.unsqueeze(2).expand([G, T, o.k]));
  }
  // [G, K·T]: all top-1 choices first, then all top-2 choices, ...
  const flat = orderedExpert.transpose(1, 2).reshape([G, o.k * T]);
  const mask = F.oneHot(flat, E); // [G, K·T, E]
  const rank = mask.cumsum(1).mul(mask).sum(2).sub(1); // [G, K·T]
  let priority = rank.reshape([G, o.k, T]).transpose(1, 2); // [G, T, K] in processing order
  if (order) {
    const inverse = order.argsort(-1);
    priority = priority.gather(1, inverse.unsqueeze(2).expand([G, T, o.k]));
  }
  return { gate, expert, priority };
}

/** Tokens-choose routing in slot form (the reference's scatter router). */
export function tokensChooseSlots(probs: Tensor, o: TokensChooseOptions): SlotRouting {
  const [G, T, E] = probs.shape as [number, number, number];
  const C = o.capacity;
  const { gate, expert, priority } = tokenPriorities(probs, o);
  const auxLoss = loadBalancingLoss(probs, expert);
  const kept = priority.lt(C);
  // Flat slot e·C + priority, or the overflow slot E·C for dropped assignments.
  const overflow = full([], E * C, { dtype: 'int64', device: probs.device });
  const slot = F.where(kept, expert.mul(C).add(priority), overflow).reshape([G, T * o.k]);
  const token = arange(T, undefined, 1, { device: probs.device })
    .reshape([1, T, 1])
    .expand([G, T, o.k])
    .reshape([G, T * o.k]);
  const slotToken = full([G, E * C + 1], T, { dtype: 'int64', device: probs.device }).scatter(1, slot, token);
  const weight = gate.mul(kept.to(gate.dtype)).reshape([G, T * o.k]);
  const slotWeight = zeros([G, E * C + 1], { dtype: weight.dtype, device: weight.device }).scatter(1, slot, weight);
  return {
    slotToken: slotToken.narrow(1, 0, E * C).reshape([G, E, C]),
    slotWeight: slotWeight.narrow(1, 0, E * C).reshape([G, E, C]),
    auxLoss,
  };
}

/** Tokens-choose routing in masked form (the reference's masked router). */
export function tokensChooseMasked(probs: Tensor, o: TokensChooseOptions): MaskedRouting {
  const E = probs.shape[2]!;
  const C = o.capacity;
  const { expert, priority } = tokenPriorities(probs, o);
  const auxLoss = loadBalancingLoss(probs, expert);
  // [G, T, E]: the token's slot in each expert, -1 where it did not choose the expert.
  const chosen = F.oneHot(expert, E); // [G, T, K, E]
  const perExpert = chosen.mul(priority.add(1).unsqueeze(3)).maxAlong(2).values.sub(1);
  const valid = perExpert.ge(0).logicalAnd(perExpert.lt(C));
  const dispatch = F.oneHot(perExpert.clamp(0, C - 1), C).mul(valid.unsqueeze(3)).to(probs.dtype);
  const combine = dispatch.mul(probs.unsqueeze(3));
  return { dispatch, combine, auxLoss };
}

/** Experts-choose routing in slot form: each expert takes its top-C tokens of the group. */
export function expertsChooseSlots(probs: Tensor, capacity: number): SlotRouting {
  const { values, indices } = stableTopK(probs.transpose(1, 2), capacity); // [G, E, C]
  return { slotToken: indices, slotWeight: values, auxLoss: zeros([], { dtype: probs.dtype, device: probs.device }) };
}

/** Experts-choose routing in masked form. */
export function expertsChooseMasked(probs: Tensor, capacity: number): MaskedRouting {
  const T = probs.shape[1]!;
  const { values, indices } = stableTopK(probs.transpose(1, 2), capacity); // [G, E, C]
  const dispatch = F.oneHot(indices, T).permute([0, 3, 1, 2]).to(probs.dtype); // [G, T, E, C]
  const combine = dispatch.mul(values.unsqueeze(1));
  return { dispatch, combine, auxLoss: zeros([], { dtype: probs.dtype, device: probs.device }) };
}

/** Expert capacity C = max(round(factor · T / E), minCapacity), rounding half to even (Python's round). */
export function expertCapacity(tokensPerGroup: number, numExperts: number, factor: number, minCapacity: number): number {
  const x = (factor * tokensPerGroup) / numExperts;
  const floor = Math.floor(x);
  const diff = x - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return Math.max(rounded, minCapacity);
}

/** Smallest G ≥ max(1, numTokens // maxGroupSize) that divides numTokens. */
export function numGroups(numTokens: number, maxGroupSize: number): number {
  let g = Math.max(1, Math.floor(numTokens / maxGroupSize));
  while (numTokens % g !== 0) g++;
  return g;
}
