//===- AttentionKernels.cpp - RoPE + KV-cache write, prefill and decode ---===//
//
// tfm.attention becomes two steps: a kernel that rotates q and k inside the
// packed qkv row and writes k and v to the layer's cache, then attention of
// every query token over its sequence's cached keys. Prefill uses a
// flash-attention kernel (online softmax over key tiles); decode splits each
// token's key range over blocks that each serve one kv head's whole query
// group, and the last split to finish combines them. In decode the first
// part is usually fused into the packed-QKV GEMV (GemvKernels.cpp).
//
// Cache layout: [max_batch slots][max_seq_len][kv_heads][head_dim]; the key at
// position s of sequence b is row s of slot step.slot[b].
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

#include <cmath>

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {

constexpr int64_t kSharedLimit = 48 * 1024;
// Decode attention blocks: 8 warps take up to 256 keys in one round of
// tiles (the warp with a second tile sets a block's time: bench/NOTES.md,
// section 5), and a context is split over more blocks only when each split
// has AttentionParams::decodeMinTilesPerWarp tiles per warp (2 by default:
// the combine of splits costs more than a second tile, which a warp
// pipelines).
constexpr int64_t kDecodeWarps = 8;
// The tensor-core prefill kernel: 4 warps of 32 query rows (two 16-row MMA
// tiles, so that each key/value fragment read from shared memory feeds two
// MMAs) and key tiles of 32 (with 64, head dim 128 spills); larger head dims
// would not keep the output accumulators in registers (bench/NOTES.md §3).
constexpr int64_t kMmaWarps = 4, kMmaRowTiles = 2, kMmaQueryTile = 16 * kMmaRowTiles * kMmaWarps;
constexpr int64_t kMmaKeyTile = 32, kMmaMaxHeadDim = 128, kMmaBlocksPerSm = 2;

/// The shape in a kernel name: h<heads>_kv<kv heads>_d<head dim>_<dtype>.
std::string shapeSuffix(const AttentionParams &params) {
  return formatv("h{0}_kv{1}_d{2}_{3}", params.heads, params.kvHeads, params.headDim,
                 dtypeName(params.dtype));
}

/// Constants every attention kernel shares.
std::string commonConstants(const AttentionParams &params) {
  return formatv(R"cuda(  using T = {0};
  constexpr int kHeads = {1}, kKvHeads = {2}, kHeadDim = {3}, kGroup = kHeads / kKvHeads;
  constexpr int kRow = (kHeads + 2 * kKvHeads) * kHeadDim; // packed q, k, v of one token
  constexpr int kKeyStride = kKvHeads * kHeadDim;          // one cached position
  constexpr int kMaxSeqLen = {4};)cuda",
                 cudaTypeName(params.dtype), params.heads, params.kvHeads, params.headDim,
                 params.maxSeqLen)
      .str();
}

/// Rows of q per prefill block: the most (up to 32) whose tile and one key
/// tile fit in the static shared memory limit.
int64_t prefillQueryTile(const AttentionParams &params) {
  int64_t keyTileBytes = 32 * (params.headDim + 1) * 4;
  for (int64_t tile : {32, 16, 8})
    if (keyTileBytes + tile * params.headDim * 4 + tile * 4 <= kSharedLimit)
      return tile;
  return 4;
}

/// Query heads one decode block serves: of its kv head's group, up to
/// decodeMaxGroupDims / head dim and as many as the warps' merge buffers in
/// shared memory allow.
int64_t decodeGroupHeads(const AttentionParams &params) {
  int64_t mergeBytes = kDecodeWarps * (params.headDim + 2) * 4 + params.headDim * 4;
  return std::max<int64_t>(1, std::min({params.heads / params.kvHeads,
                                        params.decodeMaxGroupDims / params.headDim,
                                        (kSharedLimit - 4096) / mergeBytes}));
}

/// "causal", with " sliding-window (W)" and " ALiBi" as they apply.
std::string maskDescription(const AttentionParams &params) {
  return formatv("causal{0}{1}",
                 params.window ? formatv(" sliding-window ({0})", params.window).str()
                               : std::string(),
                 params.alibiSlopes.empty() ? "" : " ALiBi")
      .str();
}

/// ALiBi's slope table and bias statement, or nothing.
std::string alibiTable(const AttentionParams &params, llvm::StringRef kernel) {
  return params.alibiSlopes.empty() ? ""
                                    : floatTable((kernel + "_alibi_slopes").str(),
                                                 params.alibiSlopes);
}

} // namespace

std::vector<double> codegen::alibiSlopes(int64_t heads) {
  int64_t closest = int64_t(1) << static_cast<int64_t>(std::floor(std::log2(double(heads))));
  auto slopesFrom = [](int64_t powerOfTwo) {
    return std::pow(2.0, -std::pow(2.0, -(std::log2(double(powerOfTwo)) - 3)));
  };
  // transformers rounds the bases to float32 before raising them to powers.
  double base = static_cast<float>(slopesFrom(closest));
  std::vector<double> slopes;
  for (int64_t i = 1; i <= closest; ++i)
    slopes.push_back(std::pow(base, double(i)));
  if (closest != heads) {
    double extraBase = static_cast<float>(slopesFrom(2 * closest));
    int64_t remaining = std::min(closest, heads - closest);
    for (int64_t i = 1; i < 1 + 2 * remaining; i += 2)
      slopes.push_back(std::pow(extraBase, double(i)));
  }
  return slopes;
}

KernelSpec codegen::ropeKvCacheKernel(const AttentionParams &params, bool zeroCounters) {
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = (params.rope ? "rope_kv_cache_" : "kv_cache_write_") + shapeSuffix(params) +
              (zeroCounters ? "_decode" : "");
  spec.summary =
      params.rope
          ? formatv("tfm.attention, part 1: {0} RoPE on {1} of {2} dims of q and k in the packed "
                    "qkv row, then k and v into the layer's cache",
                    params.ropeGptj ? "GPT-J" : "NeoX", params.rotaryDim, params.headDim)
                .str()
          : "tfm.attention, part 1: k and v of the packed qkv row into the layer's cache";
  int64_t half = params.rope ? params.rotaryDim / 2 : 0;
  spec.launch.block =
      threadsFor(std::max((params.heads + params.kvHeads) * half, params.kvHeads * params.headDim),
                 256);
  spec.launch.scale = GridScale::tokens;

  std::string table, rotate;
  if (params.rope) {
    table = floatTable(spec.name + "_inv_freq", params.invFreq);
    rotate = fillTemplate(R"cuda(
  // Rotate the pairs of every q head and then every k head (they are adjacent
  // in the row), by angle position * inv_freq[j] computed in float as
  // transformers does.
  constexpr int kHalf = ${HALF};
  for (int p = threadIdx.x; p < (kHeads + kKvHeads) * kHalf; p += blockDim.x) {
    const int j = p % kHalf;
    T *head = row + (p / kHalf) * kHeadDim;
    const int i0 = ${I0}, i1 = ${I1};
    float sine, cosine;
    kiln::rope_sincos((float)position * ${TABLE}[j], &sine, &cosine);
    const float x0 = kiln::to_float(head[i0]), x1 = kiln::to_float(head[i1]);
    head[i0] = kiln::from_float<T>(x0 * cosine - x1 * sine);
    head[i1] = kiln::from_float<T>(x1 * cosine + x0 * sine);
  }
  __syncthreads();
)cuda",
                          {{"HALF", std::to_string(half)},
                           {"I0", params.ropeGptj ? "2 * j" : "j"},
                           {"I1", params.ropeGptj ? "2 * j + 1" : "j + kHalf"},
                           {"TABLE", spec.name + "_inv_freq"}});
  }

  spec.source = fillTemplate(R"cuda(
${TABLE}
// One block per token.
extern "C" __global__ void ${NAME}(${T} *__restrict__ qkv, ${T} *__restrict__ k_cache,
                                   ${T} *__restrict__ v_cache, ${COUNTERS}kiln::StepState step) {
${CONSTANTS}
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();${ZERO_COUNTERS}
  const int token = blockIdx.x;
  const int position = step.positions[token];
  const int slot = step.slot[step.token_seq[token]];
  T *row = qkv + (size_t)token * kRow;
${ROTATE}
  if (position < 0 || position >= kMaxSeqLen) // the runtime checks positions
    return;
  const size_t at = ((size_t)slot * kMaxSeqLen + position) * kKeyStride;
  for (int i = threadIdx.x; i < kKeyStride; i += blockDim.x) {
    k_cache[at + i] = row[kHeads * kHeadDim + i];
    v_cache[at + i] = row[(kHeads + kKvHeads) * kHeadDim + i];
  }
}
)cuda",
                             {{"TABLE", table},
                              {"NAME", spec.name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"CONSTANTS", commonConstants(params)},
                              {"COUNTERS", zeroCounters ? "int *__restrict__ counters, " : ""},
                              {"ZERO_COUNTERS",
                               zeroCounters ? zeroDecodeCounters(params, "counters", "gridDim.x")
                                            : ""},
                              {"ROTATE", rotate}});
  return spec;
}

