//===- PersistentDecodeKernel.cpp - a whole decode step in one kernel -----===//
//
// A decode step of a Llama-family decoder as one cooperative kernel of a
// block per SM (bench/NOTES.md, section 6). A decode step is a chain of
// matrix-vector products over weights that do not depend on the step's
// activations, so one warp of each block streams the block's share of every
// weight matrix, in the order the step consumes them, into a ring of
// shared-memory slots with the copy engine, while eight compute warps work
// through the chain: they wait at a grid-wide barrier wherever a product
// needs the whole of the previous one's output. The copy warp never waits for
// the barriers, so HBM keeps streaming through them, through attention and
// through the norms, as far ahead as the ring holds; separate kernels drain
// and refill the memory pipeline at every boundary instead.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {

constexpr int64_t kComputeWarps = 8;
constexpr int64_t kChunkBytes = 32 * 1024;
/// Shared memory a block may have on sm_90 (227 KiB), less a margin for what
/// the compiler adds.
constexpr int64_t kSharedBytesPerBlock = 227 * 1024 - 512;
constexpr int64_t kMaxStages = 8, kMinStages = 4;

/// Static shared memory of the kernel besides the attention task's: the
/// ring's barriers, the per-layer tensor table, the norm scratch, the LM
/// head's best keys.
int64_t ownStaticBytes(const PersistentDecodeParams &params) {
  return 2 * kMaxStages * 8 + params.layers * 12 * 8 + 32 * 4 + params.tokens * 8;
}

/// The attention task's static shared memory (attentionDecodeTask's arrays),
/// rounded up.
int64_t attentionStaticBytes(const AttentionParams &attention) {
  int64_t group = attention.heads / attention.kvHeads, dim = attention.headDim;
  int64_t heads = std::min<int64_t>(group, std::max<int64_t>(1, 256 / dim));
  int64_t bytes = 4 * (heads * dim + kComputeWarps * heads * (dim + 2) + kComputeWarps * heads +
                       2 * heads);
  if (attention.decodeSplits > 1)
    bytes += 4 * kComputeWarps * attention.decodeSplits + 16;
  return bytes + 256;
}

int64_t inputBytes(const PersistentDecodeParams &params) {
  int64_t widest = std::max({params.hidden, params.attention.heads * params.attention.headDim,
                             params.inter});
  return params.tokens * widest * dtypeBytes(params.dtype);
}

/// Ring slots that fit beside everything else, or 0 when the tokens' inputs
/// leave too few.
int64_t ringStages(const PersistentDecodeParams &params) {
  int64_t free = kSharedBytesPerBlock - ownStaticBytes(params) -
                 attentionStaticBytes(params.attention) - inputBytes(params);
  int64_t stages = std::min(kMaxStages, free / kChunkBytes);
  return stages >= kMinStages ? stages : 0;
}

} // namespace

int64_t codegen::persistentDecodeTokens(PersistentDecodeParams params, int64_t maxBatch) {
  for (int64_t tokens = std::min<int64_t>(4, maxBatch); tokens >= 1; tokens /= 2) {
    params.tokens = tokens;
    if (ringStages(params))
      return tokens;
  }
  return 0;
}

