// The runtime's own kernels: the load-time weight program (cast, concat,
// transpose, slice, and copies into the weights arena). One strided copy
// covers them all: every output element of a `rank`-dimensional `shape` reads
// src[srcOffset + Σ idx·srcStride] and writes dst[dstOffset + Σ idx·dstStride]
// (strides and offsets in elements). The host fills CopyParams from this same
// definition; NVRTC compiles this file after the prelude.
#pragma once

#ifndef __CUDACC_RTC__
#include <cstdint>
#endif

namespace kiln {

constexpr int kMaxCopyRank = 8;

/// Passed by value. Every field is 8 bytes wide so host and device agree on the
/// layout without padding rules.
struct CopyParams {
  int64_t rank;
  int64_t count;  // elements in shape
  int64_t shape[kMaxCopyRank];
  int64_t srcStride[kMaxCopyRank];
  int64_t dstStride[kMaxCopyRank];
  int64_t srcOffset;
  int64_t dstOffset;
  const void *src;
  void *dst;
};

}  // namespace kiln

#ifdef __CUDACC_RTC__
namespace kiln {

template <typename S, typename D> struct Convert {
  static __device__ __forceinline__ D apply(S x) { return from_float<D>(to_float(x)); }
};
template <typename T> struct Convert<T, T> {
  static __device__ __forceinline__ T apply(T x) { return x; }
};

template <typename S, typename D> __device__ __forceinline__ void stridedCopy(const CopyParams &p) {
  const S *src = static_cast<const S *>(p.src);
  D *dst = static_cast<D *>(p.dst);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.count; i += stride) {
    int64_t rest = i, s = p.srcOffset, d = p.dstOffset;
    for (int dim = int(p.rank) - 1; dim >= 0; --dim) {
      const int64_t idx = rest % p.shape[dim];
      rest /= p.shape[dim];
      s += idx * p.srcStride[dim];
      d += idx * p.dstStride[dim];
    }
    dst[d] = Convert<S, D>::apply(src[s]);
  }
}

}  // namespace kiln

// Same-type copies move bytes; the element width is all that matters.
extern "C" __global__ void kiln_copy_b1(kiln::CopyParams p) { kiln::stridedCopy<uint8_t, uint8_t>(p); }
extern "C" __global__ void kiln_copy_b2(kiln::CopyParams p) { kiln::stridedCopy<uint16_t, uint16_t>(p); }
extern "C" __global__ void kiln_copy_b4(kiln::CopyParams p) { kiln::stridedCopy<uint32_t, uint32_t>(p); }
extern "C" __global__ void kiln_copy_b8(kiln::CopyParams p) { kiln::stridedCopy<uint64_t, uint64_t>(p); }

// Casts between the floating-point types activations use.
extern "C" __global__ void kiln_cast_f32_f16(kiln::CopyParams p) { kiln::stridedCopy<float, __half>(p); }
extern "C" __global__ void kiln_cast_f32_bf16(kiln::CopyParams p) { kiln::stridedCopy<float, __nv_bfloat16>(p); }
extern "C" __global__ void kiln_cast_f16_f32(kiln::CopyParams p) { kiln::stridedCopy<__half, float>(p); }
extern "C" __global__ void kiln_cast_f16_bf16(kiln::CopyParams p) { kiln::stridedCopy<__half, __nv_bfloat16>(p); }
extern "C" __global__ void kiln_cast_bf16_f32(kiln::CopyParams p) { kiln::stridedCopy<__nv_bfloat16, float>(p); }
extern "C" __global__ void kiln_cast_bf16_f16(kiln::CopyParams p) { kiln::stridedCopy<__nv_bfloat16, __half>(p); }

namespace kiln {
/// dst[i] = center + scale * u, u uniform in [-1, 1) from a hash of (seed, i):
/// random weights for benchmarks, made on the GPU without a checkpoint.
template <typename T>
__device__ __forceinline__ void fillRandom(T *dst, int64_t count, uint64_t seed, float center, float scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    uint64_t h = (uint64_t(i) + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    h ^= h >> 31; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 29;
    const float u = float(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
    dst[i] = from_float<T>(center + scale * u);
  }
}
}  // namespace kiln

extern "C" __global__ void kiln_fill_f32(float *d, int64_t n, uint64_t s, float c, float a) { kiln::fillRandom(d, n, s, c, a); }
extern "C" __global__ void kiln_fill_f16(__half *d, int64_t n, uint64_t s, float c, float a) { kiln::fillRandom(d, n, s, c, a); }
extern "C" __global__ void kiln_fill_bf16(__nv_bfloat16 *d, int64_t n, uint64_t s, float c, float a) { kiln::fillRandom(d, n, s, c, a); }
#endif
