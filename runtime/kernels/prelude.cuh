// kiln kernel prelude: what every generated kernel may use. The runtime
// prepends this text to the artifact's kernel sources before NVRTC compiles
// them (and CI does the same when it checks that every kernel compiles), so
// the step state's layout is defined once, here, for host and device.
#pragma once

#ifdef __CUDACC_RTC__
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#else
#include <cstdint>
#endif

namespace kiln {

/// Everything that changes from step to step, passed by value to kernels that
/// need it. The pointers are fixed for a session (so a captured CUDA Graph
/// stays valid); the arrays they point to are rewritten before every step.
/// Tokens of all sequences are packed: sequence b owns tokens
/// [query_start[b], query_start[b+1]).
struct StepState {
  const int32_t *token_ids;    // [max_tokens]
  const int32_t *positions;    // [max_tokens] position of each token in its sequence
  const int32_t *token_seq;    // [max_tokens] sequence index of each token
  const int32_t *query_start;  // [max_batch + 1]
  const int32_t *kv_len;       // [max_batch] cached positions after this step's append
  const int32_t *slot;         // [max_batch] KV-cache slot of each sequence
  const int32_t *last_token;   // [max_batch] packed index of each sequence's last token
  const float *temperature;    // [max_batch] 0: greedy
  const int32_t *top_k;        // [max_batch] 0: off
  const float *top_p;          // [max_batch] 1: off
  const uint64_t *seed;        // [max_batch]
  int32_t *sampled;            // [max_batch] the token chosen for each sequence
  int32_t *step_counter;       // [max_batch] random stream offset, advanced per sample
  uint64_t *best_logit;        // [max_batch] the LM head's largest logit and its row
                               // (kiln::logit_key); 0 before the LM head
  const uint32_t *epoch;       // this step's number, never 0xffffffff: what the persistent
                               // kernel's tagged words carry for this step
};

}  // namespace kiln

#ifdef __CUDACC_RTC__
namespace kiln {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

/// Sum over the block; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float x, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  x = lane < warps ? scratch[lane] : 0.f;
  return warp_sum(x);
}

/// Sum over the first kThreads threads of the block (a whole number of
/// warps), which alone meet at named barrier 1: the persistent decode kernel's
/// compute warps, while its copy warp runs on. Every one gets the result.
template <int kThreads> __device__ __forceinline__ void group_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kThreads) : "memory");
}
template <int kThreads> __device__ __forceinline__ float group_sum(float x, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  group_sync<kThreads>();
  if (lane == 0) scratch[warp] = x;
  group_sync<kThreads>();
  x = lane < kThreads / 32 ? scratch[lane] : 0.f;
  return warp_sum(x);
}

__device__ __forceinline__ float block_max(float x, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  x = lane < warps ? scratch[lane] : -__int_as_float(0x7f800000);  // -inf: NVRTC has no INFINITY
  return warp_max(x);
}

/// 16 bytes of T (8 f16/bf16 or 4 f32 elements) moved by one vector load or
/// store; elements are read and written as float. The address must be
/// 16-byte aligned.
template <typename T> struct Vec16 {
  static constexpr int size = 16 / sizeof(T);
  uint4 raw;
  __device__ __forceinline__ float get(int i) const {
    return to_float(reinterpret_cast<const T *>(&raw)[i]);
  }
  __device__ __forceinline__ void set(int i, float x) {
    reinterpret_cast<T *>(&raw)[i] = from_float<T>(x);
  }
};
template <typename T> __device__ __forceinline__ Vec16<T> load16(const T *p) {
  Vec16<T> v;
  v.raw = *reinterpret_cast<const uint4 *>(p);
  return v;
}
template <typename T> __device__ __forceinline__ void store16(T *p, const Vec16<T> &v) {
  *reinterpret_cast<uint4 *>(p) = v.raw;
}
/// The 16 bytes at p as floats: out[0 .. Vec16<T>::size).
template <typename T> __device__ __forceinline__ void load16_floats(float *out, const T *p) {
  const Vec16<T> v = load16(p);
#pragma unroll
  for (int i = 0; i < Vec16<T>::size; ++i) out[i] = v.get(i);
}
template <typename T> __device__ __forceinline__ void store16_floats(T *p, const float *in) {
  Vec16<T> v;
#pragma unroll
  for (int i = 0; i < Vec16<T>::size; ++i) v.set(i, in[i]);
  store16(p, v);
}

