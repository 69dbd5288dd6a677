//===- TfmOps.cpp - tfm op verifiers --------------------------------------===//
//
// Type constraints in ODS check element types and ranks where they can; the
// verifiers here check what relates one operand to another: shapes that must
// agree, head counts, axes, and the load-time-only rule for weight transforms.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <optional>

using namespace mlir;
using namespace kiln::tfm;

bool kiln::tfm::isLoadTimeValue(Value value) {
  Operation *def = value.getDefiningOp();
  if (!def)
    return false;
  if (def->hasTrait<LoadTimeTrait>())
    return true;
  // Layout changes of load-time values are load-time: the importer and the
  // packing passes rearrange fused checkpoint tensors this way.
  return isa<ReshapeOp, TransposeOp, SliceOp, ConcatOp, SplitOp>(def) &&
         llvm::all_of(def->getOperands(), isLoadTimeValue);
}

namespace {

bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// The shape as people write it: [?, 4, 16].
std::string shapeString(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, dim] : llvm::enumerate(shape)) {
    if (i)
      text += ", ";
    text += ShapedType::isDynamic(dim) ? std::string("?") : std::to_string(dim);
  }
  return text + "]";
}

RankedTensorType tensorType(Value value) { return cast<RankedTensorType>(value.getType()); }

/// Checks that `actual` has the rank of `expected` and compatible dimensions.
LogicalResult expectShape(Operation *op, StringRef what, Value actual,
                          ArrayRef<int64_t> expected) {
  ArrayRef<int64_t> shape = tensorType(actual).getShape();
  if (shape.size() == expected.size() &&
      llvm::all_of(llvm::zip(shape, expected),
                   [](auto dims) { return dimsCompatible(std::get<0>(dims), std::get<1>(dims)); }))
    return success();
  return op->emitOpError() << what << " has shape " << shapeString(shape) << ", expected "
                           << shapeString(expected);
}

/// Checks that all `values` share the element type of the first.
LogicalResult expectSameElementType(Operation *op, ValueRange values) {
  Type first = tensorType(values.front()).getElementType();
  for (Value value : values.drop_front())
    if (tensorType(value).getElementType() != first)
      return op->emitOpError() << "element types differ: " << first << " and "
                               << tensorType(value).getElementType();
  return success();
}

/// A value with `input`'s element type and a shape compatible with its shape.
LogicalResult expectLike(Operation *op, StringRef what, Value actual, Value input) {
  if (failed(expectSameElementType(op, {input, actual})))
    return failure();
  return expectShape(op, what, actual, tensorType(input).getShape());
}

LogicalResult expectAxis(Operation *op, int64_t axis, int64_t rank) {
  if (axis < 0 || axis >= rank)
    return op->emitOpError() << "axis " << axis << " is out of range for rank " << rank;
  return success();
}

LogicalResult expectPositive(Operation *op, StringRef what, int64_t value) {
  if (value <= 0)
    return op->emitOpError() << what << " must be positive, got " << value;
  return success();
}

// Sizes computed from dimensions and attributes. A program may spell absurd
// ones (tensor<9223372036854775807x2xf32>, heads = 2^62): they must give an
// error, never a signed overflow. An empty optional means "does not fit".
std::optional<int64_t> checkedAdd(std::optional<int64_t> a, std::optional<int64_t> b) {
  int64_t sum;
  if (!a || !b || llvm::AddOverflow(*a, *b, sum))
    return std::nullopt;
  return sum;
}

std::optional<int64_t> checkedMul(std::optional<int64_t> a, std::optional<int64_t> b) {
  int64_t product;
  if (!a || !b || llvm::MulOverflow(*a, *b, product))
    return std::nullopt;
  return product;
}

