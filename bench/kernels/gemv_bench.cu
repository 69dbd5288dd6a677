// Decode GEMV variants for bf16 weights, timed against the device's streaming
// bandwidth, to choose what codegen emits (bench/NOTES.md records the results).
//
//   y[n] = sum_k W[n, k] * x[k]   (W row-major [N, K] bf16, x bf16, y bf16, fp32 accumulate)
//
// Build: nvcc -O3 -std=c++17 -gencode=arch=compute_90,code=sm_90 bench/kernels/gemv_bench.cu -o gemv_bench
// Each variant is checked against a simple fp32 reference kernel on fresh random data; weights are
// rotated across enough copies to defeat the 50 MB L2.
#include "bench_common.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

__global__ void gemv_reference(const __nv_bfloat16 *w, const __nv_bfloat16 *x, float *y, int n, int k) {
  int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= n) return;
  float acc = 0.f;
  for (int i = 0; i < k; ++i) acc += __bfloat162float(w[(size_t)row * k + i]) * __bfloat162float(x[i]);
  y[row] = acc;
}

// Variant A: each warp owns ROWS rows; x staged in shared memory; UNROLL 16-byte loads per row in flight.
template <int ROWS, int UNROLL>
__global__ void gemv_warp_rows(const __nv_bfloat16 *__restrict__ w, const __nv_bfloat16 *__restrict__ x,
                               __nv_bfloat16 *__restrict__ y, int n, int k) {
  extern __shared__ uint4 xs[];
  const int vecs = k / 8;
  for (int i = threadIdx.x; i < vecs; i += blockDim.x) xs[i] = reinterpret_cast<const uint4 *>(x)[i];
  __syncthreads();
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  const int row0 = warp * ROWS;
  if (row0 >= n) return;
  float acc[ROWS] = {};
  const uint4 *wr[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wr[r] = reinterpret_cast<const uint4 *>(w + (size_t)min(row0 + r, n - 1) * k);
  for (int base = lane; base < vecs; base += 32 * UNROLL) {
    uint4 wv[ROWS][UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        wv[r][u] = base + u * 32 < vecs ? load_stream(wr[r] + base + u * 32) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      if (base + u * 32 >= vecs) break;
      uint4 xv = xs[base + u * 32];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) acc[r] += dot8(wv[r][u], xv);
    }
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    float v = acc[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0 && row0 + r < n) y[row0 + r] = __float2bfloat16(v);
  }
}