namespace {

/// Masking and bias of one score `s` of query position `pos` and key `key`.
std::string scoreAdjustment(const AttentionParams &params, llvm::StringRef kernel,
                            llvm::StringRef head) {
  std::string text;
  if (!params.alibiSlopes.empty())
    text += formatv("s += {0}_alibi_slopes[{1}] * (float)(key - pos);", kernel, head);
  return text;
}

std::string windowCondition(const AttentionParams &params) {
  return params.window > 0 ? formatv(" && key > pos - {0}", params.window).str() : "";
}

} // namespace

namespace {

/// Prefill attention on CUDA cores, for f32 and head dims the tensor-core
/// kernel does not take.
KernelSpec cudaCorePrefillKernel(const AttentionParams &params) {
  int64_t queryTile = prefillQueryTile(params);
  int64_t queryTiles = ceilDiv(params.maxTokens, queryTile);
  KernelSpec spec;
  spec.name = "attention_prefill_" + shapeSuffix(params);
  spec.summary = formatv("tfm.attention, part 2 (prefill): {0} attention of each query over "
                         "the cached keys, online softmax over tiles of 32 keys",
                         maskDescription(params));
  spec.launch.block = 128;
  spec.launch.grid = static_cast<unsigned>(params.heads * queryTiles);
  spec.launch.scale = GridScale::sequences;

  spec.source = fillTemplate(R"cuda(
${ALIBI}
// grid.x = sequences x ${QUERY_TILES} query tiles x heads: block (sequence, tile,
// head) handles up to ${QUERY_TILE} query tokens of one head (blocks past the end
// of a sequence return at once). Each warp owns ${ROWS} rows; a lane owns one key
// of the tile for scores and dims lane + 32 i of the output.
extern "C" __global__ void __launch_bounds__(128)
${NAME}(const ${T} *__restrict__ qkv, const ${T} *__restrict__ k_cache,
        const ${T} *__restrict__ v_cache, ${T} *__restrict__ out, kiln::StepState step) {
${CONSTANTS}
  constexpr int kQueryTile = ${QUERY_TILE}, kQueryTiles = ${QUERY_TILES}, kKeyTile = 32;
  constexpr int kRows = kQueryTile / 4, kDimsPerLane = (kHeadDim + 31) / 32;
  constexpr float kScale = ${SCALE};
  const float kNegInf = -__int_as_float(0x7f800000);
  __shared__ float q_tile[kQueryTile][kHeadDim];
  __shared__ float k_tile[kKeyTile][kHeadDim + 1];
  __shared__ int q_pos[kQueryTile];

  const int sequence = blockIdx.x / (kQueryTiles * kHeads);
  const int tile = blockIdx.x / kHeads % kQueryTiles;
  const int head = blockIdx.x % kHeads;
  const int q_begin = step.query_start[sequence] + tile * kQueryTile;
  const int q_count = min(kQueryTile, step.query_start[sequence + 1] - q_begin);
  if (q_count <= 0)
    return;
  const int slot = step.slot[sequence];
  const size_t cache_base = (size_t)slot * kMaxSeqLen * kKeyStride + (head / kGroup) * kHeadDim;
  const T *keys = k_cache + cache_base;
  const T *values = v_cache + cache_base;

  for (int i = threadIdx.x; i < kQueryTile * kHeadDim; i += blockDim.x) {
    const int r = i / kHeadDim, d = i % kHeadDim;
    q_tile[r][d] = r < q_count
        ? kiln::to_float(qkv[(size_t)(q_begin + r) * kRow + head * kHeadDim + d]) * kScale
        : 0.f;
  }
  if (threadIdx.x < kQueryTile)
    q_pos[threadIdx.x] = threadIdx.x < q_count ? step.positions[q_begin + threadIdx.x] : -1;
  __syncthreads();

  // The keys some row of the tile may see.
  int first = kMaxSeqLen, last = -1;
  for (int r = 0; r < q_count; ++r) {
    first = min(first, q_pos[r]);
    last = max(last, q_pos[r]);
  }
  const int key_end = min(step.kv_len[sequence], last + 1);
  const int key_begin = ${KEY_BEGIN};

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float m[kRows], l[kRows], acc[kRows][kDimsPerLane];
#pragma unroll
  for (int rr = 0; rr < kRows; ++rr) {
    m[rr] = kNegInf;
    l[rr] = 0.f;
    for (int i = 0; i < kDimsPerLane; ++i)
      acc[rr][i] = 0.f;
  }

  for (int k0 = key_begin; k0 < key_end; k0 += kKeyTile) {
    __syncthreads();
    for (int i = threadIdx.x; i < kKeyTile * kHeadDim; i += blockDim.x) {
      const int j = i / kHeadDim, d = i % kHeadDim;
      k_tile[j][d] = k0 + j < key_end ? kiln::to_float(keys[(size_t)(k0 + j) * kKeyStride + d]) : 0.f;
    }
    __syncthreads();

    const int key = k0 + lane;
    float p[kRows];
#pragma unroll
    for (int rr = 0; rr < kRows; ++rr) {
      const int r = warp * kRows + rr;
      const int pos = q_pos[r]; // -1 for rows past q_count: they see no key
      float s = 0.f;
      for (int d = 0; d < kHeadDim; ++d)
        s += q_tile[r][d] * k_tile[lane][d];
      ${ADJUST}
      const bool visible = key < key_end && key <= pos${WINDOW};
      s = visible ? s : kNegInf;
      const float m_new = fmaxf(m[rr], kiln::warp_max(s));
      const float alpha = m_new == kNegInf ? 1.f : expf(m[rr] - m_new);
      p[rr] = visible ? expf(s - m_new) : 0.f;
      l[rr] = l[rr] * alpha + kiln::warp_sum(p[rr]);
      for (int i = 0; i < kDimsPerLane; ++i)
        acc[rr][i] *= alpha;
      m[rr] = m_new;
    }

    // p · V: each value row is read once per warp for all of its rows.
    const int keys_here = min(kKeyTile, key_end - k0);
    for (int j = 0; j < keys_here; ++j) {
      float v[kDimsPerLane];
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + 32 * i;
        v[i] = d < kHeadDim ? kiln::to_float(values[(size_t)(k0 + j) * kKeyStride + d]) : 0.f;
      }
#pragma unroll
      for (int rr = 0; rr < kRows; ++rr) {
        const float pj = __shfl_sync(0xffffffffu, p[rr], j);
        for (int i = 0; i < kDimsPerLane; ++i)
          acc[rr][i] += pj * v[i];
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kRows; ++rr) {
    const int r = warp * kRows + rr;
    if (r >= q_count)
      continue;
    const float inv = l[rr] > 0.f ? 1.f / l[rr] : 0.f;
    T *dst = out + (size_t)(q_begin + r) * kHeads * kHeadDim + head * kHeadDim;
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < kHeadDim)
        dst[d] = kiln::from_float<T>(acc[rr][i] * inv);
    }
  }
}
)cuda",
                             {{"ALIBI", alibiTable(params, spec.name)},
                              {"NAME", spec.name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"CONSTANTS", commonConstants(params)},
                              {"QUERY_TILE", std::to_string(queryTile)},
                              {"QUERY_TILES", std::to_string(queryTiles)},
                              {"ROWS", std::to_string(queryTile / 4)},
                              {"SCALE", floatLiteral(params.scale)},
                              {"KEY_BEGIN",
                               params.window > 0
                                   ? formatv("max(0, first - {0} + 1) / kKeyTile * kKeyTile",
                                             params.window)
                                         .str()
                                   : "0"},
                              {"ADJUST", scoreAdjustment(params, spec.name, "head")},
                              {"WINDOW", windowCondition(params)}});
  return spec;
}

