//===- WeightBinder.h - checkpoint tensors as tfm.weight ops -----*- C++ -*-===//
#ifndef KILN_LIB_FRONTEND_WEIGHTBINDER_H
#define KILN_LIB_FRONTEND_WEIGHTBINDER_H

#include "kiln/Support/Safetensors.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/StringMap.h"

namespace kiln {

/// Emits one tfm.weight per checkpoint tensor the model uses, checked
/// against the shape the config implies. With a checkpoint, the tensor must
/// exist with that shape and a float dtype, which the weight keeps; without
/// one, the config's dtype is used. A tfm.weight_cast to the activation type
/// follows when the dtypes differ. Errors are reported and building goes on
/// with the implied type, so that one run reports every bad tensor.
class WeightBinder {
public:
  WeightBinder(const Checkpoint *checkpoint, DType configDtype, mlir::Type activationType,
               llvm::StringRef basePrefix)
      : checkpoint_(checkpoint), configDtype_(configDtype), activationType_(activationType),
        basePrefix_(basePrefix) {}

  /// The activation-typed value of tensor `name` (or of the first of
  /// `aliases` the checkpoint has), built once and reused after that.
  mlir::Value bind(mlir::ImplicitLocOpBuilder &builder, llvm::StringRef name,
                   llvm::ArrayRef<int64_t> shape, llvm::ArrayRef<std::string> aliases = {});

  /// Failure if any tensor was bad; reports how many errors were not shown.
  mlir::LogicalResult finish(mlir::MLIRContext *context) const;

private:
  /// The checkpoint's entry for `name`, an alias, or `name` less the base
  /// model prefix; null if none.
  const TensorInfo *find(llvm::StringRef name, llvm::ArrayRef<std::string> aliases) const;
  /// Reports a bad tensor (only the first few, the rest are counted).
  void report(mlir::MLIRContext *context, const llvm::Twine &message);

  const Checkpoint *checkpoint_;
  DType configDtype_;
  mlir::Type activationType_;
  llvm::StringRef basePrefix_;
  llvm::StringMap<mlir::Value> bound_;
  int errors_ = 0;
};

} // namespace kiln

#endif // KILN_LIB_FRONTEND_WEIGHTBINDER_H
