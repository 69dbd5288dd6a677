//===- Lowering.h - fused tfm IR to the plan --------------------*- C++ -*-===//
//
// The pieces of buildArtifact: the load-time weight program, the lowering of
// one step's ops to commands over activation buffers, and the buffer plan.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_LOWERING_H
#define KILN_CODEGEN_LOWERING_H

#include "Kernels.h"
#include "Plan.h"

#include "kiln/Codegen/Codegen.h"
#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

namespace kiln::codegen {

/// A readable name for a location: `model.layers.0.mlp`, or for fused
/// locations their names with the shared prefix factored out.
std::string describeLocation(mlir::Location loc);

/// The schema dtype of a tensor element type, or failure.
mlir::FailureOr<DType> dtypeOf(mlir::Type type);

/// The load-time weight program: weights and their transforms in dependence
/// order. Values that step commands read get an offset in the weights arena.
class WeightProgram {
public:
  /// The index of load-time `value`'s WeightValue, lowering what it needs.
  /// Errors are reported at `user`.
  mlir::FailureOr<unsigned> lower(mlir::Value value, mlir::Operation *user);
  /// Like lower(), and marks the value as read by a step (so it is kept in
  /// the weights arena).
  mlir::FailureOr<unsigned> bind(mlir::Value value, mlir::Operation *user);
  /// Assigns 256-byte aligned arena offsets to bound values; returns the
  /// arena size.
  uint64_t assignOffsets();
  std::vector<WeightValue> takeValues() { return std::move(values); }
  const WeightValue &value(unsigned index) const { return values[index]; }

private:
  std::vector<WeightValue> values;
  llvm::DenseMap<mlir::Value, unsigned> indexOf;
  llvm::StringMap<unsigned> checkpointIndex;
  std::vector<bool> bound;
};

/// Where an activation lives: element `r` (row-major over `dims`) of token t
/// is at t * tokenStride + offset + Σ idx_d(r) * strides[d] in the buffer.
/// A reshape keeps the view (it never changes the row-major order).
struct View {
  unsigned buffer = 0;
  int64_t offset = 0, tokenStride = 0;
  llvm::SmallVector<int64_t> dims, strides;
  DType dtype = DType::f32;

  int64_t elements() const;
  bool isContiguous() const;
  static View contiguous(unsigned buffer, int64_t elements, DType dtype);
};

/// Per-step first and last command that use a buffer.
struct Liveness {
  int64_t first = -1, last = -1;
};

enum class StepKind { prefill, decode };

/// What both steps share while they are lowered.
struct LoweringContext {
  mlir::func::FuncOp forward;
  const CodegenOptions &options;
  Plan &plan;
  KernelLibrary &kernels;
  WeightProgram &weights;
  /// The tfm.linear whose result the function returns (run on last tokens).
  mlir::Operation *lmHead = nullptr;
};

/// The prelude function of an activation: "silu", "gelu", "gelu_tanh".
llvm::StringRef activationFunction(tfm::Activation activation);

/// The shapes and options of `op` for the attention kernels, checked against
/// the model.
mlir::FailureOr<AttentionParams> attentionParamsOf(LoweringContext &context,
                                                   tfm::AttentionOp op);

/// Buffers (indices into plan.buffers) with their liveness in one step.
using BufferLiveness = std::vector<std::pair<unsigned, Liveness>>;

/// Lowers the function's ops, in order, to one step's commands.
class StepLowering {
public:
  StepLowering(LoweringContext &context, StepKind kind) : context(context), kind(kind) {}
  mlir::LogicalResult run();
  std::vector<Command> takeCommands() { return std::move(commands); }
  /// The buffers this step created (indices into plan.buffers) with their
  /// liveness.
  const BufferLiveness &bufferLiveness() const { return liveness; }

private:
  mlir::LogicalResult lower(mlir::Operation *op);
  mlir::LogicalResult lowerEmbedding(tfm::EmbeddingOp op);
  mlir::LogicalResult lowerNorm(mlir::Operation *op, NormKind kind, mlir::Value input,
                                mlir::Value residual, mlir::Value weight, mlir::Value bias,
                                double epsilon);
  mlir::LogicalResult lowerLinear(mlir::Operation *op, mlir::Value input, mlir::Value weight,
                                  mlir::Value bias);
  mlir::LogicalResult lowerLmHead(mlir::Operation *op, mlir::Value input, mlir::Value weight,
                                  mlir::Value bias);
  mlir::LogicalResult lowerGatedMlp(tfm::GatedMlpOp op);
  /// A decode GEMV of `op` over `input` (or the norm fused into it): `args`
  /// come after the input's, `params` lacks only what the input decides.
  mlir::LogicalResult launchGemv(mlir::Operation *op, mlir::Value input, GemvParams params,
                                 llvm::ArrayRef<Arg> args);
  /// In decode, a norm of whole rows whose every user is a GEMV is computed
  /// in their prologues instead of by a kernel of its own.
  bool canFuseNormIntoGemvs(mlir::Operation *op, const NormParams &params,
                            const View &input) const;
  mlir::FailureOr<AttentionParams> attentionParams(tfm::AttentionOp op);
  /// A buffer for the decode attention's counters of finished splits, if it
  /// has several.
  std::optional<unsigned> decodeCounters(tfm::AttentionOp op, const AttentionParams &params);
  mlir::LogicalResult lowerAttention(tfm::AttentionOp op);
  mlir::LogicalResult lowerElementwise(mlir::Operation *op);
  mlir::LogicalResult lowerReshape(tfm::ReshapeOp op);
  mlir::LogicalResult lowerSlice(mlir::Operation *op, mlir::Value input, mlir::Value result,
                                 int64_t axis, int64_t start, int64_t size);
  mlir::LogicalResult lowerConcat(tfm::ConcatOp op);
  mlir::LogicalResult lowerTranspose(tfm::TransposeOp op);
  mlir::LogicalResult lowerSampling();

