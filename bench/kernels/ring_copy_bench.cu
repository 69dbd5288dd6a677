// How the persistent decode kernel's weight ring could be filled: the
// kernel's copy a padded row (16 bulk copies of a 16-row x 1024-column chunk)
// against one tensor-map copy a chunk, and against one bulk copy of 32 KiB of
// contiguous bytes (the ceiling; not a layout the kernel could use).
//
// 1. Tensor-map views. A chunk as ldmatrix wants it: SWIZZLE_128B varies with
//    the 128-byte line's index mod 8, so rows must be a lower dimension of the
//    box than the column blocks. That needs global strides that do not
//    increase ({64 columns, rows, K / 64} with strides {2K, 128} bytes), which
//    cuda.h describes as packed and increasing. Each view is encoded, one box
//    is copied, and every byte is checked where the swizzle should put it.
// 2. Throughput: every SM runs a ring as the kernel does (6 slots, the copy
//    lane keeps 2 chunks arriving, 8 compute warps read each chunk and free
//    its slot), over a 1 GiB matrix; GB/s, median of 7 after a warm-up.
//
// Built here (the driver library from the toolkit's stubs), run on the GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a bench/kernels/ring_copy_bench.cu \
//     -L/usr/local/cuda/lib64/stubs -lcuda -o ring_copy_bench
#include "bench_common.cuh"

#include <cuda.h>

#include <algorithm>
#include <vector>

#define CHECK_CU(x)                                                                                \
  do {                                                                                             \
    CUresult err = (x);                                                                            \
    if (err != CUDA_SUCCESS) {                                                                     \
      const char *name = nullptr;                                                                  \
      cuGetErrorName(err, &name);                                                                  \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, name ? name : "?");        \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

constexpr int kRows = 16, kSliceCols = 1024, kChunkBytes = kRows * kSliceCols * 2;
constexpr int kPadBytes = 16, kRowStride = kSliceCols * 2 + kPadBytes; // the kernel's padded rows
constexpr int kStages = 6, kInFlight = 2, kComputeWarps = 8;
constexpr int kSlotBytes = kRows * kRowStride; // fits a padded chunk and a swizzled one

__device__ __forceinline__ unsigned smem(const void *p) {
  return (unsigned)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void bar_init(uint64_t *b, unsigned n) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem(b)), "r"(n));
}
__device__ __forceinline__ void bar_arrive(uint64_t *b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem(b)) : "memory");
}
__device__ __forceinline__ void bar_expect(uint64_t *b, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem(b)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bar_wait(uint64_t *b, unsigned parity) {
  unsigned done = 0;
  do
    asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 " selp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(smem(b)), "r"(parity)
                 : "memory");
  while (!done);
}
__device__ __forceinline__ uint64_t evict_first() {
  uint64_t p;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
  return p;
}
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, unsigned bytes, uint64_t *b,
                                          uint64_t policy) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
               " [%0], [%1], %2, [%3], %4;" ::"r"(smem(dst)),
               "l"(src), "r"(bytes), "r"(smem(b)), "l"(policy)
               : "memory");
}
/// One box of a 3-D or 5-D tensor map at `c` (unused coordinates 0).
template <int kRank>
__device__ __forceinline__ void tensor_copy(void *dst, const CUtensorMap *map, const int (&c)[5],
                                            uint64_t *b, uint64_t policy) {
  if constexpr (kRank == 3)
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 ".L2::cache_hint [%0], [%1, {%2, %3, %4}], [%5], %6;" ::"r"(smem(dst)),
                 "l"(map), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(smem(b)), "l"(policy)
                 : "memory");
  else
    asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 ".L2::cache_hint [%0], [%1, {%2, %3, %4, %5, %6}], [%7], %8;" ::"r"(smem(dst)),
                 "l"(map), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(c[4]), "r"(smem(b)),
                 "l"(policy)
                 : "memory");
}

