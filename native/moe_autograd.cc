// Custom autograd functions for fused dispatch and combine, so gradients reach the tokens, the
// router (through the combine weights) and the experts exactly as through the masked einsums.
#include <torch/csrc/autograd/custom_function.h>

#include "moe_kernels.h"

namespace sm::moe {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// dispatch: x [G, T, H] -> [E, G·C, H]. Its gradient sends each slot's gradient back to its token.
struct DispatchFunction : public torch::autograd::Function<DispatchFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& slotToken) {
    ctx->save_for_backward({slotToken});
    ctx->saved_data["tokens"] = x.size(1);
    return gatherRows(x, slotToken, kNone);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor slotToken = ctx->get_saved_variables()[0];
    int64_t T = ctx->saved_data["tokens"].toInt();
    return {scatterRows(grads[0], slotToken, kNone, T, /*deterministic=*/true), at::Tensor()};
  }
};

// combine: y [E, G·C, H], weights [G, E, C] -> [G, T, H], out[token] = Σ weight · y[slot].
struct CombineFunction : public torch::autograd::Function<CombineFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& slotToken,
                            const at::Tensor& slotWeight, int64_t tokensPerGroup, bool deterministic) {
    ctx->save_for_backward({y, slotToken, slotWeight});
    return scatterRows(y, slotToken, slotWeight, tokensPerGroup, deterministic);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& y = saved[0];
    const at::Tensor& slotToken = saved[1];
    const at::Tensor& slotWeight = saved[2];
    at::Tensor gradOut = grads[0].contiguous();
    at::Tensor gradY = gatherRows(gradOut, slotToken, slotWeight);
    at::Tensor gradWeight = slotDot(gradOut, y, slotToken).to(slotWeight.scalar_type());
    return {gradY, at::Tensor(), gradWeight, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor dispatch(const at::Tensor& x, const at::Tensor& slotToken) {
  return DispatchFunction::apply(x, slotToken);
}

at::Tensor combine(const at::Tensor& y, const at::Tensor& slotToken, const at::Tensor& slotWeight,
                   int64_t tokensPerGroup, bool deterministic) {
  return CombineFunction::apply(y, slotToken, slotWeight, tokensPerGroup, deterministic);
}

}  // namespace sm::moe
