//===- PersistentDecodeKernel.cpp - a whole decode step in one kernel -----===//
//
// A decode step of a Llama-family decoder as one cooperative kernel of a
// block per SM (bench/NOTES.md, section 6). A decode step is a chain of
// matrix-vector products over weights that do not depend on the step's
// activations, so one warp of each block streams the block's share of every
// weight matrix, in the order the step consumes them, into a ring of
// shared-memory slots with the copy engine, while eight compute warps work
// through the chain. Blocks hand values to each other as tagged words (a
// value and the step's number in one 64-bit store, bench/NOTES.md, sections
// 8-9), which a reader polls until they are written: no block waits for
// another at a grid-wide barrier, only for the values it reads. The copy warp
// never waits for them, so HBM keeps streaming through the hand-offs, through
// attention and through the norms, as far ahead as the ring holds; separate
// kernels drain and refill the memory pipeline at every boundary instead.
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
/// The copy warpgroup: one warp streams the weights, and the warpgroup's
/// registers go to the compute warps (sm_90a; bench/NOTES.md §10).
constexpr int64_t kCopyWarps = 4;
/// A chunk: 16 weight rows (one MMA tile) of up to 32 KiB, one box of the
/// copy engine, swizzled (PersistentWeightViews). The ring starts at a
/// multiple of the largest swizzle atom, 1 KiB, which costs up to that much.
constexpr int64_t kChunkBytes = 32 * 1024, kGroupRows = 16, kRingAlignment = 1024;
/// Shared memory a block may have on sm_90 (227 KiB), less a margin for what
/// the compiler adds.
constexpr int64_t kSharedBytesPerBlock = 227 * 1024 - 512;
constexpr int64_t kMaxStages = 8, kMinStages = 4;
/// Chunks a block's copy warp keeps arriving at once (fewer than kMinStages).
constexpr int64_t kChunksInFlight = 2;

/// Static shared memory of the kernel besides the attention task's: the
/// ring's barriers, the group sums, the per-layer tensor table, the norm
/// scratch, the LM head's best keys.
int64_t ownStaticBytes(const PersistentDecodeParams &params) {
  return 2 * kMaxStages * 8 +
         (kMaxStages + 1) * (kComputeWarps * kGroupRows * params.tokens + 1) * 4 +
         params.layers * 13 * 8 + 32 * 4 + params.tokens * 8;
}

/// The attention task's static shared memory (attentionDecodeTask's arrays),
/// rounded up.
int64_t attentionStaticBytes(const AttentionParams &attention) {
  int64_t dim = attention.headDim;
  int64_t heads = ceilDiv(attention.heads / attention.kvHeads, decodeHeadGroups(attention));
  int64_t bytes =
      4 * (heads * dim + kComputeWarps * heads * (dim + 2) + kComputeWarps * heads + 2 * heads);
  if (attention.decodeSplits > 1)
    bytes += 4 * kComputeWarps * attention.decodeSplits + 16;
  return bytes + 256;
}

int64_t widestInput(const PersistentDecodeParams &params) {
  return std::max({params.hidden, params.attention.heads * params.attention.headDim, params.inter});
}

/// Dynamic shared memory besides the ring: the inputs of a product, the
/// residual stream's rows, and what aligning the ring may skip.
int64_t inputBytes(const PersistentDecodeParams &params) {
  return params.tokens * (widestInput(params) + params.hidden) * dtypeBytes(params.dtype) +
         kRingAlignment;
}

/// Ring slots that fit beside everything else, or 0 when the tokens' inputs
/// leave too few.
int64_t ringStages(const PersistentDecodeParams &params) {
  int64_t free = kSharedBytesPerBlock - ownStaticBytes(params) -
                 attentionStaticBytes(params.attention) - inputBytes(params);
  int64_t stages = std::min(kMaxStages, free / kChunkBytes);
  return stages >= kMinStages ? stages : 0;
}

/// Where the hand-offs live in the exchange buffer, in 8-byte words: a slot
/// per layer for everything, so that nothing is rewritten within a step (no
/// block can overwrite what a slower one has yet to read). The residual
/// stream, [layers][2][tokens][hidden / values a word], the MLP activations,
/// [layers][tokens][inter / values a word], this step's packed q, k, v rows,
/// [layers][tokens][qkv rows / values a word], attention's output,
/// [layers][tokens][heads x head dim / values a word], and the split
/// counters, [layers][counters], a word each.
struct ExchangeLayout {
  int64_t residualWords, mlpWords, qkvWordsAt, attentionWordsAt, countersAt, words;
  int64_t counters; // per layer

  explicit ExchangeLayout(const PersistentDecodeParams &params) {
    const AttentionParams &attention = params.attention;
    int64_t perWord = 4 / dtypeBytes(params.dtype);
    int64_t qkvRows = (attention.heads + 2 * attention.kvHeads) * attention.headDim;
    int64_t layerTokens = params.layers * params.tokens;
    counters = params.tokens * decodeCountersPerToken(attention);
    residualWords = layerTokens * 2 * params.hidden / perWord;
    mlpWords = layerTokens * params.inter / perWord;
    qkvWordsAt = residualWords + mlpWords;
    attentionWordsAt = qkvWordsAt + layerTokens * qkvRows / perWord;
    countersAt = attentionWordsAt + layerTokens * attention.heads * attention.headDim / perWord;
    words = countersAt + params.layers * counters;
  }
};

