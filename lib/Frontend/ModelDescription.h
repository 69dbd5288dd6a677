//===- ModelDescription.h - one normalized decoder-only model ----*- C++ -*-===//
//
// What the decoder builder needs to know about a model, independent of the
// Hugging Face class that described it: sizes, the kind of each block, how
// q/k/v are stored, positions, and the checkpoint tensor names. Every
// architecture in Architectures.cpp fills one of these from its config.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_FRONTEND_MODELDESCRIPTION_H
#define KILN_LIB_FRONTEND_MODELDESCRIPTION_H

#include "kiln/Dialect/Tfm/TfmOps.h"
#include "kiln/Support/Safetensors.h"

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>
#include <vector>

namespace kiln {

enum class NormKind { RmsNorm, LayerNorm };

/// Gated: down(act(gate(x)) * up(x)) (SwiGLU). Plain: down(act(up(x))).
enum class MlpKind { Gated, Plain };

/// How a layer combines attention, MLP and the residual stream.
enum class ResidualStyle {
  /// h += attn(norm1(h)); h += mlp(norm2(h))  (Llama, Bloom, NeoX sequential)
  Sequential,
  /// h += attn(norm1(h)) + mlp(norm1(h))  (GPT-J, Falcon parallel_attn)
  ParallelOneNorm,
  /// h += attn(norm1(h)) + mlp(norm2(h))  (NeoX parallel, Falcon new arch)
  ParallelTwoNorms,
};

enum class QkvLayout {
  /// Three projections q, k, v.
  Separate,
  /// One projection whose rows are grouped per key/value head as
  /// [KVH, G + 2, D]: the G = H / KVH query heads of the group, then its key
  /// head, then its value head. G = 1 is the per-head [H, 3, D] layout of
  /// Bloom and GPT-NeoX; KVH = 1 is Falcon's multi-query layout.
  FusedGrouped,
};

struct RopeDescription {
  tfm::RopeStyle style = tfm::RopeStyle::neox;
  int64_t rotaryDim = 0;
  double theta = 10000.0;
  tfm::RopeScaling scaling = tfm::RopeScaling::none;
  double factor = 1.0;
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPosition = 0;
};

/// Checkpoint module paths (tensor names less ".weight"/".bias"). Per-layer
/// names are relative to `layers` + the layer index + ".". An empty name
/// means the model has no such module.
struct TensorNames {
  llvm::StringRef embedding, embeddingNorm, layers, finalNorm, lmHead;
  llvm::StringRef attentionNorm, mlpNorm;
  llvm::StringRef query, key, value, qkv, attentionOut;
  llvm::StringRef mlpGate, mlpUp, mlpDown;
  /// Another name the LM head may have in a checkpoint (GPT-NeoX's
  /// "embed_out" is saved as is, older tools wrote "lm_head").
  llvm::StringRef lmHeadAlias;
  /// Prefix of the base model ("model.", "transformer."); checkpoints saved
  /// from the base model (some Bloom ones) lack it.
  llvm::StringRef basePrefix;
};

struct ModelDescription {
  std::string architecture;
  int64_t numLayers = 0, hiddenSize = 0, numHeads = 0, numKvHeads = 0, headDim = 0;
  int64_t intermediateSize = 0, vocabSize = 0;
  std::optional<int64_t> maxPositions; ///< none for ALiBi models without a limit

  NormKind norm = NormKind::RmsNorm;
  double normEpsilon = 1e-6;
  MlpKind mlp = MlpKind::Gated;
  tfm::Activation activation = tfm::Activation::silu;
  ResidualStyle residual = ResidualStyle::Sequential;
  /// Bloom's apply_residual_connection_post_layernorm: the residual is the
  /// norm's output instead of its input.
  bool residualFromNorm = false;
  QkvLayout qkvLayout = QkvLayout::Separate;
  bool qkvBias = false, attentionOutBias = false, mlpBias = false;

  std::optional<RopeDescription> rope;
  bool alibi = false;
  /// Sliding-window size per layer; empty when no layer has one.
  std::vector<std::optional<int64_t>> slidingWindows;

  bool embeddingNorm = false;
  bool tiedEmbeddings = false;
  bool lmHeadBias = false;
  /// The weights' dtype when there is no checkpoint (torch_dtype / dtype).
  DType configDtype = DType::F32;

  TensorNames names;
};

} // namespace kiln

#endif // KILN_LIB_FRONTEND_MODELDESCRIPTION_H
