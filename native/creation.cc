// Tensor creation: from JavaScript buffers, constant fills, ranges and seeded random numbers.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "registry.h"
#include "representable.h"

namespace sm {
namespace {

// Seeded CPU generators owned by JavaScript Generator objects, addressed by id.
std::unordered_map<int32_t, at::Generator>& generators() {
  static auto* table = new std::unordered_map<int32_t, at::Generator>();  // never destroyed, as TensorStore
  return *table;
}

Optional<at::Generator> generatorArg(const Napi::CallbackInfo& info, size_t i) {
  if (isMissing(info, i)) return kNone;
  auto it = generators().find(static_cast<int32_t>(intArg(info, i)));
  if (it == generators().end()) throw std::invalid_argument("unknown or disposed generator");
  return it->second;
}

// Random tensors with an explicit generator are drawn on the CPU and then moved, so a seed gives
// the same numbers on every device. Meta tensors have no values to draw.
template <class Draw>
at::Tensor seeded(const at::TensorOptions& options, at::IntArrayRef shape, Draw draw) {
  if (options.device().is_meta()) return at::empty(shape, options);
  at::Tensor t = draw(options.device(at::kCPU));
  return options.device().is_cpu() ? t : t.to(options.device());
}

Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  // (typedArray, shape, dtypeOfData, targetDtype, device)
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "fromBuffer: expected a typed array");
  auto array = info[0].As<Napi::TypedArray>();
  auto shape = intListArg(info, 1);
  at::ScalarType source = dtypeArg(info, 2);
  at::ScalarType target = dtypeArg(info, 3);
  at::Device device = deviceArg(info, 4);
  int64_t numel = 1;
  for (auto d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape");
    numel *= d;
  }
  size_t elementBytes = at::elementSize(source);
  if (static_cast<size_t>(numel) * elementBytes != array.ByteLength()) {
    throw std::invalid_argument("data has " + std::to_string(array.ByteLength() / elementBytes) +
                                " elements but the shape needs " + std::to_string(numel));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(source));
  if (numel > 0) {
    auto* bytes = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    std::memcpy(t.data_ptr(), bytes, array.ByteLength());
  }
  if (target != source) {
    checkTensorFits(t, target);
    t = t.to(target);
  }
  if (!device.is_cpu()) t = t.to(device);
  return wrap(info.Env(), t);
}

Napi::Value zeros(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::zeros(intListArg(info, 0), optionsArg(info, 1)));
}

Napi::Value ones(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::ones(intListArg(info, 0), optionsArg(info, 1)));
}

Napi::Value empty(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::empty(intListArg(info, 0), optionsArg(info, 1)));
}

Napi::Value full(const Napi::CallbackInfo& info) {
  auto options = optionsArg(info, 2);
  at::Scalar value = scalarArg(info, 1);
  // at::full infers the dtype from the value when none is given: the value fits that one.
  if (options.has_dtype()) checkScalarFits(value, c10::typeMetaToScalarType(options.dtype()), "the fill value");
  return wrap(info.Env(), at::full(intListArg(info, 0), value, options));
}

Napi::Value arange(const Napi::CallbackInfo& info) {
  // (start, end, step, dtype?, device?)
  auto options = optionsArg(info, 3);
  at::Scalar start = scalarArg(info, 0), end = scalarArg(info, 1), step = scalarArg(info, 2);
  if (options.has_dtype()) {
    // An integral range whose values the dtype cannot hold would wrap (arange(0, 300) in uint8).
    const auto type = c10::typeMetaToScalarType(options.dtype());
    checkScalarFits(start, type, "arange start");
    checkScalarFits(step, type, "arange step");
    const double first = start.toDouble(), by = step.toDouble(), count = std::ceil((end.toDouble() - first) / by);
    if (std::isfinite(count) && count >= 1) checkScalarFits(at::Scalar(first + (count - 1) * by), type, "arange's last value");
  }
  return wrap(info.Env(), at::arange(start, end, step, options));
}

Napi::Value eye(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::eye(intArg(info, 0), intArg(info, 1), optionsArg(info, 2)));
}