KernelSpec codegen::persistentDecodeKernel(const PersistentDecodeParams &params) {
  const AttentionParams &attention = params.attention;
  int64_t stages = ringStages(params);
  int64_t attentionDim = attention.heads * attention.headDim;
  int64_t qkvRows = (attention.heads + 2 * attention.kvHeads) * attention.headDim;
  llvm::StringRef type = cudaTypeName(params.dtype);

  KernelSpec spec;
  spec.name = formatv("decode_step_persistent_l{0}_h{1}_i{2}_{3}", params.layers, params.hidden,
                      params.inter, dtypeName(params.dtype));
  spec.summary = formatv("a whole decode step of {0} layers (tfm.rms_norm, tfm.packed_qkv_linear + "
                         "tfm.attention, tfm.linear, tfm.add_rms_norm, tfm.gated_mlp {1}, "
                         "tfm.linear), the final norm and the LM head, for up to {2} token(s); "
                         "one block per SM, weights streamed through a ring of {3} x 32 KiB",
                         params.layers, params.activation, params.tokens, stages);
  spec.launch.block = (kComputeWarps + 1) * 32;
  spec.launch.grid = 1;
  spec.launch.scale = GridScale::multiprocessors;
  spec.launch.sharedBytes = static_cast<unsigned>(stages * kChunkBytes + inputBytes(params));

  // Kernel parameters: the model's tensors, then the step's buffers.
  std::string parameters = formatv("const T *__restrict__ embedding, const NormT *__restrict__ "
                                   "final_norm, const T *__restrict__ lm_head, {0}",
                                   params.lmHeadBias ? "const T *__restrict__ lm_head_bias, " : "")
                               .str();
  std::string table;
  for (int64_t l = 0; l < params.layers; ++l) {
    parameters += formatv("\n    const NormT *attn_norm_{0}, const T *qkv_{0}, {1}const T *o_{0}, "
                          "{2}const NormT *mlp_norm_{0}, const T *gate_up_{0}, {3}const T *down_{0}, "
                          "{4}T *k_cache_{0}, T *v_cache_{0},",
                          l, params.qkvBias ? formatv("const T *qkv_bias_{0}, ", l).str() : "",
                          params.oBias ? formatv("const T *o_bias_{0}, ", l).str() : "",
                          params.gateUpBias ? formatv("const T *gate_up_bias_{0}, ", l).str() : "",
                          params.downBias ? formatv("const T *down_bias_{0}, ", l).str() : "")
                      .str();
    table += formatv("    case {0}: layers[{0}] = {{attn_norm_{0}, qkv_{0}, {1}, o_{0}, {2}, mlp_norm_{0}, "
                     "gate_up_{0}, {3}, down_{0}, {4}, k_cache_{0}, v_cache_{0}}; break;\n",
                     l, params.qkvBias ? formatv("qkv_bias_{0}", l).str() : "nullptr",
                     params.oBias ? formatv("o_bias_{0}", l).str() : "nullptr",
                     params.gateUpBias ? formatv("gate_up_bias_{0}", l).str() : "nullptr",
                     params.downBias ? formatv("down_bias_{0}", l).str() : "nullptr")
                 .str();
  }
  bool splits = attention.decodeSplits > 1;
  parameters += formatv("\n    T *__restrict__ residual, T *__restrict__ qkv_out, T *__restrict__ "
                        "attn_out, T *__restrict__ mlp_out, {0}float *__restrict__ logits, "
                        "kiln::StepState step, int num_tokens",
                        splits ? "float *__restrict__ partial, int *__restrict__ counters, " : "")
                    .str();

  std::string invFreq = spec.name + "_inv_freq";
  auto bias = [](bool present, llvm::StringRef expression) {
    return present ? expression.str() : std::string("0.f");
  };

  spec.source = fillTemplate(R"cuda(
// In a namespace of its own (the kernel keeps its C name), so that the
// attention task does not collide with the decode attention kernel's when
// kernels are compiled together.
namespace ${NAME}_parts {
${TABLE}${ATTENTION_TASK}
using T = ${T};
using NormT = ${NORM_T};
using W = kiln::Vec16<T>;
constexpr int kComputeWarps = ${COMPUTE_WARPS}, kComputeThreads = kComputeWarps * 32;
constexpr int kTokens = ${TOKENS}, kLayers = ${LAYERS}, kStages = ${STAGES};
constexpr int kChunkElements = ${CHUNK_BYTES} / (int)sizeof(T), kVec = W::size;
constexpr int kHidden = ${HIDDEN}, kAttention = ${ATTENTION_DIM}, kInter = ${INTER}, kVocab = ${VOCAB};
constexpr float kEpsilon = ${EPSILON};
${QKV_CONSTANTS}
/// How rows of a weight matrix pair up into units, what a compute warp
/// computes: one row, a gate row and its up row, or a RoPE rotation pair of
/// the packed q, k, v rows.
enum class RowOrder { single, gated, rotation };

/// One weight matrix as the ring carries it: groups of kComputeWarps units,
/// a warp a unit, each group in slices of kSlice columns, one 32 KiB chunk a
/// slice. Group g of matrix `base` goes to block (base + g) % gridDim.x, so
/// that one matrix's leftover groups land on blocks the previous one left idle.
template <int kUnits_, int kRows_, int kK_, RowOrder kOrder> struct Matrix {
  static constexpr int kUnits = kUnits_, kRows = kRows_, kK = kK_;
  static constexpr int kSlice = kK < kChunkElements / (kComputeWarps * kRows)
                                    ? kK : kChunkElements / (kComputeWarps * kRows);
  static constexpr int kSlices = (kK + kSlice - 1) / kSlice;
  static constexpr int kGroups = (kUnits + kComputeWarps - 1) / kComputeWarps;
  static __device__ __forceinline__ int row(int u, int r) {
    if (kOrder == RowOrder::gated)
      return r == 0 ? u : kUnits + u;
    if (kOrder == RowOrder::rotation) {${QKV_ROW_OF}
    }
    return u;
  }
  static __device__ __forceinline__ int first_group(int base) {
    const int blocks = gridDim.x;
    return ((int)blockIdx.x - base % blocks + blocks) % blocks;
  }
};
using QkvMatrix = Matrix<${QKV_ROWS} / 2, 2, kHidden, RowOrder::rotation>;
using OMatrix = Matrix<kHidden, 1, kAttention, RowOrder::single>;
using GateUpMatrix = Matrix<kInter, 2, kHidden, RowOrder::gated>;
using DownMatrix = Matrix<kHidden, 1, kInter, RowOrder::single>;
using LmHeadMatrix = Matrix<kVocab, 1, kHidden, RowOrder::single>;
constexpr int kLayerGroups = QkvMatrix::kGroups + OMatrix::kGroups + GateUpMatrix::kGroups +
                             DownMatrix::kGroups;
/// A warp's sums of `M`'s unit rows for each token.
template <class M> using Sums = float[M::kRows][kTokens];

struct LayerTensors {
  const NormT *attn_norm;
  const T *qkv, *qkv_bias, *o, *o_bias;
  const NormT *mlp_norm;
  const T *gate_up, *gate_up_bias, *down, *down_bias;
  T *k_cache, *v_cache;
};

/// The ring: chunk c of a block's stream is in slot c % kStages.
struct Ring {
  T *slots;
  uint64_t *full, *empty;
  int chunk = 0;
};

/// The copy warp's side: every chunk of `M` for this block, each once its
/// slot is free.
template <class M> __device__ __forceinline__ void stream(Ring &ring, const T *w, int base) {
  for (int g = M::first_group(base); g < M::kGroups; g += gridDim.x) {
    const int units = min(kComputeWarps, M::kUnits - g * kComputeWarps);
    for (int s = 0; s < M::kSlices; ++s, ++ring.chunk) {
      const int slot = ring.chunk % kStages, use = ring.chunk / kStages;
      if (use > 0)
        kiln::mbarrier_wait(&ring.empty[slot], (use - 1) & 1);
      const int columns = min(M::kSlice, M::kK - s * M::kSlice);
      const unsigned bytes = columns * (unsigned)sizeof(T);
      kiln::mbarrier_arrive_expect_bytes(&ring.full[slot], units * M::kRows * bytes);
      for (int unit = 0; unit < units; ++unit)
#pragma unroll
        for (int r = 0; r < M::kRows; ++r)
          kiln::bulk_copy_to_shared(
              ring.slots + (size_t)slot * kChunkElements + (unit * M::kRows + r) * M::kSlice,
              w + (size_t)M::row(g * kComputeWarps + unit, r) * M::kK + s * M::kSlice, bytes,
              &ring.full[slot]);
    }
  }
}

/// A compute warp's side: for each of this block's groups of `M`, its unit's
/// rows · the inputs `xs` (kTokens rows of M::kK), then `epilogue(u, j, acc)`
/// by lane 0 for each token j, acc[r][j] being row r's sum.
template <class M, class Epilogue>
__device__ __forceinline__ void consume(Ring &ring, const T *xs, int tokens, int base,
                                        Epilogue epilogue) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int g = M::first_group(base); g < M::kGroups; g += gridDim.x) {
    const int u = g * kComputeWarps + warp;
    float acc[M::kRows][kTokens] = {};
    for (int s = 0; s < M::kSlices; ++s, ++ring.chunk) {
      const int slot = ring.chunk % kStages;
      kiln::mbarrier_wait(&ring.full[slot], (ring.chunk / kStages) & 1);
      if (u < M::kUnits) {
        const T *rows = ring.slots + (size_t)slot * kChunkElements + warp * M::kRows * M::kSlice;
        const T *x = xs + s * M::kSlice;
        const int columns = min(M::kSlice, M::kK - s * M::kSlice);
#pragma unroll 4
        for (int i = lane * kVec; i < columns; i += 32 * kVec) {
          W w[M::kRows];
#pragma unroll
          for (int r = 0; r < M::kRows; ++r)
            w[r] = *reinterpret_cast<const W *>(rows + r * M::kSlice + i);
#pragma unroll
          for (int j = 0; j < kTokens; ++j) {
            if (j >= tokens)
              break;
            const W xv = *reinterpret_cast<const W *>(x + j * M::kK + i);
#pragma unroll
            for (int r = 0; r < M::kRows; ++r)
#pragma unroll
              for (int e = 0; e < kVec; ++e)
                acc[r][j] += w[r].get(e) * xv.get(e);
          }
        }
      }
      __syncwarp();
      if (lane == 0)
        kiln::mbarrier_arrive(&ring.empty[slot]);
    }
    if (u < M::kUnits) {
#pragma unroll
      for (int r = 0; r < M::kRows; ++r)
#pragma unroll
        for (int j = 0; j < kTokens; ++j)
          acc[r][j] = kiln::warp_sum(acc[r][j]);
      if (lane == 0)
        for (int j = 0; j < tokens; ++j)
          epilogue(u, j, acc);
    }
  }
}

/// xs[j] = rms_norm(row j of the source) * weight, rounded to T, for each
/// token; rows are read through L2 (other blocks wrote them).
template <class SourceRow>
__device__ __forceinline__ void normalize(T *xs, int tokens, SourceRow source_row,
                                          const NormT *weight, float *scratch) {
  constexpr int kItems = (kHidden / kVec + kComputeThreads - 1) / kComputeThreads;
  for (int j = 0; j < tokens; ++j) {
    const T *source = source_row(j);
    W v[kItems];
    float total = 0.f;
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      if (i < kHidden) {
        v[item] = ${LOAD_CG}(source + i);
        for (int e = 0; e < kVec; ++e)
          total += v[item].get(e) * v[item].get(e);
      }
    }
    const float inv = rsqrtf(kiln::group_sum<kComputeThreads>(total, scratch) / kHidden + kEpsilon);
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      if (i < kHidden) {
        for (int e = 0; e < kVec; ++e)
          v[item].set(e, v[item].get(e) * inv * kiln::to_float(weight[i + e]));
        *reinterpret_cast<W *>(xs + j * kHidden + i) = v[item];
      }
    }
  }
  kiln::group_sync<kComputeThreads>();
}

