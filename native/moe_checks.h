// Argument checks of the fused MoE kernels, shared by the CPU and CUDA paths and run before either
// touches memory: the kernels index raw pointers with sizes taken from these tensors, so a shape,
// dtype or device that does not match is an out-of-bounds access, not merely a wrong answer.
#pragma once

#include "compat.h"

namespace sm::moe {

/** probs [G, T, E] floating, capacity in [1, T] (experts-choose) or >= 1 and k in [1, E] (tokens-choose). */
void checkRouting(const at::Tensor& probs, bool expertsChoose, int64_t k, int64_t capacity);

/** x [G, T, H], slotToken int64 [G, E, C] with values in [0, T], scale (if any) [G, E, C]. */
void checkGather(const at::Tensor& x, const at::Tensor& slotToken, const Optional<at::Tensor>& scale);

/** y [E, G·C, H], slotToken int64 [G, E, C] with values in [0, T], weight (if any) [G, E, C], T >= 0. */
void checkScatter(const at::Tensor& y, const at::Tensor& slotToken, const Optional<at::Tensor>& weight, int64_t T);

/** a [G, T, H] and y [E, G·C, H] of one dtype, slotToken int64 [G, E, C] with values in [0, T]. */
void checkSlotDot(const at::Tensor& a, const at::Tensor& y, const at::Tensor& slotToken);

}  // namespace sm::moe