/// The compute warps' hand-offs between blocks: residual_in(l, s) and
/// mlp_in(l) read the residual stream after layer l's o (s = 0) or down
/// (s = 1) product and its MLP activations, attention_in(l) attention's
/// output; residual_out, mlp_store and qkv_store write them and q, k, v, and
/// attention_handoff(l) is what an attention task of layer l reads and
/// writes; phase_end() ends a product.
std::string handoffs(const PersistentDecodeParams &params) {
  ExchangeLayout layout(params);
  std::string counters;
  // Each layer has its own split partials too: nothing but relaxed words
  // would order a rewrite after the last layer's reads.
  if (layout.counters)
    counters = formatv(R"cuda(  constexpr int kLayerCounters = {1};
  uint64_t *const layer_counters = reinterpret_cast<uint64_t *>(exchange + {0}); // [kLayers][kLayerCounters]
  constexpr int kLayerPartial = {2}; // [kTokens][heads][splits][head dim + 2]
)cuda",
                       layout.countersAt, layout.counters,
                       params.tokens * decodePartialFloatsPerToken(params.attention))
                   .str();
  return fillTemplate(R"cuda(
  // Hand-offs: tagged words of this step's epoch in `exchange`, a slot per layer,
  // so that nothing is rewritten within a step. A block reads what it needs
  // as soon as it is written and waits for no other block.
  const uint32_t epoch = *step.epoch;
  constexpr int kStreamWords = kTokens * (kHidden / kPerWord), kMlpWords = kTokens * (kInter / kPerWord);
  uint64_t *const stream_words = exchange;        // [kLayers][2][kStreamWords]
  uint64_t *const mlp_words = exchange + ${MLP_AT};    // [kLayers][kMlpWords]
${COUNTERS}  // A product's last warps may still read xs and residual_rows, which the
  // next phase's inputs overwrite.
  auto phase_end = [] { kiln::group_sync<kComputeThreads>(); };
  auto residual_in = [=](int l, int s) {
    return TaggedInput{stream_words + (size_t)(l * 2 + s) * kStreamWords, epoch};
  };
  auto residual_out = [=](int l, int s) {
    return TaggedStore<kHidden>{stream_words + (size_t)(l * 2 + s) * kStreamWords, epoch};
  };
  auto mlp_in = [=](int l) { return TaggedInput{mlp_words + (size_t)l * kMlpWords, epoch}; };
  auto mlp_store = [=](int l) { return TaggedStore<kInter>{mlp_words + (size_t)l * kMlpWords, epoch}; };
  // q, k, v and attention's output: an attention task polls the words it
  // reads, and so does the o product.
  constexpr int kQkvWords = kTokens * (kPackedRow / kPerWord);
  constexpr int kAttentionWords = kTokens * (kAttention / kPerWord);
  uint64_t *const qkv_words = exchange + ${QKV_AT};       // [kLayers][kQkvWords]
  uint64_t *const attention_words = exchange + ${ATTENTION_AT}; // [kLayers][kAttentionWords]
  // The kernel's own view of the layout that codegen placed.
  static_assert(${MLP_AT} == kLayers * 2 * kStreamWords && ${QKV_AT} == ${MLP_AT} + kLayers * kMlpWords &&
                    ${ATTENTION_AT} == ${QKV_AT} + kLayers * kQkvWords &&
                    ${COUNTERS_AT} == ${ATTENTION_AT} + kLayers * kAttentionWords,
                "the exchange buffer's layout");
  auto qkv_store = [=](int l) { return QkvTaggedStore{qkv_words + (size_t)l * kQkvWords, epoch}; };
  // Each token's step state, read once here rather than by every layer's
  // tasks (two dependent reads of global memory under the weight stream).
  __shared__ TokenStep token_steps[kTokens];
  if (threadIdx.x < tokens) {
    const int t = threadIdx.x, sequence = step.token_seq[t];
    token_steps[t] = {sequence, step.positions[t], step.kv_len[sequence], step.slot[sequence],
                      step.query_start[sequence]};
  }
  kiln::group_sync<kComputeThreads>();
  auto attention_handoff = [=](int l) {
    return AttentionHandoff{token_steps, qkv_words + (size_t)l * kQkvWords,
                            attention_words + (size_t)l * kAttentionWords, epoch};
  };
  auto attention_in = [=](int l) {
    return TaggedInput{attention_words + (size_t)l * kAttentionWords, epoch};
  };)cuda",
                      {{"MLP_AT", std::to_string(layout.residualWords)},
                       {"COUNTERS", counters},
                       {"QKV_AT", std::to_string(layout.qkvWordsAt)},
                       {"ATTENTION_AT", std::to_string(layout.attentionWordsAt)},
                       {"COUNTERS_AT", std::to_string(layout.countersAt)}});
}

} // namespace

int64_t codegen::persistentExchangeBytes(const PersistentDecodeParams &params) {
  return ExchangeLayout(params).words * 8;
}

/// The swizzle span (bytes) of a matrix whose rows have `k` elements: the
/// widest of 128, 64 and 32 that divides a row, so that no line of a box
/// crosses a row's end; 0 if none does. Matrix::kSwizzleBytes in the kernel
/// is the same rule.
static int64_t swizzleBytes(int64_t k, DType dtype) {
  for (int64_t span : {128, 64, 32})
    if (k * dtypeBytes(dtype) % span == 0)
      return span;
  return 0;
}

/// Whether the packed QKV matrix's rotation pairs are neox halves (rows p
/// and p + rotary / 2 of a head), which have a view of their own.
static bool hasRotationHalves(const AttentionParams &attention) {
  return attention.rope && !attention.ropeGptj;
}

