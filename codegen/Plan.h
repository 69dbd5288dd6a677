//===- Plan.h - codegen's in-memory artifact --------------------*- C++ -*-===//
//
// The artifact as codegen builds it, before it is written as a FlatBuffer.
// Enums are the schema's own, so the mapping to the file is one to one.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_PLAN_H
#define KILN_CODEGEN_PLAN_H

#include "kiln/Artifact/artifact_generated.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kiln::codegen {

using artifact::ArgKind;
using artifact::DType;
using artifact::GridScale;
using artifact::WeightOp;

/// Bytes of one element of a float or integer dtype codegen uses.
int64_t dtypeBytes(DType dtype);
/// "f32", "f16", "bf16", ...
llvm::StringRef dtypeName(DType dtype);
/// The CUDA C++ type: "float", "__half", "__nv_bfloat16".
llvm::StringRef cudaTypeName(DType dtype);

struct ModelInfo {
  std::string architecture;
  int64_t numLayers = 0, hiddenSize = 0, numHeads = 0, numKvHeads = 0, headDim = 0;
  int64_t vocabSize = 0, intermediateSize = 0;
  DType dtype = DType::f32;
  int64_t maxBatch = 0, maxSeqLen = 0, maxTokens = 0;
  std::vector<std::string> targetArchs;
};

struct WeightValue {
  WeightOp op = WeightOp::checkpoint;
  std::string name;
  llvm::SmallVector<unsigned> inputs;
  llvm::SmallVector<int64_t> shape;
  DType dtype = DType::f32;
  int64_t axis = 0, start = 0, size = 0;
  llvm::SmallVector<int64_t> permutation;
  int64_t weightOffset = -1;

  int64_t bytes() const;
};

struct Buffer {
  std::string name;
  uint64_t offset = 0;
  uint64_t bytesPerToken = 0;
  uint64_t fixedBytes = 0;
  DType dtype = DType::f32;
  /// Shares its memory with no other buffer, so that what one step leaves in
  /// it is still there at the next (fixed-size buffers only).
  bool exclusive = false;
};

/// A weight as the copy engine reads it (artifact::TensorMapView): elements
/// along each dimension (the first contiguous), element strides of the
/// others, the box copied at once, and the shared-memory swizzle.
struct TensorMapView {
  std::vector<uint64_t> dims, strides;
  std::vector<uint32_t> box;
  uint32_t swizzleBytes = 0;
};

struct Arg {
  ArgKind kind = ArgKind::buffer;
  unsigned index = 0;
  TensorMapView view; ///< weight_tensor_map only

  static Arg buffer(unsigned index) { return {ArgKind::buffer, index}; }
  static Arg weight(unsigned index) { return {ArgKind::weight, index}; }
  static Arg kCache(unsigned layer) { return {ArgKind::k_cache, layer}; }
  static Arg vCache(unsigned layer) { return {ArgKind::v_cache, layer}; }
  static Arg step() { return {ArgKind::step, 0}; }
  static Arg numTokens() { return {ArgKind::num_tokens, 0}; }
  static Arg weightTensorMap(unsigned index, TensorMapView view) {
    return {ArgKind::weight_tensor_map, index, std::move(view)};
  }
};

/// How a kernel is launched, independent of what it is bound to.
struct LaunchShape {
  unsigned grid = 1; ///< grid.x before scaling
  GridScale scale = GridScale::fixed;
  unsigned tile = 0; ///< query_tiles: queries per tile
  unsigned block = 256;
  unsigned sharedBytes = 0;
};

struct Launch {
  unsigned kernel = 0;
  LaunchShape shape;
  llvm::SmallVector<Arg> args;
};

struct Gemm {
  Arg a, b, c;
  std::optional<Arg> bias;
  int64_t n = 0, k = 0;
  DType dtype = DType::f32;
  std::string name;
};

using Command = std::variant<Launch, Gemm>;

struct Kernel {
  std::string name;
  std::string source;
  std::string location;
  /// It waits for the previous grids before touching what they may use, so
  /// the runtime may launch it early (PDL).
  bool programmatic = false;
};

struct Plan {
  ModelInfo model;
  std::vector<WeightValue> weights;
  uint64_t weightsArenaBytes = 0;
  std::vector<Buffer> buffers;
  uint64_t arenaBytesPerToken = 0;
  uint64_t arenaFixedBytes = 0;
  std::vector<Kernel> kernels;
  std::vector<Command> prefill;
  std::vector<Command> decode;
  /// The decode step as one persistent kernel and sampling, for steps of up
  /// to decodePersistentMaxTokens tokens on sm_90 and newer; empty when the
  /// model is not a decoder stack that kernel covers.
  std::vector<Command> decodePersistent;
  int64_t decodePersistentMaxTokens = 0;
  unsigned logits = 0;
};

/// Compute capability the persistent decode program needs (bulk copies and
/// shared-memory transaction barriers).
constexpr int kPersistentDecodeComputeCapability = 90;

/// Writes `plan` as a finished FlatBuffer with the "KLN2" identifier.
std::string serializePlan(const Plan &plan);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_PLAN_H