/// Prefill attention on tensor cores (f16/bf16, head dim a multiple of 16 up
/// to kMmaMaxHeadDim), FlashAttention-2 style.
KernelSpec tensorCorePrefillKernel(const AttentionParams &params) {
  bool bf16 = params.dtype == DType::bf16;
  KernelSpec spec;
  spec.name = "attention_prefill_mma_" + shapeSuffix(params);
  spec.summary = formatv("tfm.attention, part 2 (prefill): {0} attention of each query over "
                         "the cached keys on tensor cores, {1} queries per block, online softmax "
                         "over tiles of {2} keys",
                         maskDescription(params), kMmaQueryTile, kMmaKeyTile);
  spec.launch.block = kMmaWarps * 32;
  spec.launch.grid = static_cast<unsigned>(params.heads);
  spec.launch.scale = GridScale::query_tiles;
  spec.launch.tile = kMmaQueryTile;
  // The query tile and two buffers each of key and value tiles, rows padded
  // by 16 bytes: 68 KiB for head dim 128 (2 blocks per SM, as registers allow).
  spec.launch.sharedBytes =
      static_cast<unsigned>((kMmaQueryTile + 4 * kMmaKeyTile) * (params.headDim + 8) * 2);

  std::string window = std::to_string(params.window);
  spec.source = fillTemplate(R"cuda(
${ALIBI}
namespace ${NAME}_mma {
${CONSTANTS}
constexpr int kQueryTile = ${QUERY_TILE}, kKeyTile = ${KEY_TILE}, kMaxBatch = ${MAX_BATCH};
constexpr int kRowTiles = ${ROW_TILES}; // 16-row MMA tiles per warp
constexpr int kStride = kHeadDim + 8; // padded rows: ldmatrix's 8 rows hit distinct banks
constexpr int kChunks = kHeadDim / 8; // 16-byte pieces of a row
constexpr int kDimSteps = kHeadDim / 16, kDimTiles = kHeadDim / 8, kKeyTiles = kKeyTile / 8;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kScaleLog2 = ${SCALE} * kLog2e;

using kiln::load_matrices;
using kiln::load_matrices_transposed;
using kiln::shared_address;

/// 16 bytes from global to shared memory without a trip through registers;
/// zeros instead when !valid (the source must still be a valid address).
__device__ __forceinline__ void copy16(T *to, const T *from, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(to)),
               "l"(from), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most `pending` of this thread's committed copy groups are in flight.
template <int pending> __device__ __forceinline__ void wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}

/// c += a · b on tensor cores (kiln::mma_16x8x16).
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  kiln::mma_16x8x16<T>(c, a, b0, b1);
}

/// Two floats as one fragment register: `lo` in the low 16 bits.
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  ${PAIR} pair = ${PACK}(lo, hi);
  return *reinterpret_cast<uint32_t *>(&pair);
}

/// Keys [k0, k0 + kKeyTile) and their values into shared tiles, zeros past
/// key_end. Commits one copy group on every call (an empty one past the last
/// tile), so that waits count groups uniformly.
__device__ __forceinline__ void load_keys(T *k_to, T *v_to, const T *keys, const T *values,
                                          int k0, int key_end) {
  if (k0 < key_end)
    for (int c = threadIdx.x; c < kKeyTile * kChunks; c += blockDim.x) {
      const int j = c / kChunks, piece = c % kChunks;
      const size_t at = (size_t)min(k0 + j, key_end - 1) * kKeyStride + piece * 8;
      copy16(k_to + j * kStride + piece * 8, keys + at, k0 + j < key_end);
      copy16(v_to + j * kStride + piece * 8, values + at, k0 + j < key_end);
    }
  commit();
}