std::optional<PersistentWeightViews>
codegen::persistentWeightViews(const PersistentDecodeParams &params, std::string &whyNot) {
  const AttentionParams &attention = params.attention;
  const uint64_t hidden = params.hidden, inter = params.inter, dim = attention.headDim;
  const uint64_t attentionDim = attention.heads * dim;
  for (uint64_t k : {hidden, attentionDim, inter})
    if (!swizzleBytes(int64_t(k), params.dtype)) {
      whyNot = "its weight rows are not whole 32-byte pieces (the copy engine's swizzle)";
      return std::nullopt;
    }
  // A group of 8 units of the QKV matrix is one view's box: within a head,
  // and all rotated or all not.
  const uint64_t pairsPerHead = dim / 2, half = attention.rope ? attention.rotaryDim / 2 : 0;
  const bool halves = hasRotationHalves(attention);
  if (pairsPerHead % 8 || (halves && half % 8)) {
    whyNot = "its head dim or rotary dim is not a multiple of 16 (8 rotation units a group)";
    return std::nullopt;
  }
  // dims[0]: a swizzle line of columns; last before any head dimension:
  // the rows' column blocks; between them the rows, in the kernel's order.
  auto view = [&](uint64_t k, std::vector<uint64_t> rowDims, std::vector<uint64_t> rowStrides,
                  std::vector<uint32_t> rowBox, std::vector<uint64_t> headDims = {},
                  std::vector<uint64_t> headStrides = {}) {
    const int64_t span = swizzleBytes(int64_t(k), params.dtype);
    const uint64_t line = uint64_t(span / dtypeBytes(params.dtype));
    const uint64_t slice = std::min<uint64_t>(k, kChunkBytes / dtypeBytes(params.dtype) / kGroupRows);
    TensorMapView v;
    v.dims = {line};
    v.dims.insert(v.dims.end(), rowDims.begin(), rowDims.end());
    v.dims.push_back(k / line);
    v.dims.insert(v.dims.end(), headDims.begin(), headDims.end());
    v.strides = rowStrides;
    v.strides.push_back(line);
    v.strides.insert(v.strides.end(), headStrides.begin(), headStrides.end());
    v.box = {uint32_t(line)};
    v.box.insert(v.box.end(), rowBox.begin(), rowBox.end());
    v.box.push_back(uint32_t(slice / line));
    v.box.resize(v.dims.size(), 1);
    v.swizzleBytes = uint32_t(span);
    return v;
  };
  const uint64_t heads = attention.heads + 2 * attention.kvHeads;
  PersistentWeightViews views;
  // Rows head * dim + 2 p + r (unit p of the head, its row r).
  views.qkvPairs = view(hidden, {pairsPerHead, 2}, {2 * hidden, hidden}, {8, 2}, {heads},
                        {dim * hidden});
  // neox rotation pairs of q and k heads: rows head * dim + p + r * half.
  views.hasQkvHalves = halves;
  if (halves)
    views.qkvHalves = view(hidden, {half, 2}, {hidden, half * hidden}, {8, 2},
                           {uint64_t(attention.heads + attention.kvHeads)}, {dim * hidden});
  views.o = view(attentionDim, {hidden}, {attentionDim}, {16});
  // Unit u's rows u and inter + u.
  views.gateUp = view(hidden, {inter, 2}, {hidden, inter * hidden}, {8, 2});
  views.down = view(inter, {hidden}, {inter}, {16});
  views.lmHead = view(hidden, {uint64_t(params.vocab)}, {hidden}, {16});
  return views;
}

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
  spec.launch.block = (kComputeWarps + kCopyWarps) * 32;
  spec.launch.grid = 1;
  spec.launch.scale = GridScale::multiprocessors;
  spec.launch.sharedBytes = static_cast<unsigned>(stages * kChunkBytes + inputBytes(params));

  // Kernel parameters: the model's tensors, then the step's buffers.
  // Weight matrices come as the copy engine's maps (PersistentWeightViews).
  auto map = [](llvm::StringRef name) {
    return formatv("const __grid_constant__ kiln::TensorMap {0}, ", name).str();
  };
  std::string parameters = formatv("const T *__restrict__ embedding, const NormT *__restrict__ "
                                   "final_norm, {1}{0}",
                                   params.lmHeadBias ? "const T *__restrict__ lm_head_bias, " : "",
                                   map("lm_head"))
                               .str();
  const bool halves = hasRotationHalves(attention);
  std::string table;
  for (int64_t l = 0; l < params.layers; ++l) {
    // A bias of layer l, if the model has it: the parameter, and its value in
    // the layer's table.
    auto biasParameter = [&](bool present, llvm::StringRef name) {
      return present ? formatv("const T *{0}_{1}, ", name, l).str() : std::string();
    };
    auto biasValue = [&](bool present, llvm::StringRef name) {
      return present ? formatv("{0}_{1}", name, l).str() : std::string("nullptr");
    };
    auto layerMap = [&](llvm::StringRef name) { return map((name + "_" + llvm::Twine(l)).str()); };
    parameters +=
        formatv("\n    const NormT *attn_norm_{0}, {5}{6}{1}{7}{2}const NormT *mlp_norm_{0}, {8}{3}{9}"
                "{4}T *k_cache_{0}, T *v_cache_{0},",
                l, biasParameter(params.qkvBias, "qkv_bias"), biasParameter(params.oBias, "o_bias"),
                biasParameter(params.gateUpBias, "gate_up_bias"),
                biasParameter(params.downBias, "down_bias"), layerMap("qkv_pairs"),
                halves ? layerMap("qkv_halves") : "", layerMap("o"), layerMap("gate_up"),
                layerMap("down"))
            .str();
    table += formatv("    case {0}: layers[{0}] = {{attn_norm_{0}, &qkv_pairs_{0}, {5}, {1}, &o_{0}, {2}, "
                     "mlp_norm_{0}, &gate_up_{0}, {3}, &down_{0}, {4}, k_cache_{0}, v_cache_{0}}; "
                     "break;\n",
                     l, biasValue(params.qkvBias, "qkv_bias"), biasValue(params.oBias, "o_bias"),
                     biasValue(params.gateUpBias, "gate_up_bias"),
                     biasValue(params.downBias, "down_bias"),
                     halves ? formatv("&qkv_halves_{0}", l).str() : std::string("nullptr"))
                 .str();
  }
  bool splits = attention.decodeSplits > 1;
  parameters += formatv("\n    {0}uint64_t *__restrict__ exchange, float *__restrict__ logits, "
                        "kiln::StepState step, int num_tokens",
                        splits ? "float *__restrict__ partial, " : "")
                    .str();

  std::string invFreq = spec.name + "_inv_freq";
  std::string rotationPairs =
      attention.ropeGptj ? ""
                         : "\n  static_assert(kPerWord == 1 || kHalf % 2 == 0, \"neox rotation pairs of "
                           "an even unit start a word\");";
  // The attention task reads and writes tagged words through the layer's
  // AttentionHandoff, and counts its splits in epoch-tagged words.
  AttentionParams task = attention;
  task.decodeTaggedHandoffs = true;
  std::string taskArgs =
      "L.k_cache, L.v_cache, " +
      std::string(splits ? "partial + (size_t)l * kLayerPartial, layer_counters + l * kLayerCounters, "
                         : "") +
      "step, attention_handoff(l)";
  auto bias = [](bool present, llvm::StringRef expression) {
    return present ? expression.str() : std::string("0.f");
  };

  spec.source = fillTemplate(
      R"cuda(
// In a namespace of its own (the kernel keeps its C name), so that the
// attention task does not collide with the decode attention kernel's when
// kernels are compiled together.
namespace ${NAME}_parts {
${TABLE}${ATTENTION_TASK}
using T = ${T};
using NormT = ${NORM_T};
using W = kiln::Vec16<T>;
constexpr int kComputeWarps = ${COMPUTE_WARPS}, kComputeThreads = kComputeWarps * 32;
/// Registers a thread: the cap of ${THREADS} threads on an SM's 64K, and on
/// sm_90a what the copy warpgroup keeps and what the compute warps take of
/// the rest.
constexpr int kRegisterCap = 65536 / ${THREADS} / 8 * 8;
constexpr int kCopyRegisters = 24, kComputeRegisters = 240;
static_assert((kComputeRegisters - kRegisterCap) * kComputeThreads <=
                  (kRegisterCap - kCopyRegisters) * (${THREADS} - kComputeThreads),
              "the compute warps take no more registers than the copy warpgroup gives");
constexpr int kTokens = ${TOKENS}, kLayers = ${LAYERS}, kStages = ${STAGES};
constexpr int kChunksInFlight = ${CHUNKS_IN_FLIGHT};
constexpr int kTasksPerToken = ${TASKS_PER_TOKEN}; // attention tasks
constexpr int kVec = W::size;
/// A chunk of the ring: kGroupRows weight rows (one 16-row MMA tile) of up to
/// kSliceMax columns, as the copy engine writes one box (Matrix::at).
constexpr int kGroupRows = ${GROUP_ROWS}, kSliceMax = ${CHUNK_BYTES} / (int)sizeof(T) / kGroupRows;
constexpr int kSlotElements = kGroupRows * kSliceMax;
constexpr int kRingAlignment = ${RING_ALIGNMENT};
/// The packed QKV matrix's neox rotation halves have a view of their own.
constexpr bool kQkvHalves = ${QKV_HALVES};
constexpr int kHidden = ${HIDDEN}, kAttention = ${ATTENTION_DIM}, kInter = ${INTER};
constexpr int kVocab = ${VOCAB};
constexpr int kWidest = ${WIDEST}; // the longest input row
constexpr float kEpsilon = ${EPSILON};
${QKV_CONSTANTS}
static_assert(kPairsPerHead % 8 == 0 && (!kQkvHalves || kHalf % 8 == 0),
              "a QKV group's 8 units lie in one head, all rotated or all not (one box)");
/// This block's place in a round of the blocks that starts at block
/// base % gridDim.x.
__device__ __forceinline__ int rank_from(int base) {
  const int blocks = gridDim.x;
  return ((int)blockIdx.x - base % blocks + blocks) % blocks;
}
/// How rows of a weight matrix pair up into units, what a compute warp
/// computes: one row, a gate row and its up row, or a RoPE rotation pair of
/// the packed q, k, v rows.
enum class RowOrder { single, gated, rotation };

/// One weight matrix as the ring carries it: groups of kGroupUnits units
/// (kGroupRows rows), each group in slices of kSlice columns, one chunk a
/// slice. In a chunk, row r of unit i is row r * kGroupUnits + i. Group g of
/// the matrix numbered `base` goes to block (base + g) % gridDim.x: matrices
/// start where the previous one stopped.
template <int kUnits_, int kRows_, int kK_, RowOrder kOrder> struct Matrix {
  static constexpr int kUnits = kUnits_, kRows = kRows_, kK = kK_;
  static constexpr int kGroupUnits = kGroupRows / kRows;
  static constexpr int kSlice = kK < kSliceMax ? kK : kSliceMax;
  static constexpr int kSlices = (kK + kSlice - 1) / kSlice;
  static constexpr int kGroups = (kUnits + kGroupUnits - 1) / kGroupUnits;
  /// The copy engine's swizzle span: the widest of 128, 64 and 32 bytes
  /// that divides a row (codegen's PersistentWeightViews says the same),
  /// and its line of columns.
  static constexpr int kSwizzleBytes = kK * sizeof(T) % 128 == 0 ? 128 : kK * sizeof(T) % 64 == 0 ? 64 : 32;
  static constexpr int kLine = kSwizzleBytes / (int)sizeof(T);
  static_assert(kK * sizeof(T) % 32 == 0, "rows of whole 32-byte pieces");
  /// Element (row, column) of a chunk: a box is [column block][row][kLine],
  /// each line's 16-byte pieces swizzled (address bits 4.. XOR bits 7..), so
  /// that ldmatrix's 8 rows of a column hit distinct banks.
  static __device__ __forceinline__ int at(int row, int column) {
    const int byte = (((column / kLine) * kGroupRows + row) * kLine + column % kLine) * (int)sizeof(T);
    return (byte ^ (((byte >> 7) & (kSwizzleBytes / 16 - 1)) << 4)) / (int)sizeof(T);
  }
  /// Chunk `s` of group `g` as one box of `map` (QKV: of `halves` for neox
  /// rotation pairs), completing on `full`.
  static __device__ __forceinline__ void copy(T *chunk, const kiln::TensorMap *map,
                                              const kiln::TensorMap *halves, int g, int s,
                                              uint64_t *full, uint64_t policy) {
    const int block = s * kSlice / kLine;
    if constexpr (kOrder == RowOrder::single) {
      const int coords[3] = {0, g * kGroupRows, block};
      kiln::tensor_copy_to_shared(chunk, map, coords, full, policy);
    } else if constexpr (kOrder == RowOrder::gated) {
      const int coords[4] = {0, g * kGroupUnits, 0, block};
      kiln::tensor_copy_to_shared(chunk, map, coords, full, policy);
    } else {
      const int u0 = g * kGroupUnits, head = u0 / kPairsPerHead, pair = u0 % kPairsPerHead;
      const bool rotated = kQkvHalves && head < kHeads + kKvHeads && pair < kHalf;
      const int coords[5] = {0, pair, 0, block, head};
      kiln::tensor_copy_to_shared(chunk, rotated ? halves : map, coords, full, policy);
    }
  }
  static __device__ __forceinline__ int row(int u, int r) {
    if (kOrder == RowOrder::gated)
      return r == 0 ? u : kUnits + u;
    if (kOrder == RowOrder::rotation) {${QKV_ROW_OF}
    }
    return u;
  }
  static __device__ __forceinline__ int first_group(int base) { return rank_from(base); }
};
using QkvMatrix = Matrix<${QKV_ROWS} / 2, 2, kHidden, RowOrder::rotation>;
using OMatrix = Matrix<kHidden, 1, kAttention, RowOrder::single>;
using GateUpMatrix = Matrix<kInter, 2, kHidden, RowOrder::gated>;
using DownMatrix = Matrix<kHidden, 1, kInter, RowOrder::single>;
using LmHeadMatrix = Matrix<kVocab, 1, kHidden, RowOrder::single>;
constexpr int kLayerGroups = QkvMatrix::kGroups + OMatrix::kGroups + GateUpMatrix::kGroups +
                             DownMatrix::kGroups;
/// A unit's sums of its rows for each token.
template <class M> using Sums = float[M::kRows][kTokens];

struct LayerTensors {
  const NormT *attn_norm;
  const kiln::TensorMap *qkv_pairs, *qkv_halves;
  const T *qkv_bias;
  const kiln::TensorMap *o;
  const T *o_bias;
  const NormT *mlp_norm;
  const kiln::TensorMap *gate_up;
  const T *gate_up_bias;
  const kiln::TensorMap *down;
  const T *down_bias;
  T *k_cache, *v_cache;
};

/// The ring: chunk c of a block's stream is in slot c % kStages.
struct Ring {
  T *slots;
  uint64_t *full, *empty;
  int chunk = 0;
};

/// The copy warp's side (its lane 0): every chunk of `M` for this block,
/// each once its slot is free and at most kChunksInFlight chunks are still
/// arriving, a box of `map` (or `halves`) each. Two chunks a block keep HBM
/// busy; more only lengthen the queues that the step's other memory
/// accesses (the hand-offs, the norms' reads, attention) wait in
/// (bench/NOTES.md, section 6).
template <class M>
__device__ __forceinline__ void stream(Ring &ring, const kiln::TensorMap *map,
                                       const kiln::TensorMap *halves, int base, uint64_t policy) {
  for (int g = M::first_group(base); g < M::kGroups; g += gridDim.x) {
    for (int s = 0; s < M::kSlices; ++s, ++ring.chunk) {
      const int slot = ring.chunk % kStages, use = ring.chunk / kStages;
      if (use > 0)
        kiln::mbarrier_wait(&ring.empty[slot], (use - 1) & 1);
      if (ring.chunk >= kChunksInFlight) {
        const int arriving = ring.chunk - kChunksInFlight;
        kiln::mbarrier_wait(&ring.full[arriving % kStages], (arriving / kStages) & 1);
      }
      // A whole box's bytes arrive, zeros where it reaches past the matrix.
      kiln::mbarrier_arrive_expect_bytes(&ring.full[slot], kGroupRows * M::kSlice * (unsigned)sizeof(T));
      M::copy(ring.slots + (size_t)slot * kSlotElements, map, halves, g, s, &ring.full[slot], policy);
    }
  }
}

/// Where the compute warps meet at the end of each group: each warp's partial
/// sums, and how many warps are done; the last warp runs the epilogue. A warp
/// is never more than kStages chunks (so groups) ahead of another (the ring
/// holds it back), so kStages + 1 of these in turn are never reused too early.
struct GroupSums {
  float partial[kComputeWarps][kGroupRows][kTokens];
  int arrived;
};
constexpr int kGroupSlots = kStages + 1;

/// One chunk's rows · the inputs `x` (kTokens rows of stride M::kK) into a
/// warp's partial sums, the warps taking interleaved pieces of the columns.
/// 16-bit types: tensor cores, a 16x16 weight tile times the tokens' 16x8
/// column tile a step; lane l's acc holds rows l/4 and l/4 + 8 for tokens
/// 2(l%4) and 2(l%4) + 1 as the MMA lays them out. float: one 16-byte vector
/// of every row a lane and step; acc[i][j] is row i's for token j.
template <class M> struct ChunkProduct {
  // (M::kK > 0 makes the condition depend on M, so that the other branch is discarded.)
  static constexpr bool kTensorCores = sizeof(T) == 2 && M::kK > 0;
  float acc[kTensorCores ? 1 : kGroupRows][kTensorCores ? 4 : kTokens] = {};

  __device__ __forceinline__ void add(const T *chunk, const T *x, int columns, int units,
                                      int tokens) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if constexpr (kTensorCores) {
      const int a_row = (lane & 7) + 8 * ((lane >> 3) & 1), a_column = 8 * (lane >> 4);
      const int token = lane >> 2;
      const T *b_column = x + token * M::kK + (lane & 3) * 2;
#pragma unroll 4
      for (int step = warp; step < columns / 16; step += kComputeWarps) {
        uint32_t a[4], b0 = 0, b1 = 0;
        kiln::load_matrices(a, chunk + M::at(a_row, step * 16 + a_column));
        if (token < tokens) {
          b0 = *reinterpret_cast<const uint32_t *>(b_column + step * 16);
          b1 = *reinterpret_cast<const uint32_t *>(b_column + step * 16 + 8);
        }
        kiln::mma_16x8x16<T>(acc[0], a, b0, b1);
      }
    } else {
#pragma unroll 2
      for (int v = warp * 32 + lane; v < columns / kVec; v += kComputeThreads) {
        W xv[kTokens];
#pragma unroll
        for (int j = 0; j < kTokens; ++j)
          if (j < tokens)
            xv[j] = *reinterpret_cast<const W *>(x + j * M::kK + v * kVec);
#pragma unroll
        for (int i = 0; i < kGroupRows; ++i) {
          if (i % M::kGroupUnits >= units)
            continue;
          const W w = *reinterpret_cast<const W *>(chunk + M::at(i, v * kVec));
#pragma unroll
          for (int j = 0; j < kTokens; ++j)
            if (j < tokens)
#pragma unroll
              for (int e = 0; e < kVec; ++e)
                acc[i][j] += w.get(e) * xv[j].get(e);
        }
      }
    }
  }

  /// This warp's sums of every (row, token) into partial[row][token].
  __device__ __forceinline__ void store(float (*partial)[kTokens], int tokens) {
    const int lane = threadIdx.x & 31;
    if constexpr (kTensorCores) {
      const int row = lane >> 2;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int token = (lane & 3) * 2 + (c & 1);
        if (token < tokens)
          partial[row + 8 * (c >> 1)][token] = acc[0][c];
      }
    } else {
#pragma unroll
      for (int i = 0; i < kGroupRows; ++i)
#pragma unroll
        for (int j = 0; j < kTokens; ++j) {
          const float total = kiln::warp_sum(acc[i][j]);
          if (lane == 0)
            partial[i][j] = total;
        }
    }
  }
};

