// What this binary was built against and the process-wide runtime settings.
#include <ATen/Parallel.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <ATen/Version.h>

#if defined(__linux__)
#include <sched.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "args.h"
#include "cpu_linear.h"
#include "registry.h"

#ifndef SM_LIBTORCH_DIR
#define SM_LIBTORCH_DIR ""
#endif
#ifndef SM_LIBTORCH_SOURCE
#define SM_LIBTORCH_SOURCE "unknown"
#endif

namespace sm {
namespace {

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("libtorchVersion", Napi::String::New(env, TORCH_VERSION));
  out.Set("libtorchDir", Napi::String::New(env, SM_LIBTORCH_DIR));
  out.Set("libtorchSource", Napi::String::New(env, SM_LIBTORCH_SOURCE));
#ifdef SM_WITH_CUDA
  out.Set("cudaKernels", Napi::Boolean::New(env, true));
#else
  out.Set("cudaKernels", Napi::Boolean::New(env, false));
#endif
  out.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  // What float32 CPU linear layers run on (cpu_linear.cc).
  out.Set("cpuGemm", Napi::String::New(env, onednnLinearAvailable() ? "onednn" : "aten"));
  return out;
}

Napi::Value showConfig(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::show_config());
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

// The CPUs this process may run on (its affinity mask, which containers and taskset narrow).
int64_t usableCpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// More threads than CPUs only slows libtorch down, and OpenMP starts them all: 10^5 never finish
// starting and 10^9 make libgomp abort the process on its next parallel region, out of memory.
Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = intArg(info, 0);
  const int64_t limit = usableCpus();
  if (n < 1 || n > limit) {
    throw std::invalid_argument("thread count must be between 1 and " + std::to_string(limit) +
                                " (the CPUs this process can run on), got " + std::to_string(n));
  }
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA() && at::getNumGPUs() > 0);
}

Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0);
}

// Returns freed heap memory to the operating system (glibc keeps it otherwise), so resident
// memory reflects what is in use; for memory diagnostics and long-running services.
Napi::Value releaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// The C library's heap (glibc's mallinfo2): what native code holds, what malloc keeps free
// without returning it to the system, summed over its arenas. Undefined elsewhere.
Napi::Value nativeHeapStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 m = mallinfo2();
  auto out = Napi::Object::New(env);
  out.Set("inUseBytes", Napi::Number::New(env, static_cast<double>(m.uordblks + m.hblkhd)));
  out.Set("freeBytes", Napi::Number::New(env, static_cast<double>(m.fordblks)));
  out.Set("heapBytes", Napi::Number::New(env, static_cast<double>(m.arena)));
  out.Set("mmapBytes", Napi::Number::New(env, static_cast<double>(m.hblkhd)));
  out.Set("mmapCount", Napi::Number::New(env, static_cast<double>(m.hblks)));
  out.Set("fastbinFreeBytes", Napi::Number::New(env, static_cast<double>(m.fsmblks)));
  out.Set("topPadBytes", Napi::Number::New(env, static_cast<double>(m.keepcost)));
  return out;
#else
  return env.Undefined();
#endif
}

// glibc serves blocks above a threshold (128 KiB, raised as such blocks are freed) with a fresh
// mmap, and returns the heap's free top to the system past another (twice that); each new
// activation tensor then has its pages faulted in and zeroed by the kernel again, every step.
// Fixing both thresholds high keeps freed tensor memory in the heap for the next step: a BERT-base
// step page-faulted half as often and ran ~10% faster. Resident memory then stays at the peak of
// a step (sm.releaseFreeMemory() returns the free part). 32 MiB is glibc's upper bound for the
// mmap threshold; larger tensors are still mapped per allocation. Skipped when the user tuned
// malloc through its own environment variables or turned our tuning off.
constexpr size_t kMmapThreshold = 32u << 20;
constexpr size_t kTrimThreshold = 1u << 30;

bool userTunedMalloc() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
         (tunables != nullptr && (std::string(tunables).find("glibc.malloc.mmap_threshold") != std::string::npos ||
                                  std::string(tunables).find("glibc.malloc.trim_threshold") != std::string::npos));
}

// The same switch as lib/tensor/runtime-env.ts (TUNE_ENV).
bool runtimeTuningEnabled() {
  const char* tune = std::getenv("SPARSE_MIXER_TUNE_RUNTIME");
  return tune == nullptr || std::string(tune) != "0";
}

bool keepFreedPagesApplied = false;

void keepFreedPages() {
#if defined(__GLIBC__)
  if (!runtimeTuningEnabled() || userTunedMalloc()) return;
  keepFreedPagesApplied = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
#endif
}

Napi::Value mallocTuning(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("applied", Napi::Boolean::New(env, keepFreedPagesApplied));
  out.Set("mmapThresholdBytes", Napi::Number::New(env, static_cast<double>(kMmapThreshold)));
  out.Set("trimThresholdBytes", Napi::Number::New(env, static_cast<double>(kTrimThreshold)));
  return out;
}

}  // namespace

// glibc gives each thread that allocates its own arena (up to 8 per core); the tokenizer's worker
// threads and the OpenMP workers then fragment memory across arenas and resident memory creeps
// up over a long run although nothing leaks. One arena keeps it flat (bench data, run side by side
// with MALLOC_ARENA_MAX=8, showed no throughput cost on 2 cores), unless the user chose a
// number with MALLOC_ARENA_MAX.
void limitMallocArenas() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 1);
#endif
}

void registerRuntime(Napi::Env env, Napi::Object exports) {
  limitMallocArenas();
  keepFreedPages();
  SM_DEFINE(exports, mallocTuning);
  SM_DEFINE(exports, buildInfo);
  SM_DEFINE(exports, showConfig);
  SM_DEFINE(exports, getNumThreads);
  SM_DEFINE(exports, setNumThreads);
  SM_DEFINE(exports, cudaIsAvailable);
  SM_DEFINE(exports, cudaDeviceCount);
  SM_DEFINE(exports, releaseFreeMemory);
  SM_DEFINE(exports, nativeHeapStats);
}

}  // namespace sm
