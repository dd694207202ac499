// Batched matrix products on the CPU through oneDNN's GEMM, reading strided views in place: the
// heads of attention ([B, h, N, dh] views of [B, N, d]), transposed keys, a mixing matrix shared by
// the batch, an expert's weights. at::matmul would copy such views into contiguous buffers first
// and then call the BLAS per matrix; here each matrix is one sgemm on the view's own memory (many
// small ones side by side on the threads, large ones one after another on all of them).
// Same coverage rules and switch as cpu_linear.cc; anything else goes to ATen.
#include "cpu_matmul.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <ATen/ExpandUtils.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "cpu_linear.h"

#ifdef SM_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace sm {
namespace {

#ifdef SM_WITH_DNNL
// One operand as a batch of matrices: where each starts, and how its rows or columns are laid out.
struct Batched {
  const float* data;
  std::vector<int64_t> offsets;  // per batch element, in floats
  char trans;                     // 'N': rows contiguous (lead = stride of dim -2); 'T': columns contiguous
  int64_t lead;
};

// A view's matrix layout, or false when neither its rows nor its columns are contiguous.
bool layout(const at::Tensor& t, char* trans, int64_t* lead) {
  const int64_t r = t.size(-2), c = t.size(-1);
  if (t.stride(-1) == 1 && t.stride(-2) >= std::max<int64_t>(c, 1)) {
    *trans = 'N';
    *lead = std::max<int64_t>(t.stride(-2), 1);
    return true;
  }
  if (t.stride(-2) == 1 && t.stride(-1) >= std::max<int64_t>(r, 1)) {
    *trans = 'T';
    *lead = std::max<int64_t>(t.stride(-1), 1);
    return true;
  }
  return false;
}

// The operand's matrices for every index of `batch` (broadcast dims repeat the same matrix).
Batched batched(const at::Tensor& t, at::IntArrayRef batch) {
  Batched out;
  out.data = t.data_ptr<float>();
  layout(t, &out.trans, &out.lead);
  const int64_t dims = static_cast<int64_t>(batch.size()), own = t.dim() - 2;
  std::vector<int64_t> strides(dims, 0);
  for (int64_t i = 0; i < own; ++i) {
    int64_t d = dims - own + i;
    strides[d] = t.size(i) == 1 ? 0 : t.stride(i);
  }
  int64_t count = 1;
  for (auto s : batch) count *= s;
  out.offsets.resize(count);
  std::vector<int64_t> index(dims, 0);
  for (int64_t n = 0; n < count; ++n) {
    int64_t off = 0;
    for (int64_t d = 0; d < dims; ++d) off += index[d] * strides[d];
    out.offsets[n] = off;
    for (int64_t d = dims - 1; d >= 0 && ++index[d] == batch[d]; --d) index[d] = 0;
  }
  return out;
}

// C[n] (contiguous [count, M, N]) = A[n] · B[n] + beta · C[n].
void gemms(const Batched& A, const Batched& B, float* C, int64_t M, int64_t N, int64_t K, float beta, float alpha) {
  RECORD_FUNCTION("sm::batched_gemm", std::vector<c10::IValue>());  // a named op in profiles
  const int64_t count = static_cast<int64_t>(A.offsets.size());
  if (count == 0 || M == 0 || N == 0) return;
  auto one = [&](int64_t n) {
    dnnl_status_t s = dnnl_sgemm(A.trans, B.trans, M, N, K, alpha, A.data + A.offsets[n], A.lead, B.data + B.offsets[n], B.lead, beta, C + n * M * N, N);
    if (s != dnnl_success) throw std::runtime_error("oneDNN sgemm failed with status " + std::to_string(static_cast<int>(s)));
  };
  // Large matrices use every thread inside sgemm; smaller ones go side by side, one thread each.
  // Up to 2^24 multiply-adds (attention at 512 tokens, 512² mixing stay inside sgemm), splitting
  // each product over the threads loses: at 2^21 (128-token mixing at d 128) a Sparse Mixer's
  // -quarter training step took 0.244 s that way and 0.195-0.203 s side by side.
  if (M * N * K >= (1 << 24) || count == 1) {
    for (int64_t n = 0; n < count; ++n) one(n);
  } else {
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) one(n);
    });
  }
}

bool eligible(const at::Tensor& t) {
  char trans;
  int64_t lead;
  return t.is_cpu() && t.scalar_type() == at::kFloat && t.dim() >= 2 && layout(t, &trans, &lead);
}