/// A norm's or product's input, row-major vectors of T: (at, v, n) loads
/// the n vectors at flat indices at[0..n), all issued before any is used.
/// The embedding rows of the step's tokens, or what other blocks wrote as
/// tagged words (TaggedInput, below).
struct EmbeddingInput {
  const T *table;
  const int32_t *token_ids;
  template <int kN>
  __device__ __forceinline__ void operator()(const int (&at)[kN], W (&v)[kN], int n) const {
#pragma unroll
    for (int k = 0; k < kN; ++k)
      if (k < n) {
        const int id = token_ids[at[k] / kHidden];
        v[k] = kiln::load16_cg(table + (size_t)(id >= 0 && id < kVocab ? id : 0) * kHidden +
                               at[k] % kHidden);
      }
  }
};
/// Where an epilogue's values go when it writes nothing itself: nowhere (the
/// LM head's epilogue writes the logits) ...
struct NoStore {
  template <class Value> __device__ __forceinline__ void operator()(bool, int, int, Value) const {}
};
/// ... or tagged words of kPerWord values: neighbouring lanes hold
/// neighbouring units of one token, and the even lane writes both.
constexpr int kPerWord = 4 / (int)sizeof(T);
/// A value's share of a word's payload: a float's bits, or T's (low half).
__device__ __forceinline__ uint32_t value_bits(float value) {
  if constexpr (kPerWord == 1) {
    return __float_as_uint(value);
  } else {
    const T rounded = kiln::from_float<T>(value);
    return *reinterpret_cast<const unsigned short *>(&rounded);
  }
}
template <int kN> struct TaggedStore {
  static_assert(kN % 2 == 0, "groups of an even number of units: lane pairs fill whole words");
  uint64_t *words;
  uint32_t epoch;
  __device__ __forceinline__ void operator()(bool active, int u, int j, float value) const {
    uint32_t bits = value_bits(value);
    if constexpr (kPerWord == 2) {
      bits |= __shfl_down_sync(0xffffffffu, bits, 1) << 16;
      if (u & 1)
        return;
    }
    if (active)
      kiln::tagged_store(words + ((size_t)j * kN + u) / kPerWord, bits, epoch);
  }
};