/// Copies one box at `coords` and writes shared memory out as it landed.
template <int kRank>
__global__ void copy_one_box(const __grid_constant__ CUtensorMap map, int4 coords_lo, int coord4,
                             unsigned bytes, uint16_t *out) {
  extern __shared__ __align__(1024) unsigned char dynamic[];
  unsigned char *slot = (unsigned char *)(((uintptr_t)dynamic + 1023) & ~(uintptr_t)1023);
  __shared__ uint64_t full;
  if (threadIdx.x == 0) {
    bar_init(&full, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    bar_expect(&full, bytes);
    const int c[5] = {coords_lo.x, coords_lo.y, coords_lo.z, coords_lo.w, coord4};
    tensor_copy<kRank>(slot, &map, c, &full, evict_first());
  }
  bar_wait(&full, 0);
  for (unsigned i = threadIdx.x; i < bytes / 2; i += blockDim.x)
    out[i] = reinterpret_cast<const uint16_t *>(slot)[i];
}

enum class Fill { rows, rows_lanes, tensor_map, contiguous };

/// The ring over a [rows, k] matrix: chunk (group g, slice s) is rows
/// 16g..16g+15, columns 1024s..; group g goes to block g % grid.
template <Fill kFill>
__global__ void __launch_bounds__((kComputeWarps + 1) * 32)
    stream_ring(const __grid_constant__ CUtensorMap map, const __nv_bfloat16 *w, int rows, int k,
                unsigned *sink) {
  extern __shared__ __align__(1024) unsigned char dynamic[];
  unsigned char *slots = (unsigned char *)(((uintptr_t)dynamic + 1023) & ~(uintptr_t)1023);
  __shared__ uint64_t full[kStages], empty[kStages];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x < kStages) {
    bar_init(&full[threadIdx.x], 1);
    bar_init(&empty[threadIdx.x], kComputeWarps);
  }
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  __syncthreads();
  const int groups = rows / kRows, slices = k / kSliceCols;
  if (warp == kComputeWarps) {
    const uint64_t policy = evict_first();
    int chunk = 0;
    for (int g = blockIdx.x; g < groups; g += gridDim.x)
      for (int s = 0; s < slices; ++s, ++chunk) {
        const int slot = chunk % kStages, use = chunk / kStages;
        if (use > 0)
          bar_wait(&empty[slot], (use - 1) & 1);
        if (chunk >= kInFlight)
          bar_wait(&full[(chunk - kInFlight) % kStages], ((chunk - kInFlight) / kStages) & 1);
        unsigned char *dst = slots + slot * kSlotBytes;
        const __nv_bfloat16 *first = w + (size_t)g * kRows * k + (size_t)s * kSliceCols;
        if constexpr (kFill == Fill::rows_lanes) {
          if (lane == 0)
            bar_expect(&full[slot], kChunkBytes);
          __syncwarp();
          if (lane < kRows)
            bulk_copy(dst + lane * kRowStride, first + (size_t)lane * k, kSliceCols * 2, &full[slot],
                      policy);
          continue;
        }
        if (lane != 0)
          continue;
        bar_expect(&full[slot], kChunkBytes);
        if constexpr (kFill == Fill::rows) {
          for (int r = 0; r < kRows; ++r)
            bulk_copy(dst + r * kRowStride, first + (size_t)r * k, kSliceCols * 2, &full[slot], policy);
        } else if constexpr (kFill == Fill::tensor_map) {
          const int c[5] = {0, g * kRows, s * (kSliceCols / 64), 0, 0};
          tensor_copy<3>(dst, &map, c, &full[slot], policy);
        } else {
          bulk_copy(dst, reinterpret_cast<const unsigned char *>(w) + ((size_t)g * slices + s) * kChunkBytes,
                    kChunkBytes, &full[slot], policy);
        }
      }
    return;
  }
  unsigned acc = 0;
  int chunk = 0;
  for (int g = blockIdx.x; g < groups; g += gridDim.x)
    for (int s = 0; s < slices; ++s, ++chunk) {
      const int slot = chunk % kStages;
      bar_wait(&full[slot], (chunk / kStages) & 1);
      const uint4 *data = reinterpret_cast<const uint4 *>(slots + slot * kSlotBytes);
      for (int i = threadIdx.x; i < kChunkBytes / 16; i += kComputeWarps * 32)
        acc ^= data[i].x ^ data[i].w;
      __syncwarp();
      if (lane == 0)
        bar_arrive(&empty[slot]);
    }
  if (acc == 0x9e3779b9u)
    *sink = acc;
}

using Encode = CUresult (*)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *, const cuuint64_t *,
                            const cuuint64_t *, const cuuint32_t *, const cuuint32_t *,
                            CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,
                            CUtensorMapFloatOOBfill);