/// One key tile for a warp's kRowTiles x 16 rows: scores, online softmax
/// (base 2), then O += P·V. Query fragments come from shared memory each time
/// (registers hold the accumulators). kMasked: some score of the tile may be
/// invisible to some row.
template <bool kMasked>
__device__ __forceinline__ void attend(const T *q_rows, const T *k_tile, const T *v_tile,
                                       float (&o)[kRowTiles][kDimTiles][4],
                                       float (&m)[kRowTiles][2], float (&l)[kRowTiles][2],
                                       const int (&pos)[kRowTiles][2], int k0, int key_end,
                                       float alibi) {
  const int lane = threadIdx.x & 31, pair_col = 2 * (lane & 3);
  const float kNegInf = -__int_as_float(0x7f800000);
  float s[kRowTiles][kKeyTiles][4];
#pragma unroll
  for (int r = 0; r < kRowTiles; ++r)
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
      s[r][n][0] = s[r][n][1] = s[r][n][2] = s[r][n][3] = 0.f;
#pragma unroll
  for (int d = 0; d < kDimSteps; ++d) {
    uint32_t q[kRowTiles][4];
#pragma unroll
    for (int r = 0; r < kRowTiles; ++r)
      load_matrices(q[r], q_rows + (r * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * kStride +
                              d * 16 + 8 * (lane >> 4));
#pragma unroll
    for (int n = 0; n < kKeyTiles; n += 2) {
      uint32_t b[4];
      load_matrices(b, k_tile + (n * 8 + (lane & 7) + 8 * (lane >> 4)) * kStride + d * 16 +
                           8 * ((lane >> 3) & 1));
#pragma unroll
      for (int r = 0; r < kRowTiles; ++r) {
        mma(s[r][n], q[r], b[0], b[1]);
        mma(s[r][n + 1], q[r], b[2], b[3]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowTiles; ++r) {
    float base[2] = {kNegInf, kNegInf}, alpha[2];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e >> 1, key = k0 + n * 8 + pair_col + (e & 1);
        float x = s[r][n][e] * kScaleLog2${ALIBI_TERM};
        if (kMasked)
          x = key < key_end && key <= pos[r][h]${WINDOW_VISIBLE} ? x : kNegInf;
        s[r][n][e] = x;
        base[h] = fmaxf(base[h], x);
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      base[h] = fmaxf(base[h], __shfl_xor_sync(0xffffffffu, base[h], 1));
      base[h] = fmaxf(base[h], __shfl_xor_sync(0xffffffffu, base[h], 2));
      const float m_new = fmaxf(m[r][h], base[h]);
      // A row that has seen no key keeps max -inf; exponents are taken from 0
      // instead, so that they give 0 rather than NaN.
      base[h] = m_new == kNegInf ? 0.f : m_new;
      alpha[h] = exp2f(m[r][h] - base[h]);
      m[r][h] = m_new;
      l[r][h] *= alpha[h];
    }
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[r][n][e] = exp2f(s[r][n][e] - base[e >> 1]);
        l[r][e >> 1] += s[r][n][e]; // this thread's part of the row sum
      }
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[r][t][e] *= alpha[e >> 1];
  }

  // The score accumulators of key tiles 2j and 2j + 1 are P's A fragment.
#pragma unroll
  for (int j = 0; j < kKeyTile / 16; ++j) {
    uint32_t p[kRowTiles][4];
#pragma unroll
    for (int r = 0; r < kRowTiles; ++r) {
      p[r][0] = pack(s[r][2 * j][0], s[r][2 * j][1]);
      p[r][1] = pack(s[r][2 * j][2], s[r][2 * j][3]);
      p[r][2] = pack(s[r][2 * j + 1][0], s[r][2 * j + 1][1]);
      p[r][3] = pack(s[r][2 * j + 1][2], s[r][2 * j + 1][3]);
    }
#pragma unroll
    for (int t = 0; t < kDimTiles; t += 2) {
      uint32_t b[4];
      load_matrices_transposed(b, v_tile + (j * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * kStride +
                                      t * 8 + 8 * (lane >> 4));
#pragma unroll
      for (int r = 0; r < kRowTiles; ++r) {
        mma(o[r][t], p[r], b[0], b[1]);
        mma(o[r][t + 1], p[r], b[2], b[3]);
      }
    }
  }
}

} // namespace ${NAME}_mma

// grid.x = heads x sequences x query tiles (the runtime's query_tiles scale: as
// many tiles of ${QUERY_TILE} queries as the longest sequence needs). Block (tile,
// sequence, head) attends up to ${QUERY_TILE} query tokens of one head, the tiles
// with the most keys first; each of the 4 warps owns kRowTiles x 16 rows. Key
// and value tiles of ${KEY_TILE} rows stream through shared memory with cp.async,
// one tile ahead; S = Q·Kᵀ and O += P·V run on tensor cores (mma.sync
// m16n8k16, float accumulators) and the softmax is online, in registers.
// Fragment layout: in each 16-row tile, lane holds rows lane / 4 and
// lane / 4 + 8, columns 2 (lane % 4) and the next of each 8-column tile.
extern "C" __global__ void __launch_bounds__(${THREADS}, ${BLOCKS_PER_SM})
${NAME}(const ${T} *__restrict__ qkv, const ${T} *__restrict__ k_cache,
        const ${T} *__restrict__ v_cache, ${T} *__restrict__ out, kiln::StepState step) {
  using namespace ${NAME}_mma;
  extern __shared__ uint4 ${NAME}_shared[];
  T *q_tile = reinterpret_cast<T *>(${NAME}_shared);
  T *k_tiles = q_tile + kQueryTile * kStride; // two buffers of kKeyTile rows
  T *v_tiles = k_tiles + 2 * kKeyTile * kStride;
  __shared__ int first_pos, last_pos;

  // The step's sequences: query_start stays at the total past the last one.
  const int total = step.query_start[kMaxBatch];
  int lo = 1, hi = kMaxBatch;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (step.query_start[mid] >= total)
      hi = mid;
    else
      lo = mid + 1;
  }
  const int sequences = lo;
  const int tiles = gridDim.x / (kHeads * sequences);
  const int head = blockIdx.x % kHeads;
  const int sequence = blockIdx.x / kHeads % sequences;
  const int tile = tiles - 1 - blockIdx.x / (kHeads * sequences);
  const int q_begin = step.query_start[sequence] + tile * kQueryTile;
  const int q_count = min(kQueryTile, step.query_start[sequence + 1] - q_begin);
  if (q_count <= 0)
    return;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warp_row = warp * 16 * kRowTiles, pair_col = 2 * (lane & 3);
  // Positions of this thread's rows warp_row + 16 r + lane / 4 + 8 h; -1 for
  // padding rows, which see no key.
  int pos[kRowTiles][2];
#pragma unroll
  for (int r = 0; r < kRowTiles; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = warp_row + 16 * r + (lane >> 2) + 8 * h;
      pos[r][h] = row < q_count ? step.positions[q_begin + row] : -1;
    }
  if (threadIdx.x == 0) {
    first_pos = 0x7fffffff;
    last_pos = -1;
  }
  __syncthreads();
  if ((lane & 3) == 0)
    for (int r = 0; r < kRowTiles; ++r)
      for (int h = 0; h < 2; ++h)
        if (pos[r][h] >= 0) {
          atomicMin(&first_pos, pos[r][h]);
          atomicMax(&last_pos, pos[r][h]);
        }
  __syncthreads();
  const int first = first_pos, last = last_pos;
  const int key_end = min(step.kv_len[sequence], last + 1);
  const int key_begin = ${KEY_BEGIN};
  const size_t cache_base =
      (size_t)step.slot[sequence] * kMaxSeqLen * kKeyStride + (head / kGroup) * kHeadDim;
  const T *keys = k_cache + cache_base;
  const T *values = v_cache + cache_base;

  // The query tile and the first key/value tile, in flight together.
  const T *q_rows = qkv + (size_t)q_begin * kRow + head * kHeadDim;
  for (int c = threadIdx.x; c < kQueryTile * kChunks; c += blockDim.x) {
    const int r = c / kChunks, piece = c % kChunks;
    copy16(q_tile + r * kStride + piece * 8, q_rows + (size_t)min(r, q_count - 1) * kRow + piece * 8,
           r < q_count);
  }
  commit();
  load_keys(k_tiles, v_tiles, keys, values, key_begin, key_end);

  const float kNegInf = -__int_as_float(0x7f800000);
  float o[kRowTiles][kDimTiles][4], m[kRowTiles][2], l[kRowTiles][2];
#pragma unroll
  for (int r = 0; r < kRowTiles; ++r) {
    m[r][0] = m[r][1] = kNegInf;
    l[r][0] = l[r][1] = 0.f;
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t)
      o[r][t][0] = o[r][t][1] = o[r][t][2] = o[r][t][3] = 0.f;
  }
  const float alibi = ${ALIBI_SLOPE};
  const T *warp_q = q_tile + warp_row * kStride;

  for (int k0 = key_begin, buffer = 0; k0 < key_end; k0 += kKeyTile, buffer ^= 1) {
    const int next = (buffer ^ 1) * kKeyTile * kStride, here = buffer * kKeyTile * kStride;
    load_keys(k_tiles + next, v_tiles + next, keys, values, k0 + kKeyTile, key_end);
    wait<1>(); // all but the tile just asked for: this one (and the query tile)
    __syncthreads();
    if (k0 + kKeyTile - 1 > first || k0 + kKeyTile > key_end${WINDOW_MASKED})
      attend<true>(warp_q, k_tiles + here, v_tiles + here, o, m, l, pos, k0, key_end, alibi);
    else
      attend<false>(warp_q, k_tiles + here, v_tiles + here, o, m, l, pos, k0, key_end, alibi);
    __syncthreads(); // the buffer is refilled next iteration
  }

#pragma unroll
  for (int r = 0; r < kRowTiles; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l[r][h] += __shfl_xor_sync(0xffffffffu, l[r][h], 1);
      l[r][h] += __shfl_xor_sync(0xffffffffu, l[r][h], 2);
      const int row = warp_row + 16 * r + (lane >> 2) + 8 * h;
      if (row >= q_count)
        continue;
      const float inv = l[r][h] > 0.f ? 1.f / l[r][h] : 0.f;
      T *dst = out + (size_t)(q_begin + row) * kHeads * kHeadDim + head * kHeadDim + pair_col;
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t)
        *reinterpret_cast<uint32_t *>(dst + t * 8) =
            pack(o[r][t][2 * h] * inv, o[r][t][2 * h + 1] * inv);
    }
}
)cuda",
                             {{"ALIBI", alibiTable(params, spec.name)},
                              {"NAME", spec.name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"PAIR", bf16 ? "__nv_bfloat162" : "__half2"},
                              {"PACK", bf16 ? "__floats2bfloat162_rn" : "__floats2half2_rn"},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"BLOCKS_PER_SM", std::to_string(kMmaBlocksPerSm)},
                              {"ROW_TILES", std::to_string(kMmaRowTiles)},
                              {"CONSTANTS", commonConstants(params)},
                              {"QUERY_TILE", std::to_string(kMmaQueryTile)},
                              {"KEY_TILE", std::to_string(kMmaKeyTile)},
                              {"MAX_BATCH", std::to_string(params.maxBatch)},
                              {"SCALE", floatLiteral(params.scale)},
                              {"KEY_BEGIN", params.window > 0
                                                ? "max(0, first - " + window +
                                                      " + 1) / kKeyTile * kKeyTile"
                                                : std::string("0")},
                              {"ALIBI_SLOPE", params.alibiSlopes.empty()
                                                  ? std::string("0.f")
                                                  : spec.name + "_alibi_slopes[head] * kLog2e"},
                              {"ALIBI_TERM", params.alibiSlopes.empty()
                                                 ? std::string()
                                                 : " + alibi * (float)(key - pos[r][h])"},
                              {"WINDOW_VISIBLE", params.window > 0
                                                     ? " && key > pos[r][h] - " + window
                                                     : std::string()},
                              {"WINDOW_MASKED", params.window > 0 ? " || k0 <= last - " + window
                                                                  : std::string()}});
  return spec;
}
} // namespace