/// An input as tagged words: a poll loads all n vectors not yet seen written
/// and looks at their tags together, so that n vectors cost one round trip,
/// not n, and a poll that comes too early asks again only for the rest. The
/// loop has no branch between the loads (predicated loads, the tags and the
/// mask combined with `&` and `|`, not `&&`): a branch would hold the next
/// load back until the last one came (bench/NOTES.md §11, §12). load_rows
/// asks for kBatch vectors a thread at a time: as many as the registers hold
/// in flight, 8 words a vector.
struct TaggedInput {
  static constexpr int kBatch = ${TAGGED_BATCH};
  const uint64_t *words;
  uint32_t epoch;
  template <int kN>
  __device__ __forceinline__ void operator()(const int (&at)[kN], W (&v)[kN], int n) const {
    static_assert(kN < 32, "a bit a vector");
    unsigned missing = (1u << n) - 1;
    for (unsigned polls = 0;; kiln::count_poll(polls)) {
      const unsigned asked = missing;
#pragma unroll
      for (int k = 0; k < kN; ++k) {
        const bool ask = asked >> k & 1;
        const kiln::TaggedWords4 t = kiln::load_tagged4_if(ask, words + at[k] / kPerWord);
        const bool seen = ask & t.carry(epoch);
        if (seen)
          v[k].raw = t.payload();
        missing &= ~((unsigned)seen << k);
      }
      if (!missing)
        return;
    }
  }
};

