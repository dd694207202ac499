// Bucketed gradient averaging overlapped with backward, the scheme of PyTorch's DDP Reducer:
// parameters are packed into buckets (~25 MB, in reverse registration order, the order backward
// produces their gradients; the first bucket small so communication starts early). An autograd
// post-hook on each parameter's gradient accumulator copies the finished gradient into its
// bucket; a full bucket is all-reduced at once on the group's communication threads while
// backward goes on. Buckets start in index order on every rank, so collectives always match.
// finish() waits for the rest and writes the averages back into .grad.
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "../args.h"
#include "../registry.h"
#include "group.h"

namespace sm {
namespace {

using dist::Group;

struct Bucket {
  std::vector<size_t> params;
  std::vector<int64_t> offsets;
  at::Tensor flat;
  size_t pending = 0;
  bool launched = false;
  c10::intrusive_ptr<c10d::Work> work;
  double launchedAt = 0;
  std::shared_ptr<std::atomic<double>> doneAt = std::make_shared<std::atomic<double>>(0);
};

struct SyncStats {
  int64_t buckets = 0;
  int64_t bytes = 0;
  double commMs = 0;     // time some bucket was in flight (union of launch..done intervals)
  double exposedMs = 0;  // time finish() waited after backward ended
  double firstLaunchMs = 0;  // from prepare() to the first bucket's launch
};

class GradSync {
 public:
  GradSync(std::shared_ptr<Group> group, std::vector<at::Tensor> params, int64_t bucketBytes, int64_t firstBucketBytes, double divisor)
      : group_(std::move(group)), params_(std::move(params)), divisor_(divisor), alive_(std::make_shared<bool>(true)) {
    for (size_t i = 0; i < params_.size(); ++i) {
      const at::Tensor& p = params_[i];
      if (!p.is_leaf() || !p.requires_grad()) throw std::invalid_argument("gradient sync: parameter " + std::to_string(i) + " is not a leaf that requires grad");
    }
    planBuckets(bucketBytes, firstBucketBytes);
    for (size_t i = 0; i < params_.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(params_[i]);
      std::weak_ptr<bool> alive = alive_;
      auto hook = std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i, alive](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            if (alive.lock()) onGradReady(i);
            return outputs;
          });
      hookKeys_.push_back(acc->add_post_hook(std::move(hook)));
      accumulators_.push_back(std::move(acc));  // kept alive, so every backward reuses this node
    }
  }

  ~GradSync() {
    for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hookKeys_[i]);
  }

  // Before each backward: sync=false accumulates locally (gradient accumulation's micro-steps).
  void prepare(bool sync) {
    expecting_ = sync;
    if (!sync) return;
    preparedAt_ = dist::nowMs();
    nextLaunch_ = 0;
    for (auto& b : buckets_) {
      b.pending = b.params.size();
      b.launched = false;
      b.work.reset();
      b.doneAt->store(0);
    }
  }

  SyncStats finish() {
    SyncStats stats;
    if (!expecting_) return stats;
    expecting_ = false;
    double backwardEnd = dist::nowMs();
    // Parameters whose hook never fired (no gradient this step) go in as zeros.
    for (size_t b = nextLaunch_; b < buckets_.size(); ++b) {
      for (size_t k = 0; k < buckets_[b].params.size(); ++k) copyIn(b, k);
      buckets_[b].pending = 0;
    }
    while (nextLaunch_ < buckets_.size()) launch(nextLaunch_++);
    for (auto& b : buckets_)
      if (b.work) dist::waitFor(*group_, "gradient allReduce", b.work);  // none in a group of one
    double waited = dist::nowMs();
    // Averages back into .grad.
    for (auto& b : buckets_) {
      for (size_t k = 0; k < b.params.size(); ++k) {
        at::Tensor& p = params_[b.params[k]];
        at::Tensor slice = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(slice);
        } else {
          p.mutable_grad() = slice.clone();
        }
      }
    }
    stats.buckets = static_cast<int64_t>(buckets_.size());
    std::vector<std::pair<double, double>> spans;
    for (auto& b : buckets_) {
      stats.bytes += b.flat.numel() * static_cast<int64_t>(b.flat.element_size());
      double done = b.doneAt->load();
      spans.emplace_back(b.launchedAt, done > 0 ? done : waited);
    }
    std::sort(spans.begin(), spans.end());
    double end = -1;
    for (auto& [s, e] : spans) {
      if (s > end) {
        stats.commMs += e - s;
        end = e;
      } else if (e > end) {
        stats.commMs += e - end;
        end = e;
      }
    }
    stats.exposedMs = std::max(0.0, waited - backwardEnd);
    stats.firstLaunchMs = buckets_.empty() ? 0 : buckets_[0].launchedAt - preparedAt_;
    return stats;
  }

  size_t numBuckets() const { return buckets_.size(); }
  std::vector<std::vector<size_t>> bucketParams() const {
    std::vector<std::vector<size_t>> out;
    for (const auto& b : buckets_) out.push_back(b.params);
    return out;
  }

 private:
  void planBuckets(int64_t capBytes, int64_t firstCapBytes) {
    for (size_t n = params_.size(); n-- > 0;) {
      const at::Tensor& p = params_[n];
      int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
      bool fresh = buckets_.empty();
      if (!fresh) {
        Bucket& last = buckets_.back();
        const at::Tensor& first = params_[last.params[0]];
        int64_t cap = buckets_.size() == 1 ? firstCapBytes : capBytes;
        int64_t used = last.offsets.back() * static_cast<int64_t>(first.element_size()) + params_[last.params.back()].numel() * static_cast<int64_t>(first.element_size());
        fresh = first.scalar_type() != p.scalar_type() || first.device() != p.device() || used + bytes > cap;
      }
      if (fresh) buckets_.emplace_back();
      Bucket& b = buckets_.back();
      int64_t offset = b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel();
      b.params.push_back(n);
      b.offsets.push_back(offset);
    }
    for (size_t b = 0; b < buckets_.size(); ++b) {
      Bucket& bucket = buckets_[b];
      int64_t numel = bucket.offsets.back() + params_[bucket.params.back()].numel();
      bucket.flat = at::zeros({numel}, params_[bucket.params[0]].options().requires_grad(false));
      for (size_t k = 0; k < bucket.params.size(); ++k) where_[bucket.params[k]] = {b, k};
    }
  }

  void copyIn(size_t b, size_t k) {
    Bucket& bucket = buckets_[b];
    const at::Tensor& p = params_[bucket.params[k]];
    at::Tensor slice = bucket.flat.narrow(0, bucket.offsets[k], p.numel());
    const at::Tensor& g = p.grad();
    if (g.defined()) {
      slice.copy_(g.reshape({-1}));
    } else {
      slice.zero_();
    }
  }

  void onGradReady(size_t i) {
    if (!expecting_) return;
    auto [b, k] = where_.at(i);
    Bucket& bucket = buckets_[b];
    if (bucket.launched || bucket.pending == 0) return;  // reached twice in one backward: keep the first
    copyIn(b, k);
    if (--bucket.pending > 0) return;
    while (nextLaunch_ < buckets_.size() && buckets_[nextLaunch_].pending == 0) launch(nextLaunch_++);
  }

  void launch(size_t b) {
    Bucket& bucket = buckets_[b];
    if (divisor_ != 1.0) bucket.flat.div_(divisor_);
    std::vector<at::Tensor> tensors{bucket.flat};
    bucket.launchedAt = dist::nowMs();
    if (group_->size == 1) {
      bucket.work.reset();
      bucket.doneAt->store(bucket.launchedAt);
    } else {
      bucket.work = group_->backend->allreduce(tensors);
      auto doneAt = bucket.doneAt;
      bucket.work->getFuture()->addCallback([doneAt](c10::ivalue::Future&) { doneAt->store(dist::nowMs()); });
    }
    bucket.launched = true;
  }

  std::shared_ptr<Group> group_;
  std::vector<at::Tensor> params_;
  double divisor_;
  std::vector<Bucket> buckets_;
  std::map<size_t, std::pair<size_t, size_t>> where_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hookKeys_;
  std::shared_ptr<bool> alive_;
  bool expecting_ = false;
  size_t nextLaunch_ = 0;
  double preparedAt_ = 0;
};