/// A compile-time int as a value, to pick a specialization at run time.
template <int N> struct Int { static constexpr int value = N; };

/// Programmatic dependent launch (PDL, sm_90+). The runtime launches a kernel
/// whose artifact entry says `programmatic` so that it may start while the
/// previous kernel of the stream still runs: such a kernel must call
/// wait_for_previous_grids() in every thread before it reads anything an
/// earlier command wrote or writes anything (weights and the step state,
/// uploaded before the step, may be read before), and should call
/// launch_dependents() early so that the next kernel can start prefetching.
/// Before sm_90 both are no-ops and launches are plainly serialized.
__device__ __forceinline__ void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_previous_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// 16 bytes of weights read once per step: streamed past L1
/// (ld.global.nc.L1::no_allocate), so the activations that every block reads
/// stay cached there.
template <typename T> __device__ __forceinline__ Vec16<T> load16_stream(const T *p) {
  Vec16<T> v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.raw.x), "=r"(v.raw.y), "=r"(v.raw.z), "=r"(v.raw.w)
               : "l"(p));
  return v;
}
/// 16 bytes through L2 only (ld.global.cg), for what an earlier kernel of the
/// step wrote: this SM's L1 may hold a stale copy of its sector.
template <typename T> __device__ __forceinline__ Vec16<T> load16_cg(const T *p) {
  Vec16<T> v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.raw.x), "=r"(v.raw.y), "=r"(v.raw.z), "=r"(v.raw.w)
               : "l"(p));
  return v;
}
/// One element, for rows whose length is no multiple of 16 bytes.
template <typename T> struct Vec1 {
  static constexpr int size = 1;
  T raw;
  __device__ __forceinline__ float get(int) const { return to_float(raw); }
  __device__ __forceinline__ void set(int, float x) { raw = from_float<T>(x); }
};
template <typename T> __device__ __forceinline__ Vec1<T> load1(const T *p) {
  Vec1<T> v;
  v.raw = *p;
  return v;
}
template <typename T> __device__ __forceinline__ Vec1<T> load1_cg(const T *p) {
  Vec1<T> v;
  v.raw = __ldcg(p);
  return v;
}
template <typename T> __device__ __forceinline__ void store1(T *p, const Vec1<T> &v) { *p = v.raw; }

/// An unsigned integer of kBytes bytes (a vector of them from 8 on).
template <int kBytes> struct RawBytes;
template <> struct RawBytes<2> { using type = unsigned short; };
template <> struct RawBytes<4> { using type = unsigned int; };
template <> struct RawBytes<8> { using type = uint2; };
template <> struct RawBytes<16> { using type = uint4; };
/// kN consecutive elements of T, loaded long before they are read (a norm's
/// weights, asked for before its input is waited for, so that no round trip
/// follows the statistics): kept raw in registers, read as floats. p is
/// aligned to kN elements or 16 bytes, whichever is less (kiln's weights
/// start at multiples of 256 bytes and are read at multiples of kN elements).
template <typename T, int kN> struct Elements {
  static constexpr int kBytes = kN * (int)sizeof(T), kPiece = kBytes < 16 ? kBytes : 16;
  using Piece = typename RawBytes<kPiece>::type;
  Piece pieces[kBytes / kPiece];
  __device__ __forceinline__ void load(const T *p) {
#pragma unroll
    for (int k = 0; k < kBytes / kPiece; ++k)
      pieces[k] = reinterpret_cast<const Piece *>(p)[k];
  }
  /// From here on: the compiler would otherwise unpack the elements right
  /// after the load (out of the loop that reads them) and wait for it there.
  __device__ __forceinline__ void hold_until_here() {
#pragma unroll
    for (int k = 0; k < kBytes / 4; ++k)
      asm volatile("" : "+r"(reinterpret_cast<unsigned *>(pieces)[k]));
    if constexpr (kBytes % 4 != 0)
      asm volatile("" : "+h"(reinterpret_cast<unsigned short *>(pieces)[kBytes / 2 - 1]));
  }
  __device__ __forceinline__ float get(int i) const {
    return to_float(reinterpret_cast<const T *>(pieces)[i]);
  }
};

