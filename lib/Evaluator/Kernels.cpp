//===- Kernels.cpp - the reference evaluator's per-op computations --------===//
//
// Plain loops, written to be checked by reading: every reduction accumulates
// in double, every element is rounded to float once. Formulas follow the op
// descriptions in dialects/tfm/TfmOps.td and, where those name them,
// Hugging Face transformers (RoPE scaling, ALiBi slopes).
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/APFloat.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;

namespace kiln::eval {

namespace {

constexpr double kPi = 3.14159265358979323846;

int64_t product(ArrayRef<int64_t> dims) {
  int64_t result = 1;
  for (int64_t dim : dims)
    result *= dim;
  return result;
}

/// The shape of `tensor` seen as [outer, dim(axis), inner].
struct AxisView {
  int64_t outer, dim, inner;
};
AxisView axisView(const Tensor &tensor, int64_t axis) {
  ArrayRef<int64_t> shape = tensor.shape;
  return {product(shape.take_front(axis)), shape[axis], product(shape.drop_front(axis + 1))};
}

/// A tensor of `shape` with the payload kind of `like` and no elements yet.
Tensor emptyLike(const Tensor &like, std::vector<int64_t> shape) {
  Tensor result;
  result.shape = std::move(shape);
  result.isInt = like.isInt;
  return result;
}

/// Appends elements [begin, begin + count) of `from` to `to`.
void appendRange(Tensor &to, const Tensor &from, int64_t begin, int64_t count) {
  if (from.isInt)
    to.ints.insert(to.ints.end(), from.ints.begin() + begin, from.ints.begin() + begin + count);
  else
    to.values.insert(to.values.end(), from.values.begin() + begin,
                     from.values.begin() + begin + count);
}

/// Row-major strides of `shape`.
std::vector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

/// Multi-index of the row-major flat index `flat` in `shape`.
std::vector<int64_t> unflatten(int64_t flat, ArrayRef<int64_t> shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    index[i] = flat % shape[i];
    flat /= shape[i];
  }
  return index;
}

Tensor mapElements(const Tensor &input, double (*fn)(double)) {
  Tensor result = Tensor::zeros(input.shape);
  for (size_t i = 0; i < input.values.size(); ++i)
    result.values[i] = static_cast<float>(fn(input.values[i]));
  return result;
}

FailureOr<Tensor> broadcastBinary(Operation *op, const Tensor &lhs, const Tensor &rhs,
                                  double (*fn)(double, double)) {
  size_t rank = std::max(lhs.shape.size(), rhs.shape.size());
  auto padded = [rank](const Tensor &tensor) {
    std::vector<int64_t> shape(rank - tensor.shape.size(), 1);
    shape.insert(shape.end(), tensor.shape.begin(), tensor.shape.end());
    return shape;
  };
  std::vector<int64_t> a = padded(lhs), b = padded(rhs), shape(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (a[i] == b[i] || b[i] == 1)
      shape[i] = a[i];
    else if (a[i] == 1)
      shape[i] = b[i];
    else
      return op->emitOpError() << "shapes " << shapeString(lhs.shape) << " and "
                               << shapeString(rhs.shape) << " do not broadcast";
  }
  // A stretched dimension has stride 0: every index reads element 0.
  auto broadcastStrides = [](const std::vector<int64_t> &dims) {
    std::vector<int64_t> strides = stridesOf(dims);
    for (size_t i = 0; i < dims.size(); ++i)
      if (dims[i] == 1)
        strides[i] = 0;
    return strides;
  };
  std::vector<int64_t> aStrides = broadcastStrides(a), bStrides = broadcastStrides(b);
  Tensor result = Tensor::zeros(shape);
  for (int64_t flat = 0; flat < result.numElements(); ++flat) {
    std::vector<int64_t> index = unflatten(flat, shape);
    int64_t aOffset = 0, bOffset = 0;
    for (size_t i = 0; i < rank; ++i) {
      aOffset += index[i] * aStrides[i];
      bOffset += index[i] * bStrides[i];
    }
    result.values[flat] = static_cast<float>(fn(lhs.values[aOffset], rhs.values[bOffset]));
  }
  return result;
}

LogicalResult expectRank(Operation *op, StringRef what, const Tensor &tensor, size_t rank) {
  if (tensor.shape.size() == rank)
    return success();
  return op->emitOpError() << what << " has shape " << shapeString(tensor.shape)
                           << ", expected rank " << rank;
}

LogicalResult expectShape(Operation *op, StringRef what, const Tensor &tensor,
                          ArrayRef<int64_t> shape) {
  if (ArrayRef<int64_t>(tensor.shape) == shape)
    return success();
  return op->emitOpError() << what << " has shape " << shapeString(tensor.shape) << ", expected "
                           << shapeString(shape);
}

/// `positions` must hold one entry per token.
LogicalResult expectPositions(Operation *op, const Tensor &positions, int64_t tokens) {
  if (positions.numElements() == tokens)
    return success();
  return op->emitOpError() << "has " << positions.numElements() << " positions for " << tokens
                           << " tokens";
}

float roundWith(const llvm::fltSemantics &semantics, float value) {
  bool losesInfo = false;
  llvm::APFloat rounded(value);
  rounded.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &losesInfo);
  rounded.convert(llvm::APFloat::IEEEsingle(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
  return rounded.convertToFloat();
}

float roundScalar(float value, Type elementType) {
  Tensor one = Tensor::ofFloats({1}, {value});
  roundToElementType(one, elementType);
  return one.values[0];
}

/// Number of rows of `tensor` seen as [rows, last dimension].
int64_t rowsOf(const Tensor &tensor) {
  return product(ArrayRef<int64_t>(tensor.shape).drop_back());
}

LogicalResult checkNormParams(Operation *op, const Tensor &input, const Tensor &weight,
                              const Tensor *bias) {
  if (input.shape.empty())
    return op->emitOpError("input must have at least one dimension");
  int64_t hidden = input.shape.back();
  if (failed(expectShape(op, "weight", weight, {hidden})))
    return failure();
  return bias ? expectShape(op, "bias", *bias, {hidden}) : success();
}

} // namespace

std::string shapeString(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += ShapedType::isDynamic(shape[i]) ? std::string("?") : std::to_string(shape[i]);
  }
  return text + "]";
}