/// A QKV unit's two values (rows QkvMatrix::row(u, 0) and row(u, 1)) as
/// words of the token's packed row. Neighbouring rows (gpt-j pairs, the
/// unrotated dims, v) fill a word a lane; of rotation pairs (i, i + kHalf),
/// lanes 2k and 2k + 1 hold units i and i + 1, and the even lane writes both
/// first values, the odd lane both second ones.
struct QkvTaggedStore {${ROTATION_PAIRS}
  uint64_t *words; // [kTokens][kPackedRow / kPerWord]
  uint32_t epoch;
  __device__ __forceinline__ void operator()(bool active, int u, int j, float2 value) const {
    uint64_t *row = words + (size_t)j * (kPackedRow / kPerWord);
    const int r0 = QkvMatrix::row(u, 0), r1 = QkvMatrix::row(u, 1);
    const uint32_t first = value_bits(value.x), second = value_bits(value.y);
    if constexpr (kPerWord == 1) {
      if (active) {
        kiln::tagged_store(row + r0, first, epoch);
        kiln::tagged_store(row + r1, second, epoch);
      }
    } else {
      const uint32_t their_first = __shfl_xor_sync(0xffffffffu, first, 1);
      const uint32_t their_second = __shfl_xor_sync(0xffffffffu, second, 1);
      if (!active)
        return;
      if (r1 == r0 + 1)
        kiln::tagged_store(row + r0 / 2, first | second << 16, epoch);
      else if (u % 2 == 0)
        kiln::tagged_store(row + r0 / 2, first | their_first << 16, epoch);
      else
        kiln::tagged_store(row + r1 / 2, their_second | second << 16, epoch);
    }
  }
};

/// A token's step state, read once by the kernel for every layer's tasks.
struct TokenStep {
  int sequence, position, kv_len, slot, query_start;
};

/// An attention task's hand-offs of one layer (its `Handoff`): this step's
/// packed q, k, v rows in, its output out, as tagged words.
struct AttentionHandoff {
  const TokenStep *token_steps; // [kTokens], in shared memory
  const uint64_t *qkv_words; // [kTokens][kPackedRow / kPerWord]
  uint64_t *out_words;       // [kTokens][kAttention / kPerWord]
  uint32_t epoch;
  /// The vector at index i of the tokens' packed rows, once written.
  __device__ __forceinline__ W packed(size_t i) const {
    W v;
    v.raw = kiln::poll_tagged4(qkv_words + i / kPerWord, epoch);
    return v;
  }
  /// Waits, with the whole warp, until the kValues values from index i on
  /// and from index j on are written, and returns the first spread over the
  /// lanes (kiln::WarpRows: vector(first, n) is its vector n) ...
  template <int kValues> __device__ __forceinline__ auto warp_rows(size_t i, size_t j) const {
    return kiln::tagged_warp_rows<kValues / kPerWord>(qkv_words + i / kPerWord,
                                                      qkv_words + j / kPerWord, epoch);
  }
  /// ... and the vector at index i among them, read again.
  __device__ __forceinline__ W written(size_t i) const {
    W v;
    v.raw = kiln::load_tagged4(qkv_words + i / kPerWord).payload();
    return v;
  }
  __device__ __forceinline__ TokenStep step_of(int t) const { return token_steps[t]; }
  /// Columns i.. of token t's output: one word.
  __device__ __forceinline__ void out(int t, int i, const float (&v)[kPerWord]) const {
    uint32_t bits = value_bits(v[0]);
    if constexpr (kPerWord == 2)
      bits |= value_bits(v[1]) << 16;
    kiln::tagged_store(out_words + ((size_t)t * kAttention + i) / kPerWord, bits, epoch);
  }
};

/// The compute warps' side: for each of this block's groups of `M`, the
/// group's rows · the inputs `xs` (kTokens rows of M::kK); the last warp to
/// finish a group adds the warps' partial sums (in warp order), runs
/// `epilogue(u, j, sums)` for each unit u and token j, sums[r][j] being row
/// r's total, and passes what it returns to `store(active, u, j, value)`
/// (all lanes, in step).
template <class M, class Epilogue, class Store = NoStore>
__device__ __forceinline__ void consume(Ring &ring, const T *xs, int tokens, int base,
                                        GroupSums *groups, int &group_count, Epilogue epilogue,
                                        Store store = {}) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int g = M::first_group(base); g < M::kGroups; g += gridDim.x, ++group_count) {
    const int u0 = g * M::kGroupUnits, units = min(M::kGroupUnits, M::kUnits - u0);
    ChunkProduct<M> product;
    for (int s = 0; s < M::kSlices; ++s, ++ring.chunk) {
      const int slot = ring.chunk % kStages;
      kiln::mbarrier_wait(&ring.full[slot], (ring.chunk / kStages) & 1);
      product.add(ring.slots + (size_t)slot * kSlotElements, xs + s * M::kSlice,
                  min(M::kSlice, M::kK - s * M::kSlice), units, tokens);
      __syncwarp();
      if (lane == 0)
        kiln::mbarrier_arrive(&ring.empty[slot]);
    }
    GroupSums &sums = groups[group_count % kGroupSlots];
    product.store(sums.partial[warp], tokens);
    __syncwarp();
    int last = 0;
    if (lane == 0) {
      __threadfence_block();
      last = atomicAdd(&sums.arrived, 1) == kComputeWarps - 1;
      __threadfence_block();
    }
    if (!__shfl_sync(0xffffffffu, last, 0))
      continue;
    __syncwarp();
    // Units fastest, so that lanes 2k and 2k + 1 hold neighbouring units of
    // one token (a group has an even number of units).
    for (int p0 = 0; p0 < units * tokens; p0 += 32) {
      const int p = p0 + lane, i = p % units, j = p / units;
      const bool active = p < units * tokens;
      decltype(epilogue(0, 0, *static_cast<const Sums<M> *>(nullptr))) value{};
      if (active) {
        float unit_sums[M::kRows][kTokens];
#pragma unroll
        for (int r = 0; r < M::kRows; ++r) {
          float total = 0.f;
#pragma unroll
          for (int w = 0; w < kComputeWarps; ++w)
            total += sums.partial[w][r * M::kGroupUnits + i][j];
          unit_sums[r][j] = total;
        }
        value = epilogue(u0 + i, j, unit_sums);
      }
      store(active, u0 + i, j, value);
    }
    if (lane == 0)
      sums.arrived = 0;
  }
}

/// Row j of a norm's input: row j of the tokens' rows, or another.
struct SameRow {
  __device__ __forceinline__ int operator()(int j) const { return j; }
};

