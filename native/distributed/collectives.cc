// N-API bindings for process groups and collectives. Every collective starts asynchronously and
// returns a work id; JavaScript waits on it synchronously (workWait) or through a Promise settled
// off the JavaScript thread (workWaitAsync). Tensors are updated in place, as in torch.distributed.
#include <map>

#include "../args.h"
#include "../registry.h"
#include "group.h"

namespace sm {
namespace {

using dist::Group;

struct PendingWork {
  c10::intrusive_ptr<c10d::Work> work;
  std::shared_ptr<Group> group;
  std::string collective;
};

std::map<int32_t, PendingWork>& works() {
  static auto* table = new std::map<int32_t, PendingWork>();
  return *table;
}

Napi::Value track(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, std::shared_ptr<Group> g, const char* collective) {
  static int32_t next = 1;
  int32_t id = next++;
  works()[id] = PendingWork{std::move(work), std::move(g), collective};
  return Napi::Number::New(env, id);
}

PendingWork takeWork(const Napi::CallbackInfo& info, size_t i) {
  int32_t id = static_cast<int32_t>(intArg(info, i));
  auto it = works().find(id);
  if (it == works().end()) throw std::invalid_argument("unknown or already finished work " + std::to_string(id));
  PendingWork w = std::move(it->second);
  works().erase(it);
  return w;
}

std::shared_ptr<Group> groupArg(const Napi::CallbackInfo& info, size_t i) { return dist::group(static_cast<int>(intArg(info, i))); }

// Collectives read and write the tensors' memory directly: a strided view cannot take part.
void checkDense(const std::vector<at::Tensor>& ts, const char* collective) {
  if (ts.empty()) throw std::invalid_argument(std::string(collective) + ": no tensors given");
  for (const auto& t : ts) {
    if (!t.is_contiguous()) throw std::invalid_argument(std::string(collective) + ": tensors must be contiguous, got a strided " + describe(t) + " (call contiguous() first)");
    if (t.device() != ts[0].device() || t.scalar_type() != ts[0].scalar_type()) {
      throw std::invalid_argument(std::string(collective) + ": all tensors must share dtype and device, got " + describe(ts[0]) + " and " + describe(t));
    }
  }
}

c10d::ReduceOp reduceOpArg(const Napi::CallbackInfo& info, size_t i) {
  std::string op = stringArg(info, i);
  if (op == "sum") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (op == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  if (op == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (op == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  throw std::invalid_argument("unknown reduce op '" + op + "' (sum, product, min or max)");
}

// distInit({ rank, worldSize, masterAddr, masterPort, timeoutMs }) -> { group, rank, size }
Napi::Value distInit(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "distInit: expected an options object");
  auto o = info[0].As<Napi::Object>();
  auto number = [&](const char* key) {
    auto v = o.Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("distInit: ") + key + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  };
  dist::WorldOptions w;
  w.rank = static_cast<int>(number("rank"));
  w.worldSize = static_cast<int>(number("worldSize"));
  w.masterPort = static_cast<int>(number("masterPort"));
  w.timeout = std::chrono::milliseconds(static_cast<int64_t>(number("timeoutMs")));
  auto addr = o.Get("masterAddr");
  if (!addr.IsString()) throw Napi::TypeError::New(info.Env(), "distInit: masterAddr must be a string");
  w.masterAddr = addr.As<Napi::String>().Utf8Value();
  auto g = dist::initWorld(w);
  auto out = Napi::Object::New(info.Env());
  out.Set("group", g->id);
  out.Set("rank", g->rank);
  out.Set("size", g->size);
  return out;
}

// distNewGroup(globalRanks, name) -> group id, or -1 when this rank is not a member.
Napi::Value distNewGroup(const Napi::CallbackInfo& info) {
  auto ranks = intListArg(info, 0);
  std::vector<int> members(ranks.begin(), ranks.end());
  auto g = dist::newGroup(members, stringArg(info, 1));
  return Napi::Number::New(info.Env(), g ? g->id : -1);
}

Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  works().clear();
  dist::destroyAll();
  return info.Env().Undefined();
}

Napi::Value distIsInitialized(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), dist::initialized()); }

Napi::Value distBackends(const Napi::CallbackInfo& info) {
  auto names = dist::backends();
  auto out = Napi::Array::New(info.Env(), names.size());
  for (uint32_t k = 0; k < names.size(); ++k) out.Set(k, names[k]);
  return out;
}

// distAllReduce(group, tensors, op) -> work
Napi::Value distAllReduce(const Napi::CallbackInfo& info) {
  auto g = groupArg(info, 0);
  auto tensors = tensorListArg(info, 1);
  checkDense(tensors, "allReduce");
  c10d::AllreduceOptions opts;
  opts.reduceOp = reduceOpArg(info, 2);
  return track(info.Env(), g->backend->allreduce(tensors, opts), g, "allReduce");
}

// distBroadcast(group, tensors, srcRankInGroup) -> work
Napi::Value distBroadcast(const Napi::CallbackInfo& info) {
  auto g = groupArg(info, 0);
  auto tensors = tensorListArg(info, 1);
  checkDense(tensors, "broadcast");
  int64_t src = intArg(info, 2);
  if (src < 0 || src >= g->size) throw std::invalid_argument("broadcast: source rank " + std::to_string(src) + " is outside a group of " + std::to_string(g->size));
  c10d::BroadcastOptions opts;
  opts.rootRank = src;
  return track(info.Env(), g->backend->broadcast(tensors, opts), g, "broadcast");
}

// distAllGather(group, tensor) -> { work, outputs: handles (one per rank, valid once the work is done) }
Napi::Value distAllGather(const Napi::CallbackInfo& info) {
  auto g = groupArg(info, 0);
  std::vector<at::Tensor> input{tensorArg(info, 1)};
  checkDense(input, "allGather");
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < g->size; ++r) outputs[0].push_back(at::empty_like(input[0]));
  auto work = g->backend->allgather(outputs, input);
  auto out = Napi::Object::New(info.Env());
  out.Set("outputs", wrapList(info.Env(), outputs[0]));
  out.Set("work", track(info.Env(), work, g, "allGather"));
  return out;
}

