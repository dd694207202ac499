// Linear layers on the CPU through oneDNN's GEMM. libtorch 1.13 runs float32 matmuls on the BLAS
// it was built with (Debian: OpenBLAS); oneDNN, which the same libtorch already links, has JIT
// GEMM kernels that are faster at a transformer's shapes on AVX2/AVX-512 CPUs (see README, "CPU
// matrix products"). Forward and both backward GEMMs go through it; anything it does not cover
// (other dtypes and devices, strided weights, autocast) takes at::linear as before.
// SPARSE_MIXER_GEMM=aten turns it off (for side-by-side measurements).
#include "cpu_linear.h"

#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#ifdef SM_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace sm {
namespace {

#ifdef SM_WITH_DNNL
// Row-major C[M, N] = alpha · op(A) · op(B) + beta · C, as dnnl_sgemm defines it.
void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_status_t status = dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  if (status != dnnl_success) throw std::runtime_error("oneDNN sgemm failed with status " + std::to_string(static_cast<int>(status)));
}

// y [M, N] = x [M, K] · wᵀ (w [N, K]) + b
at::Tensor forwardGemm(const at::Tensor& x2, const at::Tensor& w, const at::Tensor& b) {
  RECORD_FUNCTION("sm::linear", std::vector<c10::IValue>());  // a named op in profiles
  const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
  // A fresh output always: expand().contiguous() of a bias that already has the output's shape (one
  // row) would be the bias itself, and the GEMM accumulates into its output.
  at::Tensor y = at::empty({M, N}, x2.options());
  if (b.defined()) y.copy_(b.expand({M, N}));
  if (M > 0 && N > 0) sgemm('N', 'T', M, N, K, x2.data_ptr<float>(), K, w.data_ptr<float>(), K, b.defined() ? 1.0f : 0.0f, y.data_ptr<float>(), N);
  return y;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor forwardSaving(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  at::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous();
  ctx->save_for_backward({x2, w});
  ctx->saved_data["shape"] = x.sizes().vec();
  auto shape = x.sizes().vec();
  shape.back() = w.size(0);
  return forwardGemm(x2, w, b).view(shape);
}

// Gradients of x, w and (when asked) b: dx = g · w, dw = gᵀ · x, db = Σ g.
variable_list backwardGemms(AutogradContext* ctx, const at::Tensor& grad, bool biasGrad) {
  auto saved = ctx->get_saved_variables();
  const at::Tensor& x2 = saved[0];
  const at::Tensor& w = saved[1];
  const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
  RECORD_FUNCTION("sm::linear_backward", std::vector<c10::IValue>());
  at::Tensor g = grad.reshape({M, N}).contiguous();
  at::Tensor gx, gw, gb;
  if (ctx->needs_input_grad(0)) {
    gx = at::empty({M, K}, x2.options());
    if (M > 0 && K > 0) sgemm('N', 'N', M, K, N, g.data_ptr<float>(), N, w.data_ptr<float>(), K, 0.0f, gx.data_ptr<float>(), K);
    gx = gx.view(ctx->saved_data["shape"].toIntVector());
  }
  if (ctx->needs_input_grad(1)) {
    gw = at::empty({N, K}, w.options());
    if (N > 0 && K > 0) sgemm('T', 'N', N, K, M, g.data_ptr<float>(), N, x2.data_ptr<float>(), K, 0.0f, gw.data_ptr<float>(), K);
  }
  if (biasGrad) gb = g.sum(0);
  return {gx, gw, gb};
}

// Two functions, with and without a bias: an undefined tensor cannot be an autograd input.
struct LinearFunction : public torch::autograd::Function<LinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) { return forwardSaving(ctx, x, w, b); }
  static variable_list backward(AutogradContext* ctx, variable_list grads) { return backwardGemms(ctx, grads[0], ctx->needs_input_grad(2)); }
};

struct LinearNoBiasFunction : public torch::autograd::Function<LinearNoBiasFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) { return forwardSaving(ctx, x, w, at::Tensor()); }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto g = backwardGemms(ctx, grads[0], false);
    return {g[0], g[1]};
  }
};

bool enabledByEnvironment() {
  const char* v = std::getenv("SPARSE_MIXER_GEMM");
  return !(v && std::strcmp(v, "aten") == 0);
}
#endif

}  // namespace

bool onednnLinearAvailable() {
#ifdef SM_WITH_DNNL
  static const bool enabled = enabledByEnvironment();
  return enabled;
#else
  return false;
#endif
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const Optional<at::Tensor>& bias) {
#ifdef SM_WITH_DNNL
  const at::Tensor b = bias ? *bias : at::Tensor();
  bool eligible = onednnLinearAvailable() && x.is_cpu() && w.is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
                  x.dim() >= 1 && w.dim() == 2 && w.is_contiguous() && x.size(-1) == w.size(1) &&
                  (!b.defined() || (b.is_cpu() && b.scalar_type() == at::kFloat && b.dim() == 1 && b.size(0) == w.size(0))) &&
                  !at::autocast::is_cpu_enabled();
  if (eligible) {
    bool tracked = c10::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()));
    if (tracked) return b.defined() ? LinearFunction::apply(x, w, b) : LinearNoBiasFunction::apply(x, w);
    auto shape = x.sizes().vec();
    shape.back() = w.size(0);
    return forwardGemm(x.reshape({-1, x.size(-1)}).contiguous(), w, b).view(shape);
  }
#endif
  return at::linear(x, w, bias);
}

}  // namespace sm
