// Fused MoE routing, dispatch and combine kernels for CUDA (fp32, fp64, fp16, bf16 data; float32
// routing and accumulation). See moe_launch.h for the contracts and native/moe_cpu.cc for the
// reference CPU implementation they must match (same tie-breaking, same slot order).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "moe_launch.h"

namespace sm::cuda {
namespace {

constexpr int kThreads = 256;

// Accumulation type: double for double data, float otherwise.
template <class T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

// Loads an element in its accumulation type and stores an accumulated value back.
__device__ __forceinline__ float load(float v) { return v; }
__device__ __forceinline__ double load(double v) { return v; }
__device__ __forceinline__ float load(__half v) { return __half2float(v); }
__device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T store(typename Acc<T>::type v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half store<__half>(float v) {
  return __float2half(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

// NaN sorts last, as on the CPU.
__device__ __forceinline__ float sortKey(float v) { return isnan(v) ? -INFINITY : v; }

// The routing order: higher probability first, then lower index.
__device__ __forceinline__ bool before(float ka, int ia, float kb, int ib) { return ka > kb || (ka == kb && ia < ib); }

// Bitonic sort of n (a power of two) (key, index) pairs in shared memory into the routing order.
__device__ void bitonicSort(float* key, int* idx, int n) {
  for (int k = 2; k <= n; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int partner = i ^ j;
        if (partner > i) {
          bool forward = (i & k) == 0;
          bool partnerFirst = before(key[partner], idx[partner], key[i], idx[i]);
          if (forward == partnerFirst) {
            float kt = key[i];
            key[i] = key[partner];
            key[partner] = kt;
            int it = idx[i];
            idx[i] = idx[partner];
            idx[partner] = it;
          }
        }
      }
      __syncthreads();
    }
  }
}

int nextPow2(int64_t n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// ---- experts choose: one block per (group, expert) sorts that expert's column of T tokens ----
__global__ void expertsChooseKernel(const float* probs, int T, int E, int C, int P, int64_t* slotToken, int32_t* reached) {
  extern __shared__ unsigned char shared[];
  float* key = reinterpret_cast<float*>(shared);
  int* idx = reinterpret_cast<int*>(key + P);
  const int g = blockIdx.x / E, e = blockIdx.x % E;
  for (int i = threadIdx.x; i < P; i += blockDim.x) {
    key[i] = i < T ? sortKey(probs[(static_cast<int64_t>(g) * T + i) * E + e]) : -INFINITY;
    idx[i] = i;  // padding has indices >= T, so it sorts after every real token
  }
  __syncthreads();
  bitonicSort(key, idx, P);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    slotToken[(static_cast<int64_t>(g) * E + e) * C + c] = idx[c];
    reached[static_cast<int64_t>(g) * T + idx[c]] = 1;
  }
}

// ---- tokens choose: one block per group ----
// Phase 1: each token's top-k experts (ties to the lower expert) and its top-1 probability.
// Phase 2: batch-prioritized order (sort by top-1 probability) or token order.
// Phase 3: for k = 0..K-1, walk the ordered tokens in chunks of blockDim; a token's slot in its
// expert is the number of earlier assignments to that expert (warp match + per-warp prefix).
__global__ void tokensChooseKernel(const float* probs, int T, int E, int K, int C, int P, bool bpr, int64_t* slotToken,
                                   int32_t* expertCount, int32_t* filled, int32_t* reached, int32_t* choice) {
  extern __shared__ unsigned char shared[];
  float* key = reinterpret_cast<float*>(shared);
  int* order = reinterpret_cast<int*>(key + P);
  int* base = order + P;             // [E] assignments so far per expert
  int* warpCounts = base + E;        // [warps][E]
  const int warps = blockDim.x / 32;
  const int g = blockIdx.x;
  const float* pg = probs + static_cast<int64_t>(g) * T * E;
  int32_t* cg = choice + static_cast<int64_t>(g) * T * K;

  for (int t = threadIdx.x; t < P; t += blockDim.x) {
    if (t < T) {
      const float* row = pg + static_cast<int64_t>(t) * E;
      for (int k = 0; k < K; ++k) {
        int best = -1;
        float bestKey = 0;
        for (int e = 0; e < E; ++e) {
          bool taken = false;
          for (int j = 0; j < k; ++j) taken |= cg[t * K + j] == e;
          float v = sortKey(row[e]);
          if (!taken && (best < 0 || v > bestKey)) {
            best = e;
            bestKey = v;
          }
        }
        cg[t * K + k] = best;
        atomicAdd(&expertCount[g * E + best], 1);
        if (k == 0) key[t] = bestKey;
      }
    } else {
      key[t] = -INFINITY;
    }
    order[t] = t;
  }
  for (int e = threadIdx.x; e < E; e += blockDim.x) base[e] = 0;
  __syncthreads();
  if (bpr) bitonicSort(key, order, P);

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int k = 0; k < K; ++k) {
    for (int start = 0; start < T; start += blockDim.x) {
      const int i = start + threadIdx.x;
      const bool active = i < T;
      const int t = active ? order[i] : 0;
      const int e = active ? cg[t * K + k] : -1;
      // Lanes of this warp routed to the same expert, and how many of them come before this lane.
      const unsigned peers = __match_any_sync(0xffffffffu, e);
      const int rankInWarp = __popc(peers & ((1u << lane) - 1));
      for (int x = threadIdx.x; x < warps * E; x += blockDim.x) warpCounts[x] = 0;
      __syncthreads();
      if (active && rankInWarp == 0) warpCounts[warp * E + e] = __popc(peers);
      __syncthreads();
      // Exclusive prefix over warps, per expert, folded into the running base.
      for (int ex = threadIdx.x; ex < E; ex += blockDim.x) {
        int running = base[ex];
        for (int w = 0; w < warps; ++w) {
          int n = warpCounts[w * E + ex];
          warpCounts[w * E + ex] = running;
          running += n;
        }
        base[ex] = running;
      }
      __syncthreads();
      if (active) {
        const int slot = warpCounts[warp * E + e] + rankInWarp;
        if (slot < C) {
          slotToken[(static_cast<int64_t>(g) * E + e) * C + slot] = t;
          reached[static_cast<int64_t>(g) * T + t] = 1;
        }
      }
      __syncthreads();
    }
  }
  if (threadIdx.x == 0) {
    int total = 0;
    for (int e = 0; e < E; ++e) total += min(base[e], C);
    filled[g] = total;
  }
}

// ---- dispatch: one block per expert slot row ----
template <class T>
__global__ void gatherRowsKernel(const T* x, const int64_t* slotToken, const float* scale, T* out, int G, int Tn, int E,
                                 int C, int H) {
  const int64_t r = blockIdx.x;  // row of out: e·G·C + g·C + c
  const int e = static_cast<int>(r / (static_cast<int64_t>(G) * C));
  const int g = static_cast<int>((r / C) % G);
  const int c = static_cast<int>(r % C);
  const int64_t s = (static_cast<int64_t>(g) * E + e) * C + c;
  const int64_t t = slotToken[s];
  T* dst = out + r * H;
  if (t < 0 || t >= Tn) {
    for (int h = threadIdx.x; h < H; h += blockDim.x) dst[h] = store<T>(0);
    return;
  }
  const T* src = x + (static_cast<int64_t>(g) * Tn + t) * H;
  if (scale == nullptr) {
    for (int h = threadIdx.x; h < H; h += blockDim.x) dst[h] = src[h];
  } else {
    const typename Acc<T>::type w = scale[s];
    for (int h = threadIdx.x; h < H; h += blockDim.x) dst[h] = store<T>(w * load(src[h]));
  }
}

// 16-byte copies for unscaled rows whose size is a multiple of 16 bytes.
__global__ void gatherRowsVectorKernel(const uint4* x, const int64_t* slotToken, uint4* out, int G, int Tn, int E, int C,
                                       int vectorsPerRow) {
  const int64_t r = blockIdx.x;
  const int e = static_cast<int>(r / (static_cast<int64_t>(G) * C));
  const int g = static_cast<int>((r / C) % G);
  const int c = static_cast<int>(r % C);
  const int64_t t = slotToken[(static_cast<int64_t>(g) * E + e) * C + c];
  uint4* dst = out + r * vectorsPerRow;
  const bool empty = t < 0 || t >= Tn;
  const uint4* src = x + (static_cast<int64_t>(g) * Tn + (empty ? 0 : t)) * vectorsPerRow;
  for (int v = threadIdx.x; v < vectorsPerRow; v += blockDim.x) dst[v] = empty ? make_uint4(0, 0, 0, 0) : src[v];
}

// ---- combine ----
// CSR of each group's token -> slots: counts, scan, fill; each row then sorts its short list so
// the sum runs in (expert, slot) order whatever order the fill used.
__global__ void countSlotsKernel(const int64_t* slotToken, int64_t slots, int Tn, int EC, int32_t* offsets) {
  int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= slots) return;
  int64_t t = slotToken[s];
  if (t >= 0 && t < Tn) atomicAdd(&offsets[(s / EC) * (Tn + 1) + t + 1], 1);
}

__global__ void scanOffsetsKernel(int32_t* offsets, int Tn) {
  // One block per group; a simple sequential carry over chunks of blockDim (Tn is a few thousand).
  __shared__ int32_t chunk[kThreads];
  int32_t* off = offsets + static_cast<int64_t>(blockIdx.x) * (Tn + 1);
  int32_t carry = 0;
  for (int start = 0; start <= Tn; start += blockDim.x) {
    int i = start + threadIdx.x;
    chunk[threadIdx.x] = i <= Tn ? off[i] : 0;
    __syncthreads();
    for (int d = 1; d < blockDim.x; d <<= 1) {  // inclusive Hillis-Steele scan
      int32_t v = threadIdx.x >= d ? chunk[threadIdx.x - d] : 0;
      __syncthreads();
      chunk[threadIdx.x] += v;
      __syncthreads();
    }
    if (i <= Tn) off[i] = chunk[threadIdx.x] + carry;
    carry += chunk[blockDim.x - 1];
    __syncthreads();
  }
}

__global__ void fillSlotsKernel(const int64_t* slotToken, int64_t slots, int Tn, int EC, const int32_t* offsets,
                                int32_t* cursor, int32_t* members) {
  int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= slots) return;
  int64_t t = slotToken[s];
  if (t < 0 || t >= Tn) return;
  int64_t g = s / EC;
  int32_t pos = atomicAdd(&cursor[g * Tn + t], 1);
  members[g * EC + offsets[g * (Tn + 1) + t] + pos] = static_cast<int32_t>(s % EC);
}