// distAllToAll(group, input, outputSplits?, inputSplits?) -> { work, output }. Splits count rows
// of dim 0; without them dim 0 is split evenly.
Napi::Value distAllToAll(const Napi::CallbackInfo& info) {
  auto g = groupArg(info, 0);
  at::Tensor input = tensorArg(info, 1);
  checkDense({input}, "allToAll");
  if (input.dim() < 1) throw std::invalid_argument("allToAll: the input needs at least one dimension, got " + describe(input));
  std::vector<int64_t> outSplits = isMissing(info, 2) ? std::vector<int64_t>{} : intListArg(info, 2);
  std::vector<int64_t> inSplits = isMissing(info, 3) ? std::vector<int64_t>{} : intListArg(info, 3);
  auto checkSplits = [&](const std::vector<int64_t>& s, const char* which) {
    if (s.empty()) return;
    if (static_cast<int>(s.size()) != g->size) {
      throw std::invalid_argument(std::string("allToAll: ") + which + " has " + std::to_string(s.size()) + " entries for a group of " + std::to_string(g->size));
    }
    for (auto v : s)
      if (v < 0) throw std::invalid_argument(std::string("allToAll: ") + which + " has a negative size");
  };
  checkSplits(outSplits, "outputSplits");
  checkSplits(inSplits, "inputSplits");
  int64_t inRows = 0;
  for (auto v : inSplits) inRows += v;
  if (!inSplits.empty() && inRows != input.size(0)) {
    throw std::invalid_argument("allToAll: inputSplits add up to " + std::to_string(inRows) + " rows, the input has " + std::to_string(input.size(0)));
  }
  if (inSplits.empty() && input.size(0) % g->size != 0) {
    throw std::invalid_argument("allToAll: " + std::to_string(input.size(0)) + " rows do not split evenly over " + std::to_string(g->size) + " ranks; give the split sizes");
  }
  int64_t outRows = input.size(0);
  if (!outSplits.empty()) {
    outRows = 0;
    for (auto v : outSplits) outRows += v;
  }
  auto shape = input.sizes().vec();
  shape[0] = outRows;
  at::Tensor output = at::empty(shape, input.options());
  auto work = g->backend->alltoall_base(output, input, outSplits, inSplits);
  auto out = Napi::Object::New(info.Env());
  out.Set("output", wrap(info.Env(), output));
  out.Set("work", track(info.Env(), work, g, "allToAll"));
  return out;
}

Napi::Value distBarrier(const Napi::CallbackInfo& info) {
  auto g = groupArg(info, 0);
  return track(info.Env(), g->backend->barrier(), g, "barrier");
}

Napi::Value workWait(const Napi::CallbackInfo& info) {
  PendingWork w = takeWork(info, 0);
  dist::waitFor(*w.group, w.collective.c_str(), w.work);
  return info.Env().Undefined();
}

Napi::Value workIsCompleted(const Napi::CallbackInfo& info) {
  int32_t id = static_cast<int32_t>(intArg(info, 0));
  auto it = works().find(id);
  return Napi::Boolean::New(info.Env(), it == works().end() || it->second.work->isCompleted());
}

// Waits on a libuv worker thread, so the event loop keeps running meanwhile.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, PendingWork w) : Napi::AsyncWorker(env), work_(std::move(w)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      dist::waitFor(*work_.group, work_.collective.c_str(), work_.work);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PendingWork work_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value workWaitAsync(const Napi::CallbackInfo& info) {
  auto* worker = new WaitWorker(info.Env(), takeWork(info, 0));
  auto promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void registerDistributed(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, distInit);
  SM_DEFINE(exports, distNewGroup);
  SM_DEFINE(exports, distDestroy);
  SM_DEFINE(exports, distIsInitialized);
  SM_DEFINE(exports, distBackends);
  SM_DEFINE(exports, distAllReduce);
  SM_DEFINE(exports, distBroadcast);
  SM_DEFINE(exports, distAllGather);
  SM_DEFINE(exports, distAllToAll);
  SM_DEFINE(exports, distBarrier);
  SM_DEFINE(exports, workWait);
  SM_DEFINE(exports, workIsCompleted);
  SM_DEFINE(exports, workWaitAsync);
}

}  // namespace sm