void roundToElementType(Tensor &tensor, Type elementType) {
  if (tensor.isInt || elementType.isF32() || !isa<FloatType>(elementType))
    return;
  if (elementType.isBF16()) {
    for (float &value : tensor.values)
      value = bf16ToFloat(floatToBf16(value));
  } else if (elementType.isF16()) {
    for (float &value : tensor.values)
      value = f16ToFloat(floatToF16(value));
  } else {
    const llvm::fltSemantics &semantics = cast<FloatType>(elementType).getFloatSemantics();
    for (float &value : tensor.values)
      value = roundWith(semantics, value);
  }
}

//===----------------------------------------------------------------------===//
// Embeddings, linear algebra, normalisation
//===----------------------------------------------------------------------===//

FailureOr<Tensor> embedding(Operation *op, const Tensor &table, const Tensor &ids) {
  if (failed(expectRank(op, "table", table, 2)) || failed(expectRank(op, "ids", ids, 1)))
    return failure();
  int64_t vocab = table.shape[0], hidden = table.shape[1];
  Tensor result = emptyLike(table, {ids.shape[0], hidden});
  for (int64_t t = 0; t < ids.shape[0]; ++t) {
    int64_t id = ids.ints[t];
    if (id < 0 || id >= vocab)
      return op->emitOpError() << "token id " << id << " (token " << t
                               << ") is out of range for vocabulary size " << vocab;
    appendRange(result, table, id * hidden, hidden);
  }
  return result;
}