/// Head-count rules shared by the ops that see q/k/v heads. Returns the width
/// of a packed q/k/v row, (heads + 2 * kv_heads) * head_dim.
FailureOr<int64_t> verifyHeads(Operation *op, int64_t numHeads, int64_t numKvHeads,
                               int64_t headDim) {
  if (failed(expectPositive(op, "heads", numHeads)) ||
      failed(expectPositive(op, "kv_heads", numKvHeads)) ||
      failed(expectPositive(op, "head_dim", headDim)))
    return failure();
  if (numHeads % numKvHeads != 0)
    return op->emitOpError() << "heads (" << numHeads << ") must be divisible by kv_heads ("
                             << numKvHeads << ")";
  std::optional<int64_t> width =
      checkedMul(checkedAdd(numHeads, checkedMul(2, numKvHeads)), headDim);
  if (!width)
    return op->emitOpError() << "(heads + 2 * kv_heads) * head_dim does not fit in 64 bits";
  return *width;
}

/// `input[..., in] x weight[out, in]ᵀ (+ bias[out]) -> result[..., out]`. The
/// activations and the bias share an element type; the weight's is the
/// caller's business (quantized weights have their own).
LogicalResult verifyLinear(Operation *op, Value input, Value weight, Value bias, Value result) {
  SmallVector<Value> activations = {input, result};
  if (bias)
    activations.push_back(bias);
  if (failed(expectSameElementType(op, activations)))
    return failure();
  RankedTensorType weightType = tensorType(weight);
  if (weightType.getRank() != 2)
    return op->emitOpError() << "weight must be [out, in], got rank " << weightType.getRank();
  ArrayRef<int64_t> inShape = tensorType(input).getShape();
  if (inShape.empty())
    return op->emitOpError() << "input must have at least one dimension";
  if (!dimsCompatible(inShape.back(), weightType.getDimSize(1)))
    return op->emitOpError() << "input features (" << inShape.back()
                             << ") do not match weight [out, in] "
                             << shapeString(weightType.getShape());
  if (bias && failed(expectShape(op, "bias", bias, {weightType.getDimSize(0)})))
    return failure();
  SmallVector<int64_t> expected(inShape.drop_back());
  expected.push_back(weightType.getDimSize(0));
  return expectShape(op, "result", result, expected);
}

/// Norm weight/bias must be [hidden] where hidden is the input's last dim,
/// with the input's element type.
LogicalResult verifyNormParams(Operation *op, Value input, Value weight, Value bias,
                               double epsilon) {
  SmallVector<Value> sameType = {input, weight};
  if (bias)
    sameType.push_back(bias);
  if (failed(expectSameElementType(op, sameType)))
    return failure();
  ArrayRef<int64_t> shape = tensorType(input).getShape();
  if (shape.empty())
    return op->emitOpError() << "input must have at least one dimension";
  if (failed(expectShape(op, "weight", weight, {shape.back()})))
    return failure();
  if (bias && failed(expectShape(op, "bias", bias, {shape.back()})))
    return failure();
  if (!(epsilon > 0.0))
    return op->emitOpError() << "eps must be positive, got " << epsilon;
  return success();
}

/// Broadcast shape of two shapes, NumPy style; failure if incompatible.
FailureOr<SmallVector<int64_t>> broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == 1)
      result[i] = db;
    else if (db == 1)
      result[i] = da;
    else if (dimsCompatible(da, db))
      result[i] = ShapedType::isDynamic(da) ? db : da;
    else
      return failure();
  }
  return result;
}

/// Product of the static dimensions; empty if it does not fit in 64 bits.
std::optional<int64_t> staticProduct(ArrayRef<int64_t> shape) {
  std::optional<int64_t> product = 1;
  for (int64_t dim : shape)
    if (!ShapedType::isDynamic(dim))
      product = checkedMul(product, dim);
  return product;
}

/// Sum along an axis; dynamic if any part is dynamic, empty if it does not fit
/// in 64 bits.
std::optional<int64_t> sumDims(ArrayRef<int64_t> dims) {
  std::optional<int64_t> sum = 0;
  for (int64_t dim : dims) {
    if (ShapedType::isDynamic(dim))
      return ShapedType::kDynamic;
    sum = checkedAdd(sum, dim);
  }
  return sum;
}

