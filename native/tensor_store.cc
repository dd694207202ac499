#include "tensor_store.h"

#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace sm {

namespace {
constexpr int64_t kExternalFlushBytes = 1 << 20;

int64_t storageBytes(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}
}  // namespace

TensorStore& TensorStore::instance() {
  // Never destroyed: at process exit the tensors would be freed after libtorch's own statics
  // (allocators, thread pools) are gone, a crash for nothing since the OS reclaims the memory.
  static TensorStore* store = new TensorStore();
  return *store;
}

int32_t TensorStore::put(at::Tensor tensor) {
  track(tensor, +1);
  ++live_;
  if (!free_.empty()) {
    int32_t handle = free_.back();
    free_.pop_back();
    slots_[handle] = std::move(tensor);
    return handle;
  }
  slots_.push_back(std::move(tensor));
  return static_cast<int32_t>(slots_.size() - 1);
}

bool TensorStore::live(int32_t handle) const {
  return handle >= 0 && static_cast<size_t>(handle) < slots_.size() && slots_[handle].defined();
}

const at::Tensor& TensorStore::get(int32_t handle) const {
  if (!live(handle)) {
    throw std::out_of_range("tensor handle " + std::to_string(handle) +
                            " is not live (the tensor was disposed)");
  }
  return slots_[handle];
}

void TensorStore::release(int32_t handle) {
  if (!live(handle)) return;
  track(slots_[handle], -1);
  --live_;
  slots_[handle] = at::Tensor();
  free_.push_back(handle);
}

void TensorStore::replace(int32_t handle, at::Tensor tensor) {
  get(handle);
  track(slots_[handle], -1);
  track(tensor, +1);
  slots_[handle] = std::move(tensor);
}

void TensorStore::track(const at::Tensor& tensor, int64_t sign) {
  // Views share storage, so this overstates external memory; it only steers V8's GC pressure.
  if (tensor.defined() && tensor.is_cpu()) pendingExternal_ += sign * storageBytes(tensor);
}

void TensorStore::flushExternalMemory(napi_env env) {
  if (pendingExternal_ > kExternalFlushBytes || pendingExternal_ < -kExternalFlushBytes) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env, pendingExternal_, &ignored);
    pendingExternal_ = 0;
  }
}

std::vector<TensorStore::DeviceUsage> TensorStore::usage() const {
  std::map<std::string, DeviceUsage> byDevice;
  std::set<const void*> seenStorage;
  for (const auto& t : slots_) {
    if (!t.defined()) continue;
    std::string device = t.device().str();
    auto& u = byDevice[device];
    u.device = device;
    u.tensors += 1;
    if (t.has_storage() && !t.is_meta()) {
      const void* key = t.storage().unsafeGetStorageImpl();
      if (seenStorage.insert(key).second) u.bytes += storageBytes(t);
    }
  }
  std::vector<DeviceUsage> out;
  for (auto& kv : byDevice) out.push_back(kv.second);
  return out;
}

}  // namespace sm