/// xs = the tokens' rows of [tokens, kK] `source`, read through L2.
template <int kK> __device__ __forceinline__ void load_rows(T *xs, int tokens, const T *source) {
  for (int i = threadIdx.x * kVec; i < tokens * kK; i += kComputeThreads * kVec)
    *reinterpret_cast<W *>(xs + i) = ${LOAD_CG}(source + i);
  kiln::group_sync<kComputeThreads>();
}

// Launched cooperatively with one block per SM (grid.x = SMs): the blocks meet
// at grid-wide barriers on step.grid_barrier, which every step's upload zeroes.
// Warps 0-7 compute; warp 8 streams weights.
extern "C" __global__ void __launch_bounds__(${THREADS}, 1) ${NAME}(${PARAMS}) {
  extern __shared__ __align__(128) unsigned char dynamic_shared[];
  __shared__ __align__(8) uint64_t full[kStages], empty[kStages];
  __shared__ LayerTensors layers[kLayers];
  __shared__ float scratch[32];
  __shared__ unsigned long long block_best[kTokens];
  const int tokens = num_tokens;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  switch (threadIdx.x) {
${LAYER_TABLE}  }
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      kiln::mbarrier_init(&full[s], 1);
      kiln::mbarrier_init(&empty[s], kComputeWarps);
    }
    kiln::mbarrier_init_fence();
  }
  if (threadIdx.x < kTokens)
    block_best[threadIdx.x] = 0;
  __syncthreads();
  Ring ring{reinterpret_cast<T *>(dynamic_shared), full, empty};
  T *xs = ring.slots + (size_t)kStages * kChunkElements;

  // The copy warp: the block's share of every matrix, in the order of use.
  if (warp == kComputeWarps) {
    if (lane == 0) {
      for (int l = 0; l < kLayers; ++l) {
        const int base = l * kLayerGroups;
        stream<QkvMatrix>(ring, layers[l].qkv, base);
        stream<OMatrix>(ring, layers[l].o, base + QkvMatrix::kGroups);
        stream<GateUpMatrix>(ring, layers[l].gate_up, base + QkvMatrix::kGroups + OMatrix::kGroups);
        stream<DownMatrix>(ring, layers[l].down,
                           base + QkvMatrix::kGroups + OMatrix::kGroups + GateUpMatrix::kGroups);
      }
      stream<LmHeadMatrix>(ring, lm_head, kLayers * kLayerGroups);
    }
    return;
  }

  // The compute warps.
  uint32_t barrier_target = 0;
  auto grid_barrier = [&] {
    kiln::group_sync<kComputeThreads>();
    barrier_target += gridDim.x;
    if (threadIdx.x == 0) {
      kiln::grid_arrive(step.grid_barrier);
      kiln::grid_wait(step.grid_barrier, barrier_target);
    }
    kiln::group_sync<kComputeThreads>();
  };
  // For the KV-cache epilogue: each token's position and cache slot.
  int first_positions[kTokens], first_slots[kTokens];