FailureOr<Tensor> linear(Operation *op, const Tensor &input, const Tensor &weight,
                         const Tensor *bias) {
  if (failed(expectRank(op, "weight", weight, 2)))
    return failure();
  if (input.shape.empty())
    return op->emitOpError("input must have at least one dimension");
  int64_t outFeatures = weight.shape[0], inFeatures = weight.shape[1];
  if (input.shape.back() != inFeatures)
    return op->emitOpError() << "input " << shapeString(input.shape)
                             << " does not match weight [out, in] " << shapeString(weight.shape);
  if (bias && failed(expectShape(op, "bias", *bias, {outFeatures})))
    return failure();
  std::vector<int64_t> shape = input.shape;
  shape.back() = outFeatures;
  Tensor result = Tensor::zeros(shape);
  for (int64_t r = 0; r < rowsOf(input); ++r) {
    const float *x = input.values.data() + r * inFeatures;
    for (int64_t o = 0; o < outFeatures; ++o) {
      const float *w = weight.values.data() + o * inFeatures;
      double sum = bias ? bias->values[o] : 0.0;
      for (int64_t i = 0; i < inFeatures; ++i)
        sum += static_cast<double>(x[i]) * w[i];
      result.values[r * outFeatures + o] = static_cast<float>(sum);
    }
  }
  return result;
}

FailureOr<Tensor> matmul(Operation *op, const Tensor &lhs, const Tensor &rhs, bool transposeB) {
  size_t rank = lhs.shape.size();
  if (rank < 2 || rhs.shape.size() != rank)
    return op->emitOpError() << "operands " << shapeString(lhs.shape) << " and "
                             << shapeString(rhs.shape) << " must have equal rank >= 2";
  ArrayRef<int64_t> batch(lhs.shape.data(), rank - 2);
  int64_t m = lhs.shape[rank - 2], k = lhs.shape[rank - 1];
  int64_t n = transposeB ? rhs.shape[rank - 2] : rhs.shape[rank - 1];
  int64_t rhsK = transposeB ? rhs.shape[rank - 1] : rhs.shape[rank - 2];
  if (ArrayRef<int64_t>(rhs.shape.data(), rank - 2) != batch || rhsK != k)
    return op->emitOpError() << "operands " << shapeString(lhs.shape) << " and "
                             << shapeString(rhs.shape) << (transposeB ? " (transposed)" : "")
                             << " do not multiply";
  std::vector<int64_t> shape(batch.begin(), batch.end());
  shape.push_back(m);
  shape.push_back(n);
  Tensor result = Tensor::zeros(shape);
  for (int64_t b = 0; b < product(batch); ++b) {
    const float *a = lhs.values.data() + b * m * k;
    const float *c = rhs.values.data() + b * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (int64_t p = 0; p < k; ++p)
          sum += static_cast<double>(a[i * k + p]) * (transposeB ? c[j * k + p] : c[p * n + j]);
        result.values[(b * m + i) * n + j] = static_cast<float>(sum);
      }
  }
  return result;
}

FailureOr<Tensor> rmsNorm(Operation *op, const Tensor &input, const Tensor &weight,
                          double epsilon) {
  if (failed(checkNormParams(op, input, weight, nullptr)))
    return failure();
  int64_t hidden = input.shape.back();
  Tensor result = Tensor::zeros(input.shape);
  for (int64_t r = 0; r < rowsOf(input); ++r) {
    const float *x = input.values.data() + r * hidden;
    double sumSquares = 0.0;
    for (int64_t i = 0; i < hidden; ++i)
      sumSquares += static_cast<double>(x[i]) * x[i];
    double inverseRms = 1.0 / std::sqrt(sumSquares / hidden + epsilon);
    for (int64_t i = 0; i < hidden; ++i)
      result.values[r * hidden + i] = static_cast<float>(x[i] * inverseRms * weight.values[i]);
  }
  return result;
}

FailureOr<Tensor> layerNorm(Operation *op, const Tensor &input, const Tensor &weight,
                            const Tensor *bias, double epsilon) {
  if (failed(checkNormParams(op, input, weight, bias)))
    return failure();
  int64_t hidden = input.shape.back();
  Tensor result = Tensor::zeros(input.shape);
  for (int64_t r = 0; r < rowsOf(input); ++r) {
    const float *x = input.values.data() + r * hidden;
    double mean = 0.0;
    for (int64_t i = 0; i < hidden; ++i)
      mean += x[i];
    mean /= hidden;
    double variance = 0.0;
    for (int64_t i = 0; i < hidden; ++i)
      variance += (x[i] - mean) * (x[i] - mean);
    double inverseStd = 1.0 / std::sqrt(variance / hidden + epsilon);
    for (int64_t i = 0; i < hidden; ++i) {
      double y = (x[i] - mean) * inverseStd * weight.values[i];
      if (bias)
        y += bias->values[i];
      result.values[r * hidden + i] = static_cast<float>(y);
    }
  }
  return result;
}

