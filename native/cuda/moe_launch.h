// Launchers of the fused MoE CUDA kernels (moe_kernels.cu). Plain pointers and sizes, no ATen, so
// the kernels compile with nvcc alone (the CPU-only CI compile-checks them for sm_90).
// Layouts are those of native/moe_kernels.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sm::cuda {

enum class ElementType { Float32, Float64, Float16, BFloat16 };

/** Largest group the routing kernels sort in shared memory. */
constexpr int64_t kMaxRoutingTokens = 4096;
/** Largest k of tokens-choose routing. */
constexpr int64_t kMaxTopK = 8;

/** slotToken [G,E,C] <- each expert's top-C tokens. probs float32 [G,T,E]. */
cudaError_t expertsChoose(const float* probs, int64_t G, int64_t T, int64_t E, int64_t C, int64_t* slotToken,
                          int32_t* reached, cudaStream_t stream);

/**
 * slotToken [G,E,C] (pre-filled with T) <- tokens-choose top-k routing. expertCount [G,E] (zeroed)
 * counts tokens with the expert in their top-k; filled [G] gets the filled slots per group;
 * reached [G,T] (zeroed) flags tokens that kept a slot; choice is scratch of G·T·K int32.
 */
cudaError_t tokensChoose(const float* probs, int64_t G, int64_t T, int64_t E, int64_t K, int64_t C,
                         bool batchPrioritized, int64_t* slotToken, int32_t* expertCount, int32_t* filled,
                         int32_t* reached, int32_t* choice, cudaStream_t stream);

/** out [E, G·C, H] <- scale · x[g, slotToken] (0 for empty slots); scale may be null. */
cudaError_t gatherRows(ElementType type, const void* x, const int64_t* slotToken, const float* scale, void* out,
                       int64_t G, int64_t T, int64_t E, int64_t C, int64_t H, cudaStream_t stream);

/** Bytes of scratch scatterRows needs. */
int64_t scatterScratchBytes(int64_t G, int64_t T, int64_t E, int64_t C);

/**
 * out [G,T,H] <- Σ over each token's slots of weight · y[e, g·C + c]; weight may be null (1).
 * deterministic: per-token sums in (expert, slot) order; otherwise atomic adds (out is zeroed here).
 */
cudaError_t scatterRows(ElementType type, const void* y, const int64_t* slotToken, const float* weight, void* out,
                        int64_t G, int64_t T, int64_t E, int64_t C, int64_t H, bool deterministic, void* scratch,
                        cudaStream_t stream);

/** out [G,E,C] float <- <a[g, slotToken], y[e, g·C + c]> (0 for empty slots). */
cudaError_t slotDot(ElementType type, const void* a, const void* y, const int64_t* slotToken, float* out, int64_t G,
                    int64_t T, int64_t E, int64_t C, int64_t H, cudaStream_t stream);

}  // namespace sm::cuda
