// The neural-network functions the models use.
#include <limits>

#include "args.h"
#include "cpu_linear.h"
#include "registry.h"

// Fused attention arrived in libtorch 2.0; 1.13 (Debian's) lacks it and keeps the matmul path.
#if __has_include(<ATen/ops/scaled_dot_product_attention.h>)
#define SM_HAS_SDPA 1
#else
#define SM_HAS_SDPA 0
#endif

namespace sm {
namespace {

Napi::Value linear(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), sm::linear(tensorArg(info, 0), tensorArg(info, 1), optionalTensorArg(info, 2)));
}

// A probability, rate or epsilon outside its range gives NaN everywhere (or silently nothing).
double checkedDouble(const Napi::CallbackInfo& info, size_t i, const char* what, double lo, double hi) {
  const double v = doubleArg(info, i);
  if (!(v >= lo && v <= hi)) throw std::invalid_argument(std::string(what) + " must be in [" + jsNumber(lo) + ", " + jsNumber(hi) + "], got " + jsNumber(v));
  return v;
}

Napi::Value layerNorm(const Napi::CallbackInfo& info) {
  // (x, normalizedShape, weight?, bias?, eps)
  const double eps = checkedDouble(info, 4, "epsilon", 0, std::numeric_limits<double>::max());
  return wrap(info.Env(), at::layer_norm(tensorArg(info, 0), intListArg(info, 1), optionalTensorArg(info, 2),
                                         optionalTensorArg(info, 3), eps));
}

Napi::Value gelu(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::gelu(tensorArg(info, 0), boolArg(info, 1) ? "tanh" : "none"));
}

Napi::Value softmax(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::softmax(tensorArg(info, 0), intArg(info, 1), optionalDtypeArg(info, 2)));
}

Napi::Value logSoftmax(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::log_softmax(tensorArg(info, 0), intArg(info, 1), optionalDtypeArg(info, 2)));
}

Napi::Value dropout(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::dropout(tensorArg(info, 0), checkedDouble(info, 1, "dropout probability", 0, 1), boolArg(info, 2)));
}

// (q, k, v, additiveMask?, dropoutP): softmax(q·kᵀ/√d + mask)·v in one fused kernel (flash,
// memory-efficient or cuDNN, as libtorch chooses), without materialising the scores.
Napi::Value scaledDotProductAttention(const Napi::CallbackInfo& info) {
#if SM_HAS_SDPA
  return wrap(info.Env(), at::scaled_dot_product_attention(tensorArg(info, 0), tensorArg(info, 1), tensorArg(info, 2),
                                                           optionalTensorArg(info, 3), checkedDouble(info, 4, "dropout probability", 0, 1), false));
#else
  throw std::runtime_error("scaled dot-product attention needs libtorch 2.0 or newer; this addon was built against " +
                           std::string(TORCH_VERSION));
#endif
}

Napi::Value embedding(const Napi::CallbackInfo& info) {
  // (weight, indices, paddingIdx)
  return wrap(info.Env(), at::embedding(tensorArg(info, 0), tensorArg(info, 1), intArg(info, 2)));
}

int64_t reductionArg(const Napi::CallbackInfo& info, size_t i) {
  std::string r = stringArg(info, i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw std::invalid_argument("reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  // (logits, target, weight?, reduction, ignoreIndex, labelSmoothing)
  return wrap(info.Env(), at::cross_entropy_loss(tensorArg(info, 0), tensorArg(info, 1), optionalTensorArg(info, 2),
                                                 reductionArg(info, 3), intArg(info, 4), checkedDouble(info, 5, "label smoothing", 0, 1)));
}

Napi::Value mseLoss(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::mse_loss(tensorArg(info, 0), tensorArg(info, 1), reductionArg(info, 2)));
}

Napi::Value oneHot(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::one_hot(tensorArg(info, 0), intArg(info, 1)));
}

}  // namespace

void registerNN(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, linear);
  SM_DEFINE(exports, layerNorm);
  SM_DEFINE(exports, gelu);
  SM_DEFINE(exports, softmax);
  SM_DEFINE(exports, logSoftmax);
  SM_DEFINE(exports, dropout);
  SM_DEFINE(exports, scaledDotProductAttention);
  exports.Set("hasScaledDotProductAttention", Napi::Boolean::New(env, SM_HAS_SDPA != 0));
  SM_DEFINE(exports, embedding);
  SM_DEFINE(exports, crossEntropy);
  SM_DEFINE(exports, mseLoss);
  SM_DEFINE(exports, oneHot);
}

}  // namespace sm
