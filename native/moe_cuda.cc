// Fused MoE on CUDA tensors: argument checks, scratch memory and streams around the kernels of
// cuda/moe_kernels.cu. Compiled only when the libtorch found has CUDA (SM_WITH_CUDA).
#ifdef SM_WITH_CUDA

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/moe_launch.h"
#include "moe_kernels.h"

namespace sm::moe {
namespace {

cuda::ElementType elementType(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return cuda::ElementType::Float32;
    case at::kDouble:
      return cuda::ElementType::Float64;
    case at::kHalf:
      return cuda::ElementType::Float16;
    case at::kBFloat16:
      return cuda::ElementType::BFloat16;
    default:
      TORCH_CHECK(false, "fused MoE kernels take float32, float64, float16 or bfloat16, got ", type);
  }
}

void check(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, what, " failed: ", cudaGetErrorString(err));
}

cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Groups larger than the kernels sort in shared memory are routed on the CPU.
Routing toDevice(Routing r, const at::Device& device) {
  return {r.slotToken.to(device), r.expertFraction.to(device), r.dispatchedTokens.to(device), r.filledSlots.to(device)};
}

}  // namespace

Routing expertsChooseCuda(const at::Tensor& probsIn, int64_t C) {
  c10::cuda::CUDAGuard guard(probsIn.device());
  TORCH_CHECK(probsIn.dim() == 3, "router probabilities must be [groups, tokens, experts], got ", probsIn.sizes());
  const int64_t G = probsIn.size(0), T = probsIn.size(1), E = probsIn.size(2);
  TORCH_CHECK(C >= 1 && C <= T, "experts-choose capacity ", C, " must be in [1, ", T, "]");
  if (T > cuda::kMaxRoutingTokens) return toDevice(expertsChoose(probsIn.cpu(), C), probsIn.device());
  at::Tensor probs = probsIn.detach().to(at::kFloat).contiguous();
  at::Tensor slotToken = at::empty({G, E, C}, probs.options().dtype(at::kLong));
  at::Tensor reached = at::zeros({G, T}, probs.options().dtype(at::kInt));
  check(cuda::expertsChoose(probs.data_ptr<float>(), G, T, E, C, slotToken.data_ptr<int64_t>(), reached.data_ptr<int32_t>(),
                            stream()),
        "experts-choose routing");
  return {slotToken, at::zeros({G, E}, probsIn.options()), reached.sum().to(at::kLong),
          at::scalar_tensor(G * E * C, probs.options().dtype(at::kLong))};
}

Routing tokensChooseCuda(const at::Tensor& probsIn, int64_t K, int64_t C, bool batchPrioritized) {
  c10::cuda::CUDAGuard guard(probsIn.device());
  TORCH_CHECK(probsIn.dim() == 3, "router probabilities must be [groups, tokens, experts], got ", probsIn.sizes());
  const int64_t G = probsIn.size(0), T = probsIn.size(1), E = probsIn.size(2);
  TORCH_CHECK(K >= 1 && K <= E, "top-k routing needs 1 <= k <= ", E, ", got ", K);
  TORCH_CHECK(C >= 1, "expert capacity must be at least 1, got ", C);
  if (T > cuda::kMaxRoutingTokens || K > cuda::kMaxTopK) {
    return toDevice(tokensChoose(probsIn.cpu(), K, C, batchPrioritized), probsIn.device());
  }
  at::Tensor probs = probsIn.detach().to(at::kFloat).contiguous();
  auto ints = probs.options().dtype(at::kInt);
  at::Tensor slotToken = at::full({G, E, C}, T, probs.options().dtype(at::kLong));
  at::Tensor expertCount = at::zeros({G, E}, ints);
  at::Tensor filled = at::zeros({G}, ints);
  at::Tensor reached = at::zeros({G, T}, ints);
  at::Tensor choice = at::empty({G, T, K}, ints);
  check(cuda::tokensChoose(probs.data_ptr<float>(), G, T, E, K, C, batchPrioritized, slotToken.data_ptr<int64_t>(),
                           expertCount.data_ptr<int32_t>(), filled.data_ptr<int32_t>(), reached.data_ptr<int32_t>(),
                           choice.data_ptr<int32_t>(), stream()),
        "tokens-choose routing");
  return {slotToken, expertCount.to(probsIn.scalar_type()).div(static_cast<double>(T)), reached.sum().to(at::kLong),
          filled.sum().to(at::kLong)};
}