/// A weight value's bits from its place: distinct across a box, never NaN.
static uint16_t pattern(size_t row, size_t col, size_t k) {
  return (uint16_t)((row * k + col) % 0x3f00);
}

struct View {
  const char *name;
  int rank;
  std::vector<cuuint64_t> dims, strides; // strides in bytes, of dims 1..rank-1
  std::vector<cuuint32_t> box;
  CUtensorMapSwizzle swizzle;
};

/// Encodes `view` over w; prints the result. True if the driver took it.
static bool encode(Encode fn, CUtensorMap *map, const View &view, void *w) {
  std::vector<cuuint32_t> ones(view.rank, 1);
  CUresult r = fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, view.rank, w, view.dims.data(),
                  view.strides.data(), view.box.data(), ones.data(), CU_TENSOR_MAP_INTERLEAVE_NONE,
                  view.swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  const char *name = nullptr;
  cuGetErrorName(r, &name);
  std::printf("encode %-34s %s\n", view.name, name ? name : "?");
  return r == CUDA_SUCCESS;
}

/// Copies the box at `coords` and checks each element against `where`:
/// (row, col) of the matrix for the element at smem element index i.
template <int kRank, class Where>
static void check_box(const CUtensorMap &map, const View &view, const int (&coords)[5], size_t k,
                      Where where) {
  unsigned elements = 1;
  for (int d = 0; d < view.rank; ++d)
    elements *= view.box[d];
  uint16_t *out;
  CHECK(cudaMalloc(&out, elements * 2));
  copy_one_box<kRank><<<1, 256, elements * 2 + 1024>>>(
      map, make_int4(coords[0], coords[1], coords[2], coords[3]), coords[4], elements * 2, out);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> host(elements);
  CHECK(cudaMemcpy(host.data(), out, elements * 2, cudaMemcpyDeviceToHost));
  CHECK(cudaFree(out));
  unsigned wrong = 0;
  for (unsigned i = 0; i < elements; ++i) {
    size_t row, col;
    where(i, row, col);
    wrong += host[i] != pattern(row, col, k);
  }
  std::printf("  box of %u elements: %u misplaced\n", elements, wrong);
}

/// The median of 7 timed runs of `launch` (after one warm-up), in ms.
template <class Launch> static float median_ms(Launch launch) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int rep = 0; rep < 8; ++rep) {
    CHECK(cudaEventRecord(a));
    launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float t;
    CHECK(cudaEventElapsedTime(&t, a, b));
    if (rep > 0)
      ms.push_back(t);
  }
  CHECK(cudaGetLastError());
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// SWIZZLE_128B: 16-byte piece p of 128-byte line L lands at piece p ^ (L % 8).
static unsigned unswizzle(unsigned element) {
  const unsigned byte = element * 2, line = byte / 128, piece = (byte / 16) % 8;
  return (line * 128 + ((piece ^ (line % 8)) * 16) + byte % 16) / 2;
}