Napi::Value rand(const Napi::CallbackInfo& info) {
  // (shape, generator?, dtype?, device?)
  auto options = optionsArg(info, 2);
  auto gen = generatorArg(info, 1);
  if (!gen) return wrap(info.Env(), at::rand(intListArg(info, 0), options));
  auto shape = intListArg(info, 0);
  return wrap(info.Env(), seeded(options, shape, [&](const at::TensorOptions& o) { return at::rand(shape, *gen, o); }));
}

Napi::Value randn(const Napi::CallbackInfo& info) {
  auto options = optionsArg(info, 2);
  auto gen = generatorArg(info, 1);
  if (!gen) return wrap(info.Env(), at::randn(intListArg(info, 0), options));
  auto shape = intListArg(info, 0);
  return wrap(info.Env(), seeded(options, shape, [&](const at::TensorOptions& o) { return at::randn(shape, *gen, o); }));
}

Napi::Value randint(const Napi::CallbackInfo& info) {
  // (low, high, shape, generator?, dtype?, device?)
  auto options = optionsArg(info, 4);
  if (isMissing(info, 4)) options = options.dtype(at::kLong);
  int64_t low = intArg(info, 0), high = intArg(info, 1);
  auto shape = intListArg(info, 2);
  auto gen = generatorArg(info, 3);
  if (!gen) return wrap(info.Env(), at::randint(low, high, shape, options));
  return wrap(info.Env(), seeded(options, shape, [&](const at::TensorOptions& o) { return at::randint(low, high, shape, *gen, o); }));
}

Napi::Value randperm(const Napi::CallbackInfo& info) {
  auto options = optionsArg(info, 2);
  if (isMissing(info, 2)) options = options.dtype(at::kLong);
  auto gen = generatorArg(info, 1);
  if (!gen) return wrap(info.Env(), at::randperm(intArg(info, 0), options));
  int64_t n = intArg(info, 0);
  return wrap(info.Env(), seeded(options, {n}, [&](const at::TensorOptions& o) { return at::randperm(n, *gen, o); }));
}

Napi::Value generatorNew(const Napi::CallbackInfo& info) {
  static int32_t nextId = 1;
  auto seed = static_cast<uint64_t>(intArg(info, 0));
  int32_t id = nextId++;
  generators().emplace(id, at::detail::createCPUGenerator(seed));
  return Napi::Number::New(info.Env(), id);
}

Napi::Value generatorFree(const Napi::CallbackInfo& info) {
  generators().erase(static_cast<int32_t>(intArg(info, 0)));
  return info.Env().Undefined();
}

// A device's default generator: the CPU's, or a GPU's (CUDA dropout draws from its own).
at::Generator defaultGenerator(const at::Device& device) {
  if (device.is_cpu()) return at::detail::getDefaultCPUGenerator();
  if (device.is_cuda() && !at::hasCUDA()) throw std::runtime_error("no CUDA device: cannot use the generator of " + device.str());
  return at::globalContext().defaultGenerator(device);
}

// A default generator's state (dropout, jitter, unseeded rand), for exact resumption.
Napi::Value getRngState(const Napi::CallbackInfo& info) {
  auto gen = defaultGenerator(deviceArg(info, 0));
  std::lock_guard<std::mutex> lock(gen.mutex());
  return wrap(info.Env(), gen.get_state());
}

Napi::Value setRngState(const Napi::CallbackInfo& info) {
  auto gen = defaultGenerator(deviceArg(info, 1));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(tensorArg(info, 0));
  return info.Env().Undefined();
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(static_cast<uint64_t>(intArg(info, 0)));
  return info.Env().Undefined();
}

}  // namespace

void registerCreation(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, fromBuffer);
  SM_DEFINE(exports, zeros);
  SM_DEFINE(exports, ones);
  SM_DEFINE(exports, empty);
  SM_DEFINE(exports, full);
  SM_DEFINE(exports, arange);
  SM_DEFINE(exports, eye);
  SM_DEFINE(exports, rand);
  SM_DEFINE(exports, randn);
  SM_DEFINE(exports, randint);
  SM_DEFINE(exports, randperm);
  SM_DEFINE(exports, generatorNew);
  SM_DEFINE(exports, generatorFree);
  SM_DEFINE(exports, manualSeed);
  SM_DEFINE(exports, getRngState);
  SM_DEFINE(exports, setRngState);
}

}  // namespace sm
