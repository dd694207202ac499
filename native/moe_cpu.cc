// Fused MoE routing, dispatch and combine on the CPU (CUDA tensors go to moe_cuda.cc).
// Parallel over groups, experts or rows; every output element is written by one thread in a fixed
// order, so results are bit-identical for any thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "moe_checks.h"
#include "moe_kernels.h"

namespace sm::moe {
namespace {

// NaN sorts last, so a diverged router cannot break the strict ordering the sorts rely on.
template <class T>
inline double key(T v) {
  double d = static_cast<double>(v);
  return std::isnan(d) ? -INFINITY : d;
}

}  // namespace

Routing expertsChoose(const at::Tensor& probsIn, int64_t C) {
  checkRouting(probsIn, /*expertsChoose=*/true, 1, C);
#ifdef SM_WITH_CUDA
  if (probsIn.is_cuda()) return expertsChooseCuda(probsIn, C);
#endif
  at::Tensor probs = probsIn.detach().contiguous();
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2);
  at::Tensor slotToken = at::empty({G, E, C}, probs.options().dtype(at::kLong));
  int64_t* slots = slotToken.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, probs.scalar_type(), "expertsChoose", [&] {
    const scalar_t* p = probs.data_ptr<scalar_t>();
    at::parallel_for(0, G * E, 1, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> order(T);
      for (int64_t ge = begin; ge < end; ++ge) {
        const int64_t g = ge / E, e = ge % E;
        const scalar_t* column = p + g * T * E + e;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + C, order.end(), [&](int64_t a, int64_t b) {
          double ka = key(column[a * E]), kb = key(column[b * E]);
          return ka > kb || (ka == kb && a < b);
        });
        std::copy(order.begin(), order.begin() + C, slots + ge * C);
      }
    });
  });
  // Tokens that some expert took.
  int64_t dispatched = 0;
  std::vector<char> reached(T);
  for (int64_t g = 0; g < G; ++g) {
    std::fill(reached.begin(), reached.end(), 0);
    for (int64_t s = 0; s < E * C; ++s) reached[slots[g * E * C + s]] = 1;
    dispatched += std::count(reached.begin(), reached.end(), 1);
  }
  return {slotToken, at::zeros({G, E}, probs.options()), at::scalar_tensor(dispatched, at::kLong),
          at::scalar_tensor(G * E * C, at::kLong)};
}

Routing tokensChoose(const at::Tensor& probsIn, int64_t K, int64_t C, bool batchPrioritized) {
  checkRouting(probsIn, /*expertsChoose=*/false, K, C);
#ifdef SM_WITH_CUDA
  if (probsIn.is_cuda()) return tokensChooseCuda(probsIn, K, C, batchPrioritized);
#endif
  at::Tensor probs = probsIn.detach().contiguous();
  const int64_t G = probs.size(0), T = probs.size(1), E = probs.size(2);
  at::Tensor slotToken = at::full({G, E, C}, T, probs.options().dtype(at::kLong));
  at::Tensor fraction = at::zeros({G, E}, probs.options().dtype(at::kDouble));
  std::vector<int64_t> dispatched(G), filled(G);
  int64_t* slots = slotToken.data_ptr<int64_t>();
  double* frac = fraction.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, probs.scalar_type(), "tokensChoose", [&] {
    const scalar_t* p = probs.data_ptr<scalar_t>();
    at::parallel_for(0, G, 1, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> choice(T * K), order(T), count(E);
      std::vector<double> gate(T);
      std::vector<char> reached(T);
      for (int64_t g = begin; g < end; ++g) {
        const scalar_t* pg = p + g * T * E;
        // Each token's top-k experts, best first, ties to the lower expert index.
        for (int64_t t = 0; t < T; ++t) {
          const scalar_t* row = pg + t * E;
          for (int64_t k = 0; k < K; ++k) {
            int64_t best = -1;
            for (int64_t e = 0; e < E; ++e) {
              bool taken = false;
              for (int64_t j = 0; j < k; ++j) taken |= choice[t * K + j] == e;
              if (!taken && (best < 0 || key(row[e]) > key(row[best]))) best = e;
            }
            choice[t * K + k] = best;
            frac[g * E + best] += 1.0 / static_cast<double>(T);
          }
          gate[t] = key(row[choice[t * K]]);
        }
        std::iota(order.begin(), order.end(), 0);
        if (batchPrioritized) {
          std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return gate[a] > gate[b]; });
        }
        std::fill(count.begin(), count.end(), 0);
        std::fill(reached.begin(), reached.end(), 0);
        int64_t* gs = slots + g * E * C;
        for (int64_t k = 0; k < K; ++k) {
          for (int64_t t : order) {
            int64_t e = choice[t * K + k];
            int64_t slot = count[e]++;
            if (slot < C) {
              gs[e * C + slot] = t;
              reached[t] = 1;
            }
          }
        }
        dispatched[g] = std::count(reached.begin(), reached.end(), 1);
        filled[g] = 0;
        for (int64_t e = 0; e < E; ++e) filled[g] += std::min(count[e], C);
      }
    });
  });
  return {slotToken, fraction.to(probs.scalar_type()),
          at::scalar_tensor(std::accumulate(dispatched.begin(), dispatched.end(), int64_t{0}), at::kLong),
          at::scalar_tensor(std::accumulate(filled.begin(), filled.end(), int64_t{0}), at::kLong)};
}