template <class T>
__global__ void combineRowsKernel(const T* y, const float* weight, const int32_t* offsets, int32_t* members, T* out,
                                  int G, int Tn, int E, int C, int H) {
  const int64_t r = blockIdx.x;  // g·T + t
  const int g = static_cast<int>(r / Tn), t = static_cast<int>(r % Tn);
  const int EC = E * C;
  const int32_t begin = offsets[static_cast<int64_t>(g) * (Tn + 1) + t];
  const int32_t end = offsets[static_cast<int64_t>(g) * (Tn + 1) + t + 1];
  int32_t* list = members + static_cast<int64_t>(g) * EC;
  if (threadIdx.x == 0) {  // insertion sort: a token has at most one slot per expert
    for (int32_t i = begin + 1; i < end; ++i) {
      int32_t v = list[i], j = i - 1;
      while (j >= begin && list[j] > v) {
        list[j + 1] = list[j];
        --j;
      }
      list[j + 1] = v;
    }
  }
  __syncthreads();
  using acc_t = typename Acc<T>::type;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    acc_t acc = 0;
    for (int32_t m = begin; m < end; ++m) {
      const int32_t s = list[m];
      const int e = s / C, c = s % C;
      const acc_t w = weight ? static_cast<acc_t>(weight[static_cast<int64_t>(g) * EC + s]) : acc_t(1);
      acc += w * load(y[((static_cast<int64_t>(e) * G + g) * C + c) * H + h]);
    }
    out[r * H + h] = store<T>(acc);
  }
}

