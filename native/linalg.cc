// Matrix products, einsum and FFTs.
#include "args.h"
#include "cpu_matmul.h"
#include "registry.h"
#include "representable.h"

namespace sm {
namespace {

Napi::Value matmul(const Napi::CallbackInfo& info) {
  // (a, b, alpha?)
  return wrap(info.Env(), sm::matmul(tensorArg(info, 0), tensorArg(info, 1), isMissing(info, 2) ? 1.0 : doubleArg(info, 2)));
}

Napi::Value bmm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), sm::bmm(tensorArg(info, 0), tensorArg(info, 1)));
}

// beta and alpha scale an input of any dtype; an integral one would wrap a scalar it cannot hold.
std::pair<at::Scalar, at::Scalar> betaAlpha(const Napi::CallbackInfo& info, const at::Tensor& input) {
  at::Scalar beta = scalarArg(info, 3), alpha = scalarArg(info, 4);
  checkScalarOperand(input, beta);
  checkScalarOperand(input, alpha);
  return {beta, alpha};
}

Napi::Value baddbmm(const Napi::CallbackInfo& info) {
  // (input, batch1, batch2, beta, alpha)
  const at::Tensor& input = tensorArg(info, 0);
  auto [beta, alpha] = betaAlpha(info, input);
  return wrap(info.Env(), sm::baddbmm(input, tensorArg(info, 1), tensorArg(info, 2), beta.toDouble(), alpha.toDouble()));
}

Napi::Value addmm(const Napi::CallbackInfo& info) {
  const at::Tensor& input = tensorArg(info, 0);
  auto [beta, alpha] = betaAlpha(info, input);
  return wrap(info.Env(), at::addmm(input, tensorArg(info, 1), tensorArg(info, 2), beta, alpha));
}

Napi::Value einsum(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::einsum(stringArg(info, 0), tensorListArg(info, 1)));
}

Napi::Value fftn(const Napi::CallbackInfo& info) {
  // (t, dims, inverse)
  at::Tensor t = tensorArg(info, 0);
  auto dims = intListArg(info, 1);
  bool inverse = boolArg(info, 2);
  return wrap(info.Env(), inverse ? at::fft_ifftn(t, kNone, dims) : at::fft_fftn(t, kNone, dims));
}

}  // namespace

void registerLinalg(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, matmul);
  SM_DEFINE(exports, bmm);
  SM_DEFINE(exports, baddbmm);
  SM_DEFINE(exports, addmm);
  SM_DEFINE(exports, einsum);
  SM_DEFINE(exports, fftn);
}

}  // namespace sm