  /// The view of activation `value`, checking it is one.
  mlir::FailureOr<View> viewOf(mlir::Value value, mlir::Operation *user);
  /// The buffer of `value` laid out contiguously, copying it there if needed.
  mlir::FailureOr<unsigned> contiguousBuffer(mlir::Value value, mlir::Operation *user);
  /// `view` re-expressed with dims equal to `shape` (per-token dims), or
  /// failure when strides cannot express it.
  static mlir::FailureOr<View> restride(const View &view, llvm::ArrayRef<int64_t> shape);
  /// A copy of `view` into a new contiguous buffer.
  unsigned materialize(const View &view, mlir::Operation *op);
  /// A new buffer for `value` (per token) and its contiguous view.
  mlir::FailureOr<unsigned> define(mlir::Value value, llvm::StringRef what);
  unsigned newBuffer(std::string name, DType dtype, uint64_t bytesPerToken,
                     uint64_t fixedBytes);
  mlir::FailureOr<unsigned> weightArg(mlir::Value value, mlir::Operation *user);
  /// A linear-like op's operands, checked and bound: the contraction size,
  /// the weight and bias args (bias 0 when there is none), the element type.
  struct LinearOperands {
    int64_t k;
    unsigned weight, bias;
    DType dtype;
  };
  mlir::FailureOr<LinearOperands> linearOperands(mlir::Operation *op, mlir::Value input,
                                                 mlir::Value weight, mlir::Value bias,
                                                 int64_t rows);
  void launch(const KernelSpec &spec, mlir::Operation *op, llvm::ArrayRef<Arg> args);
  void record(Command command);
  std::string bufferName(mlir::Operation *op, llvm::StringRef what) const;

  LoweringContext &context;
  StepKind kind;
  std::vector<Command> commands;
  llvm::DenseMap<mlir::Value, View> views;
  /// Norms computed inside the GEMVs that read them, by normalized result.
  struct FusedNorm {
    NormParams params;
    unsigned input = 0, weight = 0;
    std::optional<unsigned> residual, bias;
    /// The residual sum's buffer when later ops read it; the first GEMV
    /// lowered stores it.
    std::optional<unsigned> sum;
    bool sumStored = false;
  };
  llvm::DenseMap<mlir::Value, FusedNorm> fusedNorms;
  /// Packed qkv values whose GEMV already applied RoPE and wrote the KV
  /// cache, with the decode attention counters it zeroed (if it has any).
  llvm::DenseMap<mlir::Value, std::optional<unsigned>> kvCacheWritten;
  BufferLiveness liveness;
  llvm::DenseMap<unsigned, size_t> livenessIndex;
};

/// The decode step as one persistent kernel (persistentDecodeKernel) and
/// sampling, when @forward is a decoder stack that kernel covers: the
/// commands go to plan.decodePersistent. Run after the decode StepLowering
/// (it binds the same weights). A model it does not cover is no error: it
/// leaves the plan alone and says why in `reason`.
class PersistentDecodeLowering {
public:
  explicit PersistentDecodeLowering(LoweringContext &context) : context(context) {}
  mlir::LogicalResult run();
  const BufferLiveness &bufferLiveness() const { return liveness; }
  /// Why the model has no persistent decode program (empty when it has one).
  const std::string &reason() const { return whyNot; }

private:
  LoweringContext &context;
  BufferLiveness liveness;
  std::string whyNot;
};

/// Per-token shape of an activation ([?, d1, ..., dn] -> [d1, ..., dn]), or
/// failure when `value` is not a tensor with a leading token dimension and
/// static inner dims.
mlir::FailureOr<llvm::SmallVector<int64_t>> perTokenShape(mlir::Value value);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_LOWERING_H
