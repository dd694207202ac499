// Fused optimizer work: one native call updates every parameter (no per-parameter JavaScript
// round trip): AdamW, the global gradient norm and clipping by it.
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

// (params[], m[], v[], decay: Uint8Array, lr, beta1, beta2, eps, weightDecay, step)
// Decoupled weight decay with bias correction (optax.adamw, as the reference trains with):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²
//   p -= lr · (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr · wd · p
// Parameters without a gradient are left as they are.
Napi::Value adamwStep(const Napi::CallbackInfo& info) {
  auto params = tensorListArg(info, 0);
  auto m = tensorListArg(info, 1);
  auto v = tensorListArg(info, 2);
  if (!info[3].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "adamwStep: decay must be a Uint8Array");
  auto decay = info[3].As<Napi::Uint8Array>();
  double lr = doubleArg(info, 4), beta1 = doubleArg(info, 5), beta2 = doubleArg(info, 6), eps = doubleArg(info, 7);
  double weightDecay = doubleArg(info, 8);
  int64_t step = intArg(info, 9);
  if (m.size() != params.size() || v.size() != params.size() || decay.ElementLength() != params.size()) {
    throw std::invalid_argument("adamwStep: params, moments and decay flags differ in length");
  }
  if (step < 1) throw std::invalid_argument("adamwStep: step counts from 1");
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  at::NoGradGuard noGrad;
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (!m[i].sizes().equals(p.sizes()) || !v[i].sizes().equals(p.sizes())) {
      throw std::invalid_argument("adamwStep: moment shapes do not match parameter " + std::to_string(i) + " " + describe(p));
    }
    m[i].mul_(beta1).add_(g, 1 - beta1);
    v[i].mul_(beta2).addcmul_(g, g, 1 - beta2);
    at::Tensor denom = (v[i] / bc2).sqrt_().add_(eps);
    if (decay[i] && weightDecay != 0) p.mul_(1 - lr * weightDecay);
    p.addcdiv_(m[i], denom, -lr / bc1);
  }
  return info.Env().Undefined();
}

double globalNorm(const std::vector<at::Tensor>& params) {
  double sumSquares = 0;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (g.defined()) sumSquares += g.detach().to(at::kDouble).pow(2).sum().item<double>();
  }
  return std::sqrt(sumSquares);
}

// (params[]) -> the L2 norm of all gradients together.
Napi::Value gradNorm(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), globalNorm(tensorListArg(info, 0)));
}

// (params[], maxNorm) -> the norm before clipping; gradients are scaled so their norm is at most maxNorm.
Napi::Value clipGradNorm(const Napi::CallbackInfo& info) {
  auto params = tensorListArg(info, 0);
  double maxNorm = doubleArg(info, 1);
  double norm = globalNorm(params);
  if (std::isfinite(norm) && norm > maxNorm) {
    at::NoGradGuard noGrad;
    for (auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().mul_(maxNorm / (norm + 1e-6));
    }
  }
  return Napi::Number::New(info.Env(), norm);
}

}  // namespace

void registerOptim(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, adamwStep);
  SM_DEFINE(exports, gradNorm);
  SM_DEFINE(exports, clipGradNorm);
}

}  // namespace sm