//===----------------------------------------------------------------------===//
// RoPE and softmax
//===----------------------------------------------------------------------===//

std::vector<double> ropeInverseFrequencies(tfm::RopeAttr config) {
  int64_t rotaryDim = config.getRotaryDim();
  double theta = config.getTheta().convertToDouble();
  double factor = config.getFactor().convertToDouble();
  std::vector<double> inverseFrequencies(rotaryDim / 2);
  for (int64_t i = 0; i < rotaryDim / 2; ++i)
    inverseFrequencies[i] = std::pow(theta, -2.0 * i / rotaryDim);

  switch (config.getScaling()) {
  case tfm::RopeScaling::none:
    break;
  case tfm::RopeScaling::linear:
    // Dividing positions by `factor` is dividing every frequency by it.
    for (double &frequency : inverseFrequencies)
      frequency /= factor;
    break;
  case tfm::RopeScaling::llama3: {
    // transformers' _compute_llama3_parameters, term by term.
    double lowFreqFactor = config.getLowFreqFactor().convertToDouble();
    double highFreqFactor = config.getHighFreqFactor().convertToDouble();
    double oldContextLength = static_cast<double>(config.getOriginalMaxPosition());
    double lowFreqWavelength = oldContextLength / lowFreqFactor;
    double highFreqWavelength = oldContextLength / highFreqFactor;
    for (double &frequency : inverseFrequencies) {
      double wavelength = 2 * kPi / frequency;
      double scaled = wavelength > lowFreqWavelength ? frequency / factor : frequency;
      bool mediumFrequency =
          !(wavelength < highFreqWavelength) && !(wavelength > lowFreqWavelength);
      if (mediumFrequency) {
        double smooth =
            (oldContextLength / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
      }
      frequency = scaled;
    }
    break;
  }
  }
  return inverseFrequencies;
}

FailureOr<Tensor> rope(Operation *op, const Tensor &input, const Tensor &positions,
                       tfm::RopeAttr config) {
  if (failed(expectRank(op, "input", input, 3)) ||
      failed(expectPositions(op, positions, input.shape[0])))
    return failure();
  int64_t tokens = input.shape[0], heads = input.shape[1], headDim = input.shape[2];
  int64_t rotaryDim = config.getRotaryDim();
  if (rotaryDim > headDim || rotaryDim % 2 != 0)
    return op->emitOpError() << "rotary_dim " << rotaryDim << " does not fit head_dim " << headDim;
  std::vector<double> inverseFrequencies = ropeInverseFrequencies(config);
  bool neox = config.getStyle() == tfm::RopeStyle::neox;
  int64_t half = rotaryDim / 2;
  Tensor result = input;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float *x = input.values.data() + (t * heads + h) * headDim;
      float *y = result.values.data() + (t * heads + h) * headDim;
      for (int64_t i = 0; i < half; ++i) {
        double angle = positions.ints[t] * inverseFrequencies[i];
        double cosine = std::cos(angle), sine = std::sin(angle);
        // neox pairs (i, i + rotary_dim/2); gptj pairs (2i, 2i + 1).
        int64_t first = neox ? i : 2 * i, second = neox ? i + half : 2 * i + 1;
        double a = x[first], b = x[second];
        y[first] = static_cast<float>(a * cosine - b * sine);
        y[second] = static_cast<float>(b * cosine + a * sine);
      }
    }
  return result;
}