/// The shared-memory address of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t shared_address(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

/// kN elements of T from global to shared memory, for values asked for long
/// before their use where registers are short (a norm's weights, before its
/// input is waited for): by cp.async (sm_80+), so the thread goes on at once
/// and nothing waits in registers. After wait_copies_ahead() the thread, and
/// only it, may read them. Both addresses are aligned as Elements' are.
template <typename T, int kN>
__device__ __forceinline__ void copy_ahead(T *shared, const T *global) {
  constexpr int kBytes = kN * (int)sizeof(T), kPiece = kBytes < 16 ? kBytes : 16;
  if constexpr (kPiece % 4 != 0) { // cp.async moves 4, 8 or 16 bytes
#pragma unroll
    for (int i = 0; i < kN; ++i)
      shared[i] = global[i];
  } else {
#pragma unroll
    for (int k = 0; k < kBytes / kPiece; ++k)
      asm volatile("cp.async.ca.shared.global [%0], [%1], %2;"
                   ::"r"(shared_address(shared) + k * kPiece),
                   "l"(reinterpret_cast<const char *>(global) + k * kPiece), "n"(kPiece)
                   : "memory");
  }
}
__device__ __forceinline__ void wait_copies_ahead() {
  asm volatile("cp.async.wait_all;" ::: "memory");
}

