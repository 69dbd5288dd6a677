//===- GemvKernels.cpp - matrix-vector products for decode ----------------===//
//
// y[t, n] = Σ_k x[t, k] · w[n, k] for the few rows of a decode step, at the
// speed of streaming the weights (bench/NOTES.md, sections 1 and 2): a warp per
// unit of one or two weight rows, 16-byte loads along k that bypass L1, the
// first 8 loads of each lane issued before the kernel waits for the previous
// one (programmatic dependent launch), float accumulation, and every weight
// row read once for a group of up to 4 tokens.
//
// What would otherwise be separate kernels around a decode GEMV is fused in:
// a norm (and its residual add) of the input as a prologue that each block
// computes into shared memory, the gated MLP's activation (a unit is gate row
// i and up row n + i), and tfm.attention's RoPE and KV-cache write (a unit is
// a rotation pair of a head).
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {

constexpr unsigned kWarpsPerBlock = 8;
/// Blocks resident per SM that registers must allow: 4 (64 registers a
/// thread) keeps enough loads in flight and leaves room for the next kernel's
/// blocks; units of two rows hold twice the loads and get 80 registers.
unsigned minBlocksPerSm(int64_t rowsPerUnit) { return rowsPerUnit == 1 ? 4 : 3; }
/// SMs of the GPU the grids are sized for (an H100 SXM); any GPU runs them.
constexpr int64_t kTargetSms = 132;
/// Most tokens one pass over the weights serves (accumulators per lane).
constexpr int64_t kMaxTokenGroup = 4;
/// Shared memory for the normalized input rows of a norm-fused GEMV; small
/// enough that several blocks (and the next kernel's) stay resident per SM.
constexpr int64_t kNormSharedBytes = 32 * 1024;

llvm::StringRef normName(const NormParams &norm) {
  if (norm.kind == NormKind::rms)
    return norm.residual ? "add_rms_norm" : "rms_norm";
  return norm.residual ? "add_layer_norm" : "layer_norm";
}

/// The prologue that normalizes a group of input rows into shared memory.
std::string normPrologue(const GemvParams &params, int64_t width, llvm::StringRef sourceRow,
                         const NormWeightReads &reads) {
  const NormParams &norm = *params.norm;
  bool rms = norm.kind == NormKind::rms;
  std::string load = width > 1 ? "kiln::load16" : "kiln::load1";
  std::string store = width > 1 ? "kiln::store16" : "kiln::store1";
  std::string residual;
  if (norm.residual)
    residual = fillTemplate(R"cuda(
          // The sum is rounded to T, as the residual stream is stored.
          const W r = ${LOAD}(residual + source + i);
          for (int e = 0; e < kVec; ++e)
            v[item].set(e, v[item].get(e) + r.get(e));${STORE_SUM})cuda",
                            {{"LOAD", load},
                             {"STORE_SUM", params.writeSum
                                               ? "\n          if (blockIdx.x == 0)\n            " +
                                                     store + "(sum + source + i, v[item]);"
                                               : std::string()}});
  std::string statistics = indented("\n" + normStatistics(rms, "kK", "v[item].get(e)"), 6);
  return fillTemplate(R"cuda(
    // ${OP} of this group's input rows into shared memory, one row at a time
    // by the whole block, kept in registers between the statistics and the
    // output.
    for (int j = 0; j < kTokens && t0 + j < tokens; ++j) {
      const size_t source = (size_t)(${SOURCE_ROW}) * kK;
      W v[kItems];
#pragma unroll
      for (int item = 0; item < kItems; ++item) {
        const int i = (item * kThreads + threadIdx.x) * kVec;
        if (i < kK)
          v[item] = ${LOAD}(x + source + i);
      }
      float total = 0.f;
#pragma unroll
      for (int item = 0; item < kItems; ++item) {
        const int i = (item * kThreads + threadIdx.x) * kVec;
        if (i < kK) {${RESIDUAL}
          for (int e = 0; e < kVec; ++e)
            total += ${ACCUMULATE};
        }
      }${STATISTICS}${WAIT}
#pragma unroll
      for (int item = 0; item < kItems; ++item) {
        const int i = (item * kThreads + threadIdx.x) * kVec;
        if (i < kK) {
          for (int e = 0; e < kVec; ++e)
            v[item].set(e, (v[item].get(e) - mean) * inv * ${WEIGHT}${BIAS});
          ${STORE}(xs + j * kK + i, v[item]);
        }
      }
    }
    __syncthreads();
)cuda",
                      {{"OP", normName(norm).str()},
                       {"SOURCE_ROW", sourceRow.str()},
                       {"LOAD", load},
                       {"STORE", store},
                       {"RESIDUAL", residual},
                       {"ACCUMULATE", rms ? "v[item].get(e) * v[item].get(e)" : "v[item].get(e)"},
                       {"STATISTICS", statistics},
                       {"WAIT", reads.wait.empty() ? "" : "\n      " + reads.wait},
                       {"WEIGHT", reads.weight},
                       {"BIAS", reads.bias}});
}

} // namespace

