//===- Evaluator.h - reference CPU evaluator for tfm programs ---*- C++ -*-===//
//
// Runs a tfm module's `func.func @forward(%input_ids, %positions) -> logits`
// op by op on the CPU, one sequence at a time, with the checkpoint's weights.
// It is the numerical reference for the rest of kiln: float32 storage,
// float64 accumulation in every reduction, no clever kernels. Programs whose
// activations are bf16/f16 are mirrored by rounding every op's result to that
// type. Graph-level and fused ops are both supported; fused ops compose the
// same code as their graph-level spelling, so a fusion pass can be checked by
// running the program before and after it.
//
// Errors (an op it cannot run, runtime shapes that do not fit, weights that do
// not match the checkpoint) are reported through the module's MLIRContext
// diagnostics at the location of the op at fault.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_EVALUATOR_EVALUATOR_H
#define KILN_EVALUATOR_EVALUATOR_H

#include "kiln/Support/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

/// A row-major tensor value. Tensors of element type i32 (token ids,
/// positions) keep their elements in `ints`; every other tensor keeps them in
/// `values`, quantized ones included (their integer or f8 values are exact in
/// float32).
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::vector<int32_t> ints;
  bool isInt = false;

  static Tensor ofFloats(std::vector<int64_t> shape, std::vector<float> values);
  static Tensor ofInts(std::vector<int64_t> shape, std::vector<int32_t> ints);
  /// A float tensor of `shape` filled with zeros.
  static Tensor zeros(std::vector<int64_t> shape);
  int64_t numElements() const;
  /// Element `i` as a float, whichever payload holds it.
  float at(int64_t i) const { return isInt ? static_cast<float>(ints[i]) : values[i]; }
};

/// An intermediate value recorded by the dump filter.
struct DumpedValue {
  /// `step<k>/<location name>`, plus `~<n>` for the n-th further op of the
  /// step with that location name, plus `#<result index>` for ops with
  /// several results.
  std::string name;
  std::string opName; ///< e.g. "tfm.matmul": several ops often share a location
  Tensor value;
};

/// One sequence being evaluated: the program, the weights it has loaded (each
/// load-time value is computed once) and the per-layer KV cache it has grown.
class EvalSession {
public:
  /// Checks that `module` holds a `@forward` function of the expected
  /// signature and that every `tfm.weight` it names is in `checkpoint` with
  /// the declared shape and dtype. `module` must outlive the session; the
  /// checkpoint is copied.
  static mlir::FailureOr<std::unique_ptr<EvalSession>> create(mlir::ModuleOp module,
                                                              const Checkpoint &checkpoint);
  ~EvalSession();

  /// Runs one step: `ids.size()` tokens at `positions` (the same length),
  /// appending their keys and values to the cache. Returns the logits
  /// [T, vocab]. On failure the cache is left as it was before the step.
  mlir::FailureOr<Tensor> step(llvm::ArrayRef<int32_t> ids, llvm::ArrayRef<int32_t> positions);

  /// Records, from now on, the results of every op whose location name (see
  /// locationName) matches `regex` (llvm::Regex syntax, unanchored). Weights
  /// and their load-time transforms are not recorded: the checkpoint has them.
  mlir::LogicalResult setDumpFilter(llvm::StringRef regex);
  const std::vector<DumpedValue> &dumps() const;

  /// Number of steps run so far (failed ones included): the `k` of the next
  /// step's dump names.
  int64_t stepsRun() const;

private:
  struct Impl;
  explicit EvalSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The name an op's location gives it: the name of a NameLoc (looking through
/// fused and call-site locations), or "" when it has none.
std::string locationName(mlir::Location loc);

/// Writes `dumps` to a safetensors file as float32 tensors named after them;
/// the metadata maps each name to its op name.
bool writeDumps(const std::string &file, const std::vector<DumpedValue> &dumps, std::string &error);

} // namespace kiln

#endif // KILN_EVALUATOR_EVALUATOR_H
