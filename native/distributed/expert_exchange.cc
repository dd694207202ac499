// Expert parallelism's all-to-all, differentiable: after the fused dispatch each rank holds its
// slots for every expert, [E, S, H]; experts live e = E / P to a rank of the expert-parallel
// group. toExperts sends expert block p to rank p and returns this rank's experts' slots from
// every rank, [e, Σ_p S_p, H] (rank order); fromExperts is its inverse. Each one's backward is
// the other, so gradients travel back to the tokens' ranks and into the experts' weights.
// S_p (slots per expert on rank p) may differ between ranks, e.g. on a last, smaller batch.
#include <torch/csrc/autograd/custom_function.h>

#include "../args.h"
#include "../registry.h"
#include "group.h"

namespace sm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> rowsPerRank(const std::vector<int64_t>& slots, int64_t experts) {
  std::vector<int64_t> rows;
  for (int64_t s : slots) rows.push_back(s * experts);
  return rows;
}

at::Tensor exchange(const dist::Group& g, const at::Tensor& input, std::vector<int64_t> outRows, std::vector<int64_t> inRows) {
  int64_t total = 0;
  for (int64_t r : outRows) total += r;
  auto shape = input.sizes().vec();
  shape[0] = total;
  at::Tensor in = input.contiguous();
  at::Tensor out = at::empty(shape, in.options());
  auto work = g.backend->alltoall_base(out, in, outRows, inRows);
  dist::waitFor(g, "expert allToAll", work);
  return out;
}

// x [E, S, H] -> [e, Σ S_p, H]
at::Tensor toExperts(const dist::Group& g, const at::Tensor& x, const std::vector<int64_t>& slots) {
  const int64_t P = g.size, E = x.size(0), S = x.size(1), H = x.size(2), e = E / P;
  at::Tensor received = exchange(g, x.reshape({E * S, H}), rowsPerRank(slots, e), std::vector<int64_t>(P, e * S));
  bool even = std::all_of(slots.begin(), slots.end(), [&](int64_t s) { return s == slots[0]; });
  if (even) return received.view({P, e, slots[0], H}).transpose(0, 1).reshape({e, P * slots[0], H});
  std::vector<at::Tensor> parts;
  int64_t row = 0;
  for (int64_t s : slots) {
    parts.push_back(received.narrow(0, row, e * s).view({e, s, H}));
    row += e * s;
  }
  return at::cat(parts, 1);
}

// y [e, Σ S_p, H] -> [E, S, H] with S = slots[this rank]
at::Tensor fromExperts(const dist::Group& g, const at::Tensor& y, const std::vector<int64_t>& slots) {
  const int64_t P = g.size, e = y.size(0), H = y.size(2), S = slots[g.rank];
  std::vector<at::Tensor> parts;
  int64_t col = 0;
  for (int64_t s : slots) {
    parts.push_back(y.narrow(1, col, s).reshape({e * s, H}));
    col += s;
  }
  at::Tensor outgoing = at::cat(parts, 0);  // rank-major: [Σ_p e·S_p, H]
  at::Tensor back = exchange(g, outgoing, std::vector<int64_t>(P, e * S), rowsPerRank(slots, e));
  return back.view({P * e, S, H});
}

std::vector<int64_t> slotsOf(const c10::IValue& v) { return v.toIntVector(); }

struct ToExperts : public torch::autograd::Function<ToExperts> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t groupId, std::vector<int64_t> slots) {
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["slots"] = slots;
    return toExperts(*dist::group(static_cast<int>(groupId)), x, slots);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto g = dist::group(static_cast<int>(ctx->saved_data["group"].toInt()));
    return {fromExperts(*g, grads[0], slotsOf(ctx->saved_data["slots"])), at::Tensor(), at::Tensor()};
  }
};

struct FromExperts : public torch::autograd::Function<FromExperts> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, int64_t groupId, std::vector<int64_t> slots) {
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["slots"] = slots;
    return fromExperts(*dist::group(static_cast<int>(groupId)), y, slots);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto g = dist::group(static_cast<int>(ctx->saved_data["group"].toInt()));
    return {toExperts(*g, grads[0], slotsOf(ctx->saved_data["slots"])), at::Tensor(), at::Tensor()};
  }
};

std::vector<int64_t> checkedSlots(const Napi::CallbackInfo& info, size_t i, const dist::Group& g) {
  auto slots = intListArg(info, i);
  if (static_cast<int>(slots.size()) != g.size) {
    throw std::invalid_argument("expected one slot count per rank of the expert group (" + std::to_string(g.size) + "), got " + std::to_string(slots.size()));
  }
  for (auto s : slots)
    if (s < 0) throw std::invalid_argument("slot counts cannot be negative");
  return slots;
}

// expertsToRanks(group, x [E, S, H], slotsPerRank) -> [E/P, Σ S_p, H]
Napi::Value expertsToRanks(const Napi::CallbackInfo& info) {
  auto g = dist::group(static_cast<int>(intArg(info, 0)));
  const at::Tensor& x = tensorArg(info, 1);
  auto slots = checkedSlots(info, 2, *g);
  if (x.dim() != 3 || x.size(0) % g->size != 0) {
    throw std::invalid_argument("expected expert buffers [experts, slots, hidden] with experts divisible by " + std::to_string(g->size) + ", got " + describe(x));
  }
  if (x.size(1) != slots[g->rank]) throw std::invalid_argument("this rank's slot count " + std::to_string(slots[g->rank]) + " does not match " + describe(x));
  return wrap(info.Env(), ToExperts::apply(x, g->id, slots));
}

// expertsFromRanks(group, y [E/P, Σ S_p, H], slotsPerRank) -> [E, S, H]
Napi::Value expertsFromRanks(const Napi::CallbackInfo& info) {
  auto g = dist::group(static_cast<int>(intArg(info, 0)));
  const at::Tensor& y = tensorArg(info, 1);
  auto slots = checkedSlots(info, 2, *g);
  int64_t total = 0;
  for (auto s : slots) total += s;
  if (y.dim() != 3 || y.size(1) != total) {
    throw std::invalid_argument("expected expert outputs [local experts, " + std::to_string(total) + " slots, hidden], got " + describe(y));
  }
  return wrap(info.Env(), FromExperts::apply(y, g->id, slots));
}

}  // namespace

void registerExpertExchange(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, expertsToRanks);
  SM_DEFINE(exports, expertsFromRanks);
}

}  // namespace sm