/// `result` is `input` with dimension `axis` multiplied by `factor` (the
/// positive `factorName` attribute): repeat_kv, all_gather.
LogicalResult verifyMultipliedAxis(Operation *op, Value input, Value result, int64_t axis,
                                   StringRef factorName, int64_t factor) {
  RankedTensorType inputType = tensorType(input);
  if (failed(expectPositive(op, factorName, factor)) ||
      failed(expectAxis(op, axis, inputType.getRank())))
    return failure();
  SmallVector<int64_t> expected(inputType.getShape());
  if (!ShapedType::isDynamic(expected[axis])) {
    std::optional<int64_t> multiplied = checkedMul(expected[axis], factor);
    if (!multiplied)
      return op->emitOpError() << "dimension " << axis << " of size " << expected[axis]
                               << " multiplied by " << factorName << " = " << factor
                               << " does not fit in 64 bits";
    expected[axis] = *multiplied;
  }
  return expectShape(op, "result", result, expected);
}

/// Pieces along `axis` (concat inputs, split results) against the whole.
LogicalResult verifyPieces(Operation *op, Value whole, ValueRange pieces, int64_t axis,
                           StringRef pieceName) {
  RankedTensorType wholeType = tensorType(whole);
  if (failed(expectAxis(op, axis, wholeType.getRank())))
    return failure();
  if (pieces.empty())
    return op->emitOpError() << "needs at least one " << pieceName;
  SmallVector<int64_t> axisDims;
  for (auto [i, piece] : llvm::enumerate(pieces)) {
    SmallVector<int64_t> expected(wholeType.getShape());
    expected[axis] = tensorType(piece).getRank() == wholeType.getRank()
                         ? tensorType(piece).getDimSize(axis)
                         : ShapedType::kDynamic;
    if (failed(expectShape(op, (pieceName + " #" + Twine(i)).str(), piece, expected)))
      return failure();
    axisDims.push_back(expected[axis]);
  }
  std::optional<int64_t> total = sumDims(axisDims);
  if (!total)
    return op->emitOpError() << "sizes along axis " << axis << " add up to more than 64 bits hold";
  if (!dimsCompatible(*total, wholeType.getDimSize(axis)))
    return op->emitOpError() << "sizes along axis " << axis << " add up to " << *total
                             << " but the whole has " << wholeType.getDimSize(axis);
  return success();
}

LogicalResult verifyRopeFits(Operation *op, RopeAttr rope, int64_t headDim) {
  if (rope && !ShapedType::isDynamic(headDim) && rope.getRotaryDim() > headDim)
    return op->emitOpError() << "rope rotary_dim (" << rope.getRotaryDim()
                             << ") exceeds head_dim (" << headDim << ")";
  return success();
}

/// A quantized [rows, cols] tensor and its [rows, cols / group_size] scales.
LogicalResult verifyQuantizedPair(Operation *op, Value values, Value scales, int64_t groupSize) {
  if (failed(expectPositive(op, "group_size", groupSize)))
    return failure();
  RankedTensorType valuesType = tensorType(values);
  if (valuesType.getRank() != 2)
    return op->emitOpError() << "quantized tensor must be [rows, cols], got rank "
                             << valuesType.getRank();
  int64_t cols = valuesType.getDimSize(1);
  if (!ShapedType::isDynamic(cols) && cols % groupSize != 0)
    return op->emitOpError() << "group_size " << groupSize << " does not divide " << cols
                             << " columns";
  int64_t groups = ShapedType::isDynamic(cols) ? cols : cols / groupSize;
  return expectShape(op, "scales", scales, {valuesType.getDimSize(0), groups});
}

} // namespace

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty checkpoint tensor name");
  if (!getType().hasStaticShape())
    return emitOpError() << "weight '" << getName() << "' must have a static shape";
  return success();
}

