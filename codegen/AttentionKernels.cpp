//===- AttentionKernels.cpp - RoPE + KV-cache write, prefill and decode ---===//
//
// tfm.attention becomes two steps: a kernel that rotates q and k inside the
// packed qkv row and writes k and v to the layer's cache, then attention of
// every query token over its sequence's cached keys. Prefill uses a
// flash-attention kernel (online softmax over key tiles); decode splits each
// token's key range over blocks that each serve one kv head's whole query
// group, and a second kernel combines the splits.
//
// Cache layout: [max_batch slots][max_seq_len][kv_heads][head_dim]; the key at
// position s of sequence b is row s of slot step.slot[b].
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {

constexpr int64_t kSharedLimit = 48 * 1024;
constexpr int64_t kDecodeWarps = 4;
constexpr int64_t kMaxGroupHeadsPerBlock = 8;

/// The shape in a kernel name: h<heads>_kv<kv heads>_d<head dim>_<dtype>.
std::string shapeSuffix(const AttentionParams &params) {
  return formatv("h{0}_kv{1}_d{2}_{3}", params.heads, params.kvHeads, params.headDim,
                 dtypeName(params.dtype));
}

/// `static __device__ const float <name>[] = {...};`
std::string floatTable(llvm::StringRef name, llvm::ArrayRef<double> values) {
  std::string text = formatv("static __device__ const float {0}[{1}] = {{", name, values.size());
  for (auto [i, value] : llvm::enumerate(values))
    text += (i % 4 == 0 ? "\n    " : " ") + floatLiteral(value) + (i + 1 < values.size() ? "," : "");
  return text + "};\n";
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

int64_t decodeGroupHeads(const AttentionParams &params) {
  return std::min(params.heads / params.kvHeads, kMaxGroupHeadsPerBlock);
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

KernelSpec codegen::ropeKvCacheKernel(const AttentionParams &params) {
  KernelSpec spec;
  spec.name = (params.rope ? "rope_kv_cache_" : "kv_cache_write_") + shapeSuffix(params);
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
    sincosf((float)position * ${TABLE}[j], &sine, &cosine);
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
                                   ${T} *__restrict__ v_cache, kiln::StepState step) {
${CONSTANTS}
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

KernelSpec codegen::attentionPrefillKernel(const AttentionParams &params) {
  int64_t queryTile = prefillQueryTile(params);
  int64_t queryTiles = ceilDiv(params.maxTokens, queryTile);
  KernelSpec spec;
  spec.name = "attention_prefill_" + shapeSuffix(params);
  spec.summary = formatv("tfm.attention, part 2 (prefill): causal{0}{1} attention of each "
                         "query over the cached keys, online softmax over tiles of 32 keys",
                         params.window ? formatv(" sliding-window ({0})", params.window).str()
                                       : std::string(),
                         params.alibiSlopes.empty() ? "" : " ALiBi");
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

int64_t codegen::decodePartialFloatsPerToken(const AttentionParams &params) {
  return params.heads * params.decodeSplits * (params.headDim + 2);
}

KernelSpec codegen::attentionDecodeKernel(const AttentionParams &params) {
  int64_t groupHeads = decodeGroupHeads(params);
  int64_t headGroups = ceilDiv(params.heads / params.kvHeads, groupHeads);
  int64_t width = vectorWidth(params.dtype, params.headDim);
  KernelSpec spec;
  spec.name = "attention_decode_" + shapeSuffix(params);
  spec.summary = formatv("tfm.attention, part 2 (decode): causal{0}{1} attention of each token, "
                         "its key range split {2} ways; a block serves {3} query head(s) of "
                         "one kv head",
                         params.window ? formatv(" sliding-window ({0})", params.window).str()
                                       : std::string(),
                         params.alibiSlopes.empty() ? "" : " ALiBi", params.decodeSplits,
                         groupHeads);
  spec.launch.block = kDecodeWarps * 32;
  spec.launch.grid = static_cast<unsigned>(params.kvHeads * headGroups * params.decodeSplits);
  spec.launch.scale = GridScale::tokens;

  spec.source = fillTemplate(R"cuda(
${ALIBI}
// grid.x = tokens x ${KV_HEADS} kv heads x ${HEAD_GROUPS} head group(s) x ${SPLITS} splits.
// Block (token, kv head, group, split) attends the group's query heads over
// its split of the token's visible keys: warps take tiles of 32 keys, a lane
// one key of a tile for scores and dims lane + 32 i for p · V. It writes
// (max, sum, acc[head_dim]) per head to partial[token][head][split].
extern "C" __global__ void __launch_bounds__(${THREADS})
${NAME}(const ${T} *__restrict__ qkv, const ${T} *__restrict__ k_cache,
        const ${T} *__restrict__ v_cache, float *__restrict__ partial, kiln::StepState step) {
${CONSTANTS}
  constexpr int kGroupHeads = ${GROUP_HEADS}, kHeadGroups = ${HEAD_GROUPS}, kSplits = ${SPLITS};
  constexpr int kWarps = ${WARPS}, kVec = ${VEC}, kDimsPerLane = (kHeadDim + 31) / 32;
  constexpr int kPartial = kHeadDim + 2;
  constexpr float kScale = ${SCALE};
  const float kNegInf = -__int_as_float(0x7f800000);
  __shared__ float q[kGroupHeads][kHeadDim];
  __shared__ float merge[kWarps][kGroupHeads][kPartial];

  const int token = blockIdx.x / (kKvHeads * kHeadGroups * kSplits);
  const int split = blockIdx.x % kSplits;
  const int head_group = blockIdx.x / kSplits % kHeadGroups;
  const int kv_head = blockIdx.x / (kSplits * kHeadGroups) % kKvHeads;
  const int head0 = kv_head * kGroup + head_group * kGroupHeads;
  const int heads_here = min(kGroupHeads, kGroup - head_group * kGroupHeads);
  const int sequence = step.token_seq[token];
  const int pos = step.positions[token];
  const int key_end = min(step.kv_len[sequence], pos + 1);
  const int key_begin = ${KEY_BEGIN};
  const int chunk = ((key_end - key_begin + kSplits - 1) / kSplits + 31) / 32 * 32;
  const int begin = key_begin + split * chunk;
  const int end = min(key_end, begin + chunk);
  const size_t cache_base = (size_t)step.slot[sequence] * kMaxSeqLen * kKeyStride + kv_head * kHeadDim;
  const T *keys = k_cache + cache_base;
  const T *values = v_cache + cache_base;

  for (int i = threadIdx.x; i < kGroupHeads * kHeadDim; i += blockDim.x) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    q[g][d] = g < heads_here
        ? kiln::to_float(qkv[(size_t)token * kRow + (head0 + g) * kHeadDim + d]) * kScale
        : 0.f;
  }
  __syncthreads();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float m[kGroupHeads], l[kGroupHeads], acc[kGroupHeads][kDimsPerLane];
#pragma unroll
  for (int g = 0; g < kGroupHeads; ++g) {
    m[g] = kNegInf;
    l[g] = 0.f;
    for (int i = 0; i < kDimsPerLane; ++i)
      acc[g][i] = 0.f;
  }

  for (int k0 = begin + warp * 32; k0 < end; k0 += kWarps * 32) {
    const int key = k0 + lane;
    const bool visible = key < end;
    float s[kGroupHeads];
#pragma unroll
    for (int g = 0; g < kGroupHeads; ++g)
      s[g] = 0.f;
    if (visible) {
      const T *k_row = keys + (size_t)key * kKeyStride;
      for (int d = 0; d < kHeadDim; d += kVec) {
        float kv[kVec];
        ${LOAD_K}
#pragma unroll
        for (int g = 0; g < kGroupHeads; ++g)
          for (int e = 0; e < kVec; ++e)
            s[g] += q[g][d + e] * kv[e];
      }
    }
    float p[kGroupHeads];
#pragma unroll
    for (int g = 0; g < kGroupHeads; ++g) {
      ${ADJUST}
      const float score = visible ? s[g] : kNegInf;
      const float m_new = fmaxf(m[g], kiln::warp_max(score));
      const float alpha = m_new == kNegInf ? 1.f : expf(m[g] - m_new);
      p[g] = visible ? expf(score - m_new) : 0.f;
      l[g] = l[g] * alpha + kiln::warp_sum(p[g]);
      for (int i = 0; i < kDimsPerLane; ++i)
        acc[g][i] *= alpha;
      m[g] = m_new;
    }
    const int keys_here = min(32, end - k0);
    for (int j = 0; j < keys_here; ++j) {
      float v[kDimsPerLane];
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + 32 * i;
        v[i] = d < kHeadDim ? kiln::to_float(values[(size_t)(k0 + j) * kKeyStride + d]) : 0.f;
      }
#pragma unroll
      for (int g = 0; g < kGroupHeads; ++g) {
        const float pj = __shfl_sync(0xffffffffu, p[g], j);
        for (int i = 0; i < kDimsPerLane; ++i)
          acc[g][i] += pj * v[i];
      }
    }
  }

  // Merge the warps' states, then write this split's partial result.
#pragma unroll
  for (int g = 0; g < kGroupHeads; ++g) {
    if (lane == 0) {
      merge[warp][g][0] = m[g];
      merge[warp][g][1] = l[g];
    }
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < kHeadDim)
        merge[warp][g][2 + d] = acc[g][i];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < heads_here * kHeadDim; i += blockDim.x) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    float m_all = kNegInf;
    for (int w = 0; w < kWarps; ++w)
      m_all = fmaxf(m_all, merge[w][g][0]);
    float l_all = 0.f, a_all = 0.f;
    for (int w = 0; w < kWarps; ++w) {
      const float weight = merge[w][g][0] == kNegInf ? 0.f : expf(merge[w][g][0] - m_all);
      l_all += merge[w][g][1] * weight;
      a_all += merge[w][g][2 + d] * weight;
    }
    float *dst = partial + (((size_t)token * kHeads + head0 + g) * kSplits + split) * kPartial;
    if (d == 0) {
      dst[0] = m_all;
      dst[1] = l_all;
    }
    dst[2 + d] = a_all;
  }
}
)cuda",
                             {{"ALIBI", alibiTable(params, spec.name)},
                              {"NAME", spec.name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"CONSTANTS", commonConstants(params)},
                              {"KV_HEADS", std::to_string(params.kvHeads)},
                              {"GROUP_HEADS", std::to_string(groupHeads)},
                              {"HEAD_GROUPS", std::to_string(headGroups)},
                              {"SPLITS", std::to_string(params.decodeSplits)},
                              {"WARPS", std::to_string(kDecodeWarps)},
                              {"VEC", std::to_string(width)},
                              {"SCALE", floatLiteral(params.scale)},
                              {"KEY_BEGIN", params.window > 0
                                                ? formatv("max(0, pos - {0} + 1)", params.window)
                                                      .str()
                                                : "0"},
                              {"LOAD_K", loadFloats("kv", "k_row + d", width)},
                              {"ADJUST", params.alibiSlopes.empty()
                                             ? std::string()
                                             : formatv("s[g] += {0}_alibi_slopes[min(head0 + g, "
                                                       "kHeads - 1)] * (float)(key - pos);",
                                                       spec.name)
                                                   .str()}});
  return spec;
}