FailureOr<Tensor> softmax(Operation *op, const Tensor &input, int64_t axis) {
  if (axis < 0 || axis >= static_cast<int64_t>(input.shape.size()))
    return op->emitOpError() << "axis " << axis << " is out of range for shape "
                             << shapeString(input.shape);
  AxisView view = axisView(input, axis);
  Tensor result = Tensor::zeros(input.shape);
  for (int64_t o = 0; o < view.outer; ++o)
    for (int64_t i = 0; i < view.inner; ++i) {
      auto at = [&](int64_t j) { return (o * view.dim + j) * view.inner + i; };
      double maximum = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < view.dim; ++j)
        maximum = std::max(maximum, static_cast<double>(input.values[at(j)]));
      double sum = 0.0;
      for (int64_t j = 0; j < view.dim; ++j)
        sum += std::exp(input.values[at(j)] - maximum);
      for (int64_t j = 0; j < view.dim; ++j)
        result.values[at(j)] = static_cast<float>(std::exp(input.values[at(j)] - maximum) / sum);
    }
  return result;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

FailureOr<Tensor> add(Operation *op, const Tensor &lhs, const Tensor &rhs) {
  return broadcastBinary(op, lhs, rhs, [](double a, double b) { return a + b; });
}

FailureOr<Tensor> mul(Operation *op, const Tensor &lhs, const Tensor &rhs) {
  return broadcastBinary(op, lhs, rhs, [](double a, double b) { return a * b; });
}

Tensor silu(const Tensor &input) {
  return mapElements(input, [](double x) { return x / (1.0 + std::exp(-x)); });
}

Tensor gelu(const Tensor &input, bool tanhApproximation) {
  if (tanhApproximation)
    return mapElements(input, [](double x) {
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x)));
    });
  return mapElements(input,
                     [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); });
}

Tensor scale(const Tensor &input, double factor) {
  Tensor result = Tensor::zeros(input.shape);
  for (size_t i = 0; i < input.values.size(); ++i)
    result.values[i] = static_cast<float>(input.values[i] * factor);
  return result;
}

Tensor activation(const Tensor &input, tfm::Activation kind) {
  switch (kind) {
  case tfm::Activation::silu:
    return silu(input);
  case tfm::Activation::gelu:
    return gelu(input, /*tanhApproximation=*/false);
  case tfm::Activation::gelu_tanh:
    return gelu(input, /*tanhApproximation=*/true);
  }
  llvm_unreachable("unknown tfm::Activation");
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

FailureOr<Tensor> reshape(Operation *op, const Tensor &input, ArrayRef<int64_t> shape) {
  std::vector<int64_t> resolved(shape.begin(), shape.end());
  int64_t staticElements = 1;
  auto dynamicDim = resolved.end();
  for (auto it = resolved.begin(); it != resolved.end(); ++it) {
    if (!ShapedType::isDynamic(*it))
      staticElements *= *it;
    else if (dynamicDim == resolved.end())
      dynamicDim = it;
    else
      return op->emitOpError() << "cannot resolve more than one dynamic dimension of "
                               << shapeString(shape);
  }
  int64_t elements = input.numElements();
  if (dynamicDim != resolved.end() && staticElements != 0 && elements % staticElements == 0)
    *dynamicDim = elements / staticElements;
  if (dynamicDim != resolved.end() ? ShapedType::isDynamic(*dynamicDim)
                                   : staticElements != elements)
    return op->emitOpError() << "cannot reshape " << shapeString(input.shape) << " (" << elements
                             << " elements) to " << shapeString(shape);
  Tensor result = input;
  result.shape = std::move(resolved);
  return result;
}

Tensor transpose(const Tensor &input, ArrayRef<int64_t> permutation) {
  std::vector<int64_t> shape;
  for (int64_t dim : permutation)
    shape.push_back(input.shape[dim]);
  std::vector<int64_t> inputStrides = stridesOf(input.shape);
  Tensor result = emptyLike(input, shape);
  for (int64_t flat = 0; flat < input.numElements(); ++flat) {
    std::vector<int64_t> index = unflatten(flat, shape);
    int64_t source = 0;
    for (size_t i = 0; i < permutation.size(); ++i)
      source += index[i] * inputStrides[permutation[i]];
    appendRange(result, input, source, 1);
  }
  return result;
}

FailureOr<Tensor> concat(Operation *op, ArrayRef<const Tensor *> inputs, int64_t axis) {
  const Tensor &first = *inputs.front();
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (const Tensor *input : inputs) {
    std::vector<int64_t> expected = first.shape;
    expected[axis] = input->shape.size() == expected.size() ? input->shape[axis] : 0;
    if (input->shape != expected || input->isInt != first.isInt)
      return op->emitOpError() << "cannot concatenate " << shapeString(input->shape) << " to "
                               << shapeString(first.shape) << " along axis " << axis;
    shape[axis] += input->shape[axis];
  }
  Tensor result = emptyLike(first, shape);
  for (int64_t o = 0; o < axisView(first, axis).outer; ++o)
    for (const Tensor *input : inputs) {
      AxisView view = axisView(*input, axis);
      appendRange(result, *input, o * view.dim * view.inner, view.dim * view.inner);
    }
  return result;
}

FailureOr<Tensor> slice(Operation *op, const Tensor &input, int64_t axis, int64_t start,
                        int64_t size) {
  AxisView view = axisView(input, axis);
  if (start < 0 || size < 0 || start + size > view.dim)
    return op->emitOpError() << "range [" << start << ", " << start + size << ") exceeds dimension "
                             << axis << " of " << shapeString(input.shape);
  std::vector<int64_t> shape = input.shape;
  shape[axis] = size;
  Tensor result = emptyLike(input, shape);
  for (int64_t o = 0; o < view.outer; ++o)
    appendRange(result, input, (o * view.dim + start) * view.inner, size * view.inner);
  return result;
}

FailureOr<std::vector<Tensor>> split(Operation *op, const Tensor &input, int64_t axis,
                                     ArrayRef<int64_t> sizes) {
  std::vector<int64_t> resolved(sizes.begin(), sizes.end());
  int64_t known = 0, dynamicCount = 0;
  for (int64_t size : sizes) {
    if (ShapedType::isDynamic(size))
      ++dynamicCount;
    else
      known += size;
  }
  int64_t dim = input.shape[axis];
  if (dynamicCount > 1 || known > dim || (dynamicCount == 0 && known != dim))
    return op->emitOpError() << "cannot split dimension " << axis << " of "
                             << shapeString(input.shape) << " into " << shapeString(sizes);
  for (int64_t &size : resolved)
    if (ShapedType::isDynamic(size))
      size = dim - known;
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t size : resolved) {
    FailureOr<Tensor> piece = slice(op, input, axis, start, size);
    if (failed(piece))
      return failure();
    pieces.push_back(std::move(*piece));
    start += size;
  }
  return pieces;
}

