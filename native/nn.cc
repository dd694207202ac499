// The neural-network functions the models use.
#include "args.h"
#include "registry.h"

namespace sm {
namespace {

Napi::Value linear(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::linear(tensorArg(info, 0), tensorArg(info, 1), optionalTensorArg(info, 2)));
}

Napi::Value layerNorm(const Napi::CallbackInfo& info) {
  // (x, normalizedShape, weight?, bias?, eps)
  return wrap(info.Env(), at::layer_norm(tensorArg(info, 0), intListArg(info, 1), optionalTensorArg(info, 2),
                                         optionalTensorArg(info, 3), doubleArg(info, 4)));
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
  return wrap(info.Env(), at::dropout(tensorArg(info, 0), doubleArg(info, 1), boolArg(info, 2)));
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
                                                 reductionArg(info, 3), intArg(info, 4), doubleArg(info, 5)));
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
  SM_DEFINE(exports, embedding);
  SM_DEFINE(exports, crossEntropy);
  SM_DEFINE(exports, mseLoss);
  SM_DEFINE(exports, oneHot);
}

}  // namespace sm