/// xs[j] = rms_norm(row row_of(j)) * weight, rounded to T, for each token,
/// the rows read through `load` (rows that other blocks wrote); the rows
/// are kept in `rows` as read (the residual stream that the next epilogues
/// add to). The weights are asked for before the rows' poll where a thread
/// holds one vector of them, so that their round trip overlaps the wait;
/// with more (8B: two) ptxas spills them, and the spill's store would wait
/// for the load before the poll, so they go out after it, beside the
/// statistics. Either way none is read before the statistics are done.
template <class Load, class RowOf = SameRow>
__device__ __forceinline__ void normalize(T *xs, T *rows, int tokens, Load load,
                                          const NormT *weight, float *scratch, RowOf row_of = {}) {
  constexpr int kItems = (kHidden / kVec + kComputeThreads - 1) / kComputeThreads;
  constexpr bool kWeightsFirst = kItems == 1;
  kiln::Elements<NormT, kVec> weight_ahead[kItems];
  auto load_weights = [&] {
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      if (i < kHidden)
        weight_ahead[item].load(weight + i);
    }
  };
  if constexpr (kWeightsFirst)
    load_weights();
  for (int j = 0; j < tokens; ++j) {
    int at[kItems], n = 0;
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      at[item] = row_of(j) * kHidden + i;
      n += i < kHidden;
    }
    W v[kItems];
    load(at, v, n);
    if (!kWeightsFirst && j == 0)
      load_weights();
    float total = 0.f;
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      if (i < kHidden) {
        *reinterpret_cast<W *>(rows + j * kHidden + i) = v[item];
        for (int e = 0; e < kVec; ++e)
          total += v[item].get(e) * v[item].get(e);
      }
    }
    const float inv = rsqrtf(kiln::group_sum<kComputeThreads>(total, scratch) / kHidden + kEpsilon);
#pragma unroll
    for (int item = 0; item < kItems; ++item)
      weight_ahead[item].hold_until_here();
#pragma unroll
    for (int item = 0; item < kItems; ++item) {
      const int i = (item * kComputeThreads + threadIdx.x) * kVec;
      if (i < kHidden) {
        for (int e = 0; e < kVec; ++e)
          v[item].set(e, v[item].get(e) * inv * weight_ahead[item].get(e));
        *reinterpret_cast<W *>(xs + j * kHidden + i) = v[item];
      }
    }
  }
  kiln::group_sync<kComputeThreads>();
}

/// xs = the tokens' rows of a [tokens, kK] input, read through `load`,
/// Load::kBatch vectors a thread at a time.
template <int kK, class Load> __device__ __forceinline__ void load_rows(T *xs, int tokens, Load load) {
  constexpr int kBatch = Load::kBatch, kStride = kComputeThreads * kVec;
  for (int i0 = threadIdx.x * kVec; i0 < tokens * kK; i0 += kBatch * kStride) {
    int at[kBatch], n = 0;
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      at[k] = i0 + k * kStride;
      n += at[k] < tokens * kK;
    }
    W v[kBatch];
    load(at, v, n);
#pragma unroll
    for (int k = 0; k < kBatch; ++k)
      if (k < n)
        *reinterpret_cast<W *>(xs + at[k]) = v[k];
  }
  kiln::group_sync<kComputeThreads>();
}

/// Whether this block has groups of `M` (matrix number `base`).
template <class M> __device__ __forceinline__ bool has_groups(int base) {
  return M::first_group(base) < M::kGroups;
}

