// JavaScript bindings of the fused MoE operations.
#include "args.h"
#include "moe_kernels.h"
#include "registry.h"

namespace sm {
namespace {

// (probs [G,T,E], routerType 'experts_choose'|'tokens_choose', k, capacity, batchPrioritized)
Napi::Value moeRoute(const Napi::CallbackInfo& info) {
  const at::Tensor& probs = tensorArg(info, 0);
  std::string type = stringArg(info, 1);
  int64_t k = intArg(info, 2), capacity = intArg(info, 3);
  bool bpr = boolArg(info, 4);
  moe::Routing r;
  if (type == "experts_choose") {
    r = moe::expertsChoose(probs, capacity);
  } else if (type == "tokens_choose") {
    r = moe::tokensChoose(probs, k, capacity, bpr);
  } else {
    throw std::invalid_argument("router type must be 'experts_choose' or 'tokens_choose', got '" + type + "'");
  }
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("slotToken", wrap(env, r.slotToken));
  out.Set("expertFraction", wrap(env, r.expertFraction));
  out.Set("dispatchedTokens", wrap(env, r.dispatchedTokens));
  out.Set("filledSlots", wrap(env, r.filledSlots));
  return out;
}

Napi::Value moeDispatch(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), moe::dispatch(tensorArg(info, 0), tensorArg(info, 1)));
}

// (y, slotToken, slotWeight, tokensPerGroup, deterministic)
Napi::Value moeCombine(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), moe::combine(tensorArg(info, 0), tensorArg(info, 1), tensorArg(info, 2), intArg(info, 3),
                                       boolArg(info, 4)));
}

}  // namespace

void registerMoe(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, moeRoute);
  SM_DEFINE(exports, moeDispatch);
  SM_DEFINE(exports, moeCombine);
}

}  // namespace sm