/// Four 8x8 matrices of 16-bit elements from shared memory (ldmatrix.x4):
/// lane i gives the address of row i % 8 of matrix i / 8.
template <typename T> __device__ __forceinline__ void load_matrices(uint32_t (&r)[4], const T *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
template <typename T>
__device__ __forceinline__ void load_matrices_transposed(uint32_t (&r)[4], const T *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

/// c += a · b on tensor cores: a 16x16 row-major, b 16x8 column-major, of
/// T (__half or __nv_bfloat16), float accumulators.
template <typename T>
__device__ __forceinline__ void mma_16x8x16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                            uint32_t b1);
#define KILN_MMA_16X8X16(T, PTX_TYPE)                                                             \
  template <>                                                                                    \
  __device__ __forceinline__ void mma_16x8x16<T>(float (&c)[4], const uint32_t (&a)[4],          \
                                                 uint32_t b0, uint32_t b1) {                     \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX_TYPE "." PTX_TYPE ".f32 "           \
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"             \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                 \
  }
KILN_MMA_16X8X16(__nv_bfloat16, "bf16")
KILN_MMA_16X8X16(__half, "f16")
#undef KILN_MMA_16X8X16

/// Shared-memory barriers and bulk copies (sm_90): the persistent decode
/// kernel streams weights into a ring of shared-memory slots with the copy
/// engine, each slot with a `full` barrier (the bytes arrived) and an
/// `empty` one (every compute warp is done with it). Before sm_90 they trap:
/// the runtime runs that kernel only on sm_90 and newer.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KILN_SM90(...) __VA_ARGS__
#else
#define KILN_SM90(...) __trap()
#endif
__device__ __forceinline__ void mbarrier_init(uint64_t *barrier, unsigned arrivals) {
  KILN_SM90(asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(barrier)),
                         "r"(arrivals)
                         : "memory"));
}
/// Makes initialized barriers visible to the copy engine.
__device__ __forceinline__ void mbarrier_init_fence() {
  KILN_SM90(asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"));
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t *barrier) {
  KILN_SM90(asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(shared_address(barrier))
                         : "memory"));
}
/// One arrival that also expects `bytes` of bulk copies to complete.
__device__ __forceinline__ void mbarrier_arrive_expect_bytes(uint64_t *barrier, unsigned bytes) {
  KILN_SM90(asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(
                             shared_address(barrier)),
                         "r"(bytes)
                         : "memory"));
}
/// Waits until the barrier's phase of this parity has completed.
__device__ __forceinline__ void mbarrier_wait(uint64_t *barrier, unsigned parity) {
  unsigned done = 0;
  do {
    KILN_SM90(asm volatile("{\n  .reg .pred p;\n  mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                           "  selp.u32 %0, 1, 0, p;\n}"
                           : "=r"(done)
                           : "r"(shared_address(barrier)), "r"(parity)
                           : "memory"));
  } while (!done);
}
/// An L2 cache policy that marks lines first to be evicted, for weights read
/// once per step.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy = 0;
  KILN_SM90(asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy)));
  return policy;
}
/// A CUtensorMap (cuda.h): the copy engine's description of a tensor in
/// global memory, which the runtime encodes from the artifact's view
/// (artifact.fbs, TensorMapView) and passes by value; a kernel takes it as a
/// `const __grid_constant__` parameter and hands its address to the copy.
struct alignas(64) TensorMap {
  unsigned long long opaque[16];
};
/// One box of `map` at element coordinates `c` (dimension 0 first) into
/// shared memory by the copy engine, completing on `barrier` with the box's
/// bytes (elements outside the tensor arrive as zeros), with an L2 policy.
template <int kRank>
__device__ __forceinline__ void tensor_copy_to_shared(void *destination, const TensorMap *map,
                                                      const int (&c)[kRank], uint64_t *barrier,
                                                      uint64_t policy) {
  static_assert(kRank >= 3 && kRank <= 5, "the persistent kernel's views have 3 to 5 dimensions");
  const unsigned to = shared_address(destination), done = shared_address(barrier);
  if constexpr (kRank == 3)
    KILN_SM90(asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
                           ".L2::cache_hint [%0], [%1, {%2, %3, %4}], [%5], %6;" ::"r"(to),
                           "l"(map), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(done), "l"(policy)
                           : "memory"));
  else if constexpr (kRank == 4)
    KILN_SM90(asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
                           ".L2::cache_hint [%0], [%1, {%2, %3, %4, %5}], [%6], %7;" ::"r"(to),
                           "l"(map), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(done),
                           "l"(policy)
                           : "memory"));
  else
    KILN_SM90(asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.mbarrier::complete_tx::bytes"
                           ".L2::cache_hint [%0], [%1, {%2, %3, %4, %5, %6}], [%7], %8;" ::"r"(to),
                           "l"(map), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(c[4]),
                           "r"(done), "l"(policy)
                           : "memory"));
}
#undef KILN_SM90

/// Registers moved between the warpgroups (4 warps) of a block: on sm_90a,
/// for which the runtime compiles on Hopper, a warpgroup that needs few
/// gives its registers back to the block (setmaxnreg.dec) and one that needs
/// many takes them (setmaxnreg.inc, which waits until they are free). Every
/// warp of a warpgroup makes the same call. Elsewhere both do nothing and
/// every warp keeps the kernel's cap.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
constexpr bool kMovesRegisters = true;
#define KILN_SETMAXNREG(ACTION, N) asm volatile("setmaxnreg." ACTION ".sync.aligned.u32 %0;" ::"n"(N))
#else
constexpr bool kMovesRegisters = false;
#define KILN_SETMAXNREG(ACTION, N)
#endif
template <int kRegisters> __device__ __forceinline__ void give_registers() {
  KILN_SETMAXNREG("dec", kRegisters);
}
template <int kRegisters> __device__ __forceinline__ void take_registers() {
  KILN_SETMAXNREG("inc", kRegisters);
}
#undef KILN_SETMAXNREG

/// A wait for another block polls at most this many times (seconds at L2
/// latency), then fails a device-side assertion: a value that never comes
/// ends the step with an error (the driver prints the block and thread)
/// instead of hanging the GPU.
constexpr unsigned kPollLimit = 1u << 22;
__device__ __forceinline__ void count_poll(unsigned &polls) {
  if (++polls == kPollLimit)
    __assertfail("a value from another block never came (kiln::kPollLimit polls)", __FILE__,
                 __LINE__, __func__, 1);
}

