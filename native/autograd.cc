// Autograd: requires-grad flags, backward, gradients, grad mode and autocast.
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorArg(info, 0);
  bool flag = boolArg(info, 1);
  if (!flag && !t.is_leaf()) {
    throw std::invalid_argument(
        "requires_grad can only be changed on leaf tensors; use detach() for a non-leaf that should not require grad");
  }
  t.set_requires_grad(flag);
  return info.Env().Undefined();
}

Napi::Value requiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0).requires_grad());
}

Napi::Value isLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0).is_leaf());
}

Napi::Value retainGrad(const Napi::CallbackInfo& info) {
  tensorArg(info, 0).retain_grad();
  return info.Env().Undefined();
}

Napi::Value backward(const Napi::CallbackInfo& info) {
  // (t, gradient?, retainGraph)
  at::Tensor t = tensorArg(info, 0);
  auto gradient = optionalTensorArg(info, 1);
  if (!gradient && t.numel() != 1) {
    throw std::invalid_argument("backward() without a gradient needs a tensor with one element, got " +
                                describe(t));
  }
  // libtorch would sum a gradient of a broadcastable shape down to the output's (PyTorch's Python
  // front end refuses it): a [2] gradient for a scalar is a mistake, not a request to add.
  if (gradient && !gradient->sizes().equals(t.sizes())) {
    throw std::invalid_argument("the gradient must have the output's shape: expected " + describe(t) + ", got " + describe(*gradient));
  }
  t.backward(gradient ? *gradient : at::Tensor(), boolArg(info, 2));
  return info.Env().Undefined();
}

Napi::Value grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = tensorArg(info, 0).grad();
  if (!g.defined()) return info.Env().Undefined();
  return wrap(info.Env(), g);
}

Napi::Value setGrad(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  if (isMissing(info, 1)) {
    t.mutable_grad().reset();
  } else {
    const at::Tensor& g = tensorArg(info, 1);
    if (g.unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) {
      throw std::invalid_argument("a tensor cannot be its own gradient");
    }
    if (!g.sizes().equals(t.sizes()) || g.scalar_type() != t.scalar_type() || g.device() != t.device()) {
      throw std::invalid_argument("the gradient must match the tensor's shape, dtype and device: expected " + describe(t) +
                                  ", got " + describe(g));
    }
    t.mutable_grad() = g.detach();
  }
  return info.Env().Undefined();
}

// Replaces a tensor's data in place (like `param.data = other` in PyTorch): the handle, its
// requires-grad flag and its identity for optimizers stay; dtype, device and shape follow `other`.
Napi::Value setData(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  t.set_data(tensorArg(info, 1).detach());
  return info.Env().Undefined();
}

Napi::Value detach(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).detach());
}

Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  c10::GradMode::set_enabled(boolArg(info, 0));
  return info.Env().Undefined();
}

// Autocast state of one device type.
struct AutocastState {
  bool enabled;
  at::ScalarType dtype;
};

AutocastState getAutocast(bool cuda) {
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 4 || TORCH_VERSION_MAJOR >= 3
  auto type = cuda ? at::kCUDA : at::kCPU;
  return {at::autocast::is_autocast_enabled(type), at::autocast::get_autocast_dtype(type)};
#else
  if (cuda) return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

void setAutocastState(bool cuda, AutocastState s) {
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 4 || TORCH_VERSION_MAJOR >= 3
  auto type = cuda ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(type, s.dtype);
  at::autocast::set_autocast_enabled(type, s.enabled);
#else
  // The dtype first: when the device refuses it, nothing has changed yet.
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(s.dtype);
    at::autocast::set_enabled(s.enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(s.dtype);
    at::autocast::set_cpu_enabled(s.enabled);
  }
#endif
}

bool cudaDeviceArg(const Napi::CallbackInfo& info, size_t i) {
  std::string device = stringArg(info, i);
  if (device != "cuda" && device != "cpu") throw std::invalid_argument("autocast device must be 'cuda' or 'cpu'");
  return device == "cuda";
}

// (device, dtype, enabled) -> the state before, to hand back to autocastExit.
Napi::Value autocastEnter(const Napi::CallbackInfo& info) {
  bool cuda = cudaDeviceArg(info, 0);
  // Arguments first: a throw after increment_nesting would leave the nesting count raised for good.
  const at::ScalarType dtype = dtypeArg(info, 1);
  const bool enabled = boolArg(info, 2);
  if (dtype != at::kHalf && dtype != at::kBFloat16) throw std::invalid_argument("autocast dtype must be float16 or bfloat16");
  AutocastState previous = getAutocast(cuda);
  // A dtype this libtorch refuses for the device (1.13's CPU autocast takes bfloat16 only) throws
  // half way through: put the previous state back, or autocast stays on for the rest of the process.
  try {
    setAutocastState(cuda, {enabled, dtype});
  } catch (...) {
    setAutocastState(cuda, previous);
    throw;
  }
  at::autocast::increment_nesting();
  auto out = Napi::Object::New(info.Env());
  out.Set("enabled", Napi::Boolean::New(info.Env(), previous.enabled));
  out.Set("dtype", Napi::Number::New(info.Env(), dtypeCode(previous.dtype)));
  return out;
}

// (device, previousEnabled, previousDtype)
Napi::Value autocastExit(const Napi::CallbackInfo& info) {
  bool cuda = cudaDeviceArg(info, 0);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // cached weight casts are stale
  setAutocastState(cuda, {boolArg(info, 1), dtypeArg(info, 2)});
  return info.Env().Undefined();
}

Napi::Value isAutocastEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), getAutocast(cudaDeviceArg(info, 0)).enabled);
}

}  // namespace

void registerAutograd(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, setRequiresGrad);
  SM_DEFINE(exports, requiresGrad);
  SM_DEFINE(exports, isLeaf);
  SM_DEFINE(exports, retainGrad);
  SM_DEFINE(exports, backward);
  SM_DEFINE(exports, grad);
  SM_DEFINE(exports, setGrad);
  SM_DEFINE(exports, setData);
  SM_DEFINE(exports, detach);
  SM_DEFINE(exports, isGradEnabled);
  SM_DEFINE(exports, setGradEnabled);
  SM_DEFINE(exports, autocastEnter);
  SM_DEFINE(exports, autocastExit);
  SM_DEFINE(exports, isAutocastEnabled);
}

}  // namespace sm
