// CUDA device synchronisation and the caching allocator's memory statistics, for benchmarks that
// time asynchronous work and report peak memory. Without CUDA, synchronize is a no-op and the
// statistics calls say that this build has no CUDA.
#ifdef SM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <stdexcept>
#include <string>

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

#ifdef SM_WITH_CUDA
c10::DeviceIndex cudaIndex(const Napi::CallbackInfo& info) {
  int64_t index = intArg(info, 0);
  int count = static_cast<int>(c10::cuda::device_count());
  if (index < 0 || index >= count) {
    throw std::invalid_argument("CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(count) + " visible)");
  }
  return static_cast<c10::DeviceIndex>(index);
}
#else
[[noreturn]] void noCuda() { throw std::runtime_error("this build of sparse-mixer has no CUDA support"); }
#endif

Napi::Value cudaSynchronize(const Napi::CallbackInfo& info) {
#ifdef SM_WITH_CUDA
  if (c10::cuda::device_count() > 0) c10::cuda::device_synchronize();
#endif
  return info.Env().Undefined();
}

// Bytes held by tensors now and at most since the last reset, and bytes the allocator reserved.
Napi::Value cudaMemoryStats(const Napi::CallbackInfo& info) {
#ifdef SM_WITH_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cudaIndex(info));
  constexpr size_t kAggregate = 0;  // StatType::AGGREGATE; its namespace moved between releases
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("allocatedBytes", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[kAggregate].current)));
  out.Set("peakAllocatedBytes", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[kAggregate].peak)));
  out.Set("reservedBytes", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[kAggregate].current)));
  return out;
#else
  (void)info;
  noCuda();
#endif
}

Napi::Value cudaResetPeakMemory(const Napi::CallbackInfo& info) {
#ifdef SM_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(cudaIndex(info));
  return info.Env().Undefined();
#else
  (void)info;
  noCuda();
#endif
}

}  // namespace

void registerCudaRuntime(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, cudaSynchronize);
  SM_DEFINE(exports, cudaMemoryStats);
  SM_DEFINE(exports, cudaResetPeakMemory);
}

}  // namespace sm