// alpha · a [..., M, K] · b [..., K, N] with broadcast batch dims -> contiguous [batch..., M, N] (+ bias).
at::Tensor product(const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias, double alpha = 1.0) {
  auto batch = at::infer_size(a.sizes().slice(0, a.dim() - 2), b.sizes().slice(0, b.dim() - 2));
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  auto shape = batch;
  shape.push_back(M);
  shape.push_back(N);
  // A fresh output always (expand().contiguous() may return the bias itself, which the GEMM would add into).
  at::Tensor c = at::empty(shape, a.options());
  if (bias.defined()) c.copy_(bias.expand(shape));
  gemms(batched(a, batch), batched(b, batch), c.data_ptr<float>(), M, N, K, bias.defined() ? 1.0f : 0.0f, static_cast<float>(alpha));
  return c;
}

// The gradient of a broadcast operand sums over the dims it was broadcast along.
at::Tensor toShape(const at::Tensor& g, at::IntArrayRef shape) { return g.sizes().equals(shape) ? g : at::sum_to(g, shape); }

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// da = α·g · bᵀ, db = α·aᵀ · g, each as another strided product (transposes are views, not copies).
variable_list productGradients(AutogradContext* ctx, const at::Tensor& grad, double alpha = 1.0) {
  auto saved = ctx->get_saved_variables();
  const at::Tensor& a = saved[0];
  const at::Tensor& b = saved[1];
  at::Tensor g = grad.contiguous();
  at::Tensor da, db;
  if (ctx->needs_input_grad(0)) da = toShape(product(g, b.transpose(-2, -1), at::Tensor(), alpha), a.sizes());
  if (ctx->needs_input_grad(1)) db = toShape(product(a.transpose(-2, -1), g, at::Tensor(), alpha), b.sizes());
  return {da, db};
}

struct MatmulFunction : public torch::autograd::Function<MatmulFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b, double alpha) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["alpha"] = alpha;
    return product(a, b, at::Tensor(), alpha);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto g = productGradients(ctx, grads[0], ctx->saved_data["alpha"].toDouble());
    return {g[0], g[1], at::Tensor()};
  }
};

// bias + a · b, as baddbmm with a broadcastable bias (an expert's [E, 1, F]).
struct AddmmBatchedFunction : public torch::autograd::Function<AddmmBatchedFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["bias"] = bias.sizes().vec();
    return product(a, b, bias);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto ab = productGradients(ctx, grads[0]);
    at::Tensor dbias = ctx->needs_input_grad(0) ? at::sum_to(grads[0], ctx->saved_data["bias"].toIntVector()) : at::Tensor();
    return {dbias, ab[0], ab[1]};
  }
};

bool covered(const at::Tensor& a, const at::Tensor& b) {
  if (!onednnLinearAvailable() || at::autocast::is_cpu_enabled() || !eligible(a) || !eligible(b) || a.size(-1) != b.size(-2)) return false;
  // Broadcastable batch dims only (at::matmul's error messages for the rest).
  const int64_t da = a.dim() - 2, db = b.dim() - 2;
  for (int64_t i = 0; i < std::min(da, db); ++i) {
    int64_t x = a.size(da - 1 - i), y = b.size(db - 1 - i);
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

bool tracked(std::initializer_list<const at::Tensor*> ts) {
  if (!c10::GradMode::is_enabled()) return false;
  for (auto* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
#endif

}  // namespace

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, double alpha) {
#ifdef SM_WITH_DNNL
  if (covered(a, b)) return tracked({&a, &b}) ? MatmulFunction::apply(a, b, alpha) : product(a, b, at::Tensor(), alpha);
#endif
  at::Tensor c = at::matmul(a, b);
  if (alpha == 1.0) return c;
  // In place on the product's fresh result, unless autograd is recording (then a new tensor).
  return c.requires_grad() ? c.mul(alpha) : c.mul_(alpha);
}

at::Tensor bmm(const at::Tensor& a, const at::Tensor& b) {
  // bmm does not broadcast: only equal batches take the fast path (at::bmm says what is wrong otherwise).
  if (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0)) return sm::matmul(a, b);
  return at::bmm(a, b);
}

at::Tensor baddbmm(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b, double beta, double alpha) {
#ifdef SM_WITH_DNNL
  if (beta == 1 && alpha == 1 && a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && covered(a, b) && bias.is_cpu() &&
      bias.scalar_type() == at::kFloat && at::is_expandable_to(bias.sizes(), {a.size(0), a.size(1), b.size(2)})) {
    return tracked({&bias, &a, &b}) ? AddmmBatchedFunction::apply(bias, a, b) : product(a, b, bias);
  }
#endif
  return at::baddbmm(bias, a, b, beta, alpha);
}

}  // namespace sm