KernelSpec codegen::attentionCombineKernel(const AttentionParams &params) {
  KernelSpec spec;
  spec.name = formatv("attention_combine_h{0}_d{1}_s{2}_{3}", params.heads, params.headDim,
                      params.decodeSplits, dtypeName(params.dtype));
  spec.summary = formatv("tfm.attention, part 3 (decode): combines {0} split results per head",
                         params.decodeSplits);
  spec.launch.block = threadsFor(params.headDim, 256);
  spec.launch.grid = static_cast<unsigned>(params.heads);
  spec.launch.scale = GridScale::tokens;
  spec.source = fillTemplate(R"cuda(
// One block per (token, head).
extern "C" __global__ void ${NAME}(const float *__restrict__ partial, ${T} *__restrict__ out) {
  constexpr int kHeads = ${HEADS}, kHeadDim = ${HEAD_DIM}, kSplits = ${SPLITS};
  constexpr int kPartial = kHeadDim + 2;
  const float kNegInf = -__int_as_float(0x7f800000);
  const int token = blockIdx.x / kHeads, head = blockIdx.x % kHeads;
  const float *p = partial + ((size_t)token * kHeads + head) * kSplits * kPartial;
  float m_all = kNegInf;
  for (int s = 0; s < kSplits; ++s)
    m_all = fmaxf(m_all, p[s * kPartial]);
  float l_all = 0.f;
  for (int s = 0; s < kSplits; ++s)
    l_all += p[s * kPartial] == kNegInf ? 0.f : p[s * kPartial + 1] * expf(p[s * kPartial] - m_all);
  const float inv = l_all > 0.f ? 1.f / l_all : 0.f;
  for (int d = threadIdx.x; d < kHeadDim; d += blockDim.x) {
    float a = 0.f;
    for (int s = 0; s < kSplits; ++s)
      if (p[s * kPartial] != kNegInf)
        a += p[s * kPartial + 2 + d] * expf(p[s * kPartial] - m_all);
    out[(size_t)token * kHeads * kHeadDim + head * kHeadDim + d] = kiln::from_float<${T}>(a * inv);
  }
}
)cuda",
                             {{"NAME", spec.name},
                              {"T", cudaTypeName(params.dtype).str()},
                              {"HEADS", std::to_string(params.heads)},
                              {"HEAD_DIM", std::to_string(params.headDim)},
                              {"SPLITS", std::to_string(params.decodeSplits)}});
  return spec;
}
