// Op-level timings for the time breakdown (bench models --breakdown): libtorch's profiler records
// every op, forward and backward (the autograd engine runs each backward node inside a record
// with the forward op's sequence number), and user scopes that name the model's parts. The ranges
// go to JavaScript as parallel arrays; lib/tensor/profiler.ts attributes them to the parts.
#include <ATen/SequenceNumber.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <map>
#include <memory>

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

namespace prof = torch::autograd::profiler;

// Open user scopes, innermost last (RecordFunction ends a range when it is destroyed), with the
// autograd sequence number at their start: the backward nodes a scope's forward creates have the
// numbers from there to the one at its end, which is how backward time finds its part.
struct OpenScope {
  std::unique_ptr<at::RecordFunction> record;
  std::string name;
  uint64_t firstSequence;
};
struct ClosedScope {
  std::string name;
  uint64_t firstSequence, endSequence;
};

std::vector<OpenScope>& openScopes() {
  static auto* scopes = new std::vector<OpenScope>();
  return *scopes;
}

std::vector<ClosedScope>& closedScopes() {
  static auto* scopes = new std::vector<ClosedScope>();
  return *scopes;
}

bool& running() {
  static bool on = false;
  return on;
}

// profilerStart(cuda): records CPU times, and CUDA event times when cuda is true.
Napi::Value profilerStart(const Napi::CallbackInfo& info) {
  if (running()) throw std::runtime_error("the profiler is already running");
  bool cuda = boolArg(info, 0);
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(cuda ? torch::profiler::impl::ProfilerState::CUDA : torch::profiler::impl::ProfilerState::CPU));
  running() = true;
  closedScopes().clear();
  return info.Env().Undefined();
}

Napi::Value profilerPushScope(const Napi::CallbackInfo& info) {
  std::string name = stringArg(info, 0);
  auto scope = std::make_unique<at::RecordFunction>(at::RecordScope::USER_SCOPE);
  if (scope->isActive()) scope->before(name);
  openScopes().push_back({std::move(scope), name, at::sequence_number::peek()});
  return info.Env().Undefined();
}

Napi::Value profilerPopScope(const Napi::CallbackInfo& info) {
  if (openScopes().empty()) throw std::runtime_error("no profiler scope is open");
  OpenScope& top = openScopes().back();
  if (running()) closedScopes().push_back({top.name, top.firstSequence, at::sequence_number::peek()});
  openScopes().pop_back();
  return info.Env().Undefined();
}

// profilerStop() -> { names, name: Int32Array (index into names), thread, start, end (µs),
// sequence (-1 when none), userScope (1 for scopes), cuda (µs of the range on the GPU, or -1) }.
Napi::Value profilerStop(const Napi::CallbackInfo& info) {
  if (!running()) throw std::runtime_error("the profiler is not running");
  openScopes().clear();
  auto lists = prof::disableProfilerLegacy();
  running() = false;
  struct Range {
    int32_t name;
    int32_t thread;
    double start, end, sequence, cuda;
    int32_t user;
  };
  std::vector<Range> ranges;
  std::vector<std::string> names;
  std::map<std::string, int32_t> nameIndex;
  for (auto& list : lists) {
    // Pushes and pops pair up by handle within a thread's list.
    std::map<at::RecordFunctionHandle, const prof::LegacyEvent*> open;
    for (const auto& e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        open[e.handle()] = &e;
      } else if (e.kind() == prof::EventKind::PopRange) {
        auto it = open.find(e.handle());
        if (it == open.end()) continue;
        const prof::LegacyEvent& push = *it->second;
        open.erase(it);
        std::string name = push.name();
        auto [where, fresh] = nameIndex.emplace(name, static_cast<int32_t>(names.size()));
        if (fresh) names.push_back(name);
        double cuda = push.hasCuda() && e.hasCuda() ? push.cudaElapsedUs(e) : -1;
        ranges.push_back({where->second, static_cast<int32_t>(push.threadId()), push.cpuUs(), e.cpuUs(), static_cast<double>(push.sequenceNr()), cuda,
                          push.scope() == static_cast<uint8_t>(at::RecordScope::USER_SCOPE) ? 1 : 0});
      }
    }
  }
  Napi::Env env = info.Env();
  const size_t n = ranges.size();
  auto nameArr = Napi::Int32Array::New(env, n);
  auto thread = Napi::Int32Array::New(env, n);
  auto user = Napi::Int32Array::New(env, n);
  auto start = Napi::Float64Array::New(env, n);
  auto end = Napi::Float64Array::New(env, n);
  auto sequence = Napi::Float64Array::New(env, n);
  auto cuda = Napi::Float64Array::New(env, n);
  for (size_t k = 0; k < n; ++k) {
    nameArr[k] = ranges[k].name;
    thread[k] = ranges[k].thread;
    user[k] = ranges[k].user;
    start[k] = ranges[k].start;
    end[k] = ranges[k].end;
    sequence[k] = ranges[k].sequence;
    cuda[k] = ranges[k].cuda;
  }
  auto nameList = Napi::Array::New(env, names.size());
  for (uint32_t k = 0; k < names.size(); ++k) nameList.Set(k, names[k]);
  const auto& closed = closedScopes();
  auto scopeNames = Napi::Array::New(env, closed.size());
  auto firstSeq = Napi::Float64Array::New(env, closed.size());
  auto endSeq = Napi::Float64Array::New(env, closed.size());
  for (size_t k = 0; k < closed.size(); ++k) {
    scopeNames.Set(static_cast<uint32_t>(k), closed[k].name);
    firstSeq[k] = static_cast<double>(closed[k].firstSequence);
    endSeq[k] = static_cast<double>(closed[k].endSequence);
  }
  auto scopes = Napi::Object::New(env);
  scopes.Set("name", scopeNames);
  scopes.Set("firstSequence", firstSeq);
  scopes.Set("endSequence", endSeq);
  auto out = Napi::Object::New(env);
  out.Set("scopes", scopes);
  out.Set("names", nameList);
  out.Set("name", nameArr);
  out.Set("thread", thread);
  out.Set("userScope", user);
  out.Set("start", start);
  out.Set("end", end);
  out.Set("sequence", sequence);
  out.Set("cuda", cuda);
  return out;
}

}  // namespace

void registerProfiler(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, profilerStart);
  SM_DEFINE(exports, profilerPushScope);
  SM_DEFINE(exports, profilerPopScope);
  SM_DEFINE(exports, profilerStop);
}

}  // namespace sm