std::string codegen::kvCacheEpilogue(const AttentionParams &attention, bool bias,
                                     llvm::StringRef table, bool writeQueries) {
  std::string rotate;
  if (attention.rope)
    rotate = formatv(R"cuda(
          if (head < kHeads + kKvHeads && pair < kHalf) {
            float sine, cosine;
            kiln::rope_sincos((float)position * {0}[pair], &sine, &cosine);
            const float x0 = value[0], x1 = value[1];
            value[0] = x0 * cosine - x1 * sine;
            value[1] = x1 * cosine + x0 * sine;
          })cuda",
                     table)
                 .str();
  return fillTemplate(R"cuda(          const int head = u / kPairsPerHead, pair = u % kPairsPerHead;
          const int position = t0 == 0 ? first_positions[j] : step.positions[t];
          float value[2];
          for (int r = 0; r < 2; ++r)
            value[r] = kiln::to_float(kiln::from_float<T>(acc[r][j] + ${BIAS}));${ROTATE}
          ${QUERIES}
            if (position >= 0 && position < kMaxSeqLen) { // the runtime checks positions
              const bool key = head < kHeads + kKvHeads;
              const int kv_head = key ? head - kHeads : head - kHeads - kKvHeads;
              T *cache = key ? k_cache : v_cache;
              const int slot = t0 == 0 ? first_slots[j] : step.slot[step.token_seq[t]];
              const size_t at =
                  (((size_t)slot * kMaxSeqLen + position) * kKvHeads + kv_head) * kHeadDim;
              for (int r = 0; r < 2; ++r)
                cache[at + row_of(u, r) - head * kHeadDim] = kiln::from_float<T>(value[r]);
            }
          })cuda",
                      {{"BIAS", bias ? "kiln::to_float(bias[row_of(u, r)])" : "0.f"},
                       {"ROTATE", rotate},
                       {"QUERIES", writeQueries ? R"cuda(if (head < kHeads) {
            for (int r = 0; r < 2; ++r)
              y[(size_t)t * kPackedRow + row_of(u, r)] = kiln::from_float<T>(value[r]);
          } else {)cuda"
                                                : "if (head >= kHeads) {"}});
}

std::string codegen::qkvRowOrder(const AttentionParams &attention) {
  // Rotation pairs of q and k heads first, then their unrotated dims, in
  // pairs of neighbours like every v head's.
  return formatv(R"cuda(
    const int head = u / kPairsPerHead, pair = u % kPairsPerHead;
    const bool rotated = head < kHeads + kKvHeads && pair < kHalf;
    const int rest = head < kHeads + kKvHeads ? kRotary + 2 * (pair - kHalf) : 2 * pair;
    return head * kHeadDim + (rotated ? (r == 0 ? {0} : {1}) : rest + r);)cuda",
                 attention.ropeGptj ? "2 * pair" : "pair",
                 attention.ropeGptj ? "2 * pair + 1" : "pair + kHalf")
      .str();
}

std::string codegen::qkvConstants(const AttentionParams &attention) {
  return formatv("  constexpr int kHeads = {0}, kKvHeads = {1}, kHeadDim = {2}, kMaxSeqLen = {3};\n"
                 "  constexpr int kPackedRow = (kHeads + 2 * kKvHeads) * kHeadDim;\n"
                 "  constexpr int kPairsPerHead = kHeadDim / 2, kHalf = {4}, kRotary = 2 * kHalf;\n",
                 attention.heads, attention.kvHeads, attention.headDim, attention.maxSeqLen,
                 attention.rope ? attention.rotaryDim / 2 : 0)
      .str();
}