#pragma unroll
  for (int j = 0; j < kTokens; ++j)
    if (j < tokens) {
      first_positions[j] = step.positions[j];
      first_slots[j] = step.slot[step.token_seq[j]];
    }
  auto embedding_row = [&](int j) {
    const int id = step.token_ids[j];
    return embedding + (size_t)(id >= 0 && id < kVocab ? id : 0) * kHidden;
  };
  auto residual_row = [&](int j) { return residual + (size_t)j * kHidden; };

  for (int l = 0; l < kLayers; ++l) {
    const LayerTensors &L = layers[l];
    const int base = l * kLayerGroups;

    // rms_norm (layer 0: of the embedding rows, which block 0 also stores as
    // the residual stream), then the packed QKV product with RoPE, q into
    // qkv_out and k, v into the layer's cache.
    if (l == 0) {
      normalize(xs, tokens, embedding_row, L.attn_norm, scratch);
      if (blockIdx.x == 0)
        for (int i = threadIdx.x * kVec; i < tokens * kHidden; i += kComputeThreads * kVec) {
          const int j = i / kHidden, id = step.token_ids[j];
          const W v = ${LOAD}(embedding_row(j) + i % kHidden);
          *reinterpret_cast<W *>(residual + i) = id >= 0 && id < kVocab ? v : W{};
        }
    } else {
      normalize(xs, tokens, residual_row, L.attn_norm, scratch);
    }${ZERO_COUNTERS}
    consume<QkvMatrix>(ring, xs, tokens, base, [&](int u, int j, const Sums<QkvMatrix> &acc) {
      constexpr int t0 = 0;
      const int t = j;${QKV_BIAS}
      T *y = qkv_out, *k_cache = L.k_cache, *v_cache = L.v_cache;
      auto row_of = [](int u, int r) { return QkvMatrix::row(u, r); };
${KV_EPILOGUE}
    });
    grid_barrier();

    // Attention over the cache, a task at a time.
    for (int task = blockIdx.x; task < tokens * ${TASKS_PER_TOKEN}; task += gridDim.x)
      ${NAME}_parts::${TASK_NAME}(task, qkv_out, L.k_cache, L.v_cache, ${PARTIAL_ARGS}attn_out,
                                  step);
    grid_barrier();

    // o projection, added to the residual stream (each rounded to T).
    load_rows<kAttention>(xs, tokens, attn_out);
    consume<OMatrix>(ring, xs, tokens, base + QkvMatrix::kGroups,
                     [&](int u, int j, const Sums<OMatrix> &acc) {
      T *r = residual + (size_t)j * kHidden + u;
      const float out = kiln::to_float(kiln::from_float<T>(acc[0][j] + ${O_BIAS}));
      *r = kiln::from_float<T>(out + kiln::to_float(__ldcg(r)));
    });
    grid_barrier();

    // rms_norm of the residual stream, then the gated MLP's gate and up rows.
    normalize(xs, tokens, residual_row, L.mlp_norm, scratch);
    consume<GateUpMatrix>(ring, xs, tokens, base + QkvMatrix::kGroups + OMatrix::kGroups,
                          [&](int u, int j, const Sums<GateUpMatrix> &acc) {
      mlp_out[(size_t)j * kInter + u] = kiln::from_float<T>(
          kiln::${ACTIVATION}(acc[0][j] + ${GATE_BIAS}) * (acc[1][j] + ${UP_BIAS}));
    });
    grid_barrier();

    // down projection, added to the residual stream.
    load_rows<kInter>(xs, tokens, mlp_out);
    consume<DownMatrix>(ring, xs, tokens,
                        base + QkvMatrix::kGroups + OMatrix::kGroups + GateUpMatrix::kGroups,
                        [&](int u, int j, const Sums<DownMatrix> &acc) {
      T *r = residual + (size_t)j * kHidden + u;
      const float out = kiln::to_float(kiln::from_float<T>(acc[0][j] + ${DOWN_BIAS}));
      *r = kiln::from_float<T>(out + kiln::to_float(__ldcg(r)));
    });
    grid_barrier();
  }

  // The final norm of each sequence's last token, then the LM head: float
  // logits, and each sequence's greedy choice (largest logit, lowest row) by
  // warp, block and one atomic per block into step.best_logit.
  normalize(xs, tokens, [&](int j) { return residual_row(step.last_token[j]); }, final_norm,
            scratch);
  unsigned long long best[kTokens] = {};
  consume<LmHeadMatrix>(ring, xs, tokens, kLayers * kLayerGroups,
                        [&](int u, int j, const Sums<LmHeadMatrix> &acc) {
    const float logit = acc[0][j] + ${LM_HEAD_BIAS};
    logits[(size_t)j * kVocab + u] = logit;
    if (logit == logit) // NaN is never the greedy choice
      best[j] = max(best[j], kiln::logit_key(logit, u));
  });
  if (lane == 0)
    for (int j = 0; j < tokens; ++j)
      atomicMax(&block_best[j], best[j]);
  kiln::group_sync<kComputeThreads>();
  if (threadIdx.x < tokens)
    atomicMax(&step.best_logit[threadIdx.x], block_best[threadIdx.x]);
}

} // namespace ${NAME}_parts
)cuda",
                             {{"TABLE", attention.rope ? floatTable(invFreq, attention.invFreq) : ""},
                              {"ATTENTION_TASK",
                               attentionDecodeTask(attention, "kiln::group_sync<256>()")},
                              {"T", type.str()},
                              {"NORM_T", cudaTypeName(params.normWeightDtype).str()},
                              {"COMPUTE_WARPS", std::to_string(kComputeWarps)},
                              {"TOKENS", std::to_string(params.tokens)},
                              {"LAYERS", std::to_string(params.layers)},
                              {"STAGES", std::to_string(stages)},
                              {"CHUNK_BYTES", std::to_string(kChunkBytes)},
                              {"HIDDEN", std::to_string(params.hidden)},
                              {"ATTENTION_DIM", std::to_string(attentionDim)},
                              {"INTER", std::to_string(params.inter)},
                              {"VOCAB", std::to_string(params.vocab)},
                              {"EPSILON", floatLiteral(params.epsilon)},
                              {"QKV_CONSTANTS", qkvConstants(attention)},
                              {"QKV_BIAS", params.qkvBias ? "\n      const T *bias = L.qkv_bias;" : ""},
                              {"QKV_ROW_OF", indented(qkvRowOrder(attention), 2)},
                              {"QKV_ROWS", std::to_string(qkvRows)},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"NAME", spec.name},
                              {"PARAMS", parameters},
                              {"LAYER_TABLE", table},
                              {"LOAD", "kiln::load16"},
                              {"LOAD_CG", "kiln::load16_cg"},
                              {"ZERO_COUNTERS",
                               splits ? formatv(R"cuda(
    // The attention splits count themselves in `counters`, from zero.
    if (blockIdx.x == 0)
      for (int i = threadIdx.x; i < tokens * {0}; i += kComputeThreads)
        counters[i] = 0;)cuda",
                                                decodeCountersPerToken(attention))
                                            .str()
                                      : ""},
                              {"KV_EPILOGUE", kvCacheEpilogue(attention, params.qkvBias, invFreq)},
                              {"TASKS_PER_TOKEN", std::to_string(attentionDecodeTasksPerToken(attention))},
                              {"TASK_NAME", attentionDecodeTaskName(attention)},
                              {"PARTIAL_ARGS", splits ? "partial, counters, " : ""},
                              {"O_BIAS", bias(params.oBias, "kiln::to_float(L.o_bias[u])")},
                              {"ACTIVATION", params.activation},
                              {"GATE_BIAS", bias(params.gateUpBias, "kiln::to_float(L.gate_up_bias[u])")},
                              {"UP_BIAS",
                               bias(params.gateUpBias, "kiln::to_float(L.gate_up_bias[kInter + u])")},
                              {"DOWN_BIAS", bias(params.downBias, "kiln::to_float(L.down_bias[u])")},
                              {"LM_HEAD_BIAS", bias(params.lmHeadBias, "kiln::to_float(lm_head_bias[u])")}});
  return spec;
}