// Launched cooperatively with one block per SM (grid.x = SMs), so that the
// blocks whose values a block waits for are all running. Warps 0-7 compute;
// warp 8 streams weights, and warps 9-11 only complete its warpgroup.
extern "C" __global__ void __launch_bounds__(${THREADS}, 1) ${NAME}(${PARAMS}) {
  extern __shared__ __align__(128) unsigned char dynamic_shared[];
  __shared__ __align__(8) uint64_t full[kStages], empty[kStages];
  __shared__ LayerTensors layers[kLayers];
  __shared__ float scratch[32];
  __shared__ unsigned long long block_best[kTokens];
  __shared__ GroupSums groups[kGroupSlots];
  int group_count = 0;
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
  if (threadIdx.x < kGroupSlots)
    groups[threadIdx.x].arrived = 0;
  __syncthreads();
  // The ring at a multiple of the swizzle atom (the copy engine swizzles by
  // shared-memory address).
  Ring ring{reinterpret_cast<T *>(dynamic_shared +
                                  (-kiln::shared_address(dynamic_shared) & (kRingAlignment - 1))),
            full, empty};
  // After the ring: the products' inputs, and the residual stream's rows as
  // the last norm read them.
  T *xs = ring.slots + (size_t)kStages * kSlotElements;
  T *residual_rows = xs + kTokens * kWidest;

  // The copy warp: the block's share of every matrix, in the order of use.
  // Its lane 0 is all the copy warpgroup needs of its registers.
  if (warp >= kComputeWarps) {
    kiln::give_registers<kCopyRegisters>();
    if (warp != kComputeWarps || lane != 0)
      return;
    const uint64_t policy = kiln::evict_first_policy();
    for (int l = 0; l < kLayers; ++l) {
      const int base = l * kLayerGroups;
      const LayerTensors &streamed = layers[l];
      stream<QkvMatrix>(ring, streamed.qkv_pairs, streamed.qkv_halves, base, policy);
      stream<OMatrix>(ring, streamed.o, nullptr, base + QkvMatrix::kGroups, policy);
      stream<GateUpMatrix>(ring, streamed.gate_up, nullptr,
                           base + QkvMatrix::kGroups + OMatrix::kGroups, policy);
      stream<DownMatrix>(ring, streamed.down, nullptr,
                         base + QkvMatrix::kGroups + OMatrix::kGroups + GateUpMatrix::kGroups,
                         policy);
    }
    stream<LmHeadMatrix>(ring, &lm_head, nullptr, kLayers * kLayerGroups, policy);
    return;
  }

  // The compute warps.
  kiln::take_registers<kComputeRegisters>();
  // For the KV-cache epilogue: each token's position and cache slot.
  int first_positions[kTokens], first_slots[kTokens];
#pragma unroll
  for (int j = 0; j < kTokens; ++j)
    if (j < tokens) {
      first_positions[j] = step.positions[j];
      first_slots[j] = step.slot[step.token_seq[j]];
    }
  const EmbeddingInput embedding_in{embedding, step.token_ids};
${HANDOFFS}

  for (int l = 0; l < kLayers; ++l) {
    const LayerTensors &L = layers[l];
    const int base = l * kLayerGroups, o_base = base + QkvMatrix::kGroups;
    const int gate_up_base = o_base + OMatrix::kGroups;
    const int down_base = gate_up_base + GateUpMatrix::kGroups;

    // rms_norm (layer 0: of the embedding rows, the first residual stream),
    // then the packed QKV product with RoPE: q, k and v as tagged words for
    // the attention tasks, and k, v into the layer's cache.
    if (l == 0)
      normalize(xs, residual_rows, tokens, embedding_in, L.attn_norm, scratch);
    else
      normalize(xs, residual_rows, tokens, residual_in(l - 1, 1), L.attn_norm, scratch);
    consume<QkvMatrix>(ring, xs, tokens, base, groups, group_count,
                       [&](int u, int j, const Sums<QkvMatrix> &acc) {
      constexpr int t0 = 0;
      const int t = j;${QKV_BIAS}
      T *k_cache = L.k_cache, *v_cache = L.v_cache;
      auto row_of = [](int u, int r) { return QkvMatrix::row(u, r); };
${KV_EPILOGUE}
      return make_float2(value[0], value[1]);
    }, qkv_store(l));
    phase_end();

    // Attention over the cache, a task at a time, from the block after the
    // last QKV group's on: blocks with the fewest QKV groups start first.
    for (int task = rank_from(o_base); task < tokens * kTasksPerToken; task += gridDim.x) {
      ${NAME}_parts::${TASK_NAME}(task, ${TASK_ARGS});
      // The block's next task reuses the task's shared memory.
      kiln::group_sync<kComputeThreads>();
    }

    // o projection of attention's output (polled: blocks without o groups
    // go straight on), added to the residual stream (each rounded to T),
    // which every block reads whole for the next norm.
    if (has_groups<OMatrix>(o_base))
      load_rows<kAttention>(xs, tokens, attention_in(l));
    consume<OMatrix>(ring, xs, tokens, o_base, groups, group_count,
                     [&](int u, int j, const Sums<OMatrix> &acc) {
      const float out = kiln::to_float(kiln::from_float<T>(acc[0][j] + ${O_BIAS}));
      return out + kiln::to_float(residual_rows[j * kHidden + u]);
    }, residual_out(l, 0));
    phase_end();

    // rms_norm of the residual stream, then the gated MLP's gate and up rows.
    normalize(xs, residual_rows, tokens, residual_in(l, 0), L.mlp_norm, scratch);
    consume<GateUpMatrix>(ring, xs, tokens, gate_up_base, groups, group_count,
                          [&](int u, int j, const Sums<GateUpMatrix> &acc) {
      return kiln::${ACTIVATION}(acc[0][j] + ${GATE_BIAS}) * (acc[1][j] + ${UP_BIAS});
    }, mlp_store(l));
    phase_end();

    // down projection, added to the residual stream.
    if (has_groups<DownMatrix>(down_base))
      load_rows<kInter>(xs, tokens, mlp_in(l));
    consume<DownMatrix>(ring, xs, tokens, down_base, groups, group_count,
                        [&](int u, int j, const Sums<DownMatrix> &acc) {
      const float out = kiln::to_float(kiln::from_float<T>(acc[0][j] + ${DOWN_BIAS}));
      return out + kiln::to_float(residual_rows[j * kHidden + u]);
    }, residual_out(l, 1));
    phase_end();
  }

  // The final norm of each sequence's last token, then the LM head: float
  // logits, and each sequence's greedy choice (largest logit, lowest row) by
  // thread, block and one atomic per block into step.best_logit.
  // (A row of this step's tokens whatever last_token says: no block writes
  // the tagged words of any other, so a poll for them would never end.)
  normalize(xs, residual_rows, tokens, residual_in(kLayers - 1, 1), final_norm, scratch,
            [&](int j) { return min(max(step.last_token[j], 0), tokens - 1); });
  unsigned long long best[kTokens] = {};
  consume<LmHeadMatrix>(ring, xs, tokens, kLayers * kLayerGroups, groups, group_count,
                        [&](int u, int j, const Sums<LmHeadMatrix> &acc) {
    const float logit = acc[0][j] + ${LM_HEAD_BIAS};
    logits[(size_t)j * kVocab + u] = logit;
    if (logit == logit) // NaN is never the greedy choice
      best[j] = max(best[j], kiln::logit_key(logit, u));
    return 0.f;
  });
  for (int j = 0; j < tokens; ++j)
    if (best[j])
      atomicMax(&block_best[j], best[j]);
  kiln::group_sync<kComputeThreads>();
  if (threadIdx.x < tokens)
    atomicMax(&step.best_logit[threadIdx.x], block_best[threadIdx.x]);
}

} // namespace ${NAME}_parts
)cuda",
      {{"TABLE", attention.rope ? floatTable(invFreq, attention.invFreq) : ""},
       {"ATTENTION_TASK", attentionDecodeTask(task, "kiln::group_sync<256>()")},
       {"T", type.str()},
       {"NORM_T", cudaTypeName(params.normWeightDtype).str()},
       {"COMPUTE_WARPS", std::to_string(kComputeWarps)},
       {"TOKENS", std::to_string(params.tokens)},
       {"LAYERS", std::to_string(params.layers)},
       {"STAGES", std::to_string(stages)},
       {"CHUNKS_IN_FLIGHT", std::to_string(kChunksInFlight)},
       // ptxas (sm_90a, 4224 positions): 8 vectors a poll spill nothing at
       // head dim 64 (1B), 2 spill least at 128 (8B: 20 / 44 bytes; 8:
       // 264 / 600).
       {"TAGGED_BATCH", attention.headDim <= 64 ? "8" : "2"},
       {"CHUNK_BYTES", std::to_string(kChunkBytes)},
       {"GROUP_ROWS", std::to_string(kGroupRows)},
       {"RING_ALIGNMENT", std::to_string(kRingAlignment)},
       {"QKV_HALVES", halves ? "true" : "false"},
       {"HIDDEN", std::to_string(params.hidden)},
       {"ATTENTION_DIM", std::to_string(attentionDim)},
       {"INTER", std::to_string(params.inter)},
       {"WIDEST", std::to_string(widestInput(params))},
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
       {"HANDOFFS", handoffs(params)},
       {"ROTATION_PAIRS", rotationPairs},
       {"KV_EPILOGUE", kvCacheEpilogue(attention, params.qkvBias, invFreq,
                                       /*writeQueries=*/false)},
       {"TASKS_PER_TOKEN", std::to_string(attentionDecodeTasksPerToken(attention))},
       {"TASK_NAME", attentionDecodeTaskName(attention)},
       {"TASK_ARGS", taskArgs},
       {"O_BIAS", bias(params.oBias, "kiln::to_float(L.o_bias[u])")},
       {"ACTIVATION", params.activation},
       {"GATE_BIAS", bias(params.gateUpBias, "kiln::to_float(L.gate_up_bias[u])")},
       {"UP_BIAS", bias(params.gateUpBias, "kiln::to_float(L.gate_up_bias[kInter + u])")},
       {"DOWN_BIAS", bias(params.downBias, "kiln::to_float(L.down_bias[u])")},
       {"LM_HEAD_BIAS", bias(params.lmHeadBias, "kiln::to_float(lm_head_bias[u])")}});
  return spec;
}
