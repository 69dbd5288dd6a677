// Shared by the standalone GPU microbenchmarks in bench/kernels/.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    cudaError_t err = (x);                                                                         \
    if (err != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(err));   \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

/// Hash-based random bf16 values in [-scale/2, scale/2): never zeros, which would flatter timings.
__global__ void fill_random(__nv_bfloat16 *p, size_t n, uint32_t seed, float scale = 1.0f) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    p[i] = __float2bfloat16(((h & 0xffff) / 65535.f - 0.5f) * scale);
  }
}

/// A 16-byte load that streams past L1.
__device__ __forceinline__ uint4 load_stream(const uint4 *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

/// Dot product of 8 bf16 pairs in fp32.
__device__ __forceinline__ float dot8(uint4 wv, uint4 xv) {
  const __nv_bfloat162 *w2 = reinterpret_cast<const __nv_bfloat162 *>(&wv);
  const __nv_bfloat162 *x2 = reinterpret_cast<const __nv_bfloat162 *>(&xv);
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 a = __bfloat1622float2(w2[i]), b = __bfloat1622float2(x2[i]);
    acc = fmaf(a.x, b.x, fmaf(a.y, b.y, acc));
  }
  return acc;
}

/// Reads n 16-byte words once: the read-only streaming ceiling.
__global__ void read_stream(const uint4 *__restrict__ p, size_t n, float *sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint4 v = load_stream(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = 1.f;
}