int64_t codegen::gemvNormTokens(int64_t k, DType dtype, int64_t maxBatch) {
  int64_t rowBytes = k * dtypeBytes(dtype);
  for (int64_t tokens = std::min(kMaxTokenGroup, maxBatch); tokens >= 1; tokens /= 2)
    if (tokens * rowBytes <= kNormSharedBytes)
      return tokens;
  return 0;
}

bool codegen::gemvCanWriteKvCache(const AttentionParams &params) {
  if (params.headDim % 2 != 0)
    return false;
  if (!params.rope)
    return true;
  return params.rotaryDim % 2 == 0 && params.rotaryDim <= params.headDim &&
         static_cast<int64_t>(params.invFreq.size()) == params.rotaryDim / 2;
}

KernelSpec codegen::gemvKernel(const GemvParams &params) {
  bool gated = !params.gatedActivation.empty();
  const AttentionParams *attention = params.attention ? &*params.attention : nullptr;
  int64_t width = vectorWidth(params.dtype, params.k);
  llvm::StringRef type = cudaTypeName(params.dtype);
  // A unit is what one warp computes: a row, or two rows whose results one
  // epilogue combines.
  int64_t rowsPerUnit = gated || attention ? 2 : 1;
  int64_t rowsTotal = gated ? 2 * params.n : params.n;
  int64_t units = rowsTotal / rowsPerUnit;
  int64_t tokenGroup = params.norm ? gemvNormTokens(params.k, params.dtype, params.maxBatch)
                                   : std::min(kMaxTokenGroup, params.maxBatch);

  KernelSpec spec;
  spec.programmatic = true;
  std::string op = params.lastTokens ? "lm_head"
                   : gated           ? "gated_mlp_" + params.gatedActivation
                   : attention       ? (attention->rope ? "qkv_rope_kv_cache" : "qkv_kv_cache")
                                     : "linear";
  std::string prefix = params.norm ? (normName(*params.norm) + "_").str() : "";
  spec.name = formatv("{0}{1}_gemv{2}_n{3}_k{4}_{5}", prefix, op, params.bias ? "_bias" : "",
                      params.n, params.k, dtypeName(params.dtype));
  std::string what =
      params.lastTokens
          ? formatv("tfm.linear (LM head) of each sequence's last token, [{0}, {1}] {2}, "
                    "float logits",
                    params.n, params.k, dtypeName(params.dtype))
                .str()
      : gated ? formatv("tfm.gated_mlp decode GEMV: {0}(x·gateᵀ) * (x·upᵀ), [2 x {1}, {2}] {3}",
                        params.gatedActivation, params.n, params.k, dtypeName(params.dtype))
                    .str()
      : attention
          ? formatv("tfm.packed_qkv_linear decode GEMV, [{0}, {1}] {2}, with tfm.attention's {3}"
                    "KV-cache write",
                    params.n, params.k, dtypeName(params.dtype),
                    attention->rope ? formatv("{0} RoPE on {1} of {2} dims and ",
                                              attention->ropeGptj ? "GPT-J" : "NeoX",
                                              attention->rotaryDim, attention->headDim)
                                          .str()
                                    : std::string())
                .str()
          : formatv("decode GEMV y = x·Wᵀ{0}, W [{1}, {2}] {3}", params.bias ? " + b" : "",
                    params.n, params.k, dtypeName(params.dtype))
                .str();
  spec.summary = params.norm ? "tfm." + normName(*params.norm).str() + " of its input, then " + what
                             : what;
  spec.launch.block = kWarpsPerBlock * 32;
  int64_t blocks = ceilDiv(units, kWarpsPerBlock);
  // A norm-fused GEMV normalizes its input once per block: no more blocks
  // than run at once, their warps striding over the units.
  if (params.norm)
    blocks = std::min<int64_t>(blocks, kTargetSms * minBlocksPerSm(rowsPerUnit));
  if (params.lastTokens) {
    // grid.x = this * sequences: a larger batch spreads the rows over more
    // blocks.
    spec.launch.grid = static_cast<unsigned>(params.norm ? blocks : ceilDiv(blocks, params.maxBatch));
    spec.launch.scale = GridScale::sequences;
  } else {
    spec.launch.grid = static_cast<unsigned>(blocks);
  }

  std::string parameters = formatv("const {0} *__restrict__ x, ", type);
  if (params.norm) {
    llvm::StringRef weightType = cudaTypeName(params.norm->weightDtype);
    if (params.norm->residual)
      parameters += formatv("const {0} *__restrict__ residual, ", type);
    parameters += formatv("const {0} *__restrict__ norm_weight, ", weightType);
    if (params.norm->bias)
      parameters += formatv("const {0} *__restrict__ norm_bias, ", weightType);
    if (params.writeSum)
      parameters += formatv("{0} *__restrict__ sum, ", type);
  }
  parameters += formatv("const {0} *__restrict__ w, ", type);
  if (params.bias)
    parameters += formatv("const {0} *__restrict__ bias, ", type);
  if (params.lastTokens)
    parameters += "float *__restrict__ y, kiln::StepState step";
  else if (attention)
    parameters += formatv("{0} *__restrict__ y, {0} *__restrict__ k_cache, "
                          "{0} *__restrict__ v_cache, {1}kiln::StepState step, int num_tokens",
                          type,
                          decodeCountersPerToken(*attention) ? "int *__restrict__ counters, " : "");
  else
    parameters += formatv("{0} *__restrict__ y, int num_tokens", type);

  std::string sourceRow = params.lastTokens ? "step.last_token[t0 + j]" : "t0 + j";
  std::string constants, rowOf, table;
  if (attention) {
    constants = qkvConstants(*attention);
    rowOf = qkvRowOrder(*attention);
    if (attention->rope)
      table = floatTable(spec.name + "_inv_freq", attention->invFreq);
  } else if (gated) {
    rowOf = "\n    return r == 0 ? u : kUnits + u;";
  } else {
    rowOf = "\n    return u;";
  }

  std::string bias = params.bias ? "kiln::to_float(bias[u])" : "0.f";
  std::string epilogue;
  if (attention)
    epilogue = kvCacheEpilogue(*attention, params.bias, spec.name + "_inv_freq");
  else if (gated)
    epilogue = formatv("          y[(size_t)t * kUnits + u] = kiln::from_float<T>(kiln::{0}(acc[0][j] "
                       "+ {1}) * (acc[1][j] + {2}));",
                       params.gatedActivation, bias,
                       params.bias ? "kiln::to_float(bias[kUnits + u])" : "0.f")
                   .str();
  else if (params.lastTokens)
    epilogue = "          const float logit = acc[0][j] + " + bias + R"cuda(;
          y[(size_t)t * kUnits + u] = logit;
          if (logit == logit) // NaN is never the greedy choice
            best[j] = max(best[j], kiln::logit_key(logit, u));)cuda";
  else
    epilogue = "          y[(size_t)t * kUnits + u] = kiln::from_float<T>(acc[0][j] + " + bias + ");";

  // Σ over this lane's 16 bytes of x for every token of the group.
  auto accumulate = [&](llvm::StringRef index, llvm::StringRef weights) {
    return fillTemplate(R"cuda(
#pragma unroll
        for (int j = 0; j < kTokens; ++j) {
          if (t0 + j >= tokens)
            break;
          const ${XVEC} xv = ${LOAD_X}(xr[j] + (size_t)(${INDEX}) * kVec);
#pragma unroll
          for (int r = 0; r < kRows; ++r)
#pragma unroll
            for (int e = 0; e < kVec; ++e)
              acc[r][j] += ${WEIGHTS}.get(e) * xv.get(e);
        })cuda",
                        {{"XVEC", width > 1 ? "kiln::Vec16<T>" : "kiln::Vec1<T>"},
                         {"LOAD_X", width > 1 ? "kiln::load16" : "kiln::load1"},
                         {"INDEX", index.str()},
                         {"WEIGHTS", weights.str()}});
  };
  std::string loadWeights = width > 1 ? "kiln::load16_stream" : "kiln::load1";

  // The LM head also finds each token's greedy choice: every warp its best
  // (logit, row), then the block's in shared memory, then one atomic per
  // token into the step state, which the sampling kernel reads instead of
  // scanning the logits.
  NormWeightReads normReads;
  if (params.norm)
    normReads = normWeightReads(*params.norm, params.k, "kK",
                                tokenGroup * params.k * dtypeBytes(params.dtype), "norm_weight",
                                "norm_bias");
  std::string prologue =
      params.norm ? normPrologue(params, width, sourceRow, normReads) : std::string();
  std::string endGroup = params.norm ? "\n    __syncthreads();" : "";
  if (params.lastTokens) {
    prologue = R"cuda(
    unsigned long long best[kTokens] = {};
    if (threadIdx.x < kTokens)
      block_best[threadIdx.x] = 0;)cuda" +
               (params.norm ? prologue : "\n    __syncthreads();");
    endGroup = R"cuda(
    if (lane == 0)
