// A batch-1 decode step's GEMV chain (Llama-3-8B or 3.2-1B shapes: qkv, o, gate_up, down per layer,
// then the LM head) captured in one CUDA Graph, with and without programmatic dependent launch (PDL).
// With PDL each GEMV starts streaming its weights while the previous kernel drains, and waits
// (griddepcontrol.wait) only before it reads its input vector. Prints ms per step and the fraction
// of the streaming roofline; bench/NOTES.md records what it showed.
//
// Build: nvcc -O3 -std=c++17 -gencode=arch=compute_90,code=sm_90 bench/kernels/layer_chain_bench.cu
#include "bench_common.cuh"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

// One warp per row; PREFETCH 16-byte weight loads per lane are issued before waiting on the previous
// grid (they do not depend on it); the rest stream UNROLL at a time.
template <int PREFETCH, int UNROLL, bool PDL>
__global__ void __launch_bounds__(256) gemv(const __nv_bfloat16 *__restrict__ w, const __nv_bfloat16 *x,
                                            __nv_bfloat16 *y, int n, int k) {
  extern __shared__ uint4 xs[];
  const int vecs = k >> 3;
  const int lane = threadIdx.x & 31;
  const int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const uint4 *wr = reinterpret_cast<const uint4 *>(w + (size_t)min(row, n - 1) * k);
  uint4 pre[PREFETCH > 0 ? PREFETCH : 1];
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    const int i = lane + p * 32;
    pre[p] = i < vecs ? load_stream(wr + i) : make_uint4(0, 0, 0, 0);
  }
  if (PDL) {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
  }
  for (int i = threadIdx.x; i < vecs; i += blockDim.x) xs[i] = reinterpret_cast<const uint4 *>(x)[i];
  __syncthreads();
  if (row >= n) return;
  float acc = 0.f;
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    const int i = lane + p * 32;
    if (i < vecs) acc += dot8(pre[p], xs[i]);
  }
  for (int base = lane + PREFETCH * 32; base < vecs; base += 32 * UNROLL) {
    uint4 wv[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int i = base + u * 32;
      wv[u] = i < vecs ? load_stream(wr + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
      if (base + u * 32 < vecs) acc += dot8(wv[u], xs[base + u * 32]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = __float2bfloat16(acc);
}

struct Gemv { const __nv_bfloat16 *w; const __nv_bfloat16 *x; __nv_bfloat16 *y; int n, k; };

template <int PREFETCH, bool PDL>
void launch(const Gemv &g, cudaStream_t stream) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((g.n + 7) / 8);
  cfg.blockDim = dim3(256);
  cfg.dynamicSmemBytes = g.k * 2;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = PDL ? 1 : 0;
  CHECK(cudaLaunchKernelEx(&cfg, gemv<PREFETCH, 4, PDL>, g.w, g.x, g.y, g.n, g.k));
}

template <int PREFETCH, bool PDL>
float time_graph(const std::vector<Gemv> &chain, cudaStream_t stream) {
  CHECK(cudaFuncSetAttribute(gemv<PREFETCH, 4, PDL>, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (const Gemv &g : chain) launch<PREFETCH, PDL>(g, stream);
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> t;
  for (int i = 0; i < 23; ++i) {
    cudaEventRecord(a, stream);
    CHECK(cudaGraphLaunch(exec, stream));
    cudaEventRecord(b, stream);
    CHECK(cudaEventSynchronize(b));
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    if (i >= 3) t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main() {
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  float *sink;
  CHECK(cudaMalloc(&sink, 4));
  struct Model { const char *name; int hidden, q, kv, inter, layers, vocab; };
  for (Model m : {Model{"8B", 4096, 4096, 1024, 14336, 32, 128256}, Model{"1B", 2048, 2048, 512, 8192, 16, 128256}}) {
    const int qkv = m.q + 2 * m.kv;
    size_t per_layer = (size_t)qkv * m.hidden + (size_t)m.hidden * m.q + 2ull * m.inter * m.hidden + (size_t)m.hidden * m.inter;
    size_t total = per_layer * m.layers + (size_t)m.vocab * m.hidden;
    __nv_bfloat16 *w, *act;
    CHECK(cudaMalloc(&w, total * 2));
    CHECK(cudaMalloc(&act, 4 * 65536 * 2));
    fill_random<<<4096, 256>>>(w, total, 3, 0.05f);
    fill_random<<<64, 256>>>(act, 4 * 65536, 5, 0.05f);
    std::vector<Gemv> chain;
    __nv_bfloat16 *x = act, *t1 = act + 65536, *t2 = act + 2 * 65536;
    const __nv_bfloat16 *wp = w;
    for (int l = 0; l < m.layers; ++l) {
      chain.push_back({wp, x, t1, qkv, m.hidden}); wp += (size_t)qkv * m.hidden;
      chain.push_back({wp, t1, x, m.hidden, m.q}); wp += (size_t)m.hidden * m.q;
      chain.push_back({wp, x, t2, 2 * m.inter, m.hidden}); wp += 2ull * m.inter * m.hidden;
      chain.push_back({wp, t2, x, m.hidden, m.inter}); wp += (size_t)m.hidden * m.inter;
    }
    chain.push_back({wp, x, t2, m.vocab, m.hidden});
    // Read-stream ceiling over the same bytes.
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    std::vector<float> rs;
    for (int i = 0; i < 8; ++i) {
      cudaEventRecord(a, stream);
      read_stream<<<132 * 8, 512, 0, stream>>>((const uint4 *)w, total * 2 / 16, sink);
      cudaEventRecord(b, stream);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      rs.push_back(ms);
    }
    std::sort(rs.begin(), rs.end());
    double bytes = total * 2.0, stream_ms = rs[rs.size() / 2];
    std::printf("%s: %zu GEMVs, %.2f GB of weights, read-stream %.3f ms (%.0f GB/s)\n", m.name, chain.size(),
                bytes / 1e9, stream_ms, bytes / stream_ms / 1e6);
    auto report = [&](const char *what, float ms) {
      std::printf("  %-28s %.3f ms/step  %.1f%% of the read-stream time\n", what, ms, 100.0 * stream_ms / ms);
    };
    report("graph, no PDL", time_graph<0, false>(chain, stream));
    report("graph, PDL, no prefetch", time_graph<0, true>(chain, stream));
    report("graph, PDL, prefetch 4", time_graph<4, true>(chain, stream));
    report("graph, PDL, prefetch 8", time_graph<8, true>(chain, stream));
    report("graph, PDL, prefetch 16", time_graph<16, true>(chain, stream));
    CHECK(cudaFree(w));
    CHECK(cudaFree(act));
  }
  return 0;
}
