//===- Kernels.h - CUDA C++ kernel generators -------------------*- C++ -*-===//
//
// Each generator returns the source of one kernel specialized for its shapes
// and dtypes, and how to launch it. Sources assume runtime/kernels/prelude.cuh
// before them; every kernel is a self-contained `extern "C" __global__`
// function whose parameters are, in order, what the Launch binds. Kernels
// with the same source share one entry in the artifact (KernelLibrary).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_KERNELS_H
#define KILN_CODEGEN_KERNELS_H

#include "Plan.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::codegen {

struct KernelSpec {
  std::string name;
  /// What the kernel computes, for its header comment.
  std::string summary;
  std::string source;
  LaunchShape launch;
  /// The source calls kiln::wait_for_previous_grids() before it reads what
  /// earlier commands wrote or writes anything (see prelude.cuh): the runtime
  /// may launch it with programmatic dependent launch.
  bool programmatic = false;
};

/// Collects kernels, one entry per distinct source.
class KernelLibrary {
public:
  /// The index of `spec`'s kernel; `location` is recorded for its comment.
  unsigned add(const KernelSpec &spec, llvm::StringRef location);
  /// The kernels with header comments naming their IR ops' locations.
  std::vector<Kernel> finish() const;

private:
  struct Entry {
    KernelSpec spec;
    std::vector<std::string> locations;
  };
  std::vector<Entry> entries;
  llvm::StringMap<unsigned> indexBySource;
  llvm::StringMap<unsigned> namesTaken;
};

/// `text` with every `${KEY}` replaced by its value (every key must be given).
std::string fillTemplate(llvm::StringRef text,
                         llvm::ArrayRef<std::pair<llvm::StringRef, std::string>> values);
/// A float literal that reads back to the same float: "1.00000001e-05f".
std::string floatLiteral(double value);
/// `static __device__ const float <name>[] = {...};`
std::string floatTable(llvm::StringRef name, llvm::ArrayRef<double> values);
/// Elements per 16-byte vector of `dtype` when `extent` is a multiple, else 1.
int64_t vectorWidth(DType dtype, int64_t extent);
/// Code reading `width` elements (1, or one 16-byte vector) at `pointer` into
/// the float array `array`, and the converse.
std::string loadFloats(llvm::StringRef array, llvm::StringRef pointer, int64_t width);
std::string storeFloats(llvm::StringRef pointer, llvm::StringRef array, int64_t width,
                        DType dtype);
/// `text` with every line but preprocessor ones indented by `spaces` more.
std::string indented(llvm::StringRef text, size_t spaces);
/// A block's statistics of a norm over the row it holds in registers
/// (kItems items of kVec elements a thread, `element` reading one by `item`
/// and `e`), from `total` (the thread's sum, or sum of squares for RMS):
/// `mean` and `inv` (1 / the standard deviation or the RMS).
std::string normStatistics(bool rms, llvm::StringRef size, llvm::StringRef element);
/// ceil(a / b) for positive b.
inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
/// Threads for `work` items: a multiple of 32, at most `limit`.
unsigned threadsFor(int64_t work, unsigned limit);

//===--- Per-token kernels (one block per token, or tiles of a token row) ---===//

KernelSpec embeddingKernel(int64_t hidden, int64_t vocab, DType dtype);

enum class NormKind { rms, layer };
struct NormParams {
  NormKind kind = NormKind::rms;
  bool residual = false; ///< add_*_norm: also writes input + residual
  bool bias = false;
  int64_t size = 0;
  double epsilon = 0;
  DType dtype = DType::f32;
  DType weightDtype = DType::f32;
};
/// Parameters: input, [residual], weight, [bias], [sum], out.
KernelSpec normKernel(const NormParams &params);
/// How a norm kernel reads its weights (and bias) after its statistics. Where
/// shared memory allows (`sharedBytes`: what the kernel has already), the block
/// copies them into `weight_ahead` (`bias_ahead`) before it waits for its
/// input, on which they do not depend, so that no round trip follows the
/// statistics; otherwise it reads them from global memory there.
struct NormWeightReads {
  std::string copies; ///< before the kernel's wait (each thread its kItems items of kVec)
  std::string wait;   ///< after the statistics, before the reads
  std::string weight; ///< element i + e, a float
  std::string bias;   ///< " + element i + e of the bias", or empty
};
NormWeightReads normWeightReads(const NormParams &norm, int64_t size, llvm::StringRef sizeName,
                                int64_t sharedBytes, llvm::StringRef weight, llvm::StringRef bias);

