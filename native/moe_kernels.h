// Fused MoE routing, dispatch and combine: the device-independent interface. Each function takes
// and returns ATen tensors; moe_cpu.cc implements them on the CPU, moe_cuda.cc (with the kernels
// in cuda/moe_kernels.cu) on CUDA devices.
//
// Slot form (see lib/model/routing.ts): slotToken[g, e, c] is the index in group g of the token
// that fills slot c of expert e, or T for an empty slot; slotWeight holds its combine weight.
// Nothing of size T·E·C is ever built.
#pragma once

#include "compat.h"

namespace sm::moe {

struct Routing {
  at::Tensor slotToken;       // [G, E, C] int64
  at::Tensor expertFraction;  // [G, E] float: share of the group's tokens with the expert in their top-k
  at::Tensor dispatchedTokens;  // int64 scalar: tokens that reached at least one expert
  at::Tensor filledSlots;       // int64 scalar: slots holding a token
  // (tensors, not host numbers, so CUDA routing never waits for the device)
};

/** Experts choose their top-C tokens; ties go to the lower token index. */
Routing expertsChoose(const at::Tensor& probs, int64_t capacity);

/**
 * Tokens choose their top-k experts (ties to the lower expert index); slots are handed out to all
 * top-1 choices before any top-2 choice, tokens in batch-prioritized order (top-1 probability
 * descending, ties by token index) or in token order; choices past the capacity are dropped.
 */
Routing tokensChoose(const at::Tensor& probs, int64_t k, int64_t capacity, bool batchPrioritized);

/** out[e, g·C + c] = scale[g, e, c] · x[g, slotToken[g, e, c]] (0 for an empty slot). [E, G·C, H] */
at::Tensor gatherRows(const at::Tensor& x, const at::Tensor& slotToken, const Optional<at::Tensor>& scale);

/**
 * out[g, t] = Σ over the slots of token t (in expert, slot order) of weight · y[e, g·C + c]:
 * [G, T, H]. Deterministic: every output row is summed by one thread in a fixed order.
 */
at::Tensor scatterRows(const at::Tensor& y, const at::Tensor& slotToken, const Optional<at::Tensor>& weight,
                       int64_t tokensPerGroup, bool deterministic);

/** out[g, e, c] = <a[g, slotToken[g, e, c]], y[e, g·C + c]> (0 for an empty slot). [G, E, C] */
at::Tensor slotDot(const at::Tensor& a, const at::Tensor& y, const at::Tensor& slotToken);

// Differentiable wrappers (custom autograd functions over the kernels above).
at::Tensor dispatch(const at::Tensor& x, const at::Tensor& slotToken);
at::Tensor combine(const at::Tensor& y, const at::Tensor& slotToken, const at::Tensor& slotWeight,
                   int64_t tokensPerGroup, bool deterministic);

#ifdef SM_WITH_CUDA
Routing expertsChooseCuda(const at::Tensor& probs, int64_t capacity);
Routing tokensChooseCuda(const at::Tensor& probs, int64_t k, int64_t capacity, bool batchPrioritized);
at::Tensor gatherRowsCuda(const at::Tensor& x, const at::Tensor& slotToken, const Optional<at::Tensor>& scale);
at::Tensor scatterRowsCuda(const at::Tensor& y, const at::Tensor& slotToken, const Optional<at::Tensor>& weight,
                           int64_t tokensPerGroup, bool deterministic);
at::Tensor slotDotCuda(const at::Tensor& a, const at::Tensor& y, const at::Tensor& slotToken);
#endif

}  // namespace sm::moe