// Non-deterministic combine: every slot adds its weighted row into its token with atomics.
template <class T>
__global__ void combineAtomicKernel(const T* y, const int64_t* slotToken, const float* weight, T* out, int G, int Tn,
                                    int E, int C, int H) {
  const int64_t s = blockIdx.x;  // (g·E + e)·C + c
  const int64_t t = slotToken[s];
  if (t < 0 || t >= Tn) return;
  const int g = static_cast<int>(s / (static_cast<int64_t>(E) * C));
  const int e = static_cast<int>((s / C) % E);
  const int c = static_cast<int>(s % C);
  const float w = weight ? weight[s] : 1.f;
  const T* row = y + ((static_cast<int64_t>(e) * G + g) * C + c) * H;
  T* dst = out + (static_cast<int64_t>(g) * Tn + t) * H;
  for (int h = threadIdx.x; h < H; h += blockDim.x) atomicAdd(dst + h, store<T>(w * load(row[h])));
}

// ---- gradient of the combine weights: one warp per slot ----
template <class T>
__global__ void slotDotKernel(const T* a, const T* y, const int64_t* slotToken, float* out, int64_t slots, int G, int Tn,
                              int E, int C, int H) {
  const int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (s >= slots) return;
  const int64_t t = slotToken[s];
  using acc_t = typename Acc<T>::type;
  acc_t sum = 0;
  if (t >= 0 && t < Tn) {
    const int g = static_cast<int>(s / (static_cast<int64_t>(E) * C));
    const int e = static_cast<int>((s / C) % E);
    const int c = static_cast<int>(s % C);
    const T* ra = a + (static_cast<int64_t>(g) * Tn + t) * H;
    const T* ry = y + ((static_cast<int64_t>(e) * G + g) * C + c) * H;
    for (int h = lane; h < H; h += 32) sum += load(ra[h]) * load(ry[h]);
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) out[s] = static_cast<float>(sum);
}