/// A fused chain of elementwise ops over `size` elements per token. Operand
/// `i` of the chain is parameter `i`; statements compute `v<j>` from `a<i>`
/// (operand i's element) and earlier `v`s, as float expressions.
struct ElementwiseParams {
  struct Operand {
    DType dtype = DType::f32;
    /// 0: an activation row of `size` elements; otherwise a weight of this
    /// many elements repeated along the row.
    int64_t broadcast = 0;
  };
  struct Output {
    unsigned value = 0; ///< which v<j>
    DType dtype = DType::f32;
  };
  std::string name; ///< ops joined by '_', e.g. "add_gelu"
  int64_t size = 0;
  std::vector<Operand> operands;
  std::vector<std::string> statements;
  std::vector<Output> outputs;
};
/// Parameters: the operands, then the outputs.
KernelSpec elementwiseKernel(const ElementwiseParams &params);

/// out[t, i] = act(in[t, i]) * in[t, size + i] over a [T, 2*size] GEMM output.
/// `activation` is a prelude function: "silu", "gelu", "gelu_tanh".
KernelSpec gatedActivationKernel(llvm::StringRef activation, int64_t size, DType dtype);

/// One contiguous output row assembled from strided pieces of sources.
struct CopySegment {
  unsigned source = 0;  ///< parameter index of the source
  int64_t offset = 0;   ///< elements from the source row start
  int64_t tokenStride = 0;
  llvm::SmallVector<int64_t> dims, strides;
  int64_t elements() const;
};
/// Parameters: the sources, then out. `what` is "concat" or "copy".
KernelSpec copyKernel(llvm::StringRef what, int64_t size, unsigned numSources,
                      llvm::ArrayRef<CopySegment> segments, DType dtype);

//===--- Attention ---------------------------------------------------------===//

struct AttentionParams {
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  double scale = 1.0;
  int64_t window = 0;            ///< 0: none
  std::vector<double> alibiSlopes; ///< empty: no ALiBi
  int64_t maxSeqLen = 0, maxTokens = 0, maxBatch = 1;
  DType dtype = DType::f32;
  /// RoPE: the angle of pair j at position p is p * invFreq[j].
  bool rope = false;
  bool ropeGptj = false;
  int64_t rotaryDim = 0;
  std::vector<double> invFreq;
  /// Decode: how many splits of the key range per (token, kv head), and the
  /// fewest 32-key tiles each of a split's warps gets before a context is
  /// split further.
  int64_t decodeSplits = 1;
  int64_t decodeMinTilesPerWarp = 2;
  /// Decode: 16-byte K and V loads a lane issues ahead of their use (each
  /// holds 4 registers), and as many where the kernel moved registers to its
  /// compute warps (kiln::kMovesRegisters; 0: the same).
  int64_t decodeLoadsAhead = 16;
  int64_t decodeLoadsAheadMovedRegisters = 0;
  /// Decode: query heads × head dim a block (task) serves at most, reading
  /// each K/V row once for all of them. 256 keeps a lane's dependent chain of
  /// score and p · V arithmetic short while a long context does not read its
  /// K/V rows more than twice (one head a block at head dim 128 costs more at
  /// 4096 positions than it saves; two do not: bench/NOTES.md, sections 4-5).
  int64_t decodeMaxGroupDims = 256;
  /// Decode inside the persistent kernel: q, this step's K/V rows and the
  /// output are tagged words that the caller's `Handoff` reads and writes,
  /// and the splits count in words tagged with the step's epoch, which need
  /// no zeroing.
  bool decodeTaggedHandoffs = false;
};

//===--- GEMV: decode linears and the LM head --------------------------------===//

