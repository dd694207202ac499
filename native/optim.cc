// Fused optimizer work: one native call updates every parameter (no per-parameter JavaScript
// round trip): AdamW, the global gradient norm and clipping by it.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

// libtorch >= 2.1 has a fused multi-tensor AdamW (one kernel launch for a whole group on a GPU);
// 1.13 (Debian's) falls back to the multi-tensor foreach ops, still a few launches per group.
#if __has_include(<ATen/ops/_fused_adamw.h>)
#include <ATen/ops/_fused_adamw.h>
#define SM_HAS_FUSED_ADAMW 1
#else
#define SM_HAS_FUSED_ADAMW 0
#endif

#include "args.h"
#include "registry.h"

namespace sm {
namespace {

// (params[], m[], v[], decay: Uint8Array, lr, beta1, beta2, eps, weightDecay, step)
// Decoupled weight decay with bias correction (optax.adamw, as the reference trains with):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²
//   p -= lr · (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr · wd · p
// Parameters without a gradient are left as they are.
struct AdamW {
  double beta1, beta2, eps, bc1, bc2, lr, decayFactor;
};

// One pass over memory per parameter (read p, g, m, v; write p, m, v) instead of the nine of the
// tensor-op form below: the update is memory-bound, and for 10^8 parameters it otherwise costs
// as much as a good part of a training step. Same arithmetic, in T (PyTorch's CPU op math for
// float32 and float64).
template <typename T>
void adamwContiguous(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamW& h) {
  T* pp = p.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  T* mp = m.data_ptr<T>();
  T* vp = v.data_ptr<T>();
  const T b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2), eps = static_cast<T>(h.eps);
  const T c1 = static_cast<T>(1 - h.beta1), c2 = static_cast<T>(1 - h.beta2);
  const T bc2 = static_cast<T>(h.bc2), decay = static_cast<T>(h.decayFactor), stepSize = static_cast<T>(-h.lr / h.bc1);
  at::parallel_for(0, p.numel(), 1 << 14, [=](int64_t begin, int64_t end) {
    // Local restrict pointers and by-value captures: the loop then vectorises.
    T* __restrict P = pp;
    const T* __restrict G = gp;
    T* __restrict M = mp;
    T* __restrict V = vp;
    for (int64_t i = begin; i < end; ++i) {
      const T gi = G[i];
      const T mi = b1 * M[i] + c1 * gi;
      const T vi = b2 * V[i] + c2 * gi * gi;
      M[i] = mi;
      V[i] = vi;
      P[i] = P[i] * decay + stepSize * (mi / (std::sqrt(vi / bc2) + eps));
    }
  });
}

bool fusable(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  auto type = p.scalar_type();
  bool sameType = g.scalar_type() == type && m.scalar_type() == type && v.scalar_type() == type;
  bool cpu = p.is_cpu() && g.is_cpu() && m.is_cpu() && v.is_cpu();
  bool dense = p.is_contiguous() && g.is_contiguous() && m.is_contiguous() && v.is_contiguous();
  return sameType && cpu && dense && (type == at::kFloat || type == at::kDouble) && g.layout() == at::kStrided;
}

// Parameters our CPU loop does not take (GPU, half precision, non-contiguous), updated together per
// (device, dtype, decay) group instead of with nine tensor ops per parameter: on a GPU, a BERT-base
// step otherwise spends ~10 ms launching two thousand small kernels.
struct Group {
  std::vector<at::Tensor> p, g, m, v;
};

#if SM_HAS_FUSED_ADAMW
// libtorch's fused kernel takes a group of contiguous tensors of one floating dtype; false otherwise.
bool fusedAdamwGroup(Group& grp, const AdamW& h, double weightDecay, int64_t step) {
  const auto type = grp.p.front().scalar_type();
  if (!at::isFloatingType(type)) return false;
  for (size_t i = 0; i < grp.p.size(); ++i) {
    for (const at::Tensor* t : {&grp.p[i], &grp.g[i], &grp.m[i], &grp.v[i]}) {
      if (!t->is_contiguous() || t->scalar_type() != type) return false;
    }
  }
  // The kernel reads each parameter's step count (for bias correction) from a tensor on its device.
  auto steps = at::full({static_cast<int64_t>(grp.p.size())}, static_cast<double>(step),
                        grp.p.front().options().dtype(at::kFloat))
                   .unbind(0);
  at::_fused_adamw_(grp.p, grp.g, grp.m, grp.v, {}, steps, h.lr, h.beta1, h.beta2, weightDecay, h.eps,
                    /*amsgrad=*/false, /*maximize=*/false);
  return true;
}
#endif

void adamwGroup(Group& grp, const AdamW& h, double weightDecay, int64_t step) {
#if SM_HAS_FUSED_ADAMW
  if (fusedAdamwGroup(grp, h, weightDecay, step)) return;
#endif
  at::_foreach_mul_(grp.m, h.beta1);
  at::_foreach_add_(grp.m, grp.g, 1 - h.beta1);
  at::_foreach_mul_(grp.v, h.beta2);
  at::_foreach_addcmul_(grp.v, grp.g, grp.g, 1 - h.beta2);
  auto denom = at::_foreach_div(grp.v, h.bc2);
  at::_foreach_sqrt_(denom);
  at::_foreach_add_(denom, h.eps);
  if (h.decayFactor != 1) at::_foreach_mul_(grp.p, h.decayFactor);
  at::_foreach_addcdiv_(grp.p, grp.m, denom, -h.lr / h.bc1);
}

// A β of 1 divides by zero in the bias correction, a NaN rate or ε poisons every parameter: refused
// before any parameter changes.
void checkHyper(double lr, double beta1, double beta2, double eps, double weightDecay) {
  auto fail = [](const char* what, double value, const char* expected) {
    throw std::invalid_argument(std::string(what) + " must be " + expected + ", got " + jsNumber(value));
  };
  if (!(std::isfinite(lr) && lr >= 0)) fail("the learning rate", lr, "a finite number >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", beta1, "in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) fail("beta2", beta2, "in [0, 1)");
  if (!(std::isfinite(eps) && eps > 0)) fail("epsilon", eps, "a finite number > 0");
  if (!(std::isfinite(weightDecay) && weightDecay >= 0)) fail("the weight decay", weightDecay, "a finite number >= 0");
}

// The moments are updated in place next to the parameter: they must be separate memory of its
// dtype and device (the fused loop reads all four through restrict pointers of one type).
void checkMoments(size_t i, const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  for (const at::Tensor* t : {&m, &v}) {
    if (t->scalar_type() != p.scalar_type() || t->device() != p.device()) {
      throw std::invalid_argument("the moments of parameter " + std::to_string(i) + " " + describe(p) +
                                  " must have its dtype and device, got " + describe(*t));
    }
  }
  const at::Tensor* all[] = {&p, &g, &m, &v};
  for (size_t a = 0; a < 4; ++a) {
    for (size_t b = a + 1; b < 4; ++b) {
      if (all[a]->numel() > 0 && all[a]->is_alias_of(*all[b])) {
        throw std::invalid_argument("parameter " + std::to_string(i) + ", its gradient and its moments must not share memory");
      }
    }
  }
}

Napi::Value adamwStep(const Napi::CallbackInfo& info) {
  auto params = tensorListArg(info, 0);
  auto m = tensorListArg(info, 1);
  auto v = tensorListArg(info, 2);
  if (!info[3].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "adamwStep: decay must be a Uint8Array");
  auto decay = info[3].As<Napi::Uint8Array>();
  double lr = doubleArg(info, 4), beta1 = doubleArg(info, 5), beta2 = doubleArg(info, 6), eps = doubleArg(info, 7);
  double weightDecay = doubleArg(info, 8);
  int64_t step = intArg(info, 9);
  if (m.size() != params.size() || v.size() != params.size() || decay.ElementLength() != params.size()) {
    throw std::invalid_argument("adamwStep: params, moments and decay flags differ in length");
  }
  if (step < 1) throw std::invalid_argument("adamwStep: step counts from 1");
  checkHyper(lr, beta1, beta2, eps, weightDecay);
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  at::NoGradGuard noGrad;
  std::map<std::tuple<std::string, int, bool>, Group> groups;
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (!m[i].sizes().equals(p.sizes()) || !v[i].sizes().equals(p.sizes())) {
      throw std::invalid_argument("adamwStep: moment shapes do not match parameter " + std::to_string(i) + " " + describe(p));
    }
    checkMoments(i, p, g, m[i], v[i]);
    const double decayFactor = decay[i] ? 1 - lr * weightDecay : 1;
    if (fusable(p, g, m[i], v[i])) {
      AdamW h{beta1, beta2, eps, bc1, bc2, lr, decayFactor};
      if (p.scalar_type() == at::kFloat) adamwContiguous<float>(p, g, m[i], v[i], h);
      else adamwContiguous<double>(p, g, m[i], v[i], h);
      continue;
    }
    Group& grp = groups[{p.device().str(), static_cast<int>(p.scalar_type()), decay[i] != 0}];
    grp.p.push_back(p);
    grp.g.push_back(g);
    grp.m.push_back(m[i]);
    grp.v.push_back(v[i]);
  }
  for (auto& [key, grp] : groups) {
    const bool decays = std::get<2>(key);
    AdamW h{beta1, beta2, eps, bc1, bc2, lr, decays ? 1 - lr * weightDecay : 1};
    adamwGroup(grp, h, decays ? weightDecay : 0, step);
  }
  return info.Env().Undefined();
}

double globalNorm(const std::vector<at::Tensor>& params) {
  double sumSquares = 0;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.scalar_type() == at::kFloat || g.scalar_type() == at::kDouble) {
      // ATen's norm reads the gradient once (vectorised, pairwise sums), without a double copy.
      const double norm = g.detach().norm().item<double>();
      sumSquares += norm * norm;
    } else {
      sumSquares += g.detach().to(at::kDouble).pow(2).sum().item<double>();  // half precision: sum in double
    }
  }
  return std::sqrt(sumSquares);
}

// (params[]) -> the L2 norm of all gradients together.
Napi::Value gradNorm(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), globalNorm(tensorListArg(info, 0)));
}

// (params[], maxNorm, norm?) -> the norm before clipping; gradients are scaled so their norm is at
// most maxNorm. A given norm is used instead of this list's own (a norm over several processes).
Napi::Value clipGradNorm(const Napi::CallbackInfo& info) {
  auto params = tensorListArg(info, 0);
  double maxNorm = doubleArg(info, 1);
  if (!(std::isfinite(maxNorm) && maxNorm > 0)) throw std::invalid_argument("maxNorm must be a finite number > 0, got " + jsNumber(maxNorm));
  double norm = isMissing(info, 2) ? globalNorm(params) : doubleArg(info, 2);
  if (std::isfinite(norm) && norm > maxNorm) {
    at::NoGradGuard noGrad;
    for (auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().mul_(maxNorm / (norm + 1e-6));
    }
  }
  return Napi::Number::New(info.Env(), norm);
}

}  // namespace

void registerOptim(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, adamwStep);
  SM_DEFINE(exports, gradNorm);
  SM_DEFINE(exports, clipGradNorm);
}

}  // namespace sm
