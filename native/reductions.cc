// Reductions, sorting and scans.
#include "args.h"
#include "registry.h"

namespace sm {
namespace {

// An empty or missing list of dims means "reduce over everything".
bool reduceAll(const Napi::CallbackInfo& info, size_t i) {
  return isMissing(info, i) || (info[i].IsArray() && info[i].As<Napi::Array>().Length() == 0);
}

Napi::Value sum(const Napi::CallbackInfo& info) {
  // (t, dims?, keepdim, dtype?)
  at::Tensor t = tensorArg(info, 0);
  auto dtype = optionalDtypeArg(info, 3);
  if (reduceAll(info, 1)) return wrap(info.Env(), at::sum(t, dtype));
  return wrap(info.Env(), at::sum(t, intListArg(info, 1), boolArg(info, 2), dtype));
}

Napi::Value mean(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  auto dtype = optionalDtypeArg(info, 3);
  if (reduceAll(info, 1)) return wrap(info.Env(), at::mean(t, dtype));
  return wrap(info.Env(), at::mean(t, intListArg(info, 1), boolArg(info, 2), dtype));
}

Napi::Value prod(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  if (isMissing(info, 1)) return wrap(info.Env(), at::prod(t));
  return wrap(info.Env(), at::prod(t, intArg(info, 1), boolArg(info, 2)));
}

Napi::Value variance(const Napi::CallbackInfo& info) {
  // (t, dims, unbiased, keepdim)
  return wrap(info.Env(), at::var(tensorArg(info, 0), intListArg(info, 1), boolArg(info, 2), boolArg(info, 3)));
}

Napi::Value maxAll(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::max(tensorArg(info, 0))); }
Napi::Value minAll(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::min(tensorArg(info, 0))); }

Napi::Value maxDim(const Napi::CallbackInfo& info) {
  return wrapPair(info.Env(), at::max(tensorArg(info, 0), intArg(info, 1), boolArg(info, 2)));
}

Napi::Value minDim(const Napi::CallbackInfo& info) {
  return wrapPair(info.Env(), at::min(tensorArg(info, 0), intArg(info, 1), boolArg(info, 2)));
}

Napi::Value argmax(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::argmax(tensorArg(info, 0), optionalIntArg(info, 1), boolArg(info, 2)));
}

Napi::Value argmin(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::argmin(tensorArg(info, 0), optionalIntArg(info, 1), boolArg(info, 2)));
}

Napi::Value logsumexp(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::logsumexp(tensorArg(info, 0), intListArg(info, 1), boolArg(info, 2)));
}

Napi::Value topk(const Napi::CallbackInfo& info) {
  // (t, k, dim, largest, sorted)
  return wrapPair(info.Env(), at::topk(tensorArg(info, 0), intArg(info, 1), intArg(info, 2),
                                       boolArg(info, 3), boolArg(info, 4)));
}

Napi::Value sort(const Napi::CallbackInfo& info) {
  // Stable, so equal values keep their index order (routing relies on it for tie-breaking).
  return wrapPair(info.Env(), at::sort(tensorArg(info, 0), Optional<bool>(true), intArg(info, 1), boolArg(info, 2)));
}

Napi::Value argsort(const Napi::CallbackInfo& info) {
  auto sorted = at::sort(tensorArg(info, 0), Optional<bool>(true), intArg(info, 1), boolArg(info, 2));
  return wrap(info.Env(), std::get<1>(sorted));
}

Napi::Value cumsum(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::cumsum(tensorArg(info, 0), intArg(info, 1), optionalDtypeArg(info, 2)));
}

Napi::Value all(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::all(tensorArg(info, 0))); }
Napi::Value any(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::any(tensorArg(info, 0))); }

Napi::Value norm(const Napi::CallbackInfo& info) {
  // Frobenius / p-norm over everything.
  return wrap(info.Env(), at::norm(tensorArg(info, 0), scalarArg(info, 1)));
}

}  // namespace

void registerReductions(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, sum);
  SM_DEFINE(exports, mean);
  SM_DEFINE(exports, prod);
  SM_DEFINE(exports, variance);
  SM_DEFINE(exports, maxAll);
  SM_DEFINE(exports, minAll);
  SM_DEFINE(exports, maxDim);
  SM_DEFINE(exports, minDim);
  SM_DEFINE(exports, argmax);
  SM_DEFINE(exports, argmin);
  SM_DEFINE(exports, logsumexp);
  SM_DEFINE(exports, topk);
  SM_DEFINE(exports, sort);
  SM_DEFINE(exports, argsort);
  SM_DEFINE(exports, cumsum);
  SM_DEFINE(exports, all);
  SM_DEFINE(exports, any);
  SM_DEFINE(exports, norm);
}

}  // namespace sm
