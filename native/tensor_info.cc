// Tensor metadata, read-back to JavaScript buffers (sync and async) and freeing handles.
#include <cstring>

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

// The tensor's bytes as JavaScript sees them: contiguous, on the CPU, with float16/bfloat16
// widened to float32 (JavaScript has no typed array for them).
at::Tensor hostView(const at::Tensor& t) {
  at::Tensor out = t.detach();
  if (out.scalar_type() == at::kHalf || out.scalar_type() == at::kBFloat16) out = out.to(at::kFloat);
  if (!out.is_cpu()) out = out.to(at::kCPU);
  return out.contiguous();
}

Napi::ArrayBuffer toArrayBuffer(Napi::Env env, const at::Tensor& host) {
  size_t bytes = host.numel() * host.element_size();
  auto buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buffer.Data(), host.data_ptr(), bytes);
  return buffer;
}

Napi::Value shape(const Napi::CallbackInfo& info) {
  return intList(info.Env(), tensorArg(info, 0).sizes());
}

Napi::Value strides(const Napi::CallbackInfo& info) {
  return intList(info.Env(), tensorArg(info, 0).strides());
}

Napi::Value dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), dtypeCode(tensorArg(info, 0).scalar_type()));
}

Napi::Value device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensorArg(info, 0).device().str());
}

Napi::Value dataSync(const Napi::CallbackInfo& info) {
  return toArrayBuffer(info.Env(), hostView(tensorArg(info, 0)));
}

Napi::Value item(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0);
  if (t.numel() != 1) {
    throw std::invalid_argument("item() needs a tensor with one element, got " + std::to_string(t.numel()));
  }
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isComplex()) throw std::invalid_argument("item() of a complex tensor");
  return Napi::Number::New(info.Env(), s.toDouble());
}

class ReadBackWorker : public Napi::AsyncWorker {
 public:
  ReadBackWorker(Napi::Env env, at::Tensor tensor)
      : Napi::AsyncWorker(env), tensor_(std::move(tensor)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      at::Tensor host = hostView(tensor_);
      bytes_.resize(host.numel() * host.element_size());
      if (!bytes_.empty()) std::memcpy(bytes_.data(), host.data_ptr(), bytes_.size());
    } catch (const std::exception& e) {
      SetError(std::string("dataAsync: ") + e.what());
    }
    tensor_ = at::Tensor();
  }

  void OnOK() override {
    auto buffer = Napi::ArrayBuffer::New(Env(), bytes_.size());
    if (!bytes_.empty()) std::memcpy(buffer.Data(), bytes_.data(), bytes_.size());
    bytes_.clear();
    deferred_.Resolve(buffer);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  at::Tensor tensor_;
  std::vector<uint8_t> bytes_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value dataAsync(const Napi::CallbackInfo& info) {
  auto* worker = new ReadBackWorker(info.Env(), tensorArg(info, 0).detach());
  auto promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value release(const Napi::CallbackInfo& info) {
  TensorStore::instance().release(static_cast<int32_t>(intArg(info, 0)));
  return info.Env().Undefined();
}

Napi::Value releaseMany(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "releaseMany: expected an Int32Array");
  auto handles = info[0].As<Napi::Int32Array>();
  size_t count = isMissing(info, 1) ? handles.ElementLength() : static_cast<size_t>(intArg(info, 1));
  auto& store = TensorStore::instance();
  for (size_t k = 0; k < count && k < handles.ElementLength(); ++k) store.release(handles[k]);
  store.flushExternalMemory(info.Env());
  return info.Env().Undefined();
}

Napi::Value isLive(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorStore::instance().live(static_cast<int32_t>(intArg(info, 0))));
}

Napi::Value memoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto result = Napi::Object::New(env);
  auto& store = TensorStore::instance();
  result.Set("numTensors", Napi::Number::New(env, static_cast<double>(store.liveCount())));
  auto devices = Napi::Object::New(env);
  for (const auto& u : store.usage()) {
    auto entry = Napi::Object::New(env);
    entry.Set("numTensors", Napi::Number::New(env, static_cast<double>(u.tensors)));
    entry.Set("numBytes", Napi::Number::New(env, static_cast<double>(u.bytes)));
    devices.Set(u.device, entry);
  }
  result.Set("devices", devices);
  return result;
}

}  // namespace

void registerTensorInfo(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, shape);
  SM_DEFINE(exports, strides);
  SM_DEFINE(exports, dtype);
  SM_DEFINE(exports, device);
  SM_DEFINE(exports, dataSync);
  SM_DEFINE(exports, dataAsync);
  SM_DEFINE(exports, item);
  SM_DEFINE(exports, release);
  SM_DEFINE(exports, releaseMany);
  SM_DEFINE(exports, isLive);
  SM_DEFINE(exports, memoryStats);
}

}  // namespace sm