#pragma unroll
      for (int j = 0; j < kTokens; ++j)
        atomicMax(&block_best[j], best[j]);
    __syncthreads();
    if (threadIdx.x < kTokens && t0 + threadIdx.x < tokens)
      atomicMax(&step.best_logit[t0 + threadIdx.x], block_best[threadIdx.x]);
    __syncthreads();)cuda";
  }

  // The tokens, kTokens at a time per pass over a unit's rows.
  std::string pass = fillTemplate(R"cuda(
  for (int t0 = 0; t0 < tokens; t0 += kTokens) {
    if (t0 > 0 && first < kUnits) // the first group's were loaded before the wait
      prefetch(first);${PROLOGUE}
    for (int u = first; u < kUnits; u += gridDim.x * kWarps) {
      const T *xr[kTokens];
#pragma unroll
      for (int j = 0; j < kTokens; ++j)
        xr[j] = ${X_ROW};
      float acc[kRows][kTokens] = {};
      // The leading vectors of the rows were loaded ahead.
#pragma unroll
      for (int p = 0; p < kPrefetch; ++p) {
        if (lane + 32 * p >= kVecs)
          break;${ACCUMULATE_PREFETCHED}
      }
      for (int i = lane + 32 * kPrefetch; i < kVecs; i += 32 * kUnroll) {
        W wq[kUnroll][kRows];
#pragma unroll
        for (int q = 0; q < kUnroll; ++q)
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            if (i + 32 * q < kVecs)
              wq[q][r] = ${LOAD_W}(w + (size_t)row_of(u, r) * kK + (i + 32 * q) * kVec);
#pragma unroll
        for (int q = 0; q < kUnroll; ++q) {
          if (i + 32 * q >= kVecs)
            break;${ACCUMULATE_STREAMED}
        }
      }
      // The next unit's leading vectors load while this one finishes.
      if (!kOneUnitPerWarp && u + gridDim.x * kWarps < kUnits)
        prefetch(u + gridDim.x * kWarps);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int j = 0; j < kTokens; ++j)
          acc[r][j] = kiln::warp_sum(acc[r][j]);
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        const int t = t0 + j;
        if (lane == 0 && t < tokens) {
${EPILOGUE}
        }
      }
    }${END_GROUP}
  }
)cuda",
                                  {{"PROLOGUE", prologue},
                                   {"X_ROW", params.norm ? "xs + (t0 + j < tokens ? j : 0) * kK"
                                                         : "x + (size_t)(t0 + j < tokens ? " +
                                                               sourceRow + " : 0) * kK"},
                                   {"LOAD_W", loadWeights},
                                   {"ACCUMULATE_PREFETCHED", accumulate("lane + 32 * p", "prefetched[r][p]")},
                                   {"ACCUMULATE_STREAMED",
                                    indented(accumulate("i + 32 * q", "wq[q][r]"), 2)},
                                   {"EPILOGUE", epilogue},
                                   {"END_GROUP", endGroup}});
  // A lone token (batch-1 decode) gets a pass of its own, which needs fewer
  // registers than a group's.
  std::string passes =
      tokenGroup == 1 ? "  constexpr int kTokens = kTokenGroup;" + pass
                      : "  if (tokens > 1) {\n    constexpr int kTokens = kTokenGroup;" +
                            indented(pass, 2) + "  } else {\n    constexpr int kTokens = 1;" +
                            indented(pass, 2) + "  }\n";

  spec.source = fillTemplate(R"cuda(
${TABLE}
// A warp per unit of ${ROWS} weight row(s), units strided over the grid.
extern "C" __global__ void __launch_bounds__(${THREADS}, ${MIN_BLOCKS}) ${NAME}(${PARAMS}) {
  using T = ${T};
  using W = ${WVEC};
  constexpr int kK = ${K}, kVec = W::size, kVecs = kK / kVec, kIters = (kVecs + 31) / 32;
  constexpr int kUnits = ${UNITS}, kRows = ${ROWS}, kTokenGroup = ${TOKEN_GROUP}, kWarps = ${WARPS};
  constexpr bool kOneUnitPerWarp = ${ONE_UNIT};
  // A warp's only unit of exactly 8 / kRows vectors a lane keeps its last for
  // the streamed loop: ptxas spills them all held beside their input vectors.
  constexpr int kPrefetch =
      kIters < 8 / kRows ? kIters : 8 / kRows - (kOneUnitPerWarp && kIters == 8 / kRows);
  constexpr int kUnroll = 4 / kRows;
${CONSTANTS}${NORM_CONSTANTS}  ${TOKENS}
  const int lane = threadIdx.x & 31;
  const int first = blockIdx.x * kWarps + (threadIdx.x >> 5);
  auto row_of = [](int u, int r) -> int {${ROW_OF}
  };

  // The leading kPrefetch vectors of each unit's rows are loaded ahead: the
  // first unit's while the previous kernel finishes (weights do not depend on
  // it), the next unit's while this one finishes.
  W prefetched[kRows][kPrefetch];
  auto prefetch = [&](int u) {
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int p = 0; p < kPrefetch; ++p)
        if (lane + 32 * p < kVecs)
          prefetched[r][p] = ${LOAD_W}(w + (size_t)row_of(u, r) * kK + (lane + 32 * p) * kVec);
  };
  if (first < kUnits)
    prefetch(first);${PRELOAD_STEP}${PRELOAD_NORM}
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();${ZERO_COUNTERS}
${SHARED}${PASSES}}
)cuda",
                             {{"TABLE", table},
                              {"NAME", spec.name},
                              {"PARAMS", parameters},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"MIN_BLOCKS", std::to_string(minBlocksPerSm(rowsPerUnit))},
                              {"T", type.str()},
                              {"WVEC", width > 1 ? "kiln::Vec16<T>" : "kiln::Vec1<T>"},
                              {"LOAD_W", loadWeights},
                              {"K", std::to_string(params.k)},
                              {"UNITS", std::to_string(units)},
                              {"ONE_UNIT", !params.lastTokens && blocks * kWarpsPerBlock >= units
                                               ? "true"
                                               : "false"},
                              {"ROWS", std::to_string(rowsPerUnit)},
                              {"TOKEN_GROUP", std::to_string(tokenGroup)},
                              {"WARPS", std::to_string(kWarpsPerBlock)},
                              {"CONSTANTS", constants},
                              {"NORM_CONSTANTS",
                               params.norm
                                   ? formatv("  constexpr float kEpsilon = {0};\n"
                                             "  constexpr int kThreads = kWarps * 32, kItems = "
                                             "(kK / kVec + kThreads - 1) / kThreads;\n",
                                             floatLiteral(params.norm->epsilon))
                                         .str()
                                   : std::string()},
                              {"TOKENS",
                               params.lastTokens
                                   ? formatv("// grid.x = {0} x sequences\n"
                                             "  const int tokens = gridDim.x / {0};",
                                             spec.launch.grid)
                                         .str()
                                   : "const int tokens = num_tokens;"},
                              {"ROW_OF", rowOf},
                              {"SHARED", std::string(params.norm ? "  __shared__ __align__(16) T xs[kTokenGroup * kK];\n"
                                                                   "  __shared__ float scratch[32];\n"
                                                                 : "") +
                                             (params.lastTokens ? "  __shared__ unsigned long long block_best[kTokenGroup];\n" : "")},
                              {"ZERO_COUNTERS", attention && decodeCountersPerToken(*attention)
                                                    ? zeroDecodeCounters(*attention, "counters",
                                                                         "tokens")
                                                    : ""},
                              {"PRELOAD_STEP", attention ? R"cuda(
  // The first token group's positions and cache slots: the step state was
  // written before the step.
  int first_positions[kTokenGroup], first_slots[kTokenGroup];
#pragma unroll
  for (int j = 0; j < kTokenGroup; ++j)
    if (j < tokens) {
      first_positions[j] = step.positions[j];
      first_slots[j] = step.slot[step.token_seq[j]];
    })cuda" : ""},
                              {"PRELOAD_NORM", normReads.copies},
                              {"PASSES", passes}});
  return spec;
}