Tensor repeatKv(const Tensor &input, int64_t axis, int64_t times) {
  AxisView view = axisView(input, axis);
  std::vector<int64_t> shape = input.shape;
  shape[axis] *= times;
  Tensor result = emptyLike(input, shape);
  for (int64_t o = 0; o < view.outer; ++o)
    for (int64_t j = 0; j < view.dim * times; ++j)
      appendRange(result, input, (o * view.dim + j / times) * view.inner, view.inner);
  return result;
}

//===----------------------------------------------------------------------===//
// Masks and biases
//===----------------------------------------------------------------------===//

FailureOr<Tensor> causalMask(Operation *op, const Tensor &scores, const Tensor &positions,
                             std::optional<int64_t> window) {
  size_t rank = scores.shape.size();
  if (rank < 2)
    return op->emitOpError() << "scores " << shapeString(scores.shape)
                             << " must be [..., queries, keys]";
  int64_t queries = scores.shape[rank - 2], keys = scores.shape[rank - 1];
  if (failed(expectPositions(op, positions, queries)))
    return failure();
  Tensor result = scores;
  for (int64_t flat = 0; flat < result.numElements(); ++flat) {
    int64_t s = flat % keys, position = positions.ints[(flat / keys) % queries];
    if (s > position || (window && s <= position - *window))
      result.values[flat] = -std::numeric_limits<float>::infinity();
  }
  return result;
}