KernelSpec codegen::attentionPrefillKernel(const AttentionParams &params) {
  bool tensorCores = (params.dtype == DType::bf16 || params.dtype == DType::f16) &&
                     params.headDim % 16 == 0 && params.headDim <= kMmaMaxHeadDim;
  return tensorCores ? tensorCorePrefillKernel(params) : cudaCorePrefillKernel(params);
}

int64_t codegen::chooseDecodeSplits(const AttentionParams &params) {
  // About two blocks per SM of an H100 (132) at the longest context, as
  // long as each split gets its decodeMinTilesPerWarp tiles per warp there;
  // a short context leaves most splits empty.
  int64_t blocksPerSplit = params.kvHeads * decodeHeadGroups(params);
  int64_t minSplitKeys = kDecodeWarps * params.decodeMinTilesPerWarp * 32;
  return std::clamp<int64_t>(ceilDiv(2 * 132, blocksPerSplit), 1,
                             std::min<int64_t>(ceilDiv(params.maxSeqLen, minSplitKeys), 64));
}

int64_t codegen::decodeHeadGroups(const AttentionParams &params) {
  return ceilDiv(params.heads / params.kvHeads, decodeGroupHeads(params));
}

int64_t codegen::decodePartialFloatsPerToken(const AttentionParams &params) {
  return params.decodeSplits > 1 ? params.heads * params.decodeSplits * (params.headDim + 2) : 0;
}

int64_t codegen::decodeCountersPerToken(const AttentionParams &params) {
  return params.decodeSplits > 1 ? params.kvHeads * decodeHeadGroups(params) : 0;
}

std::string codegen::zeroDecodeCounters(const AttentionParams &params, llvm::StringRef counters,
                                        llvm::StringRef tokens) {
  return formatv(R"cuda(
  // The decode attention's counters of finished splits start at zero.
  if (blockIdx.x == 0)
    for (int i = threadIdx.x; i < ({0}) * {1}; i += blockDim.x)
      {2}[i] = 0;)cuda",
                 tokens, decodeCountersPerToken(params), counters)
      .str();
}

namespace {

/// How a decode attention task gets q and this step's K/V rows and hands on
/// its output: plain memory after `wait()`, or tagged words through
/// `handoff` (decodeTaggedHandoffs). Returns the code for each ${KEY} of
/// attentionDecodeTask's text that depends on it, for vectors of `width`
/// values.
llvm::StringMap<std::string> decodeTaskHandoffs(const AttentionParams &params, int64_t width) {
  bool tagged = params.decodeTaggedHandoffs;
  assert((!tagged || width > 1) && "tagged words carry whole 16-byte vectors");
  std::string type = cudaTypeName(params.dtype).str();
  std::string load = width > 1 ? "kiln::load16_cg" : "kiln::load1_cg";
  std::string partialParams =
      params.decodeSplits == 1
          ? ""
          : formatv("float *__restrict__ partial, {0} *__restrict__ counters, ",
                    tagged ? "uint64_t" : "int")
                .str();
  llvm::StringMap<std::string> io;
  if (!tagged) {
    io["IO_COMMENT"] = R"cuda(// `wait()` returns once what earlier work wrote (q, this step's K/V rows,
// the zeroed counters) may be read; the loads before it touch only cached
// rows of earlier steps.
template <class Wait>)cuda";
    io["IO_PARAMS"] = formatv("const {0} *__restrict__ qkv, const {0} *__restrict__ k_cache,\n"
                              "        const {0} *__restrict__ v_cache, {1}{0} *__restrict__ out,\n"
                              "        kiln::StepState step, Wait wait",
                              type, partialParams)
                          .str();
    io["ROWS"] = fillTemplate(R"cuda(  // Vector d.. of a key's (value's) row.
  auto key_vector = [&](int key, int d) { return ${LOAD}(keys + (size_t)key * kKeyStride + d); };
  auto value_vector = [&](int key, int d) { return ${LOAD}(values + (size_t)key * kKeyStride + d); };)cuda",
                              {{"LOAD", load}});
    io["FIRST_TILE"] = R"cuda(  // A first tile with none of this step's rows loads before the wait, one
  // with some after it (a reload of the same registers would wait for the
  // first load).
  const bool cached_tile = first_tile + 32 <= fresh;
  if (first_tile < end && cached_tile) {
    load_keys(first_tile);
    load_values(first_tile);
  }
  wait();
  if (first_tile < end && !cached_tile) {
    load_keys(first_tile);
    load_values(first_tile);
  })cuda";
    io["Q_VECTOR"] = load + "(qkv + (size_t)token * kRow + head0 * kHeadDim + i)";
    io["OUT_VALUES"] = "1";
    io["STORE_OUT"] =
        "out[((size_t)token * kHeads + head0 + g) * kHeadDim + d] = kiln::from_float<T>(v[0])";
    io["ARRIVE"] = "atomicAdd(&counters[task / kSplits], 1) + 1";
    io["TILE_ROWS_WAIT"] = "";
    io["TOKEN_STEP"] = "";
    io["SEQUENCE"] = "step.token_seq[token]";
    io["POSITION"] = "step.positions[token]";
    io["KV_LEN"] = "step.kv_len[sequence]";
    io["SLOT"] = "step.slot[sequence]";
    io["QUERY_START"] = "step.query_start[sequence]";
    io["WHICH_ROWS"] = "";
    io["KEY_LOADED"] = "key < end";
    io["VALUE_LOADED"] = "row < end";
    io["LOAD_FRESH"] = "";
    io["LOAD_FRESH_NEXT"] = "";
  } else {
    io["IO_COMMENT"] = R"cuda(// `handoff` hands over this step's values as tagged words that name the
// step: packed(i) is the vector at index i of the tokens' packed q, k, v
// rows once it is written, out(t, i, v) writes columns i.. of token t's
// output, and the splits count in words tagged with handoff.epoch.
template <class Handoff>)cuda";
    io["IO_PARAMS"] = formatv("const {0} *__restrict__ k_cache, const {0} *__restrict__ v_cache,\n"
                              "        {1}kiln::StepState step, Handoff handoff",
                              type, partialParams)
                          .str();
    io["ROWS"] = fillTemplate(R"cuda(  // Vector d.. of a key's (value's) row: from the cache, or for this step's
  // positions from the packed row of the token that wrote it, once the warp
  // waited for the tile's rows (load_fresh).
  const int fresh_token = token_step.query_start;
  auto fresh_row = [&](int key, int head) {
    return (size_t)(fresh_token + key - fresh) * kRow + head * kHeadDim;
  };
  auto key_vector = [&](int key, int d) {
    return key < fresh ? ${LOAD}(keys + (size_t)key * kKeyStride + d)
                       : handoff.written(fresh_row(key, kHeads + kv_head) + d);
  };
  auto value_vector = [&](int key, int d) {
    return key < fresh ? ${LOAD}(values + (size_t)key * kKeyStride + d)
                       : handoff.written(fresh_row(key, kHeads + kKvHeads + kv_head) + d);
  };)cuda",
                              {{"LOAD", load}});
    io["TILE_ROWS_WAIT"] = R"cuda(
  // Whether load_values takes this step's rows (in load_fresh) or cached ones.
  bool fresh_pass = false;)cuda";
    io["FIRST_TILE"] = R"cuda(  // Cached rows load at once, this step's as soon as they are written.
  if (first_tile < end) {
    load_keys(first_tile);
    load_values(first_tile);
    load_fresh(first_tile);
  })cuda";
    io["WHICH_ROWS"] = "; cached rows, or\n  // this step's values in the fresh pass";
    io["KEY_LOADED"] = "key < end && key < fresh";
    io["VALUE_LOADED"] = "row < end && (row >= fresh) == fresh_pass";
    io["LOAD_FRESH"] = R"cuda(
  // This step's K and V rows of the tile (after the cached rows' loads went
  // out): the whole warp waits for each key's two rows at once, a few words
  // a lane, one round trip; the key's lane takes its K vectors from the lanes
  // that saw them, so that the scores need no second round trip, and the V
  // rows load behind them (shuffled in, they would need the step index at
  // run time, which puts v_ahead in local memory). A warp-uniform loop: every
  // lane takes part in the exchanges.
  auto load_fresh = [&](int k0) {
    for (int key = max(k0, fresh); key < min(end, k0 + 32); ++key) {
      const auto rows = handoff.template warp_rows<kHeadDim>(
          fresh_row(key, kHeads + kv_head), fresh_row(key, kHeads + kKvHeads + kv_head));
#pragma unroll
      for (int i = 0; i < kKAhead; ++i) {
        W v;
        v.raw = rows.vector(rows.first, i);
        if (lane == key - k0)
          k_ahead[i] = v;
      }
    }
    fresh_pass = true;
    load_values(k0);
    fresh_pass = false;
  };)cuda";
    io["LOAD_FRESH_NEXT"] = "\n    if (next < end)\n      load_fresh(next);";
    io["Q_VECTOR"] = "handoff.packed((size_t)token * kRow + head0 * kHeadDim + i)";
    // The token's step state as the kernel read it once, not from global
    // memory under the weight stream every layer.
    io["TOKEN_STEP"] = "  const auto token_step = handoff.step_of(token);\n";
    io["SEQUENCE"] = "token_step.sequence";
    io["POSITION"] = "token_step.position";
    io["KV_LEN"] = "token_step.kv_len";
    io["SLOT"] = "token_step.slot";
    io["QUERY_START"] = "token_step.query_start";
    io["OUT_VALUES"] = "4 / (int)sizeof(T)";
    io["STORE_OUT"] = "handoff.out(token, (head0 + g) * kHeadDim + d, v)";
    io["ARRIVE"] = "kiln::count_arrival(counters + task / kSplits, handoff.epoch)";
  }

  return io;
}

} // namespace

