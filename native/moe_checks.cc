#include "moe_checks.h"

#include <limits>

namespace sm::moe {
namespace {

// The CUDA kernels index with 32-bit ints (grid sizes, row counts).
constexpr int64_t kCudaMaxIndex = std::numeric_limits<int32_t>::max();

bool isKernelFloat(at::ScalarType t) { return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16; }

void checkTensor(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.defined(), what, " is undefined");
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), "fused MoE kernels run on CPU or CUDA tensors; ", what, " is on ", t.device());
}

void checkFloat(const at::Tensor& t, const char* what) {
  checkTensor(t, what);
  TORCH_CHECK(isKernelFloat(t.scalar_type()), what, " must be float32, float64, float16 or bfloat16, got ", t.scalar_type());
}

void checkSameDevice(const at::Tensor& a, const char* aName, const at::Tensor& b, const char* bName) {
  TORCH_CHECK(a.device() == b.device(), aName, " is on ", a.device(), " but ", bName, " is on ", b.device());
}

void checkSlotTable(const at::Tensor& slotToken, int64_t G, const at::Tensor& data, const char* dataName) {
  checkTensor(slotToken, "the slot table");
  TORCH_CHECK(slotToken.dim() == 3 && slotToken.scalar_type() == at::kLong,
              "slot table must be int64 [groups, experts, capacity], got ", slotToken.scalar_type(), slotToken.sizes());
  TORCH_CHECK(slotToken.size(0) == G, "slot table has ", slotToken.size(0), " groups, the ", dataName, " ", G);
  checkSameDevice(slotToken, "the slot table", data, dataName);
}

// Slots name a token of their group, or T for an empty slot. The kernels skip anything outside
// [0, T) rather than read it, so a bad table cannot reach memory; it is refused here so that it is
// not silently taken for empty slots. On CUDA the check would wait for the device on every call.
void checkSlotValues(const at::Tensor& slotToken, int64_t T) {
  if (slotToken.numel() == 0 || slotToken.is_cuda()) return;
  const int64_t lo = slotToken.min().item<int64_t>(), hi = slotToken.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi <= T, "slot table holds token index ", lo < 0 ? lo : hi, " outside [0, ", T, "] (", T,
              " marks an empty slot)");
}

void checkSlotWeights(const at::Tensor& w, const at::Tensor& slotToken, const char* what) {
  checkFloat(w, what);
  TORCH_CHECK(w.sizes().equals(slotToken.sizes()), what, " must have the slot table's shape ", slotToken.sizes(), ", got ",
              w.sizes());
  checkSameDevice(w, what, slotToken, "the slot table");
}

void checkCudaSizes(const at::Tensor& ref, std::initializer_list<int64_t> sizes) {
  if (!ref.is_cuda()) return;
  for (int64_t s : sizes) TORCH_CHECK(s <= kCudaMaxIndex, "fused MoE on CUDA: size ", s, " exceeds the kernels' 32-bit indices");
}

int64_t product(std::initializer_list<int64_t> factors, const char* what) {
  int64_t out = 1;
  for (int64_t f : factors) {
    TORCH_CHECK(f >= 0 && !__builtin_mul_overflow(out, f, &out), what, " overflows 64 bits");
  }
  return out;
}

}  // namespace

void checkRouting(const at::Tensor& probs, bool expertsChoose, int64_t k, int64_t capacity) {
  checkFloat(probs, "router probabilities");
  TORCH_CHECK(probs.dim() == 3, "router probabilities must be [groups, tokens, experts], got ", probs.sizes());
  TORCH_CHECK(capacity >= 1, "expert capacity must be at least 1, got ", capacity);
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2);
  if (expertsChoose) {
    TORCH_CHECK(capacity <= T, "experts-choose capacity ", capacity, " exceeds the ", T, " tokens of a group");
  } else {
    TORCH_CHECK(k >= 1 && k <= E, "top-k routing needs 1 <= k <= ", E, ", got ", k);
  }
  const int64_t slots = product({G, E, capacity}, "the slot table's size");
  checkCudaSizes(probs, {G, T, E, capacity, slots, product({G, T, std::max<int64_t>(k, 1)}, "tokens times k")});
}

void checkGather(const at::Tensor& x, const at::Tensor& slotToken, const Optional<at::Tensor>& scale) {
  checkFloat(x, "the tokens");
  TORCH_CHECK(x.dim() == 3, "tokens must be [groups, tokens, hidden], got ", x.sizes());
  const int64_t G = x.size(0), T = x.size(1), H = x.size(2);
  checkSlotTable(slotToken, G, x, "tokens");
  if (scale) checkSlotWeights(*scale, slotToken, "the dispatch scale");
  const int64_t E = slotToken.size(1), C = slotToken.size(2);
  checkCudaSizes(x, {G, T, H, E, C, product({E, G, C}, "experts times slots")});
  checkSlotValues(slotToken, T);
}

void checkScatter(const at::Tensor& y, const at::Tensor& slotToken, const Optional<at::Tensor>& weight, int64_t T) {
  checkFloat(y, "the expert outputs");
  TORCH_CHECK(T >= 0 && T < std::numeric_limits<int64_t>::max(), "tokens per group must be a non-negative count, got ", T);
  checkTensor(slotToken, "the slot table");
  TORCH_CHECK(slotToken.dim() == 3, "slot table must be int64 [groups, experts, capacity], got ", slotToken.scalar_type(),
              slotToken.sizes());
  const int64_t G = slotToken.size(0), E = slotToken.size(1), C = slotToken.size(2);
  checkSlotTable(slotToken, G, y, "expert outputs");
  const int64_t rows = product({G, C}, "groups times capacity");
  TORCH_CHECK(y.dim() == 3 && y.size(0) == E && y.size(1) == rows, "expert outputs ", y.sizes(),
              " do not match the slot table ", slotToken.sizes(), " (expected [", E, ", ", rows, ", hidden])");
  if (weight) checkSlotWeights(*weight, slotToken, "the combine weights");
  const int64_t H = y.size(2);
  product({G, T, H}, "the combined output's size");
  product({G, T + 1}, "the per-token slot lists");
  checkCudaSizes(y, {G, T, E, C, H, product({G, T}, "groups times tokens"), product({G, E, C}, "slots")});
  checkSlotValues(slotToken, T);
}

void checkSlotDot(const at::Tensor& a, const at::Tensor& y, const at::Tensor& slotToken) {
  checkFloat(a, "the output gradient");
  checkFloat(y, "the expert outputs");
  TORCH_CHECK(a.dim() == 3, "the output gradient must be [groups, tokens, hidden], got ", a.sizes());
  TORCH_CHECK(a.scalar_type() == y.scalar_type(), "the output gradient is ", a.scalar_type(), " but the expert outputs are ",
              y.scalar_type());
  checkSameDevice(a, "the output gradient", y, "the expert outputs");
  const int64_t G = a.size(0), T = a.size(1), H = a.size(2);
  checkSlotTable(slotToken, G, a, "output gradient");
  const int64_t E = slotToken.size(1), C = slotToken.size(2);
  TORCH_CHECK(y.dim() == 3 && y.size(0) == E && y.size(1) == product({G, C}, "groups times capacity") && y.size(2) == H,
              "expert outputs ", y.sizes(),
              " do not match the slot table ", slotToken.sizes(), " and hidden size ", H);
  checkCudaSizes(a, {G, T, H, E, C, product({G, E, C}, "slots")});
  checkSlotValues(slotToken, T);
}

}  // namespace sm::moe