/// Tagged words (as NCCL's LL protocol): 32 bits of payload and the step's
/// epoch in one 64-bit word, written with one store. A reader that sees the
/// epoch sees the payload with it, so a value is handed from SM to SM without
/// a fence, a flag or a second read. The blocks must all be resident (a
/// cooperative launch) for a reader to wait for another block's words.
__device__ __forceinline__ void tagged_store(uint64_t *word, uint32_t payload, uint32_t epoch) {
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(word),
               "l"((uint64_t)epoch << 32 | payload)
               : "memory");
}
/// Four tagged words (32 bytes, aligned), as they are now.
struct TaggedWords4 {
  uint64_t w[4];
  /// (With `&`: a branch here would sit between a poll's loads.)
  __device__ __forceinline__ bool carry(uint32_t epoch) const {
    return ((uint32_t)(w[0] >> 32) == epoch) & ((uint32_t)(w[1] >> 32) == epoch) &
           ((uint32_t)(w[2] >> 32) == epoch) & ((uint32_t)(w[3] >> 32) == epoch);
  }
  __device__ __forceinline__ uint4 payload() const {
    return make_uint4((uint32_t)w[0], (uint32_t)w[1], (uint32_t)w[2], (uint32_t)w[3]);
  }
};
__device__ __forceinline__ TaggedWords4 load_tagged4(const uint64_t *words) {
  TaggedWords4 t;
  asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%4];\n\t"
               "ld.relaxed.gpu.global.v2.u64 {%2, %3}, [%4+16];"
               : "=l"(t.w[0]), "=l"(t.w[1]), "=l"(t.w[2]), "=l"(t.w[3])
               : "l"(words)
               : "memory");
  return t;
}
/// load_tagged4(words) if `wanted`, else words of tag 0 (no epoch), without
/// a branch: a predicated load, so that a loop of them has none between its
/// loads (a branch would hold the next load back until this one came).
__device__ __forceinline__ TaggedWords4 load_tagged4_if(bool wanted, const uint64_t *words) {
  TaggedWords4 t = {};
  asm volatile("{\n\t.reg .pred p;\n\t"
               "setp.ne.u32 p, %4, 0;\n\t"
               "@p ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%5];\n\t"
               "@p ld.relaxed.gpu.global.v2.u64 {%2, %3}, [%5+16];\n\t}"
               : "+l"(t.w[0]), "+l"(t.w[1]), "+l"(t.w[2]), "+l"(t.w[3])
               : "r"((unsigned)wanted), "l"(words)
               : "memory");
  return t;
}
/// The payloads of four tagged words (16 bytes of data), polled until all
/// of them carry `epoch`.
__device__ __forceinline__ uint4 poll_tagged4(const uint64_t *words, uint32_t epoch) {
  for (unsigned polls = 0;; count_poll(polls)) {
    const TaggedWords4 t = load_tagged4(words);
    if (t.carry(epoch))
      return t.payload();
  }
}
/// What one lane holds of the first of two rows of kWords tagged words that
/// its warp waited for together (tagged_warp_rows): the payloads of words
/// 2 * lane + 64m and 2 * lane + 1 + 64m, as slots 2m and 2m + 1.
template <int kWords> struct WarpRows {
  static constexpr int kSlots = 2 * ((kWords + 63) / 64);
  uint32_t first[kSlots];
  /// Words 4i .. 4i + 3 of a row (16 bytes of payload) from the lanes that
  /// hold them; each lane may ask for its own i, and all 32 lanes call it.
  __device__ __forceinline__ uint4 vector(const uint32_t (&row)[kSlots], int i) const {
    uint32_t out[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int w = 4 * i + q;
      out[q] = 0;
#pragma unroll
      for (int m = 0; m < kSlots / 2; ++m) {
        const uint32_t value = __shfl_sync(0xffffffffu, row[2 * m + (q & 1)], (w % 64) / 2);
        if (w / 64 == m)
          out[q] = value;
      }
    }
    return make_uint4(out[0], out[1], out[2], out[3]);
  }
};
/// Waits, with all 32 lanes of the warp, until the kWords tagged words at
/// `first` and at `second` (16-byte aligned) carry `epoch`: a lane polls two
/// of each at a time, so that two rows of up to 64 words cost one round trip
/// and a few registers a lane. Returns what the lanes saw of the first row, so
/// that a lane can take its vectors from the others (WarpRows::vector) instead
/// of loading them again. Any lane may also read the words (load_tagged4):
/// the closing __syncwarp orders its reads after the polls that saw them
/// written, which a later read of the same word cannot go back behind.
template <int kWords>
__device__ __forceinline__ WarpRows<kWords> tagged_warp_rows(const uint64_t *first,
                                                             const uint64_t *second,
                                                             uint32_t epoch) {
  static_assert(kWords % 2 == 0, "whole pairs of words");
  using Rows = WarpRows<kWords>;
  Rows rows;
  auto poll = [epoch](const uint64_t *pair, uint32_t *payload) {
    uint64_t w0, w1;
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];"
                 : "=l"(w0), "=l"(w1)
                 : "l"(pair)
                 : "memory");
    payload[0] = (uint32_t)w0;
    payload[1] = (uint32_t)w1;
    return (uint32_t)(w0 >> 32) == epoch && (uint32_t)(w1 >> 32) == epoch;
  };
  const int lane = threadIdx.x & 31;
  for (unsigned polls = 0;; count_poll(polls)) {
    bool mine = true;
#pragma unroll
    for (int m = 0; m < Rows::kSlots / 2; ++m) {
      const int i = 2 * lane + 64 * m;
      uint32_t unused[2];
      rows.first[2 * m] = rows.first[2 * m + 1] = 0;
      if (i < kWords)
        mine &= poll(first + i, rows.first + 2 * m) & poll(second + i, unused);
    }
    if (__all_sync(0xffffffffu, mine)) {
      __syncwarp();
      return rows;
    }
  }
}
/// Counts an arrival in `counter`, a word of epoch << 32 | count that needs
/// no zeroing: a word of another step counts as none. Returns the count with
/// this arrival. Each failed exchange means another arrival went in, so the
/// loop ends.
__device__ __forceinline__ uint32_t count_arrival(uint64_t *counter, uint32_t epoch) {
  unsigned long long seen = *reinterpret_cast<volatile unsigned long long *>(counter);
  for (;;) {
    const uint32_t count = (uint32_t)(seen >> 32) == epoch ? (uint32_t)seen + 1 : 1;
    const unsigned long long was = atomicCAS(reinterpret_cast<unsigned long long *>(counter), seen,
                                             (unsigned long long)epoch << 32 | count);
    if (was == seen)
      return count;
    seen = was;
  }
}

