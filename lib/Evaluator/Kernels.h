//===- Kernels.h - the reference evaluator's per-op computations -*- C++ -*-===//
//
// One function per tfm computation, on Tensors whose shapes are the actual
// (runtime) ones. Each checks what the op's verifier could not check before
// the dynamic dimensions were known and reports a mismatch through
// `op->emitOpError()`. Sums and products are formed in double and rounded to
// float once per element.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_EVALUATOR_KERNELS_H
#define KILN_LIB_EVALUATOR_KERNELS_H

#include "kiln/Dialect/Tfm/TfmOps.h"
#include "kiln/Evaluator/Evaluator.h"

#include <optional>
#include <string>
#include <vector>

namespace kiln::eval {

using mlir::FailureOr;
using mlir::Operation;

/// [7, 4, 16]; dynamic dimensions as `?`.
std::string shapeString(llvm::ArrayRef<int64_t> shape);

/// Rounds every element to `elementType` (bf16, f16, f8...) and back, so a
/// value holds exactly what a program of that type would store. f32 and
/// integer types are left alone.
void roundToElementType(Tensor &tensor, mlir::Type elementType);

FailureOr<Tensor> embedding(Operation *op, const Tensor &table, const Tensor &ids);
/// input [..., in] · weight[out, in]ᵀ (+ bias[out]).
FailureOr<Tensor> linear(Operation *op, const Tensor &input, const Tensor &weight,
                         const Tensor *bias);
FailureOr<Tensor> matmul(Operation *op, const Tensor &lhs, const Tensor &rhs, bool transposeB);
FailureOr<Tensor> rmsNorm(Operation *op, const Tensor &input, const Tensor &weight, double epsilon);
FailureOr<Tensor> layerNorm(Operation *op, const Tensor &input, const Tensor &weight,
                            const Tensor *bias, double epsilon);

/// inv_freq[i] for i < rotary_dim / 2, scaling included.
std::vector<double> ropeInverseFrequencies(tfm::RopeAttr config);
FailureOr<Tensor> rope(Operation *op, const Tensor &input, const Tensor &positions,
                       tfm::RopeAttr config);
FailureOr<Tensor> softmax(Operation *op, const Tensor &input, int64_t axis);

FailureOr<Tensor> add(Operation *op, const Tensor &lhs, const Tensor &rhs);
FailureOr<Tensor> mul(Operation *op, const Tensor &lhs, const Tensor &rhs);
Tensor silu(const Tensor &input);
Tensor gelu(const Tensor &input, bool tanhApproximation);
Tensor scale(const Tensor &input, double factor);
/// Applies tfm::Activation (silu, gelu, gelu_tanh).
Tensor activation(const Tensor &input, tfm::Activation kind);

/// `shape` may hold one dynamic dimension (ShapedType::kDynamic), resolved
/// from the element count.
FailureOr<Tensor> reshape(Operation *op, const Tensor &input, llvm::ArrayRef<int64_t> shape);
Tensor transpose(const Tensor &input, llvm::ArrayRef<int64_t> permutation);
FailureOr<Tensor> concat(Operation *op, llvm::ArrayRef<const Tensor *> inputs, int64_t axis);
/// `sizes` along `axis`, at most one of them dynamic (the remainder).
FailureOr<std::vector<Tensor>> split(Operation *op, const Tensor &input, int64_t axis,
                                     llvm::ArrayRef<int64_t> sizes);
FailureOr<Tensor> slice(Operation *op, const Tensor &input, int64_t axis, int64_t start,
                        int64_t size);
Tensor repeatKv(const Tensor &input, int64_t axis, int64_t times);

FailureOr<Tensor> causalMask(Operation *op, const Tensor &scores, const Tensor &positions,
                             std::optional<int64_t> window);
/// ALiBi slopes for `heads` heads, as transformers' build_alibi_tensor.
std::vector<double> alibiSlopes(int64_t heads);
FailureOr<Tensor> alibiBias(Operation *op, const Tensor &scores, const Tensor &positions);

struct Quantized {
  Tensor values;
  Tensor scales;
};
/// Symmetric per-group quantization of [rows, cols] to `valueType` (i8, i4,
/// f8E4M3FN); scales are rounded to `scaleType` before they are used.
FailureOr<Quantized> quantize(Operation *op, const Tensor &input, int64_t groupSize,
                              mlir::Type valueType, mlir::Type scaleType);
FailureOr<Tensor> dequantize(Operation *op, const Tensor &values, const Tensor &scales,
                             int64_t groupSize);

} // namespace kiln::eval

#endif // KILN_LIB_EVALUATOR_KERNELS_H
