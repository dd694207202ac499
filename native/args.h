// Argument conversion between N-API values and ATen types, and the wrapper that turns every
// C++ exception into a JavaScript Error naming the operation and the tensors involved.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "compat.h"
#include "tensor_store.h"

namespace sm {

// Handles of the tensors fetched by the current call, so an error message can list their shapes
// and dtypes. Plain integers: copying tensors here would cost two atomic refcount updates per
// argument on every call.
struct CallContext {
  const char* op = "";
  std::vector<std::pair<size_t, int32_t>> handles;  // (argument index, handle)
};
CallContext& callContext();

const char* dtypeName(at::ScalarType type);
at::ScalarType dtypeFromCode(int32_t code);
int32_t dtypeCode(at::ScalarType type);
std::string describe(const at::Tensor& t);  // e.g. "float32[2, 3]"
std::string jsNumber(double v);             // as JavaScript prints it: NaN, Infinity, 1e+20, 0.5

// ---- reading arguments (each throws Napi::TypeError on a wrong JavaScript type) ----
// The reference points into the tensor table: use it before wrap() adds new tensors.
const at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i);
int64_t intArg(const Napi::CallbackInfo& info, size_t i);
double doubleArg(const Napi::CallbackInfo& info, size_t i);
bool boolArg(const Napi::CallbackInfo& info, size_t i);
std::string stringArg(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i);
at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i);
at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i);
at::Device deviceArg(const Napi::CallbackInfo& info, size_t i);
bool isMissing(const Napi::CallbackInfo& info, size_t i);
Optional<at::Tensor> optionalTensorArg(const Napi::CallbackInfo& info, size_t i);
Optional<int64_t> optionalIntArg(const Napi::CallbackInfo& info, size_t i);
Optional<at::ScalarType> optionalDtypeArg(const Napi::CallbackInfo& info, size_t i);
at::TensorOptions optionsArg(const Napi::CallbackInfo& info, size_t dtypeIndex);  // dtype, device

// ---- returning values ----
Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
Napi::Value wrapPair(Napi::Env env, std::tuple<at::Tensor, at::Tensor> pair);
Napi::Value intList(Napi::Env env, at::IntArrayRef values);

// ---- registration ----
using Entry = Napi::Value (*)(const Napi::CallbackInfo&);
Napi::Value guardedCall(const Napi::CallbackInfo& info, Entry entry);

template <Entry F>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return guardedCall(info, F);
}

template <Entry F>
void define(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, guarded<F>, name, const_cast<char*>(name)));
}

}  // namespace sm

#define SM_DEFINE(exports, fn) ::sm::define<fn>(env, exports, #fn)
