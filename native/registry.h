// Each group of bindings lives in its own file and adds itself to the exports here.
#pragma once

#include <napi.h>

namespace sm {
void registerCreation(Napi::Env env, Napi::Object exports);
void registerTensorInfo(Napi::Env env, Napi::Object exports);
void registerViews(Napi::Env env, Napi::Object exports);
void registerPointwise(Napi::Env env, Napi::Object exports);
void registerReductions(Napi::Env env, Napi::Object exports);
void registerLinalg(Napi::Env env, Napi::Object exports);
void registerNN(Napi::Env env, Napi::Object exports);
void registerAutograd(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerMoe(Napi::Env env, Napi::Object exports);
void registerSentencePiece(Napi::Env env, Napi::Object exports);
void registerOptim(Napi::Env env, Napi::Object exports);
void registerCudaRuntime(Napi::Env env, Napi::Object exports);
void registerDistributed(Napi::Env env, Napi::Object exports);
void registerGradSync(Napi::Env env, Napi::Object exports);
void registerExpertExchange(Napi::Env env, Napi::Object exports);
void registerLaunch(Napi::Env env, Napi::Object exports);
void registerProfiler(Napi::Env env, Napi::Object exports);
}  // namespace sm