int main() {
  CHECK(cudaFree(nullptr));
  const Encode encode_fn = cuTensorMapEncodeTiled;
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs\n", prop.name, sms);

  // --- 1. views, on a [512 rows, 2048] matrix with a pattern ---
  const size_t probe_rows = 512, probe_k = 2048;
  std::vector<uint16_t> host(probe_rows * probe_k);
  for (size_t r = 0; r < probe_rows; ++r)
    for (size_t c = 0; c < probe_k; ++c)
      host[r * probe_k + c] = pattern(r, c, probe_k);
  void *probe;
  CHECK(cudaMalloc(&probe, host.size() * 2));
  CHECK(cudaMemcpy(probe, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  const cuuint64_t row_bytes = probe_k * 2;
  CUtensorMap map;
  // Rows below column blocks: line = block * 16 + row, so the swizzle varies with the row.
  View rows_inner{"rows-inner {64, rows, K/64}", 3, {64, probe_rows, probe_k / 64}, {row_bytes, 128},
                  {64, 16, 16}, CU_TENSOR_MAP_SWIZZLE_128B};
  if (encode(encode_fn, &map, rows_inner, probe)) {
    const int coords[5] = {0, 48, 16, 0, 0}; // rows 48..63, columns 1024..2047
    check_box<3>(map, rows_inner, coords, probe_k, [&](unsigned i, size_t &row, size_t &col) {
      const unsigned e = unswizzle(i);
      col = 1024 + (e / (64 * 16)) * 64 + e % 64;
      row = 48 + (e / 64) % 16;
    });
  }
  // A rotation group of packed q/k rows (head dim 64): units i0..i0+7 of head h pair rows
  // 64h + i and 64h + 32 + i; chunk row half * 8 + unit.
  View rotation{"rotation {64, 8 of 32, 2, K/64, heads}", 5,
                {64, 32, 2, probe_k / 64, probe_rows / 64},
                {row_bytes, 32 * row_bytes, 128, 64 * row_bytes},
                {64, 8, 2, 16, 1},
                CU_TENSOR_MAP_SWIZZLE_128B};
  if (encode(encode_fn, &map, rotation, probe)) {
    const int coords[5] = {0, 8, 0, 0, 3}; // head 3, units 8..15, columns 0..1023
    check_box<5>(map, rotation, coords, probe_k, [&](unsigned i, size_t &row, size_t &col) {
      const unsigned e = unswizzle(i);
      const unsigned line_row = (e / 64) % 16; // half * 8 + unit
      col = (e / (64 * 16)) * 64 + e % 64;
      row = 3 * 64 + (line_row / 8) * 32 + 8 + line_row % 8;
    });
  }
  // The increasing-strides view, for comparison: rows outermost, so the swizzle follows the
  // column block only (ldmatrix's 8 rows would share banks).
  View rows_outer{"rows-outer {64, K/64, rows}", 3, {64, probe_k / 64, probe_rows}, {128, row_bytes},
                  {64, 16, 16}, CU_TENSOR_MAP_SWIZZLE_128B};
  if (encode(encode_fn, &map, rows_outer, probe)) {
    const int coords[5] = {0, 0, 16, 0, 0};
    check_box<3>(map, rows_outer, coords, probe_k, [&](unsigned i, size_t &row, size_t &col) {
      const unsigned e = unswizzle(i);
      col = ((e / 64) % 16) * 64 + e % 64;
      row = 16 + e / (64 * 16);
    });
  }
  CHECK(cudaFree(probe));

  // --- 2. throughput over 1 GiB ---
  unsigned *sink;
  CHECK(cudaMalloc(&sink, 4));
  for (int k : {2048, 4096, 14336}) {
    const int rows = (int)((1ull << 30) / (k * 2) / kRows * kRows);
    const size_t bytes = (size_t)rows * k * 2;
    __nv_bfloat16 *w;
    CHECK(cudaMalloc(&w, bytes));
    fill_random<<<1024, 256>>>(w, (size_t)rows * k, 7);
    View view{"", 3, {64, (cuuint64_t)rows, (cuuint64_t)k / 64}, {(cuuint64_t)k * 2, 128},
              {64, 16, 16}, CU_TENSOR_MAP_SWIZZLE_128B};
    const bool have_map =
        encode_fn(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, w, view.dims.data(), view.strides.data(),
                  view.box.data(), std::vector<cuuint32_t>(3, 1).data(), CU_TENSOR_MAP_INTERLEAVE_NONE,
                  view.swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
    const unsigned shared = kStages * kSlotBytes + 1024;
    auto report = [&](const char *name, float ms) {
      std::printf("K %5d  %-34s %7.3f ms  %6.0f GB/s\n", k, name, ms, bytes / ms / 1e6);
    };
    auto run = [&](const char *name, auto kernel) {
      CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
      report(name, median_ms([&] {
               kernel<<<sms, (kComputeWarps + 1) * 32, shared>>>(map, w, rows, k, sink);
             }));
    };
    report("read stream (loads)", median_ms([&] {
             read_stream<<<sms * 8, 512>>>(reinterpret_cast<const uint4 *>(w), bytes / 16,
                                           reinterpret_cast<float *>(sink));
           }));
    run("16 row copies (the kernel)", stream_ring<Fill::rows>);
    run("16 row copies, a lane each", stream_ring<Fill::rows_lanes>);
    if (have_map)
      run("1 tensor-map box (rows-inner)", stream_ring<Fill::tensor_map>);
    run("1 contiguous copy (ceiling)", stream_ring<Fill::contiguous>);
    CHECK(cudaFree(w));
  }
  return 0;
}