std::string codegen::attentionDecodeTaskName(const AttentionParams &params) {
  return "attention_decode_" + shapeSuffix(params) + "_task";
}

int64_t codegen::attentionDecodeTasksPerToken(const AttentionParams &params) {
  return params.kvHeads * decodeHeadGroups(params) * params.decodeSplits;
}

std::string codegen::attentionDecodeTask(const AttentionParams &params, llvm::StringRef sync) {
  int64_t groupHeads = decodeGroupHeads(params);
  int64_t headGroups = decodeHeadGroups(params);
  int64_t splits = params.decodeSplits;
  // 16-byte vectors of a key or value row when the head dim allows.
  int64_t width = vectorWidth(params.dtype, params.headDim);
  int64_t chunks = params.headDim / width;
  int64_t lanesPerKey = std::min<int64_t>(32, llvm::PowerOf2Ceil(chunks));
  std::string name = attentionDecodeTaskName(params);
  std::string loadsAhead = std::to_string(params.decodeLoadsAhead);
  if (params.decodeLoadsAheadMovedRegisters > 0 &&
      params.decodeLoadsAheadMovedRegisters != params.decodeLoadsAhead)
    loadsAhead = formatv("kiln::kMovesRegisters ? {0} : {1}",
                         params.decodeLoadsAheadMovedRegisters, params.decodeLoadsAhead);

  // The merged state of the block's warps is the result when the block was
  // the only split with keys.
  std::string writeOut = R"cuda(
    for (int i = threadIdx.x * kOutValues; i < heads_here * kHeadDim; i += kThreads * kOutValues) {
      const int g = i / kHeadDim, d = i % kHeadDim;
      float v[kOutValues];
#pragma unroll
      for (int e = 0; e < kOutValues; ++e)
        v[e] = head_sum[g] > 0.f ? merged_acc(g, d + e) / head_sum[g] : 0.f;
      store_out(g, d, v);
    })cuda";
  std::string finish;
  if (splits == 1)
    finish = "  {" + writeOut + "\n  }\n";
  else
    finish = "  if (splits_used == 1) {" + writeOut + R"cuda(
    return;
  }
  // Write this split's (max, sum, acc) per head; the last split of the
  // (token, kv head, group) to finish combines them all.
  for (int i = threadIdx.x; i < heads_here * kHeadDim; i += kThreads) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    float *dst = partial + (((size_t)token * kHeads + head0 + g) * kSplits + split) * kPartial;
    if (d == 0) {
      dst[0] = head_max[g];
      dst[1] = head_sum[g];
    }
    dst[2 + d] = merged_acc(g, d);
  }
  __threadfence();
  ${SYNC};
  if (threadIdx.x == 0)
    last = ${ARRIVE} == splits_used;
  ${SYNC};
  if (!last)
    return;
  __threadfence();
  // A warp per head: weights of the splits by lanes, then dims by lanes. The
  // partials are read from L2 (__ldcg): other SMs wrote them.
  for (int g = warp; g < heads_here; g += kWarps) {
    const float *p = partial + ((size_t)token * kHeads + head0 + g) * kSplits * kPartial;
    float m_all = kNegInf;
    for (int s = lane; s < splits_used; s += 32)
      m_all = fmaxf(m_all, __ldcg(p + s * kPartial));
    m_all = kiln::warp_max(m_all);
    float l_all = 0.f;
    for (int s = lane; s < splits_used; s += 32) {
      const float m = __ldcg(p + s * kPartial);
      split_weight[warp][s] = m == kNegInf ? 0.f : expf(m - m_all);
      l_all += split_weight[warp][s] * __ldcg(p + s * kPartial + 1);
    }
    l_all = kiln::warp_sum(l_all);
    __syncwarp();
    const float inv = l_all > 0.f ? 1.f / l_all : 0.f;
    for (int d = lane * kOutValues; d < kHeadDim; d += 32 * kOutValues) {
      float a[kOutValues] = {};
#pragma unroll 8
      for (int s = 0; s < splits_used; ++s)
#pragma unroll
        for (int e = 0; e < kOutValues; ++e)
          a[e] += split_weight[warp][s] * __ldcg(p + s * kPartial + 2 + d + e);
#pragma unroll
      for (int e = 0; e < kOutValues; ++e)
        a[e] *= inv;
      store_out(g, d, a);
    }
    __syncwarp();
  }
)cuda";

  llvm::StringMap<std::string> io = decodeTaskHandoffs(params, width);
  return fillTemplate(R"cuda(
${ALIBI}
// Tasks: tokens x ${KV_HEADS} kv heads x ${HEAD_GROUPS} head group(s) x ${SPLITS} split(s), each
// run by ${THREADS} threads. Task (token, kv head, group, split) attends the group's query heads over
// its split of the token's visible keys, reading each key and value row once
// for all of them: warps take tiles of 32 keys; for scores a lane takes one
// key, for p · V ${LANES} lanes share a value row, ${WIDTH} dims each. Cache rows
// are read through L2 only: those of this step's positions were written by
// another SM.
${IO_COMMENT}
static __device__ __forceinline__ void
${NAME}(int task, ${IO_PARAMS}) {
${CONSTANTS}
  constexpr int kGroupHeads = ${GROUP_HEADS}, kHeadGroups = ${HEAD_GROUPS}, kSplits = ${SPLITS};
  constexpr int kMinTiles = ${MIN_TILES};
  using W = ${WVEC};
  constexpr int kWarps = ${WARPS}, kThreads = kWarps * 32, kVec = W::size, kPartial = kHeadDim + 2;
  // p · V: kLanes lanes per value row, kKeysPerStep rows per step of a warp.
  constexpr int kChunks = kHeadDim / kVec, kLanes = ${LANES}, kKeysPerStep = 32 / kLanes;
  constexpr int kChunksPerLane = (kChunks + kLanes - 1) / kLanes;
  constexpr float kScale = ${SCALE};
  const float kNegInf = -__int_as_float(0x7f800000);
  __shared__ float q[kGroupHeads][kHeadDim];
  __shared__ float merge[kWarps][kGroupHeads][kPartial];
  __shared__ float warp_weight[kWarps][kGroupHeads], head_max[kGroupHeads], head_sum[kGroupHeads];${SPLIT_SHARED}

  // The step state was written before the step: read it while the previous
  // kernel finishes.
  const int token = task / (kKvHeads * kHeadGroups * kSplits);
  const int split = task % kSplits;
  const int head_group = task / kSplits % kHeadGroups;
  const int kv_head = task / (kSplits * kHeadGroups) % kKvHeads;
  const int head0 = kv_head * kGroup + head_group * kGroupHeads;
  const int heads_here = min(kGroupHeads, kGroup - head_group * kGroupHeads);
${TOKEN_STEP}  const int sequence = ${SEQUENCE};
  const int pos = ${POSITION};
  const int key_end = min(${KV_LEN}, pos + 1);
  const int key_begin = ${KEY_BEGIN};
  // Splits of whole 32-key tiles, at least kMinTiles for each warp (a few
  // more tiles cost a warp less than a combine): a short context leaves the
  // last splits without keys (those blocks return at once), and one of up to
  // kWarps * kMinTiles tiles needs no combine.
  const int chunk = max(kWarps * kMinTiles * 32,
                        ((key_end - key_begin + kSplits - 1) / kSplits + 31) / 32 * 32);
  const int begin = key_begin + split * chunk;
  const int end = min(key_end, begin + chunk);${RETURN_IF_UNUSED}
  const size_t cache_base = (size_t)${SLOT} * kMaxSeqLen * kKeyStride + kv_head * kHeadDim;
  const T *keys = k_cache + cache_base;
  const T *values = v_cache + cache_base;
  // Positions from `fresh` on (this step's tokens of the sequence, whose
  // positions are consecutive) were written in this step, by the QKV
  // product: they are read after the wait, or from the hand-off.
  const int fresh = pos - (token - ${QUERY_START});

${ROWS}
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int row_in_step = lane / kLanes, lane_chunk = lane % kLanes;
  // A warp's tile of 32 keys in registers: the K row of the lane's key (for
  // scores a lane takes one key) and the lane's share of the V rows (for
  // p · V kLanes lanes share a row). The first kKAhead and kVAhead vectors
  // are all loaded before any is used, so that their latencies overlap: the
  // first tile's cached rows before any wait for this step's, while the QKV
  // products finish,
  // the next tile's keys once the scores are done and its values once p · V
  // is. Where a tile holds more than that (the persistent kernel's registers
  // at head dim 128), the rest goes out as those registers are used.
  constexpr int kLoadsAhead = ${LOADS_AHEAD};
  constexpr int kKVecs = kHeadDim / kVec, kKAhead = kKVecs < kLoadsAhead ? kKVecs : kLoadsAhead;
  constexpr int kVSteps = 32 / kKeysPerStep;
  constexpr int kVAhead =
      kVSteps * kChunksPerLane <= kLoadsAhead ? kVSteps : kLoadsAhead / kChunksPerLane;
  static_assert(kKAhead > 0 && kVAhead > 0, "loads ahead for at least a vector of each row");
  W k_ahead[kKAhead], v_ahead[kVAhead][kChunksPerLane];${TILE_ROWS_WAIT}
  // Load the rows of the tile at k0 (of keys before `end`${WHICH_ROWS}).
  auto load_keys = [&](int k0) {
    const int key = k0 + lane;
    if (${KEY_LOADED})
#pragma unroll
      for (int i = 0; i < kKAhead; ++i)
        k_ahead[i] = key_vector(key, i * kVec);
  };
  auto load_values = [&](int k0) {
#pragma unroll
    for (int j = 0; j < kVAhead; ++j) {
      const int row = k0 + j * kKeysPerStep + row_in_step;
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c) {
        const int d = (lane_chunk + c * kLanes) * kVec;
        if (${VALUE_LOADED} && d < kHeadDim)
          v_ahead[j][c] = value_vector(row, d);
      }
    }
  };${LOAD_FRESH}
  const int first_tile = begin + warp * 32;
${FIRST_TILE}

  // The group's q (its heads are neighbours in the packed row), a vector a
  // thread, scaled.
  for (int i = threadIdx.x * kVec; i < kGroupHeads * kHeadDim; i += kThreads * kVec) {
    const W v = i / kHeadDim < heads_here ? ${Q_VECTOR} : W{};
#pragma unroll
    for (int e = 0; e < kVec; ++e)
      q[i / kHeadDim][i % kHeadDim + e] = v.get(e) * kScale;
  }
  ${SYNC};

  float m[kGroupHeads], l[kGroupHeads], acc[kGroupHeads][kChunksPerLane][kVec];
#pragma unroll
  for (int g = 0; g < kGroupHeads; ++g) {
    m[g] = kNegInf;
    l[g] = 0.f;
#pragma unroll
    for (int c = 0; c < kChunksPerLane; ++c)
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        acc[g][c][e] = 0.f;
  }

  for (int k0 = first_tile; k0 < end; k0 += kWarps * 32) {
    const int next = k0 + kWarps * 32;
    const int key = k0 + lane;
    const bool visible = key < end;
    float s[kGroupHeads];
#pragma unroll
    for (int g = 0; g < kGroupHeads; ++g)
      s[g] = 0.f;
    if (visible) {
#pragma unroll
      for (int i = 0; i < kKVecs; ++i) {
        // A row longer than the loads ahead: as soon as a vector is used,
        // its registers ask for the vector kKAhead further on, so that the
        // rest of the row costs one latency, not one a vector.
        const W kv = k_ahead[i % kKAhead];
        if (i + kKAhead < kKVecs)
          k_ahead[i % kKAhead] = key_vector(key, (i + kKAhead) * kVec);
#pragma unroll
        for (int g = 0; g < kGroupHeads; ++g)
#pragma unroll
          for (int e = 0; e < kVec; ++e)
            s[g] += q[g][i * kVec + e] * kv.get(e);
      }
    }
    if (next < end)
      load_keys(next);
    float p[kGroupHeads];
#pragma unroll
    for (int g = 0; g < kGroupHeads; ++g) {
      ${ADJUST}
      const float score = visible ? s[g] : kNegInf;
      const float m_new = fmaxf(m[g], kiln::warp_max(score));
      const float alpha = m_new == kNegInf ? 1.f : expf(m[g] - m_new);
      p[g] = visible ? expf(score - m_new) : 0.f;
      l[g] = l[g] * alpha + p[g]; // this lane's keys: summed over the warp at the end
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c)
#pragma unroll
        for (int e = 0; e < kVec; ++e)
          acc[g][c][e] *= alpha;
      m[g] = m_new;
    }
    // p · V: kKeysPerStep value rows per step, each read by kLanes lanes.
    const int keys_here = min(32, end - k0);
#pragma unroll
    for (int j = 0; j < kVSteps; ++j) {
      const int row = j * kKeysPerStep + row_in_step;
      const int later = row + kVAhead * kKeysPerStep; // the row these registers load next
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c) {
        const int d = (lane_chunk + c * kLanes) * kVec;
        const W v = row < keys_here && d < kHeadDim ? v_ahead[j % kVAhead][c] : W{};
        if (j + kVAhead < kVSteps && later < keys_here && d < kHeadDim)
          v_ahead[j % kVAhead][c] = value_vector(k0 + later, d);
#pragma unroll
        for (int g = 0; g < kGroupHeads; ++g) {
          const float pj = __shfl_sync(0xffffffffu, p[g], row);
#pragma unroll
          for (int e = 0; e < kVec; ++e)
            acc[g][c][e] += pj * v.get(e);
        }
      }
    }
    if (next < end)
      load_values(next);${LOAD_FRESH_NEXT}
  }

  // Sum the lanes that shared value rows, then merge the warps' states.
