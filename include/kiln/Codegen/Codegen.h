//===- Codegen.h - fused tfm IR to a kiln artifact --------------*- C++ -*-===//
//
// Codegen turns a module after the fusion pipeline into the artifact the
// runtime executes (runtime/schema/artifact.fbs): the load-time weight
// program, the activation buffer plan, one CUDA C++ kernel per distinct
// specialization, and the prefill and decode step programs.
//
// Everything but buildArtifact reads the artifact bytes, so what is printed
// or checked is exactly what the runtime gets.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_CODEGEN_H
#define KILN_CODEGEN_CODEGEN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct CodegenOptions {
  /// Sequences per step.
  int64_t maxBatch = 8;
  /// Positions per sequence (KV-cache capacity); 0: the model's
  /// max_position_embeddings, at most kDefaultMaxSeqLen.
  int64_t maxSeqLen = 0;
  /// Tokens per step (the prefill chunk limit); at least maxBatch.
  int64_t maxTokens = 2048;
  /// GPU architectures the kernels were checked for (recorded in the artifact).
  std::vector<std::string> targetArchs;
  /// Whether to also generate the decode step as one persistent kernel (run
  /// on sm_90+) when the model is a decoder stack it covers: `automatic`
  /// where it measured faster than kernel-by-kernel decode (layers of up to
  /// kPersistentDecodeLayerBytes of weights; bench/NOTES.md, section 6).
  enum class PersistentDecode { automatic, on, off };
  PersistentDecode persistentDecode = PersistentDecode::automatic;
  static constexpr int64_t kPersistentDecodeLayerBytes = 256ll << 20;

  static constexpr int64_t kDefaultMaxSeqLen = 4096;
};

/// Lowers a fused tfm module (one `func.func @forward`, module attributes as in
/// dialects/tfm/README.md; the activation dtype is the module's) to artifact
/// bytes. Unsupported IR is reported at the op's location through the
/// module's diagnostics, and the result is failure. `notes`, if given, gets
/// what codegen left out and why (e.g. the persistent decode program).
mlir::FailureOr<std::string> buildArtifact(mlir::ModuleOp module, const CodegenOptions &options,
                                           std::string *notes = nullptr);

/// Every kernel's CUDA C++ source, each with its header comment; the prelude
/// that the runtime prepends is omitted. `artifact` is buildArtifact's result
/// (the runtime's loader verifies artifacts read from files).
void emitCudaSource(llvm::StringRef artifact, llvm::raw_ostream &os);

/// A readable dump of the artifact: model info, weight program, buffers with
/// offsets, and each step's commands.
void printPlan(llvm::StringRef artifact, llvm::raw_ostream &os);

/// What kiln-compile reports after compiling.
struct CompileSummary {
  std::string architecture;
  std::string dtype;
  size_t kernels = 0;
  size_t prefillLaunches = 0;
  size_t prefillGemms = 0;
  size_t decodeLaunches = 0;
  size_t decodeGemms = 0;
  /// The persistent decode program, if the artifact has one.
  size_t persistentDecodeLaunches = 0;
  int64_t persistentDecodeTokens = 0;
  uint64_t weightBytes = 0;
  /// Activation arena bytes at max_tokens.
  uint64_t arenaBytes = 0;
  int64_t maxTokens = 0;
  /// KV cache bytes per cached position of one sequence, all layers.
  uint64_t kvCacheBytesPerToken = 0;
  uint64_t artifactBytes = 0;
};

CompileSummary summarizeArtifact(llvm::StringRef artifact);
void printSummary(const CompileSummary &summary, llvm::raw_ostream &os);

/// Compiles every kernel of `artifact` with NVRTC (the runtime's prelude
/// prepended, -std=c++17, the CUDA include directory) for each architecture
/// (e.g. "sm_90"). On failure, `error` names the kernel and architecture and
/// holds NVRTC's log. Needs no GPU.
mlir::LogicalResult checkKernelsWithNvrtc(llvm::StringRef artifact,
                                          llvm::ArrayRef<std::string> archs, std::string &error);

} // namespace kiln

#endif // KILN_CODEGEN_CODEGEN_H
