// Bucketed gradient averaging overlapped with backward, the scheme of PyTorch's DDP Reducer:
// parameters are packed into buckets (~25 MB, in reverse registration order, the order backward
// produces their gradients; the first bucket small so communication starts early). An autograd
// post-hook on each parameter's gradient accumulator copies the finished gradient into its
// bucket; a full bucket is all-reduced at once on the group's communication threads while
// backward goes on. Buckets start in index order on every rank, so collectives always match.
// finish() waits for the rest and writes the averages back into .grad.
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>
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

// The rows a lookup table (the word embedding) received in backward, kept as rows instead of a dense
// [V, d] gradient. The lookup reads the table without an autograd edge to it, so the table's
// accumulator fires as soon as its other uses (the tied MLM head, early in backward) are done and
// its dense bucket is reduced during backward; only these rows, a few hundred KB, wait for the end.
struct RowSink {
  at::Tensor anchor;  // a scalar that requires grad: the lookup's autograd input, so its backward runs
  std::vector<at::Tensor> ids, rows;
};

std::map<int32_t, std::shared_ptr<RowSink>>& rowSinks() {
  static auto* table = new std::map<int32_t, std::shared_ptr<RowSink>>();
  return *table;
}

std::shared_ptr<RowSink> rowSink(int64_t id) {
  auto it = rowSinks().find(static_cast<int32_t>(id));
  if (it == rowSinks().end()) throw std::invalid_argument("unknown or freed row-gradient sink " + std::to_string(id));
  return it->second;
}

struct RowLookup : public torch::autograd::Function<RowLookup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& anchor, const at::Tensor& table, const at::Tensor& ids, int64_t sink) {
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["ids"] = ids;
    return at::embedding(table, ids);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sink = rowSink(ctx->saved_data["sink"].toInt());
    at::Tensor ids = ctx->saved_data["ids"].toTensor();
    const int64_t d = grads[0].size(-1);
    sink->ids.push_back(ids.reshape({-1}));
    sink->rows.push_back(grads[0].reshape({-1, d}).contiguous());
    return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
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
  GradSync(std::shared_ptr<Group> group, std::vector<at::Tensor> params, int64_t bucketBytes, int64_t firstBucketBytes, double divisor,
           std::vector<std::pair<size_t, std::shared_ptr<RowSink>>> rowTables)
      : group_(std::move(group)), params_(std::move(params)), divisor_(divisor), rowTables_(std::move(rowTables)), alive_(std::make_shared<bool>(true)) {
    for (size_t i = 0; i < params_.size(); ++i) {
      const at::Tensor& p = params_[i];
      if (!p.is_leaf() || !p.requires_grad()) throw std::invalid_argument("gradient sync: parameter " + std::to_string(i) + " is not a leaf that requires grad");
    }
    bucketBytes_ = bucketBytes;
    firstBucketBytes_ = firstBucketBytes;
    std::vector<size_t> reverse(params_.size());
    for (size_t n = 0; n < reverse.size(); ++n) reverse[n] = reverse.size() - 1 - n;
    planBuckets(reverse);
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
    // Averages back into .grad (the row tables' looked-up rows are added after).
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
    stats.bytes += addRows();
    stats.exposedMs = std::max(0.0, dist::nowMs() - backwardEnd);
    stats.firstLaunchMs = buckets_.empty() ? 0 : buckets_[0].launchedAt - preparedAt_;
    if (!rebuilt_) rebuildBuckets();
    return stats;
  }

  size_t numBuckets() const { return buckets_.size(); }
  std::vector<std::vector<size_t>> bucketParams() const {
    std::vector<std::vector<size_t>> out;
    for (const auto& b : buckets_) out.push_back(b.params);
    return out;
  }