at::Tensor gatherRows(const at::Tensor& xIn, const at::Tensor& slotToken, const Optional<at::Tensor>& scaleIn) {
  checkGather(xIn, slotToken, scaleIn);
#ifdef SM_WITH_CUDA
  if (xIn.is_cuda()) return gatherRowsCuda(xIn, slotToken, scaleIn);
#endif
  at::Tensor x = xIn.contiguous();
  const int64_t G = x.size(0), T = x.size(1), H = x.size(2);
  at::Tensor slots = slotToken.contiguous();
  const int64_t E = slots.size(1), C = slots.size(2);
  at::Tensor out = at::empty({E, G * C, H}, x.options());
  const int64_t* tok = slots.data_ptr<int64_t>();
  at::Tensor scale;
  if (scaleIn) scale = scaleIn->detach().to(x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gatherRows", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* src = x.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const acc_t* w = scale.defined() ? scale.data_ptr<acc_t>() : nullptr;
    at::parallel_for(0, E * G * C, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t e = r / (G * C), g = (r % (G * C)) / C, c = r % C;
        const int64_t s = (g * E + e) * C + c;
        const int64_t t = tok[s];
        scalar_t* row = dst + r * H;
        if (t >= T || t < 0) {
          std::fill(row, row + H, scalar_t(0));
        } else if (w) {
          const scalar_t* in = src + (g * T + t) * H;
          const acc_t ws = w[s];
          for (int64_t h = 0; h < H; ++h) row[h] = static_cast<scalar_t>(ws * static_cast<acc_t>(in[h]));
        } else {
          std::copy(src + (g * T + t) * H, src + (g * T + t + 1) * H, row);
        }
      }
    });
  });
  return out;
}

at::Tensor scatterRows(const at::Tensor& yIn, const at::Tensor& slotToken, const Optional<at::Tensor>& weightIn,
                       int64_t T, bool deterministic) {
  checkScatter(yIn, slotToken, weightIn, T);
#ifdef SM_WITH_CUDA
  if (yIn.is_cuda()) return scatterRowsCuda(yIn, slotToken, weightIn, T, deterministic);
#endif
  at::Tensor slots = slotToken.contiguous();
  const int64_t G = slots.size(0), E = slots.size(1), C = slots.size(2);
  at::Tensor y = yIn.contiguous();
  const int64_t H = y.size(2);
  const int64_t* tok = slots.data_ptr<int64_t>();
  // Per group, the slots of each token in (expert, slot) order: a CSR table.
  std::vector<int64_t> offsets(G * (T + 1) + 1, 0), members(G * E * C);
  for (int64_t g = 0; g < G; ++g) {
    int64_t* off = offsets.data() + g * (T + 1);
    for (int64_t s = 0; s < E * C; ++s) {
      int64_t t = tok[g * E * C + s];
      if (t >= 0 && t < T) off[t + 1]++;
    }
    for (int64_t t = 0; t < T; ++t) off[t + 1] += off[t];
    std::vector<int64_t> cursor(off, off + T);
    for (int64_t s = 0; s < E * C; ++s) {
      int64_t t = tok[g * E * C + s];
      if (t >= 0 && t < T) members[g * E * C + cursor[t]++] = s;
    }
  }
  at::Tensor weight;
  if (weightIn) weight = weightIn->detach().to(y.scalar_type() == at::kDouble ? at::kDouble : at::kFloat).contiguous();
  at::Tensor out = at::empty({G, T, H}, y.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "scatterRows", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* src = y.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const acc_t* w = weight.defined() ? weight.data_ptr<acc_t>() : nullptr;
    at::parallel_for(0, G * T, 8, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> acc(H);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t g = r / T, t = r % T;
        const int64_t* off = offsets.data() + g * (T + 1);
        std::fill(acc.begin(), acc.end(), acc_t(0));
        for (int64_t m = off[t]; m < off[t + 1]; ++m) {
          const int64_t s = members[g * E * C + m];
          const int64_t e = s / C, c = s % C;
          const acc_t ws = w ? w[g * E * C + s] : acc_t(1);
          const scalar_t* in = src + (e * G * C + g * C + c) * H;
          for (int64_t h = 0; h < H; ++h) acc[h] += ws * static_cast<acc_t>(in[h]);
        }
        scalar_t* row = dst + r * H;
        for (int64_t h = 0; h < H; ++h) row[h] = static_cast<scalar_t>(acc[h]);
      }
    });
  });
  return out;
}

at::Tensor slotDot(const at::Tensor& aIn, const at::Tensor& yIn, const at::Tensor& slotToken) {
  checkSlotDot(aIn, yIn, slotToken);
#ifdef SM_WITH_CUDA
  if (aIn.is_cuda()) return slotDotCuda(aIn, yIn, slotToken);
#endif
  at::Tensor a = aIn.contiguous(), y = yIn.contiguous(), slots = slotToken.contiguous();
  const int64_t G = a.size(0), T = a.size(1), H = a.size(2);
  const int64_t E = slots.size(1), C = slots.size(2);
  const auto accType = a.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({G, E, C}, a.options().dtype(accType));
  const int64_t* tok = slots.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "slotDot", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* py = y.data_ptr<scalar_t>();
    acc_t* dst = out.data_ptr<acc_t>();
    at::parallel_for(0, G * E * C, 16, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        const int64_t g = s / (E * C), e = (s / C) % E, c = s % C;
        const int64_t t = tok[s];
        acc_t sum = 0;
        if (t >= 0 && t < T) {
          const scalar_t* ra = pa + (g * T + t) * H;
          const scalar_t* ry = py + (e * G * C + g * C + c) * H;
          for (int64_t h = 0; h < H; ++h) sum += static_cast<acc_t>(ra[h]) * static_cast<acc_t>(ry[h]);
        }
        dst[s] = sum;
      }
    });
  });
  return out;
}

}  // namespace sm::moe