std::map<int32_t, std::unique_ptr<GradSync>>& syncs() {
  static auto* table = new std::map<int32_t, std::unique_ptr<GradSync>>();
  return *table;
}

GradSync& syncArg(const Napi::CallbackInfo& info, size_t i) {
  auto it = syncs().find(static_cast<int32_t>(intArg(info, i)));
  if (it == syncs().end()) throw std::invalid_argument("unknown or freed gradient sync");
  return *it->second;
}

// gradSyncNew(group, params, bucketBytes, firstBucketBytes, divisor) -> { id, buckets: param indices per bucket }
Napi::Value gradSyncNew(const Napi::CallbackInfo& info) {
  auto g = dist::group(static_cast<int>(intArg(info, 0)));
  auto params = tensorListArg(info, 1);
  int64_t bucketBytes = intArg(info, 2), firstBucketBytes = intArg(info, 3);
  double divisor = doubleArg(info, 4);
  if (bucketBytes < 1 || firstBucketBytes < 1) throw std::invalid_argument("bucket sizes must be positive");
  if (!(divisor > 0)) throw std::invalid_argument("the gradient divisor must be positive");
  static int32_t next = 1;
  int32_t id = next++;
  auto sync = std::make_unique<GradSync>(g, std::move(params), bucketBytes, firstBucketBytes, divisor);
  auto plan = sync->bucketParams();
  syncs()[id] = std::move(sync);
  auto out = Napi::Object::New(info.Env());
  out.Set("id", id);
  auto buckets = Napi::Array::New(info.Env(), plan.size());
  for (uint32_t b = 0; b < plan.size(); ++b) {
    auto list = Napi::Array::New(info.Env(), plan[b].size());
    for (uint32_t k = 0; k < plan[b].size(); ++k) list.Set(k, static_cast<double>(plan[b][k]));
    buckets.Set(b, list);
  }
  out.Set("buckets", buckets);
  return out;
}

Napi::Value gradSyncPrepare(const Napi::CallbackInfo& info) {
  syncArg(info, 0).prepare(boolArg(info, 1));
  return info.Env().Undefined();
}

Napi::Value gradSyncFinish(const Napi::CallbackInfo& info) {
  SyncStats s = syncArg(info, 0).finish();
  auto out = Napi::Object::New(info.Env());
  out.Set("buckets", static_cast<double>(s.buckets));
  out.Set("bytes", static_cast<double>(s.bytes));
  out.Set("commMs", s.commMs);
  out.Set("exposedMs", s.exposedMs);
  out.Set("firstLaunchMs", s.firstLaunchMs);
  return out;
}

Napi::Value gradSyncFree(const Napi::CallbackInfo& info) {
  syncs().erase(static_cast<int32_t>(intArg(info, 0)));
  return info.Env().Undefined();
}

}  // namespace

void registerGradSync(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, gradSyncNew);
  SM_DEFINE(exports, gradSyncPrepare);
  SM_DEFINE(exports, gradSyncFinish);
  SM_DEFINE(exports, gradSyncFree);
}

}  // namespace sm