 private:
  // Buckets over the parameters in `order` (the order their gradients are expected in).
  void planBuckets(const std::vector<size_t>& order) {
    buckets_.clear();
    where_.clear();
    const int64_t capBytes = bucketBytes_, firstCapBytes = firstBucketBytes_;
    for (size_t n : order) {
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

  // After the first synchronised step, DDP's rebuild: the buckets follow the order in which the
  // gradients really arrived (a tied embedding's dense gradient comes early, not last as its
  // registration says). Rank 0's order is broadcast, so every rank starts its buckets alike.
  void rebuildBuckets() {
    rebuilt_ = true;
    std::vector<size_t> order = arrival_;
    std::vector<bool> seen(params_.size(), false);
    for (size_t i : order) seen[i] = true;
    for (size_t n = params_.size(); n-- > 0;)
      if (!seen[n]) order.push_back(n);  // never arrived (no gradient this step): last, in reverse registration order
    if (group_->size > 1) {
      at::Tensor t = at::empty({static_cast<int64_t>(order.size())}, at::kLong);
      for (size_t k = 0; k < order.size(); ++k) t[k] = static_cast<int64_t>(order[k]);
      std::vector<at::Tensor> ts{t};
      c10d::BroadcastOptions opts;
      opts.rootRank = 0;
      dist::waitFor(*group_, "gradient bucket order broadcast", group_->backend->broadcast(ts, opts));
      for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<size_t>(t[k].item<int64_t>());
    }
    planBuckets(order);
  }

  void onGradReady(size_t i) {
    if (!expecting_) return;
    if (!rebuilt_) arrival_.push_back(i);
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

  // Every rank's looked-up rows of each row table, averaged into its .grad; the bytes this rank sent.
  int64_t addRows() {
    int64_t bytes = 0;
    for (auto& [index, sink] : rowTables_) {
      at::Tensor& p = params_[index];
      const int64_t d = p.size(1);
      at::Tensor ids = sink->ids.empty() ? at::empty({0}, p.options().dtype(at::kLong)) : at::cat(sink->ids);
      at::Tensor rows = sink->rows.empty() ? at::empty({0, d}, p.options()) : at::cat(sink->rows).to(p.scalar_type());
      sink->ids.clear();
      sink->rows.clear();
      std::vector<at::Tensor> counts;
      counts.push_back(at::full({1}, ids.size(0), ids.options()));
      auto all = gather(counts[0]);
      int64_t most = 0;
      for (auto& c : all) most = std::max(most, c.item<int64_t>());
      at::Tensor paddedIds = at::zeros({most}, ids.options());
      at::Tensor paddedRows = at::zeros({most, d}, rows.options());
      paddedIds.narrow(0, 0, ids.size(0)).copy_(ids);
      paddedRows.narrow(0, 0, rows.size(0)).copy_(rows);
      auto allIds = gather(paddedIds);
      auto allRows = gather(paddedRows);
      bytes += (paddedIds.numel() * 8 + paddedRows.numel() * static_cast<int64_t>(paddedRows.element_size())) * (group_->size - 1);
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      at::NoGradGuard noGrad;
      for (size_t r = 0; r < all.size(); ++r) {
        int64_t n = all[r].item<int64_t>();
        if (n > 0) p.mutable_grad().index_add_(0, allIds[r].narrow(0, 0, n), allRows[r].narrow(0, 0, n).div(divisor_));
      }
    }
    return bytes;
  }

  std::vector<at::Tensor> gather(const at::Tensor& t) {
    if (group_->size == 1) return {t};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < group_->size; ++r) out[0].push_back(at::empty_like(t));
    std::vector<at::Tensor> in{t};
    dist::waitFor(*group_, "row-gradient allGather", group_->backend->allgather(out, in));
    return out[0];
  }

  std::shared_ptr<Group> group_;
  std::vector<at::Tensor> params_;
  double divisor_;
  std::vector<std::pair<size_t, std::shared_ptr<RowSink>>> rowTables_;
  std::vector<Bucket> buckets_;
  std::map<size_t, std::pair<size_t, size_t>> where_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hookKeys_;
  std::shared_ptr<bool> alive_;
  bool expecting_ = false;
  size_t nextLaunch_ = 0;
  int64_t bucketBytes_ = 0, firstBucketBytes_ = 0;
  std::vector<size_t> arrival_;  // the first synchronised step's gradient order
  bool rebuilt_ = false;
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

// gradSyncNew(group, params, bucketBytes, firstBucketBytes, divisor, rowTables: [paramIndex, sinkId][])
// -> { id, buckets: param indices per bucket }
Napi::Value gradSyncNew(const Napi::CallbackInfo& info) {
  auto g = dist::group(static_cast<int>(intArg(info, 0)));
  auto params = tensorListArg(info, 1);
  int64_t bucketBytes = intArg(info, 2), firstBucketBytes = intArg(info, 3);
  double divisor = doubleArg(info, 4);
  std::vector<std::pair<size_t, std::shared_ptr<RowSink>>> rowTables;
  if (!isMissing(info, 5)) {
    auto pairs = intListArg(info, 5);
    if (pairs.size() % 2 != 0) throw std::invalid_argument("row tables are (parameter index, sink) pairs");
    for (size_t k = 0; k < pairs.size(); k += 2) {
      if (pairs[k] < 0 || pairs[k] >= static_cast<int64_t>(params.size())) throw std::invalid_argument("row table parameter index out of range");
      if (params[pairs[k]].dim() != 2) throw std::invalid_argument("a row table must be a matrix [rows, size], got " + describe(params[pairs[k]]));
      rowTables.emplace_back(static_cast<size_t>(pairs[k]), rowSink(pairs[k + 1]));
    }
  }
  if (bucketBytes < 1 || firstBucketBytes < 1) throw std::invalid_argument("bucket sizes must be positive");
  if (!(divisor > 0)) throw std::invalid_argument("the gradient divisor must be positive");
  static int32_t next = 1;
  int32_t id = next++;
  auto sync = std::make_unique<GradSync>(g, std::move(params), bucketBytes, firstBucketBytes, divisor, std::move(rowTables));
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

// rowSinkNew() -> id: where a lookup's row gradients wait for the step's finish().
Napi::Value rowSinkNew(const Napi::CallbackInfo& info) {
  static int32_t next = 1;
  auto sink = std::make_shared<RowSink>();
  sink->anchor = at::zeros({}, at::kFloat).requires_grad_(true);
  rowSinks()[next] = sink;
  return Napi::Number::New(info.Env(), next++);
}

// rowSinkLookup(sink, table, ids) -> table[ids], whose gradient goes to the sink as rows.
Napi::Value rowSinkLookup(const Napi::CallbackInfo& info) {
  int64_t id = intArg(info, 0);
  auto sink = rowSink(id);
  const at::Tensor& table = tensorArg(info, 1);
  const at::Tensor& ids = tensorArg(info, 2);
  if (table.dim() != 2) throw std::invalid_argument("the table must be [rows, size], got " + describe(table));
  if (ids.scalar_type() != at::kLong && ids.scalar_type() != at::kInt) throw std::invalid_argument("ids must be int64 or int32, got " + describe(ids));
  if (!c10::GradMode::is_enabled() || !table.requires_grad()) return wrap(info.Env(), at::embedding(table, ids));
  return wrap(info.Env(), RowLookup::apply(sink->anchor, table.detach(), ids, id));
}

Napi::Value rowSinkFree(const Napi::CallbackInfo& info) {
  rowSinks().erase(static_cast<int32_t>(intArg(info, 0)));
  return info.Env().Undefined();
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
  SM_DEFINE(exports, rowSinkNew);
  SM_DEFINE(exports, rowSinkLookup);
  SM_DEFINE(exports, rowSinkFree);
}

}  // namespace sm