std::vector<double> alibiSlopes(int64_t heads) {
  // transformers' build_alibi_tensor (Bloom): geometric slopes for the largest
  // power of two <= heads, then every other slope of twice as many heads.
  int64_t closestPowerOf2 = int64_t(1) << static_cast<int>(std::floor(std::log2(heads)));
  double base = std::pow(2.0, -std::pow(2.0, -(std::log2(closestPowerOf2) - 3)));
  std::vector<double> slopes;
  for (int64_t power = 1; power <= closestPowerOf2; ++power)
    slopes.push_back(std::pow(base, power));
  if (closestPowerOf2 != heads) {
    double extraBase = std::pow(2.0, -std::pow(2.0, -(std::log2(2 * closestPowerOf2) - 3)));
    int64_t remaining = std::min(closestPowerOf2, heads - closestPowerOf2);
    for (int64_t power = 1; power < 1 + 2 * remaining; power += 2)
      slopes.push_back(std::pow(extraBase, power));
  }
  return slopes;
}

FailureOr<Tensor> alibiBias(Operation *op, const Tensor &scores, const Tensor &positions) {
  if (failed(expectRank(op, "scores", scores, 3)) ||
      failed(expectPositions(op, positions, scores.shape[1])))
    return failure();
  int64_t heads = scores.shape[0], queries = scores.shape[1], keys = scores.shape[2];
  std::vector<double> slopes = alibiSlopes(heads);
  Tensor result = scores;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < queries; ++t)
      for (int64_t s = 0; s < keys; ++s) {
        float &score = result.values[(h * queries + t) * keys + s];
        score = static_cast<float>(score + slopes[h] * (s - positions.ints[t]));
      }
  return result;
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

namespace {

/// [rows, cols] values with [rows, cols / groupSize] scales.
LogicalResult checkGroups(Operation *op, const Tensor &values, int64_t groupSize) {
  if (failed(expectRank(op, "quantized tensor", values, 2)))
    return failure();
  if (groupSize <= 0 || values.shape[1] % groupSize != 0)
    return op->emitOpError() << "group_size " << groupSize << " does not divide the "
                             << values.shape[1] << " columns of " << shapeString(values.shape);
  return success();
}

} // namespace

FailureOr<Quantized> quantize(Operation *op, const Tensor &input, int64_t groupSize, Type valueType,
                              Type scaleType) {
  if (failed(checkGroups(op, input, groupSize)))
    return failure();
  double qmax;
  if (valueType.isInteger(8))
    qmax = 127;
  else if (valueType.isInteger(4))
    qmax = 7; // i4 holds [-8, 7]; symmetric quantization uses [-7, 7]
  else if (isa<Float8E4M3FNType>(valueType))
    qmax = 448;
  else
    return op->emitOpError() << "cannot quantize to " << valueType;
  int64_t rows = input.shape[0], cols = input.shape[1], groups = cols / groupSize;
  Quantized result{Tensor::zeros(input.shape), Tensor::zeros({rows, groups})};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const float *x = input.values.data() + r * cols + g * groupSize;
      double maxAbs = 0.0;
      for (int64_t i = 0; i < groupSize; ++i)
        maxAbs = std::max(maxAbs, std::fabs(static_cast<double>(x[i])));
      // The scale as the program stores it is the one the values are divided by.
      float scaleValue = roundScalar(static_cast<float>(maxAbs / qmax), scaleType);
      result.scales.values[r * groups + g] = scaleValue;
      float *q = result.values.values.data() + r * cols + g * groupSize;
      for (int64_t i = 0; i < groupSize; ++i) {
        double scaled = scaleValue == 0.0f ? 0.0 : x[i] / static_cast<double>(scaleValue);
        scaled = std::clamp(scaled, -qmax, qmax);
        q[i] = isa<FloatType>(valueType) ? roundScalar(static_cast<float>(scaled), valueType)
                                         : static_cast<float>(std::nearbyint(scaled));
      }
    }
  return result;
}

FailureOr<Tensor> dequantize(Operation *op, const Tensor &values, const Tensor &scales,
                             int64_t groupSize) {
  if (failed(checkGroups(op, values, groupSize)))
    return failure();
  int64_t rows = values.shape[0], cols = values.shape[1], groups = cols / groupSize;
  if (failed(expectShape(op, "scales", scales, {rows, groups})))
    return failure();
  Tensor result = Tensor::zeros(values.shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      result.values[r * cols + c] =
          static_cast<float>(static_cast<double>(values.values[r * cols + c]) *
                             scales.values[r * groups + c / groupSize]);
  return result;
}

} // namespace kiln::eval