struct GemvParams {
  int64_t n = 0, k = 0;
  bool bias = false;
  /// gated_mlp: rows [0, n) of a [2n, k] weight are the gate, [n, 2n) the up
  /// projection; out = act(gate) * up.
  std::string gatedActivation;
  /// The LM head: rows are each sequence's last token (StepState.last_token),
  /// the output is float logits [sequences, n].
  bool lastTokens = false;
  DType dtype = DType::f32;
  int64_t maxBatch = 1;
  /// A norm fused into its consumer (decode): each block normalizes the
  /// input rows into shared memory first (norm->size == k). With
  /// norm->residual the input is input + residual, and `writeSum` has block 0
  /// store that sum (rounded to the activation type) for later ops.
  std::optional<NormParams> norm;
  bool writeSum = false;
  /// tfm.attention's first part fused into its packed-QKV GEMV (decode): the
  /// rows are the packed q, k, v heads; RoPE rotates q and k, q goes to y and
  /// k, v to the layer's cache at each token's position.
  std::optional<AttentionParams> attention;
};
/// Tokens whose normalized input rows a norm-fused GEMV keeps in shared
/// memory at once (0: the row is too long to fuse the norm).
int64_t gemvNormTokens(int64_t k, DType dtype, int64_t maxBatch);
/// True when gemvKernel can fuse `params`' RoPE and KV-cache write.
bool gemvCanWriteKvCache(const AttentionParams &params);
/// The packed-QKV GEMV's pieces that the persistent decode kernel shares:
/// its constants (kHeads, kPackedRow, kHalf, ...), the body of
/// `row_of(u, r)` (the weight row of row r of unit u: rotation pairs of q and
/// k heads, then neighbouring pairs), and the epilogue of token j (t) of unit
/// u from `acc[r][j]`, which rotates with inverse frequencies `table` into
/// `value[2]` and writes q to `y` (unless not `writeQueries`), k and v to
/// `k_cache` and `v_cache`.
std::string qkvConstants(const AttentionParams &attention);
std::string qkvRowOrder(const AttentionParams &attention);
std::string kvCacheEpilogue(const AttentionParams &attention, bool bias, llvm::StringRef table,
                            bool writeQueries = true);
/// Parameters: x, then with a norm [residual], norm_weight, [norm_bias],
/// [sum]; w, [bias], y, with attention k_cache, v_cache, [counters] (when
/// decodeCountersPerToken), step; then num_tokens (or step for lastTokens).
KernelSpec gemvKernel(const GemvParams &params);

//===--- Attention kernels -------------------------------------------------===//

/// Rotates q and k in the packed qkv row, writes k and v to the cache; in
/// decode (`zeroCounters`) also zeroes the decode attention's counters.
/// Parameters: qkv, k_cache, v_cache, [counters], step.
KernelSpec ropeKvCacheKernel(const AttentionParams &params, bool zeroCounters);
/// Flash-attention over the cache for every query token of each sequence: on
/// tensor cores for f16/bf16 and head dims that are multiples of 16 up to 128,
/// else on CUDA cores. Parameters: qkv, k_cache, v_cache, out, step.
KernelSpec attentionPrefillKernel(const AttentionParams &params);
/// How many splits of each token's key range decode attention uses (for
/// AttentionParams::decodeSplits).
int64_t chooseDecodeSplits(const AttentionParams &params);
/// Blocks per (token, kv head) of decode attention, each serving up to 8 of
/// the kv head's query heads.
int64_t decodeHeadGroups(const AttentionParams &params);
/// Split-KV attention of each token. With several splits each block writes a
/// partial (max, sum, acc) and the last split of a (token, kv head, group) to
/// finish, counted in `counters`, combines them. The counters must be zero
/// when it starts: attention's first part (ropeKvCacheKernel, or the packed
/// QKV GEMV it is fused into) zeroes them.
/// Parameters: qkv, k_cache, v_cache, [partial, counters], out, step.
KernelSpec attentionDecodeKernel(const AttentionParams &params);
/// What one block of attentionDecodeKernel does, as a device function of its
/// task (the block index): `<attentionDecodeTaskName>(task, <the kernel's
/// parameters>, wait)`, run by 256 threads that meet at `sync` (a
/// statement); `wait()` returns once the step's q, K/V rows and counters may
/// be read (the task loads cached K/V rows before it). With
/// decodeTaggedHandoffs (the persistent kernel): `(task, k_cache, v_cache,
/// [partial, counters], step, handoff)`, the `Handoff` reading q and this
/// step's K/V rows and writing the output as tagged words.
std::string attentionDecodeTask(const AttentionParams &params, llvm::StringRef sync);
std::string attentionDecodeTaskName(const AttentionParams &params);
/// Tasks (blocks) of decode attention per token.
int64_t attentionDecodeTasksPerToken(const AttentionParams &params);
/// Floats of decode partials and ints of counters per token (0: one split).
int64_t decodePartialFloatsPerToken(const AttentionParams &params);
int64_t decodeCountersPerToken(const AttentionParams &params);
/// Code zeroing the decode attention's counters of `tokens` tokens at
/// `counters`, by block 0 of the kernel it is put in.
std::string zeroDecodeCounters(const AttentionParams &params, llvm::StringRef counters,
                               llvm::StringRef tokens);