/// Floats as unsigned integers in the same order.
__device__ __forceinline__ unsigned ordered_bits(float x) {
  const unsigned bits = __float_as_uint(x);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}
__device__ __forceinline__ float from_ordered_bits(unsigned key) {
  return __uint_as_float(key & 0x80000000u ? key & 0x7fffffffu : ~key);
}
/// A logit and its vocabulary row as one integer whose maximum is the
/// greedy choice: the largest logit, and the lowest row among equal ones (as
/// torch.argmax). -0 counts as +0; NaN logits must not be offered.
__device__ __forceinline__ unsigned long long logit_key(float logit, int row) {
  return (unsigned long long)ordered_bits(logit + 0.f) << 32 | (unsigned)~row;
}

/// Sine and cosine of a RoPE angle (position × inverse frequency, rounded to
/// float as transformers computes it). The angle is reduced to [-π, π] in
/// double, so that no slow path for large arguments (with its local-memory
/// table) is compiled into the kernel, and the hardware approximation, whose
/// error there is below 4e-7, does the rest.
__device__ __forceinline__ void rope_sincos(float angle, float *sine, float *cosine) {
  const double turns = rint((double)angle * 0.15915494309189535);
  const float reduced = (float)((double)angle - turns * 6.283185307179586);
  __sincosf(reduced, sine, cosine);
}

/// Activations as transformers computes them, in float.
__device__ __forceinline__ float silu(float x) { return x / (1.f + expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_tanh(float x) {
  return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

}  // namespace kiln
#endif