at::Tensor gatherRowsCuda(const at::Tensor& xIn, const at::Tensor& slotToken, const Optional<at::Tensor>& scale) {
  c10::cuda::CUDAGuard guard(xIn.device());
  TORCH_CHECK(xIn.dim() == 3, "tokens must be [groups, tokens, hidden], got ", xIn.sizes());
  TORCH_CHECK(slotToken.dim() == 3 && slotToken.scalar_type() == at::kLong && slotToken.size(0) == xIn.size(0),
              "slot table must be int64 [groups, experts, capacity] matching the tokens, got ", slotToken.sizes());
  at::Tensor x = xIn.contiguous();
  at::Tensor slots = slotToken.contiguous();
  const int64_t G = x.size(0), T = x.size(1), H = x.size(2), E = slots.size(1), C = slots.size(2);
  at::Tensor out = at::empty({E, G * C, H}, x.options());
  at::Tensor w;
  if (scale) w = scale->detach().to(at::kFloat).contiguous();
  check(cuda::gatherRows(elementType(x.scalar_type()), x.data_ptr(), slots.data_ptr<int64_t>(),
                         w.defined() ? w.data_ptr<float>() : nullptr, out.data_ptr(), G, T, E, C, H, stream()),
        "MoE dispatch");
  return out;
}

at::Tensor scatterRowsCuda(const at::Tensor& yIn, const at::Tensor& slotToken, const Optional<at::Tensor>& weight,
                           int64_t T, bool deterministic) {
  c10::cuda::CUDAGuard guard(yIn.device());
  at::Tensor slots = slotToken.contiguous();
  TORCH_CHECK(slots.dim() == 3 && slots.scalar_type() == at::kLong, "slot table must be int64 [groups, experts, capacity]");
  const int64_t G = slots.size(0), E = slots.size(1), C = slots.size(2);
  TORCH_CHECK(yIn.dim() == 3 && yIn.size(0) == E && yIn.size(1) == G * C, "expert outputs ", yIn.sizes(),
              " do not match the slot table ", slots.sizes());
  at::Tensor y = yIn.contiguous();
  const int64_t H = y.size(2);
  at::Tensor out = at::empty({G, T, H}, y.options());
  at::Tensor scratch = at::empty({cuda::scatterScratchBytes(G, T, E, C)}, y.options().dtype(at::kByte));
  at::Tensor w;
  if (weight) w = weight->detach().to(at::kFloat).contiguous();
  check(cuda::scatterRows(elementType(y.scalar_type()), y.data_ptr(), slots.data_ptr<int64_t>(),
                          w.defined() ? w.data_ptr<float>() : nullptr, out.data_ptr(), G, T, E, C, H, deterministic,
                          scratch.data_ptr(), stream()),
        "MoE combine");
  return out;
}

at::Tensor slotDotCuda(const at::Tensor& aIn, const at::Tensor& yIn, const at::Tensor& slotToken) {
  c10::cuda::CUDAGuard guard(aIn.device());
  at::Tensor a = aIn.contiguous(), y = yIn.contiguous(), slots = slotToken.contiguous();
  const int64_t G = a.size(0), T = a.size(1), H = a.size(2), E = slots.size(1), C = slots.size(2);
  at::Tensor out = at::empty({G, E, C}, a.options().dtype(at::kFloat));
  check(cuda::slotDot(elementType(a.scalar_type()), a.data_ptr(), y.data_ptr(), slots.data_ptr<int64_t>(),
                      out.data_ptr<float>(), G, T, E, C, H, stream()),
        "MoE combine-weight gradient");
  return a.scalar_type() == at::kDouble ? out.to(at::kDouble) : out;
}

}  // namespace sm::moe

#endif  // SM_WITH_CUDA
