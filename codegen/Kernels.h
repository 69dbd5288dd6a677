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
/// Elements per 16-byte vector of `dtype` when `extent` is a multiple, else 1.
int64_t vectorWidth(DType dtype, int64_t extent);
/// Code reading `width` elements (1, or one 16-byte vector) at `pointer` into
/// the float array `array`, and the converse.
std::string loadFloats(llvm::StringRef array, llvm::StringRef pointer, int64_t width);
std::string storeFloats(llvm::StringRef pointer, llvm::StringRef array, int64_t width,
                        DType dtype);
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
};
/// Parameters: x, w, [bias], y, then num_tokens (or step for lastTokens).
KernelSpec gemvKernel(const GemvParams &params);

//===--- Attention ---------------------------------------------------------===//

struct AttentionParams {
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  double scale = 1.0;
  int64_t window = 0;            ///< 0: none
  std::vector<double> alibiSlopes; ///< empty: no ALiBi
  int64_t maxSeqLen = 0, maxTokens = 0;
  DType dtype = DType::f32;
  /// RoPE: the angle of pair j at position p is p * invFreq[j].
  bool rope = false;
  bool ropeGptj = false;
  int64_t rotaryDim = 0;
  std::vector<double> invFreq;
  /// Decode: how many splits of the key range per (token, kv head).
  int64_t decodeSplits = 1;
};
/// Rotates q and k in the packed qkv row, writes k and v to the cache.
/// Parameters: qkv, k_cache, v_cache, step.
KernelSpec ropeKvCacheKernel(const AttentionParams &params);
/// Flash-attention over the cache for every query token of each sequence.
/// Parameters: qkv, k_cache, v_cache, out, step.
KernelSpec attentionPrefillKernel(const AttentionParams &params);
/// Split-KV attention of each token: per split, a partial (max, sum, acc).
/// Parameters: qkv, k_cache, v_cache, partial, step.
KernelSpec attentionDecodeKernel(const AttentionParams &params);
/// Combines the splits. Parameters: partial, out.
KernelSpec attentionCombineKernel(const AttentionParams &params);
/// Floats of decode partials per token.
int64_t decodePartialFloatsPerToken(const AttentionParams &params);

/// ALiBi slopes of transformers' build_alibi_tensor for `heads` heads.
std::vector<double> alibiSlopes(int64_t heads);

//===--- Sampling ----------------------------------------------------------===//

/// Greedy or temperature/top-k/top-p sampling of each sequence's logits row.
/// Parameters: logits, step.
KernelSpec samplingKernel(int64_t vocab);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_KERNELS_H