LogicalResult WeightConcatOp::verify() {
  for (auto [i, input] : llvm::enumerate(getInputs()))
    if (!isLoadTimeValue(input))
      return emitOpError() << "operand #" << i
                           << " is not a weight or a load-time transform of weights";
  if (!getInputs().empty() &&
      failed(expectSameElementType(*this, llvm::to_vector(llvm::concat<Value>(
                                              getInputs(), ValueRange(getResult()))))))
    return failure();
  return verifyPieces(*this, getResult(), getInputs(), getAxis(), "input");
}

LogicalResult WeightCastOp::verify() {
  if (!isLoadTimeValue(getInput()))
    return emitOpError("operand is not a weight or a load-time transform of weights");
  return expectShape(*this, "result", getResult(), getInput().getType().getShape());
}

//===----------------------------------------------------------------------===//
// Graph level
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = getTable().getType();
  if (table.getRank() != 2)
    return emitOpError() << "table must be [vocab, hidden], got rank " << table.getRank();
  if (failed(expectSameElementType(*this, {getTable(), getResult()})))
    return failure();
  return expectShape(*this, "result", getResult(),
                     {getIds().getType().getDimSize(0), table.getDimSize(1)});
}

LogicalResult LinearOp::verify() {
  if (failed(expectSameElementType(*this, {getInput(), getWeight()})))
    return failure();
  return verifyLinear(*this, getInput(), getWeight(), getBias(), getResult());
}

LogicalResult MatmulOp::verify() {
  if (failed(expectSameElementType(*this, {getLhs(), getRhs(), getResult()})))
    return failure();
  ArrayRef<int64_t> lhs = getLhs().getType().getShape();
  ArrayRef<int64_t> rhs = getRhs().getType().getShape();
  if (lhs.size() < 2 || lhs.size() != rhs.size())
    return emitOpError() << "operands must have equal rank of at least 2, got " << lhs.size()
                         << " and " << rhs.size();
  size_t rank = lhs.size();
  int64_t rhsK = getTransposeB() ? rhs[rank - 1] : rhs[rank - 2];
  int64_t n = getTransposeB() ? rhs[rank - 2] : rhs[rank - 1];
  if (!dimsCompatible(lhs[rank - 1], rhsK))
    return emitOpError() << "contraction sizes differ: " << shapeString(lhs) << " and "
                         << shapeString(rhs) << (getTransposeB() ? " (transposed)" : "");
  SmallVector<int64_t> expected;
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (!dimsCompatible(lhs[i], rhs[i]))
      return emitOpError() << "batch dimension " << i << " differs: " << shapeString(lhs)
                           << " and " << shapeString(rhs);
    expected.push_back(ShapedType::isDynamic(lhs[i]) ? rhs[i] : lhs[i]);
  }
  expected.push_back(lhs[rank - 2]);
  expected.push_back(n);
  return expectShape(*this, "result", getResult(), expected);
}

LogicalResult RmsNormOp::verify() {
  if (failed(verifyNormParams(*this, getInput(), getWeight(), Value(),
                              getEpsilon().convertToDouble())))
    return failure();
  return expectLike(*this, "result", getResult(), getInput());
}

LogicalResult LayerNormOp::verify() {
  if (failed(verifyNormParams(*this, getInput(), getWeight(), getBias(),
                              getEpsilon().convertToDouble())))
    return failure();
  return expectLike(*this, "result", getResult(), getInput());
}

LogicalResult RopeOp::verify() {
  RankedTensorType input = getInput().getType();
  if (input.getRank() != 3)
    return emitOpError() << "input must be [tokens, heads, head_dim], got rank "
                         << input.getRank();
  if (!dimsCompatible(input.getDimSize(0), getPositions().getType().getDimSize(0)))
    return emitOpError() << "positions has " << getPositions().getType().getDimSize(0)
                         << " entries but input has " << input.getDimSize(0) << " tokens";
  if (failed(verifyRopeFits(*this, getConfig(), input.getDimSize(2))))
    return failure();
  return expectLike(*this, "result", getResult(), getInput());
}

LogicalResult SoftmaxOp::verify() {
  return expectAxis(*this, getAxis(), getInput().getType().getRank());
}