template <class F>
cudaError_t forType(ElementType type, F f) {
  switch (type) {
    case ElementType::Float32:
      return f(float{});
    case ElementType::Float64:
      return f(double{});
    case ElementType::Float16:
      return f(__half{});
    case ElementType::BFloat16:
      return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t expertsChoose(const float* probs, int64_t G, int64_t T, int64_t E, int64_t C, int64_t* slotToken,
                          int32_t* reached, cudaStream_t stream) {
  if (T > kMaxRoutingTokens || C > T) return cudaErrorInvalidValue;
  const int P = nextPow2(T);
  const size_t bytes = P * (sizeof(float) + sizeof(int));
  expertsChooseKernel<<<G * E, kThreads, bytes, stream>>>(probs, T, E, C, P, slotToken, reached);
  return cudaGetLastError();
}

cudaError_t tokensChoose(const float* probs, int64_t G, int64_t T, int64_t E, int64_t K, int64_t C,
                         bool batchPrioritized, int64_t* slotToken, int32_t* expertCount, int32_t* filled,
                         int32_t* reached, int32_t* choice, cudaStream_t stream) {
  if (T > kMaxRoutingTokens || K > kMaxTopK || K > E) return cudaErrorInvalidValue;
  const int P = nextPow2(T);
  const size_t bytes = P * (sizeof(float) + sizeof(int)) + (E + (kThreads / 32) * E) * sizeof(int);
  if (bytes > 48 * 1024) return cudaErrorInvalidValue;
  tokensChooseKernel<<<G, kThreads, bytes, stream>>>(probs, T, E, K, C, P, batchPrioritized, slotToken, expertCount,
                                                     filled, reached, choice);
  return cudaGetLastError();
}

cudaError_t gatherRows(ElementType type, const void* x, const int64_t* slotToken, const float* scale, void* out,
                       int64_t G, int64_t T, int64_t E, int64_t C, int64_t H, cudaStream_t stream) {
  const int64_t rows = E * G * C;
  if (rows == 0) return cudaSuccess;
  return forType(type, [&](auto zero) {
    using Elem = decltype(zero);
    const int64_t rowBytes = H * static_cast<int64_t>(sizeof(Elem));
    const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
    if (scale == nullptr && rowBytes % 16 == 0 && aligned) {
      gatherRowsVectorKernel<<<rows, 128, 0, stream>>>(static_cast<const uint4*>(x), slotToken, static_cast<uint4*>(out),
                                                       G, T, E, C, static_cast<int>(rowBytes / 16));
    } else {
      gatherRowsKernel<Elem><<<rows, kThreads, 0, stream>>>(static_cast<const Elem*>(x), slotToken, scale,
                                                            static_cast<Elem*>(out), G, T, E, C, H);
    }
    return cudaGetLastError();
  });
}

int64_t scatterScratchBytes(int64_t G, int64_t T, int64_t E, int64_t C) {
  // offsets G·(T+1), cursor G·T, members G·E·C (int32 each)
  return (G * (T + 1) + G * T + G * E * C) * static_cast<int64_t>(sizeof(int32_t));
}

cudaError_t scatterRows(ElementType type, const void* y, const int64_t* slotToken, const float* weight, void* out,
                        int64_t G, int64_t T, int64_t E, int64_t C, int64_t H, bool deterministic, void* scratch,
                        cudaStream_t stream) {
  const int64_t slots = G * E * C;
  return forType(type, [&](auto zero) {
    using Elem = decltype(zero);
    if (!deterministic && !std::is_same<Elem, double>::value) {
      cudaError_t err = cudaMemsetAsync(out, 0, G * T * H * sizeof(Elem), stream);
      if (err != cudaSuccess) return err;
      if (slots > 0) {
        combineAtomicKernel<Elem><<<slots, kThreads, 0, stream>>>(static_cast<const Elem*>(y), slotToken, weight,
                                                                  static_cast<Elem*>(out), G, T, E, C, H);
      }
      return cudaGetLastError();
    }
    int32_t* offsets = static_cast<int32_t*>(scratch);
    int32_t* cursor = offsets + G * (T + 1);
    int32_t* members = cursor + G * T;
    cudaError_t err = cudaMemsetAsync(offsets, 0, (G * (T + 1) + G * T) * sizeof(int32_t), stream);
    if (err != cudaSuccess) return err;
    const int blocks = static_cast<int>((slots + kThreads - 1) / kThreads);
    if (slots > 0) {
      countSlotsKernel<<<blocks, kThreads, 0, stream>>>(slotToken, slots, T, E * C, offsets);
      scanOffsetsKernel<<<G, kThreads, 0, stream>>>(offsets, T);
      fillSlotsKernel<<<blocks, kThreads, 0, stream>>>(slotToken, slots, T, E * C, offsets, cursor, members);
    }
    if (G * T > 0) {
      combineRowsKernel<Elem><<<G * T, kThreads, 0, stream>>>(static_cast<const Elem*>(y), weight, offsets, members,
                                                              static_cast<Elem*>(out), G, T, E, C, H);
    }
    return cudaGetLastError();
  });
}

cudaError_t slotDot(ElementType type, const void* a, const void* y, const int64_t* slotToken, float* out, int64_t G,
                    int64_t T, int64_t E, int64_t C, int64_t H, cudaStream_t stream) {
  const int64_t slots = G * E * C;
  if (slots == 0) return cudaSuccess;
  return forType(type, [&](auto zero) {
    using Elem = decltype(zero);
    const int warpsPerBlock = kThreads / 32;
    const int64_t blocks = (slots + warpsPerBlock - 1) / warpsPerBlock;
    slotDotKernel<Elem><<<blocks, kThreads, 0, stream>>>(static_cast<const Elem*>(a), static_cast<const Elem*>(y),
                                                         slotToken, out, slots, G, T, E, C, H);
    return cudaGetLastError();
  });
}

}  // namespace sm::cuda