/// ALiBi slopes of transformers' build_alibi_tensor for `heads` heads.
std::vector<double> alibiSlopes(int64_t heads);

//===--- The persistent decode step ----------------------------------------===//

/// A Llama-family decode step: per layer rms_norm, packed QKV (RoPE, KV-cache
/// write), attention, o, add_rms_norm, gated MLP, down (added to the residual
/// stream); then the final rms_norm and the LM head. Every layer has the same
/// shapes, biases and attention.
struct PersistentDecodeParams {
  int64_t layers = 0, hidden = 0, inter = 0, vocab = 0;
  DType dtype = DType::bf16;
  DType normWeightDtype = DType::bf16;
  double epsilon = 0;
  std::string activation; ///< a prelude function: "silu", "gelu", "gelu_tanh"
  bool qkvBias = false, oBias = false, gateUpBias = false, downBias = false, lmHeadBias = false;
  AttentionParams attention;
  /// The most tokens (sequences) a step of this kernel takes.
  int64_t tokens = 1;
};
/// Bytes of the exchange buffer through which the kernel's blocks hand
/// values to each other, as tagged words.
int64_t persistentExchangeBytes(const PersistentDecodeParams &params);
/// The most tokens, of up to min(4, maxBatch), for which the kernel's
/// shared memory fits on sm_90 with a deep enough weight ring; 0 if none.
int64_t persistentDecodeTokens(PersistentDecodeParams params, int64_t maxBatch);
/// How the copy engine reads each weight matrix the kernel streams: a chunk
/// of 16 rows (in the kernel's row order) and up to 32 KiB as one box,
/// swizzled for ldmatrix. The packed QKV matrix has two: neighbouring rows
/// (v, GPT-J pairs, unrotated dims) and, for neox RoPE, rotation halves.
struct PersistentWeightViews {
  TensorMapView qkvPairs, qkvHalves, o, gateUp, down, lmHead;
  bool hasQkvHalves = false;
};
/// The views, or nullopt with `whyNot` when the shapes do not tile into
/// them (rows of a whole number of 32-byte pieces, whole groups a head).
std::optional<PersistentWeightViews> persistentWeightViews(const PersistentDecodeParams &params,
                                                           std::string &whyNot);
/// The kernel: grid.x = SMs (GridScale::multiprocessors), launched
/// cooperatively. Parameters: embedding, final_norm, lm_head (map),
/// [lm_head_bias]; per layer attn_norm, qkv_pairs (map), [qkv_halves (map)],
/// [qkv_bias], o (map), [o_bias], mlp_norm, gate_up (map), [gate_up_bias],
/// down (map), [down_bias], k_cache, v_cache; then [partial] (several
/// attention splits), exchange, logits, step, num_tokens. A map is a
/// kiln::TensorMap of the weight with its PersistentWeightViews view.
KernelSpec persistentDecodeKernel(const PersistentDecodeParams &params);

//===--- Sampling ----------------------------------------------------------===//

/// Greedy or temperature/top-k/top-p sampling of each sequence's logits row.
/// Parameters: logits, step.
KernelSpec samplingKernel(int64_t vocab);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_KERNELS_H
