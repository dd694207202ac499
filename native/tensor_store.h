// Owns every tensor that JavaScript can see. JavaScript holds small integer handles into this
// table instead of wrapped objects: creating a handle costs a vector slot, not a V8 object with
// a finalizer, which keeps the per-op overhead close to Python's. Freeing is explicit
// (dispose/tidy); the JavaScript FinalizationRegistry is only a safety net.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "compat.h"

namespace sm {

class TensorStore {
 public:
  static TensorStore& instance();

  int32_t put(at::Tensor tensor);
  const at::Tensor& get(int32_t handle) const;  // throws std::out_of_range when not live
  bool live(int32_t handle) const;
  void release(int32_t handle);
  void replace(int32_t handle, at::Tensor tensor);

  // Live tensors and unique storage bytes per device, for memory().
  struct DeviceUsage {
    std::string device;
    int64_t tensors = 0;
    int64_t bytes = 0;
  };
  std::vector<DeviceUsage> usage() const;
  int64_t liveCount() const { return live_; }

  // Bytes not yet reported to V8 as external memory (reported in batches to stay off the hot path).
  void flushExternalMemory(napi_env env);

 private:
  void track(const at::Tensor& tensor, int64_t sign);

  std::vector<at::Tensor> slots_;
  std::vector<int32_t> free_;
  int64_t live_ = 0;
  int64_t pendingExternal_ = 0;
};

}  // namespace sm
