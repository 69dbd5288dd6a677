//===- PatternUtils.cpp - helpers shared by the fusion patterns -----------===//

#include "PatternUtils.h"

using namespace mlir;

namespace kiln {

void hoistLoadTimeValue(Value value, Operation *anchor) {
  Operation *def = value.getDefiningOp();
  if (!def || def->getBlock() != anchor->getBlock() || def->isBeforeInBlock(anchor))
    return;
  for (Value operand : def->getOperands())
    hoistLoadTimeValue(operand, anchor);
  def->moveBefore(anchor);
}

int64_t staticDim(Value value, int64_t dim) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type)
    return -1;
  if (dim < 0)
    dim += type.getRank();
  if (dim < 0 || dim >= type.getRank() || type.isDynamicDim(dim))
    return -1;
  return type.getDimSize(dim);
}

Value reshapeTo(PatternRewriter &rewriter, Location loc, Value value, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getShape() == shape)
    return value;
  return tfm::ReshapeOp::create(rewriter, loc, type.clone(shape), value);
}

Value concatWeights(PatternRewriter &rewriter, Location loc, ValueRange weights) {
  auto first = cast<RankedTensorType>(weights.front().getType());
  SmallVector<int64_t> shape(first.getShape());
  shape[0] = 0;
  for (Value weight : weights)
    shape[0] += cast<RankedTensorType>(weight.getType()).getDimSize(0);
  return tfm::WeightConcatOp::create(rewriter, loc, first.clone(shape), weights,
                                     rewriter.getI64IntegerAttr(0));
}

} // namespace kiln