template <typename BinaryOp>
static LogicalResult verifyBroadcastBinary(BinaryOp op) {
  FailureOr<SmallVector<int64_t>> shape =
      broadcastShapes(op.getLhs().getType().getShape(), op.getRhs().getType().getShape());
  if (failed(shape))
    return op.emitOpError() << "shapes " << shapeString(op.getLhs().getType().getShape())
                            << " and " << shapeString(op.getRhs().getType().getShape())
                            << " do not broadcast";
  return expectShape(op, "result", op.getResult(), *shape);
}

LogicalResult AddOp::verify() { return verifyBroadcastBinary(*this); }
LogicalResult MulOp::verify() { return verifyBroadcastBinary(*this); }

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  RankedTensorType input = getInput().getType();
  RankedTensorType result = getResult().getType();
  // With one dynamic dimension on each side, equal static products make the
  // dynamic extents equal too; anything else cannot be checked statically.
  if (input.getNumDynamicDims() > 1 || input.getNumDynamicDims() != result.getNumDynamicDims())
    return emitOpError() << "needs the same number (0 or 1) of dynamic dimensions on both sides, got "
                         << shapeString(input.getShape()) << " and "
                         << shapeString(result.getShape());
  std::optional<int64_t> inputElements = staticProduct(input.getShape());
  std::optional<int64_t> resultElements = staticProduct(result.getShape());
  if (!inputElements || !resultElements)
    return emitOpError() << "element count of " << shapeString(input.getShape()) << " or "
                         << shapeString(result.getShape()) << " does not fit in 64 bits";
  if (*inputElements != *resultElements)
    return emitOpError() << "cannot reshape " << shapeString(input.getShape()) << " to "
                         << shapeString(result.getShape());
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  // reshape(reshape(x)) is one reshape of x: row-major order is unchanged.
  if (auto inner = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return {};
}

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> perm = getPermutation();
  ArrayRef<int64_t> shape = getInput().getType().getShape();
  if (perm.size() != shape.size())
    return emitOpError() << "permutation has " << perm.size() << " entries for rank "
                         << shape.size();
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> expected;
  for (int64_t index : perm) {
    if (index < 0 || index >= static_cast<int64_t>(perm.size()) || seen[index])
      return emitOpError("permutation must name every dimension exactly once");
    seen[index] = true;
    expected.push_back(shape[index]);
  }
  return expectShape(*this, "result", getResult(), expected);
}

LogicalResult ConcatOp::verify() {
  return verifyPieces(*this, getResult(), getInputs(), getAxis(), "input");
}

OpFoldResult ConcatOp::fold(FoldAdaptor) {
  // Concatenating consecutive slices that cover a whole tensor gives it back.
  Value source;
  int64_t next = 0;
  for (Value input : getInputs()) {
    auto slice = input.getDefiningOp<SliceOp>();
    if (!slice || slice.getAxis() != getAxis() || slice.getStart() != next ||
        (source && slice.getInput() != source))
      return {};
    source = slice.getInput();
    next += slice.getSize();
  }
  if (!source || source.getType() != getType() ||
      getType().getDimSize(getAxis()) != next)
    return {};
  return source;
}

LogicalResult SplitOp::verify() {
  if (failed(expectSameElementType(
          *this, llvm::to_vector(llvm::concat<Value>(ValueRange(getInput()), getResults())))))
    return failure();
  return verifyPieces(*this, getInput(), getResults(), getAxis(), "result");
}

LogicalResult SliceOp::verify() {
  RankedTensorType input = getInput().getType();
  int64_t axis = getAxis();
  if (failed(expectAxis(*this, axis, input.getRank())))
    return failure();
  if (getStart() < 0 || getSize() <= 0)
    return emitOpError() << "needs start >= 0 and size > 0, got start " << getStart()
                         << " and size " << getSize();
  int64_t dim = input.getDimSize(axis);
  if (!ShapedType::isDynamic(dim) && (getStart() > dim || getSize() > dim - getStart()))
    return emitOpError() << "start " << getStart() << " + size " << getSize()
                         << " exceeds dimension " << axis << " of size " << dim;
  SmallVector<int64_t> expected(input.getShape());
  expected[axis] = getSize();
  return expectShape(*this, "result", getResult(), expected);
}