#pragma unroll
  for (int g = 0; g < kGroupHeads; ++g) {
    l[g] = kiln::warp_sum(l[g]);
#pragma unroll
    for (int c = 0; c < kChunksPerLane; ++c)
#pragma unroll
      for (int e = 0; e < kVec; ++e)
#pragma unroll
        for (int offset = kLanes; offset < 32; offset *= 2)
          acc[g][c][e] += __shfl_xor_sync(0xffffffffu, acc[g][c][e], offset);
    if (lane == 0) {
      merge[warp][g][0] = m[g];
      merge[warp][g][1] = l[g];
    }
    if (row_in_step == 0)
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c) {
        const int d = (lane_chunk + c * kLanes) * kVec;
        if (d < kHeadDim)
#pragma unroll
          for (int e = 0; e < kVec; ++e)
            merge[warp][g][2 + d + e] = acc[g][c][e];
      }
  }
  ${SYNC};
  // Each warp's weight in a head's merged state, once per (warp, head).
  if (threadIdx.x < kGroupHeads) {
    const int g = threadIdx.x;
    float m_all = kNegInf, l_all = 0.f;
    for (int w = 0; w < kWarps; ++w)
      m_all = fmaxf(m_all, merge[w][g][0]);
    for (int w = 0; w < kWarps; ++w) {
      warp_weight[w][g] = merge[w][g][0] == kNegInf ? 0.f : expf(merge[w][g][0] - m_all);
      l_all += merge[w][g][1] * warp_weight[w][g];
    }
    head_max[g] = m_all;
    head_sum[g] = l_all;
  }
  ${SYNC};
  // Dim d of head g's accumulator, merged over the warps (its max and sum
  // are head_max[g] and head_sum[g]).
  auto merged_acc = [&](int g, int d) {
    float acc_all = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      acc_all += merge[w][g][2 + d] * warp_weight[w][g];
    return acc_all;
  };
  // Dims d.. of head g's output, kOutValues of them.
  constexpr int kOutValues = ${OUT_VALUES};
  auto store_out = [&](int g, int d, const float (&v)[kOutValues]) {
    ${STORE_OUT};
  };
