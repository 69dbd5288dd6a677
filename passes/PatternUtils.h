//===- PatternUtils.h - helpers shared by the fusion patterns ---*- C++ -*-===//
#ifndef KILN_PASSES_PATTERNUTILS_H
#define KILN_PASSES_PATTERNUTILS_H

#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/IR/PatternMatch.h"

namespace kiln {

/// The op defining `value` if it is an `OpTy`, else null.
template <typename OpTy>
OpTy definingOp(mlir::Value value) {
  return value ? value.getDefiningOp<OpTy>() : OpTy();
}

/// Moves the ops computing load-time `value` (weights and their transforms,
/// which are pure and read no activations) before `anchor` when they come
/// after it in the same block, so a fused op built at `anchor` can use it.
void hoistLoadTimeValue(mlir::Value value, mlir::Operation *anchor);

/// The static size of dimension `dim` (negative: from the back), or -1.
int64_t staticDim(mlir::Value value, int64_t dim);

/// `value` reshaped to `shape` (a no-op when it already has that shape).
mlir::Value reshapeTo(mlir::PatternRewriter &rewriter, mlir::Location loc, mlir::Value value,
                      llvm::ArrayRef<int64_t> shape);

/// Load-time concatenation of weights along axis 0.
mlir::Value concatWeights(mlir::PatternRewriter &rewriter, mlir::Location loc,
                          mlir::ValueRange weights);

} // namespace kiln

#endif // KILN_PASSES_PATTERNUTILS_H