// Variant B: split-K. Block (ROWS_PER_BLOCK rows) x SPLITS column slices; each warp of the block owns
// one slice of K for all the block's rows; partial sums reduced in shared memory (no atomics, no zeroing).
template <int ROWS, int WARPS, int UNROLL>
__global__ void gemv_splitk(const __nv_bfloat16 *__restrict__ w, const __nv_bfloat16 *__restrict__ x,
                            __nv_bfloat16 *__restrict__ y, int n, int k) {
  __shared__ float partial[WARPS][ROWS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row0 = blockIdx.x * ROWS;
  const int vecs = k / 8;
  const int per_warp = (vecs + WARPS - 1) / WARPS;
  const int begin = warp * per_warp, end = min(vecs, begin + per_warp);
  const uint4 *xv4 = reinterpret_cast<const uint4 *>(x);
  float acc[ROWS] = {};
  for (int base = begin + lane; base < end; base += 32 * UNROLL) {
    uint4 wv[ROWS][UNROLL], xv[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int i = base + u * 32;
      xv[u] = i < end ? __ldg(xv4 + i) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        wv[r][u] = i < end ? load_stream(reinterpret_cast<const uint4 *>(w + (size_t)min(row0 + r, n - 1) * k) + i)
                           : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int r = 0; r < ROWS; ++r) acc[r] += dot8(wv[r][u], xv[u]);
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    float v = acc[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp][r] = v;
  }
  __syncthreads();
  if (threadIdx.x < ROWS && row0 + threadIdx.x < n) {
    float v = 0.f;
#pragma unroll
    for (int i = 0; i < WARPS; ++i) v += partial[i][threadIdx.x];
    y[row0 + threadIdx.x] = __float2bfloat16(v);
  }
}

struct Timer {
  cudaEvent_t a, b;
  Timer() { cudaEventCreate(&a); cudaEventCreate(&b); }
  float time(const std::function<void(int)> &fn, int reps) {
    std::vector<float> t;
    for (int i = 0; i < 5; ++i) fn(i);
    for (int i = 0; i < reps; ++i) {
      cudaEventRecord(a);
      fn(i);
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      t.push_back(ms);
    }
    CHECK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  Timer timer;

  // Streaming ceilings: device-to-device copy (read + write) and a read-only kernel, 4 GiB.
  size_t bytes = 4ull << 30;
  void *a, *b;
  float *sink;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMalloc(&sink, 4));
  fill_random<<<4096, 256>>>((__nv_bfloat16 *)a, bytes / 2, 1);
  float copy_ms = timer.time([&](int) { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); }, 10);
  float read_ms = timer.time([&](int) { read_stream<<<prop.multiProcessorCount * 8, 512>>>((const uint4 *)a, bytes / 16, sink); }, 10);
  double copy_bw = 2.0 * bytes / copy_ms / 1e6, read_bw = bytes / read_ms / 1e6;  // GB/s
  double peak = std::max(copy_bw, read_bw);
  std::printf("copy %.0f GB/s (read+write), read-stream %.0f GB/s -> roofline bandwidth %.0f GB/s\n", copy_bw, read_bw, peak);
  CHECK(cudaFree(b));

  struct Shape { const char *name; int n, k; };
  std::vector<Shape> shapes = {{"qkv 8B", 6144, 4096},   {"o 8B", 4096, 4096},      {"gate_up 8B", 28672, 4096},
                               {"down 8B", 4096, 14336}, {"lm_head", 128256, 4096}, {"qkv 1B", 3072, 2048},
                               {"o 1B", 2048, 2048},     {"gate_up 1B", 16384, 2048}, {"down 1B", 2048, 8192}};
  __nv_bfloat16 *x, *y;
  float *ref;
  CHECK(cudaMalloc(&x, 32768 * 2));
  CHECK(cudaMalloc(&y, 131072 * 2));
  CHECK(cudaMalloc(&ref, 131072 * 4));
  std::vector<__nv_bfloat16> yh(131072);
  std::vector<float> rh(131072);
  std::printf("\n%-12s %8s %6s | %s\n", "shape", "MB", "copies", "variant: us, % of roofline bandwidth (max rel err)");
  for (const Shape &s : shapes) {
    size_t wbytes = (size_t)s.n * s.k * 2;
    int copies = (int)std::max<size_t>(1, std::min<size_t>(bytes / wbytes, (size_t)(200ull << 20) / wbytes + 1));
    __nv_bfloat16 *w = (__nv_bfloat16 *)a;
    fill_random<<<256, 256>>>(x, s.k, 7);
    gemv_reference<<<(s.n + 255) / 256, 256>>>(w, x, ref, s.n, s.k);
    CHECK(cudaMemcpy(rh.data(), ref, s.n * 4, cudaMemcpyDeviceToHost));
    std::printf("%-12s %8.1f %6d |", s.name, wbytes / 1e6, copies);
    auto run = [&](const char *name, std::function<void(const __nv_bfloat16 *)> launch) {
      launch(w);
      CHECK(cudaDeviceSynchronize());
      CHECK(cudaMemcpy(yh.data(), y, s.n * 2, cudaMemcpyDeviceToHost));
      double err = 0, norm = 0;
      for (int i = 0; i < s.n; ++i) {
        double d = __bfloat162float(yh[i]) - rh[i];
        err += d * d;
        norm += (double)rh[i] * rh[i];
      }
      float ms = timer.time([&](int i) { launch(w + (size_t)(i % copies) * s.n * s.k); }, 50);
      std::printf(" %s %.1f %.0f%% (%.0e)", name, ms * 1e3, 100.0 * wbytes / ms / 1e6 / peak, std::sqrt(err / norm));
    };
    int smem = s.k * 2;
    run("A1x4", [&](const __nv_bfloat16 *wp) { gemv_warp_rows<1, 4><<<(s.n + 7) / 8, 256, smem>>>(wp, x, y, s.n, s.k); });
    run("A2x4", [&](const __nv_bfloat16 *wp) { gemv_warp_rows<2, 4><<<(s.n / 2 + 7) / 8, 256, smem>>>(wp, x, y, s.n, s.k); });
    run("A4x2", [&](const __nv_bfloat16 *wp) { gemv_warp_rows<4, 2><<<(s.n / 4 + 7) / 8, 256, smem>>>(wp, x, y, s.n, s.k); });
    run("B4w4", [&](const __nv_bfloat16 *wp) { gemv_splitk<4, 4, 2><<<(s.n + 3) / 4, 128>>>(wp, x, y, s.n, s.k); });
    run("B2w8", [&](const __nv_bfloat16 *wp) { gemv_splitk<2, 8, 2><<<(s.n + 1) / 2, 256>>>(wp, x, y, s.n, s.k); });
    run("B8w4", [&](const __nv_bfloat16 *wp) { gemv_splitk<8, 4, 1><<<(s.n + 7) / 8, 128>>>(wp, x, y, s.n, s.k); });
    run("B4w8", [&](const __nv_bfloat16 *wp) { gemv_splitk<4, 8, 2><<<(s.n + 3) / 4, 256>>>(wp, x, y, s.n, s.k); });
    std::printf("\n");
  }
  return 0;
}
