// libtorch warnings as Node warnings (see warnings.cc).
#pragma once

#include <napi.h>

namespace sm {
// Routes this thread's c10 warnings to a buffer instead of glog (called once, at load).
void collectLibtorchWarnings();
// Emits the buffered warnings with process.emitWarning (after each N-API call).
void emitLibtorchWarnings(Napi::Env env);
}  // namespace sm