${FINISH}}
)cuda",
                             {{"ALIBI", alibiTable(params, name)},
                              {"NAME", name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"THREADS", std::to_string(kDecodeWarps * 32)},
                              {"SYNC", sync.str()},
                              {"IO_COMMENT", io["IO_COMMENT"]},
                              {"IO_PARAMS", io["IO_PARAMS"]},
                              {"ROWS", io["ROWS"]},
                              {"FIRST_TILE", io["FIRST_TILE"]},
                              {"Q_VECTOR", io["Q_VECTOR"]},
                              {"OUT_VALUES", io["OUT_VALUES"]},
                              {"STORE_OUT", io["STORE_OUT"]},
                              {"TILE_ROWS_WAIT", io["TILE_ROWS_WAIT"]},
                              {"TOKEN_STEP", io["TOKEN_STEP"]},
                              {"SEQUENCE", io["SEQUENCE"]},
                              {"POSITION", io["POSITION"]},
                              {"KV_LEN", io["KV_LEN"]},
                              {"SLOT", io["SLOT"]},
                              {"QUERY_START", io["QUERY_START"]},
                              {"WHICH_ROWS", io["WHICH_ROWS"]},
                              {"KEY_LOADED", io["KEY_LOADED"]},
                              {"VALUE_LOADED", io["VALUE_LOADED"]},
                              {"LOAD_FRESH", io["LOAD_FRESH"]},
                              {"LOAD_FRESH_NEXT", io["LOAD_FRESH_NEXT"]},
                              {"CONSTANTS", commonConstants(params)},
                              {"KV_HEADS", std::to_string(params.kvHeads)},
                              {"GROUP_HEADS", std::to_string(groupHeads)},
                              {"HEAD_GROUPS", std::to_string(headGroups)},
                              {"SPLITS", std::to_string(splits)},
                              {"WARPS", std::to_string(kDecodeWarps)},
                              {"MIN_TILES", std::to_string(params.decodeMinTilesPerWarp)},
                              {"LOADS_AHEAD", loadsAhead},
                              {"WIDTH", std::to_string(width)},
                              {"LANES", std::to_string(lanesPerKey)},
                              {"SCALE", floatLiteral(params.scale)},
                              {"KEY_BEGIN", params.window > 0
                                                ? formatv("max(0, pos - {0} + 1)", params.window)
                                                      .str()
                                                : "0"},
                              {"WVEC", width > 1 ? "kiln::Vec16<T>" : "kiln::Vec1<T>"},
                              {"ADJUST", params.alibiSlopes.empty()
                                             ? std::string()
                                             : formatv("s[g] += {0}_alibi_slopes[min(head0 + g, "
                                                       "kHeads - 1)] * (float)(key - pos);",
                                                       name)
                                                   .str()},
                              {"SPLIT_SHARED", splits > 1 ? "\n  __shared__ float split_weight[kWarps][kSplits];"
                                                            "\n  __shared__ bool last;"
                                                          : ""},
                              {"RETURN_IF_UNUSED",
                               splits > 1 ? "\n  // Split 0 runs even without keys: every output is written."
                                            "\n  const int splits_used = max(1, (key_end - key_begin + chunk - 1) / chunk);"
                                            "\n  if (split >= splits_used)\n    return;"
                                          : ""},
                              {"FINISH",
                               fillTemplate(finish, {{"SYNC", sync.str()}, {"ARRIVE", io["ARRIVE"]}})}});
}

KernelSpec codegen::attentionDecodeKernel(const AttentionParams &params) {
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = "attention_decode_" + shapeSuffix(params);
  spec.summary = formatv("tfm.attention, part 2 (decode): {0} attention of each token, its key "
                         "range split {1} ways{2}; a block serves {3} query head(s) of one kv head",
                         maskDescription(params), params.decodeSplits,
                         params.decodeSplits > 1 ? ", combined by the last split to finish" : "",
                         decodeGroupHeads(params));
  spec.launch.block = kDecodeWarps * 32;
  spec.launch.grid = static_cast<unsigned>(attentionDecodeTasksPerToken(params));
  spec.launch.scale = GridScale::tokens;
  llvm::StringRef type = cudaTypeName(params.dtype);
  spec.source = fillTemplate(R"cuda(${TASK}
// grid.x = tokens x ${TASKS} tasks: a block per task.
extern "C" __global__ void __launch_bounds__(${THREADS})
${NAME}(const ${T} *__restrict__ qkv, const ${T} *__restrict__ k_cache,
        const ${T} *__restrict__ v_cache, ${PARTIAL_PARAMS}${T} *__restrict__ out,
        kiln::StepState step) {
  kiln::launch_dependents();
  ${TASK_NAME}(blockIdx.x, qkv, k_cache, v_cache, ${PARTIAL_ARGS}out, step,
               [] { kiln::wait_for_previous_grids(); });
}
)cuda",
                             {{"TASK", attentionDecodeTask(params, "__syncthreads()")},
                              {"TASKS", std::to_string(attentionDecodeTasksPerToken(params))},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"NAME", spec.name},
                              {"T", type.str()},
                              {"PARTIAL_PARAMS",
                               params.decodeSplits > 1
                                   ? "float *__restrict__ partial, int *__restrict__ counters, "
                                   : ""},
                              {"TASK_NAME", attentionDecodeTaskName(params)},
                              {"PARTIAL_ARGS", params.decodeSplits > 1 ? "partial, counters, " : ""}});
  return spec;
}