LogicalResult RepeatKvOp::verify() {
  return verifyMultipliedAxis(*this, getInput(), getResult(), getAxis(), "times", getTimes());
}

//===----------------------------------------------------------------------===//
// KV cache, masks, biases
//===----------------------------------------------------------------------===//

/// Keys and values of one layer: [tokens, kv_heads, head_dim], same type,
/// kv_heads and head_dim static (the runtime sizes the cache from them).
static LogicalResult verifyKeyValuePair(Operation *op, int64_t layer, Value keys, Value values) {
  if (layer < 0)
    return op->emitOpError() << "layer must be non-negative, got " << layer;
  RankedTensorType keysType = tensorType(keys);
  if (keysType.getRank() != 3)
    return op->emitOpError() << "keys must be [tokens, kv_heads, head_dim], got rank "
                             << keysType.getRank();
  if (keysType.isDynamicDim(1) || keysType.isDynamicDim(2))
    return op->emitOpError() << "keys must have static kv_heads and head_dim, got "
                             << shapeString(keysType.getShape());
  if (keys.getType() != values.getType())
    return op->emitOpError() << "keys and values must have the same type, got "
                             << keys.getType() << " and " << values.getType();
  return success();
}

LogicalResult KVCacheAppendOp::verify() {
  return verifyKeyValuePair(*this, getLayer(), getKeys(), getValues());
}

LogicalResult KVCacheReadOp::verify() {
  return verifyKeyValuePair(*this, getLayer(), getKeys(), getValues());
}

LogicalResult CausalMaskOp::verify() {
  ArrayRef<int64_t> scores = getScores().getType().getShape();
  if (scores.size() < 2)
    return emitOpError() << "scores must be [..., queries, keys], got rank " << scores.size();
  int64_t queries = scores[scores.size() - 2];
  if (!dimsCompatible(queries, getPositions().getType().getDimSize(0)))
    return emitOpError() << "positions has " << getPositions().getType().getDimSize(0)
                         << " entries but scores have " << queries << " queries";
  if (getWindow() && *getWindow() <= 0)
    return emitOpError() << "window must be positive, got " << *getWindow();
  return expectLike(*this, "result", getResult(), getScores());
}

