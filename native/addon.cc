// The module entry point: every binding group registers its functions on the exports object.
#include <napi.h>

#include "registry.h"
#include "warnings.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sm::collectLibtorchWarnings();
  sm::registerCreation(env, exports);
  sm::registerTensorInfo(env, exports);
  sm::registerViews(env, exports);
  sm::registerPointwise(env, exports);
  sm::registerReductions(env, exports);
  sm::registerLinalg(env, exports);
  sm::registerNN(env, exports);
  sm::registerAutograd(env, exports);
  sm::registerRuntime(env, exports);
  sm::registerMoe(env, exports);
  sm::registerSentencePiece(env, exports);
  sm::registerOptim(env, exports);
  sm::registerCudaRuntime(env, exports);
  sm::registerDistributed(env, exports);
  sm::registerGradSync(env, exports);
  sm::registerExpertExchange(env, exports);
  sm::registerLaunch(env, exports);
  sm::registerProfiler(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(sparse_mixer, Init)