LogicalResult AlibiBiasOp::verify() {
  RankedTensorType scores = getScores().getType();
  if (scores.getRank() != 3)
    return emitOpError() << "scores must be [heads, queries, keys], got rank "
                         << scores.getRank();
  if (scores.isDynamicDim(0))
    return emitOpError("the number of heads (scores dimension 0) must be static");
  if (!dimsCompatible(scores.getDimSize(1), getPositions().getType().getDimSize(0)))
    return emitOpError() << "positions has " << getPositions().getType().getDimSize(0)
                         << " entries but scores have " << scores.getDimSize(1) << " queries";
  return expectLike(*this, "result", getResult(), getScores());
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

LogicalResult QuantizeOp::verify() {
  if (failed(expectShape(*this, "values", getValues(), getInput().getType().getShape())))
    return failure();
  return verifyQuantizedPair(*this, getValues(), getScales(), getGroupSize());
}

LogicalResult DequantizeOp::verify() {
  if (failed(verifyQuantizedPair(*this, getValues(), getScales(), getGroupSize())))
    return failure();
  return expectShape(*this, "result", getResult(), getValues().getType().getShape());
}

//===----------------------------------------------------------------------===//
// Fused / kernel level
//===----------------------------------------------------------------------===//

LogicalResult PackedQkvLinearOp::verify() {
  FailureOr<int64_t> rows = verifyHeads(*this, getNumHeads(), getNumKvHeads(), getHeadDim());
  if (failed(rows) || failed(expectSameElementType(*this, {getInput(), getWeight()})))
    return failure();
  RankedTensorType weight = getWeight().getType();
  if (weight.getRank() == 2 && !dimsCompatible(weight.getDimSize(0), *rows))
    return emitOpError() << "weight has " << weight.getDimSize(0)
                         << " rows, expected (heads + 2 * kv_heads) * head_dim = " << *rows;
  return verifyLinear(*this, getInput(), getWeight(), getBias(), getResult());
}

LogicalResult AttentionOp::verify() {
  FailureOr<int64_t> width = verifyHeads(*this, getNumHeads(), getNumKvHeads(), getHeadDim());
  if (failed(width) || failed(expectSameElementType(*this, {getQkv(), getResult()})))
    return failure();
  if (getLayer() < 0)
    return emitOpError() << "layer must be non-negative, got " << getLayer();
  if (!(getScale().convertToDouble() > 0.0))
    return emitOpError() << "scale must be positive";
  if (getWindow() && *getWindow() <= 0)
    return emitOpError() << "window must be positive, got " << *getWindow();
  if (failed(verifyRopeFits(*this, getRopeAttr(), getHeadDim())))
    return failure();
  RankedTensorType qkv = getQkv().getType();
  int64_t tokens = getPositions().getType().getDimSize(0);
  if (failed(expectShape(*this, "qkv", getQkv(), {tokens, *width})))
    return failure();
  // heads * head_dim < width, so it fits too.
  return expectShape(*this, "result", getResult(),
                     {qkv.getDimSize(0), getNumHeads() * getHeadDim()});
}

template <typename AddNormOp>
static LogicalResult verifyAddNorm(AddNormOp op, Value bias) {
  if (op.getInput().getType() != op.getResidual().getType())
    return op.emitOpError() << "input and residual must have the same type, got "
                            << op.getInput().getType() << " and " << op.getResidual().getType();
  if (failed(verifyNormParams(op, op.getInput(), op.getWeight(), bias,
                              op.getEpsilon().convertToDouble())))
    return failure();
  if (op.getSum().getType() != op.getInput().getType() ||
      op.getResult().getType() != op.getInput().getType())
    return op.emitOpError("results must have the input's type");
  return success();
}

LogicalResult AddRmsNormOp::verify() { return verifyAddNorm(*this, Value()); }
LogicalResult AddLayerNormOp::verify() { return verifyAddNorm(*this, getBias()); }

LogicalResult GatedMlpOp::verify() {
  SmallVector<Value> sameType = {getInput(), getWeight(), getResult()};
  if (getBias())
    sameType.push_back(getBias());
  if (failed(expectSameElementType(*this, sameType)))
    return failure();
  RankedTensorType weight = getWeight().getType();
  if (weight.getRank() != 2 || weight.isDynamicDim(0) || weight.getDimSize(0) % 2 != 0)
    return emitOpError() << "weight must be [2 * intermediate, hidden], got "
                         << shapeString(weight.getShape());
  if (getBias() && failed(expectShape(*this, "bias", getBias(), {weight.getDimSize(0)})))
    return failure();
  ArrayRef<int64_t> in = getInput().getType().getShape();
  if (in.empty() || !dimsCompatible(in.back(), weight.getDimSize(1)))
    return emitOpError() << "input features do not match weight "
                         << shapeString(weight.getShape());
  SmallVector<int64_t> expected(in.drop_back());
  expected.push_back(weight.getDimSize(0) / 2);
  return expectShape(*this, "result", getResult(), expected);
}

LogicalResult QuantizedLinearOp::verify() {
  if (failed(verifyQuantizedPair(*this, getWeight(), getScales(), getGroupSize())))
    return failure();
  return verifyLinear(*this, getInput(), getWeight(), getBias(), getResult());
}

LogicalResult AllReduceOp::verify() { return expectPositive(*this, "ranks", getRanks()); }

LogicalResult AllGatherOp::verify() {
  return verifyMultipliedAxis(*this, getInput(), getResult(), getAxis(), "ranks", getRanks());
}

#define GET_OP_CLASSES
#include "kiln/Dialect/Tfm/TfmOps.cpp.inc"
