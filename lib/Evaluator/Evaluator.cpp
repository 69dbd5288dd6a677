//===- Evaluator.cpp - reference CPU evaluator for tfm programs -----------===//
//
// Walks @forward's ops in order, keeping every SSA value's Tensor for the
// step. Load-time ops (weights and their transforms) are evaluated once per
// session and cached. After each op its results are checked against their
// declared types (rank, static dimensions) and rounded to their element type.
//
//===----------------------------------------------------------------------===//

#include "kiln/Evaluator/Evaluator.h"

#include "Kernels.h"

#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Regex.h"

#include <cstring>
#include <map>
#include <optional>
#include <numeric>

using namespace mlir;

namespace kiln {

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

Tensor Tensor::ofFloats(std::vector<int64_t> shape, std::vector<float> values) {
  Tensor tensor;
  tensor.shape = std::move(shape);
  tensor.values = std::move(values);
  return tensor;
}

Tensor Tensor::ofInts(std::vector<int64_t> shape, std::vector<int32_t> ints) {
  Tensor tensor;
  tensor.shape = std::move(shape);
  tensor.ints = std::move(ints);
  tensor.isInt = true;
  return tensor;
}

Tensor Tensor::zeros(std::vector<int64_t> shape) {
  Tensor tensor;
  tensor.shape = std::move(shape);
  tensor.values.assign(tensor.numElements(), 0.0f);
  return tensor;
}

int64_t Tensor::numElements() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<>());
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

std::string locationName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location part : fused.getLocations())
      if (std::string name = locationName(part); !name.empty())
        return name;
  if (auto callSite = dyn_cast<CallSiteLoc>(loc))
    return locationName(callSite.getCallee());
  return "";
}

bool writeDumps(const std::string &file, const std::vector<DumpedValue> &dumps,
                std::string &error) {
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::string> opNames;
  for (const DumpedValue &dump : dumps) {
    opNames[dump.name] = dump.opName;
    std::vector<float> values(dump.value.numElements());
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = dump.value.at(i);
    TensorToWrite tensor{dump.name, DType::F32, dump.value.shape,
                         std::vector<uint8_t>(values.size() * sizeof(float))};
    if (!values.empty())
      std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
    tensors.push_back(std::move(tensor));
  }
  return writeSafetensors(file, tensors, opNames, error);
}

namespace {

using ValuePtr = std::shared_ptr<const Tensor>;
using Results = FailureOr<SmallVector<Tensor>>;

/// i32 tensors (ids, positions) keep integer elements; all others floats.
bool holdsInts(Type elementType) { return elementType.isInteger(32); }

/// The safetensors dtype that stores `elementType` exactly.
std::optional<DType> checkpointDType(Type elementType) {
  if (elementType.isF32())
    return DType::F32;
  if (elementType.isF16())
    return DType::F16;
  if (elementType.isBF16())
    return DType::BF16;
  if (elementType.isF64())
    return DType::F64;
  if (isa<Float8E4M3FNType>(elementType))
    return DType::F8_E4M3;
  if (isa<Float8E5M2Type>(elementType))
    return DType::F8_E5M2;
  auto integer = dyn_cast<IntegerType>(elementType);
  if (!integer)
    return std::nullopt;
  if (integer.isUnsigned())
    return integer.getWidth() == 8 ? std::optional(DType::U8) : std::nullopt;
  switch (integer.getWidth()) {
  case 1:
    return DType::Bool;
  case 8:
    return DType::I8;
  case 16:
    return DType::I16;
  case 32:
    return DType::I32;
  case 64:
    return DType::I64;
  default:
    return std::nullopt;
  }
}

/// The checkpoint holds `op`'s tensor with the declared dtype and shape.
LogicalResult checkWeight(tfm::WeightOp op, const Checkpoint &checkpoint) {
  std::string name = op.getName().str();
  const TensorInfo *info = checkpoint.find(name);
  if (!info)
    return op.emitOpError() << "weight '" << name << "' is not in the checkpoint "
                            << checkpoint.location;
  RankedTensorType type = op.getType();
  std::optional<DType> dtype = checkpointDType(type.getElementType());
  if (!dtype)
    return op.emitOpError() << "weight '" << name << "' has element type " << type.getElementType()
                            << ", which a safetensors checkpoint cannot hold";
  if (*dtype != info->dtype || ArrayRef<int64_t>(info->shape) != type.getShape())
    return op.emitOpError() << "weight '" << name << "' is " << dtypeName(info->dtype) << " "
                            << eval::shapeString(info->shape) << " in " << info->file
                            << ", but the program declares " << type;
  return success();
}

/// The runtime shape fits the declared type: same rank, same static sizes.
LogicalResult checkResult(Operation *op, unsigned index, const Tensor &tensor) {
  auto type = cast<RankedTensorType>(op->getResult(index).getType());
  bool fits = type.getRank() == static_cast<int64_t>(tensor.shape.size()) &&
              tensor.isInt == holdsInts(type.getElementType());
  for (size_t i = 0; fits && i < tensor.shape.size(); ++i)
    fits = type.isDynamicDim(i) || type.getDimSize(i) == tensor.shape[i];
  if (fits)
    return success();
  return op->emitOpError() << "result #" << index << " has runtime shape "
                           << eval::shapeString(tensor.shape)
                           << (tensor.isInt ? " of integers" : "") << ", which does not fit "
                           << type;
}

Results single(FailureOr<Tensor> tensor) {
  if (failed(tensor))
    return failure();
  SmallVector<Tensor> results;
  results.push_back(std::move(*tensor));
  return results;
}

Results pair(FailureOr<Tensor> first, FailureOr<Tensor> second) {
  if (failed(first) || failed(second))
    return failure();
  SmallVector<Tensor> results;
  results.push_back(std::move(*first));
  results.push_back(std::move(*second));
  return results;
}

/// A single-rank evaluator runs a 1-rank collective as the identity.
Results singleRankCollective(Operation *op, int64_t ranks, const Tensor &input) {
  if (ranks != 1)
    return op->emitOpError() << "spans " << ranks
                             << " ranks; the reference evaluator runs a single rank";
  return single(input);
}

struct LayerCache {
  Tensor keys, values; // [S, KVH, D]
};

} // namespace

//===----------------------------------------------------------------------===//
// The session
//===----------------------------------------------------------------------===//

struct EvalSession::Impl {
  Impl(func::FuncOp forward, const Checkpoint &checkpoint)
      : forward(forward), checkpoint(checkpoint), reader(this->checkpoint) {}

  FailureOr<Tensor> step(ArrayRef<int32_t> ids, ArrayRef<int32_t> positions);

  using Env = llvm::DenseMap<Value, ValuePtr>;

  FailureOr<Tensor> run(ArrayRef<int32_t> ids, ArrayRef<int32_t> positions, int64_t stepIndex);
  /// `op`'s results, from the load-time cache when it has them.
  FailureOr<SmallVector<ValuePtr>> results(Operation *op, Env &env);
  Results evaluate(Operation *op, Env &env);
  FailureOr<Tensor> loadWeight(tfm::WeightOp op);
  LogicalResult appendKv(Operation *op, int64_t layer, const Tensor &keys, const Tensor &values);
  Results readKv(Operation *op, int64_t layer);
  FailureOr<Tensor> attention(tfm::AttentionOp op, const Tensor &qkv, const Tensor &positions);
  void record(Operation *op, ArrayRef<ValuePtr> values, int64_t stepIndex,
              llvm::StringMap<int> &namesSeen);

  func::FuncOp forward;
  Checkpoint checkpoint;
  TensorReader reader;
  llvm::DenseMap<Operation *, SmallVector<ValuePtr>> loadTimeValues;
  std::map<int64_t, LayerCache> kvCache;
  std::optional<llvm::Regex> dumpFilter;
  std::vector<DumpedValue> dumps;
  int64_t steps = 0;
};

FailureOr<Tensor> EvalSession::Impl::step(ArrayRef<int32_t> ids, ArrayRef<int32_t> positions) {
  int64_t stepIndex = steps++;
  if (ids.empty() || ids.size() != positions.size())
    return emitError(forward.getLoc())
           << "a step needs at least one token and one position per token, got " << ids.size()
           << " ids and " << positions.size() << " positions";
  std::map<int64_t, LayerCache> cacheBefore = kvCache;
  FailureOr<Tensor> logits = run(ids, positions, stepIndex);
  if (failed(logits))
    kvCache = std::move(cacheBefore);
  return logits;
}

FailureOr<Tensor> EvalSession::Impl::run(ArrayRef<int32_t> ids, ArrayRef<int32_t> positions,
                                         int64_t stepIndex) {
  Block &body = forward.getBody().front();
  int64_t tokens = static_cast<int64_t>(ids.size());
  Env env;
  env[body.getArgument(0)] = std::make_shared<const Tensor>(
      Tensor::ofInts({tokens}, std::vector<int32_t>(ids.begin(), ids.end())));
  env[body.getArgument(1)] = std::make_shared<const Tensor>(
      Tensor::ofInts({tokens}, std::vector<int32_t>(positions.begin(), positions.end())));
  llvm::StringMap<int> namesSeen;
  for (Operation &op : body) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      const Tensor &logits = *env.lookup(ret.getOperand(0));
      if (logits.isInt || logits.shape.size() != 2 || logits.shape[0] != tokens)
        return ret.emitOpError() << "returns " << eval::shapeString(logits.shape)
                                 << "; the logits must be [" << tokens << ", vocab] floats";
      return logits;
    }
    FailureOr<SmallVector<ValuePtr>> values = results(&op, env);
    if (failed(values))
      return failure();
    for (auto [result, value] : llvm::zip(op.getResults(), *values))
      env[result] = value;
    if (dumpFilter && !op.hasTrait<tfm::LoadTimeTrait>())
      record(&op, *values, stepIndex, namesSeen);
  }
  return forward.emitOpError("has no func.return");
}

FailureOr<SmallVector<ValuePtr>> EvalSession::Impl::results(Operation *op, Env &env) {
  bool loadTime = op->hasTrait<tfm::LoadTimeTrait>();
  if (loadTime)
    if (auto cached = loadTimeValues.find(op); cached != loadTimeValues.end())
      return cached->second;
  Results tensors = evaluate(op, env);
  if (failed(tensors))
    return failure();
  if (tensors->size() != op->getNumResults())
    return op->emitOpError() << "evaluated to " << tensors->size() << " values for "
                             << op->getNumResults() << " results";
  SmallVector<ValuePtr> values;
  for (auto [index, tensor] : llvm::enumerate(*tensors)) {
    if (failed(checkResult(op, index, tensor)))
      return failure();
    eval::roundToElementType(tensor, getElementTypeOrSelf(op->getResult(index).getType()));
    values.push_back(std::make_shared<const Tensor>(std::move(tensor)));
  }
  if (loadTime)
    loadTimeValues[op] = values;
  return values;
}

Results EvalSession::Impl::evaluate(Operation *op, Env &env) {
  auto in = [&](Value value) -> const Tensor & { return *env.lookup(value); };
  auto optional = [&](Value value) -> const Tensor * { return value ? &in(value) : nullptr; };
  auto all = [&](ValueRange values) {
    SmallVector<const Tensor *> tensors;
    for (Value value : values)
      tensors.push_back(&in(value));
    return tensors;
  };
  auto epsilonOf = [](auto normOp) { return normOp.getEpsilon().convertToDouble(); };
  auto elementTypeOf = [](Value value) { return getElementTypeOrSelf(value.getType()); };

  return llvm::TypeSwitch<Operation *, Results>(op)
      // Weights and their load-time transforms.
      .Case([&](tfm::WeightOp weight) { return single(loadWeight(weight)); })
      .Case([&](tfm::WeightConcatOp concat) {
        return single(eval::concat(op, all(concat.getInputs()), concat.getAxis()));
      })
      // The conversion itself is the rounding every result gets.
      .Case([&](tfm::WeightCastOp cast) { return single(in(cast.getInput())); })
      // Embeddings, linear algebra, normalisation.
      .Case([&](tfm::EmbeddingOp embedding) {
        return single(eval::embedding(op, in(embedding.getTable()), in(embedding.getIds())));
      })
      .Case([&](tfm::LinearOp linear) {
        return single(eval::linear(op, in(linear.getInput()), in(linear.getWeight()),
                                   optional(linear.getBias())));
      })
      .Case([&](tfm::MatmulOp matmul) {
        return single(
            eval::matmul(op, in(matmul.getLhs()), in(matmul.getRhs()), matmul.getTransposeB()));
      })
      .Case([&](tfm::RmsNormOp norm) {
        return single(
            eval::rmsNorm(op, in(norm.getInput()), in(norm.getWeight()), epsilonOf(norm)));
      })
      .Case([&](tfm::LayerNormOp norm) {
        return single(eval::layerNorm(op, in(norm.getInput()), in(norm.getWeight()),
                                      optional(norm.getBias()), epsilonOf(norm)));
      })
      .Case([&](tfm::RopeOp rope) {
        return single(
            eval::rope(op, in(rope.getInput()), in(rope.getPositions()), rope.getConfig()));
      })
      .Case([&](tfm::SoftmaxOp softmax) {
        return single(eval::softmax(op, in(softmax.getInput()), softmax.getAxis()));
      })
      // Elementwise.
      .Case(
          [&](tfm::AddOp add) { return single(eval::add(op, in(add.getLhs()), in(add.getRhs()))); })
      .Case(
          [&](tfm::MulOp mul) { return single(eval::mul(op, in(mul.getLhs()), in(mul.getRhs()))); })
      .Case([&](tfm::SiluOp silu) { return single(eval::silu(in(silu.getInput()))); })
      .Case([&](tfm::GeluOp gelu) {
        return single(eval::gelu(in(gelu.getInput()),
                                 gelu.getApproximation() == tfm::GeluApproximation::tanh));
      })
      .Case([&](tfm::ScaleOp scale) {
        return single(eval::scale(in(scale.getInput()), scale.getFactor().convertToDouble()));
      })
      // Shape ops.
      .Case([&](tfm::ReshapeOp reshape) {
        return single(eval::reshape(op, in(reshape.getInput()), reshape.getType().getShape()));
      })
      .Case([&](tfm::TransposeOp transpose) {
        return single(eval::transpose(in(transpose.getInput()), transpose.getPermutation()));
      })
      .Case([&](tfm::ConcatOp concat) {
        return single(eval::concat(op, all(concat.getInputs()), concat.getAxis()));
      })
      .Case([&](tfm::SplitOp split) -> Results {
        SmallVector<int64_t> sizes;
        for (Type type : split.getResultTypes())
          sizes.push_back(cast<RankedTensorType>(type).getDimSize(split.getAxis()));
        FailureOr<std::vector<Tensor>> pieces =
            eval::split(op, in(split.getInput()), split.getAxis(), sizes);
        if (failed(pieces))
          return failure();
        return SmallVector<Tensor>(std::make_move_iterator(pieces->begin()),
                                   std::make_move_iterator(pieces->end()));
      })
      .Case([&](tfm::SliceOp slice) {
        return single(eval::slice(op, in(slice.getInput()), slice.getAxis(), slice.getStart(),
                                  slice.getSize()));
      })
      .Case([&](tfm::RepeatKvOp repeat) {
        return single(eval::repeatKv(in(repeat.getInput()), repeat.getAxis(), repeat.getTimes()));
      })
      // KV cache, masks, biases.
      .Case([&](tfm::KVCacheAppendOp append) -> Results {
        if (failed(appendKv(op, append.getLayer(), in(append.getKeys()), in(append.getValues()))))
          return failure();
        return SmallVector<Tensor>();
      })
      .Case([&](tfm::KVCacheReadOp read) { return readKv(op, read.getLayer()); })
      .Case([&](tfm::CausalMaskOp mask) {
        return single(
            eval::causalMask(op, in(mask.getScores()), in(mask.getPositions()), mask.getWindow()));
      })
      .Case([&](tfm::AlibiBiasOp alibi) {
        return single(eval::alibiBias(op, in(alibi.getScores()), in(alibi.getPositions())));
      })
      // Quantization.
      .Case([&](tfm::QuantizeOp quantize) -> Results {
        FailureOr<eval::Quantized> quantized = eval::quantize(
            op, in(quantize.getInput()), quantize.getGroupSize(),
            elementTypeOf(quantize.getValues()), elementTypeOf(quantize.getScales()));
        if (failed(quantized))
          return failure();
        return pair(std::move(quantized->values), std::move(quantized->scales));
      })
      .Case([&](tfm::DequantizeOp dequantize) {
        return single(eval::dequantize(op, in(dequantize.getValues()), in(dequantize.getScales()),
                                       dequantize.getGroupSize()));
      })
      // Fused / kernel level.
      .Case([&](tfm::PackedQkvLinearOp linear) {
        return single(eval::linear(op, in(linear.getInput()), in(linear.getWeight()),
                                   optional(linear.getBias())));
      })
      .Case([&](tfm::AttentionOp attention) {
        return single(
            this->attention(attention, in(attention.getQkv()), in(attention.getPositions())));
      })
      .Case([&](tfm::AddRmsNormOp norm) -> Results {
        FailureOr<Tensor> sum = eval::add(op, in(norm.getInput()), in(norm.getResidual()));
        if (failed(sum))
          return failure();
        // The norm reads the sum as the program stores it.
        eval::roundToElementType(*sum, elementTypeOf(norm.getSum()));
        return pair(*sum, eval::rmsNorm(op, *sum, in(norm.getWeight()), epsilonOf(norm)));
      })
      .Case([&](tfm::AddLayerNormOp norm) -> Results {
        FailureOr<Tensor> sum = eval::add(op, in(norm.getInput()), in(norm.getResidual()));
        if (failed(sum))
          return failure();
        eval::roundToElementType(*sum, elementTypeOf(norm.getSum()));
        return pair(*sum, eval::layerNorm(op, *sum, in(norm.getWeight()), optional(norm.getBias()),
                                          epsilonOf(norm)));
      })
      .Case([&](tfm::GatedMlpOp mlp) -> Results {
        // One linear over the packed [gate; up] rows, then the two halves, each
        // rounded as the graph-level linear/activation/mul chain would be.
        Type elementType = elementTypeOf(mlp.getResult());
        FailureOr<Tensor> gateUp =
            eval::linear(op, in(mlp.getInput()), in(mlp.getWeight()), optional(mlp.getBias()));
        if (failed(gateUp))
          return failure();
        eval::roundToElementType(*gateUp, elementType);
        int64_t axis = static_cast<int64_t>(gateUp->shape.size()) - 1;
        int64_t intermediate = gateUp->shape[axis] / 2;
        FailureOr<Tensor> gate = eval::slice(op, *gateUp, axis, 0, intermediate);
        FailureOr<Tensor> up = eval::slice(op, *gateUp, axis, intermediate, intermediate);
        if (failed(gate) || failed(up))
          return failure();
        Tensor activated = eval::activation(*gate, mlp.getActivation());
        eval::roundToElementType(activated, elementType);
        return single(eval::mul(op, activated, *up));
      })
      .Case([&](tfm::QuantizedLinearOp linear) -> Results {
        FailureOr<Tensor> weight = eval::dequantize(op, in(linear.getWeight()),
                                                    in(linear.getScales()), linear.getGroupSize());
        if (failed(weight))
          return failure();
        eval::roundToElementType(*weight, elementTypeOf(linear.getInput()));
        return single(eval::linear(op, in(linear.getInput()), *weight, optional(linear.getBias())));
      })
      .Case([&](tfm::AllReduceOp reduce) {
        return singleRankCollective(op, reduce.getRanks(), in(reduce.getInput()));
      })
      .Case([&](tfm::AllGatherOp gather) {
        return singleRankCollective(op, gather.getRanks(), in(gather.getInput()));
      })
      .Default([&](Operation *) -> Results {
        return op->emitOpError("is not supported by the reference evaluator");
      });
}

FailureOr<Tensor> EvalSession::Impl::loadWeight(tfm::WeightOp op) {
  std::string name = op.getName().str();
  Tensor tensor;
  tensor.shape.assign(op.getType().getShape().begin(), op.getType().getShape().end());
  std::string error;
  bool read;
  if (holdsInts(op.getType().getElementType())) {
    std::vector<int64_t> ints;
    read = reader.readAsInt64(name, ints, error);
    tensor.ints.assign(ints.begin(), ints.end());
    tensor.isInt = true;
  } else {
    read = reader.readAsFloat32(name, tensor.values, error);
  }
  if (!read)
    return op.emitOpError() << "cannot read weight '" << name << "': " << error;
  return tensor;
}

LogicalResult EvalSession::Impl::appendKv(Operation *op, int64_t layer, const Tensor &keys,
                                          const Tensor &values) {
  if (keys.shape.size() != 3 || keys.shape != values.shape)
    return op->emitOpError() << "keys " << eval::shapeString(keys.shape) << " and values "
                             << eval::shapeString(values.shape)
                             << " must both be [tokens, kv_heads, head_dim]";
  auto [cache, isNew] = kvCache.try_emplace(layer, LayerCache{keys, values});
  if (isNew)
    return success();
  FailureOr<Tensor> allKeys = eval::concat(op, {&cache->second.keys, &keys}, 0);
  FailureOr<Tensor> allValues = eval::concat(op, {&cache->second.values, &values}, 0);
  if (failed(allKeys) || failed(allValues))
    return failure();
  cache->second = LayerCache{std::move(*allKeys), std::move(*allValues)};
  return success();
}

Results EvalSession::Impl::readKv(Operation *op, int64_t layer) {
  auto cache = kvCache.find(layer);
  if (cache == kvCache.end())
    return op->emitOpError() << "reads layer " << layer
                             << "'s KV cache before anything was appended to it";
  return pair(cache->second.keys, cache->second.values);
}

FailureOr<Tensor> EvalSession::Impl::attention(tfm::AttentionOp op, const Tensor &qkv,
                                               const Tensor &positions) {
  // The graph-level spelling of dialects/tfm/README.md, step by step, each
  // step rounded to the program's element type as its own op would be.
  Operation *at = op;
  Type elementType = op.getResult().getType().getElementType();
  auto rounded = [&](FailureOr<Tensor> tensor) {
    if (succeeded(tensor))
      eval::roundToElementType(*tensor, elementType);
    return tensor;
  };
  int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads(), headDim = op.getHeadDim();
  if (qkv.shape.size() != 2 || qkv.shape[1] != (heads + 2 * kvHeads) * headDim)
    return op.emitOpError() << "qkv has shape " << eval::shapeString(qkv.shape)
                            << ", expected [tokens, " << (heads + 2 * kvHeads) * headDim << "]";
  auto headsOf = [&](int64_t firstHead, int64_t count) -> FailureOr<Tensor> {
    FailureOr<Tensor> columns = eval::slice(at, qkv, 1, firstHead * headDim, count * headDim);
    if (failed(columns))
      return failure();
    return eval::reshape(at, *columns, {ShapedType::kDynamic, count, headDim});
  };
  FailureOr<Tensor> q = headsOf(0, heads);
  FailureOr<Tensor> k = headsOf(heads, kvHeads);
  FailureOr<Tensor> v = headsOf(heads + kvHeads, kvHeads);
  if (failed(q) || failed(k) || failed(v))
    return failure();
  if (tfm::RopeAttr rope = op.getRopeAttr()) {
    q = rounded(eval::rope(at, *q, positions, rope));
    k = rounded(eval::rope(at, *k, positions, rope));
    if (failed(q) || failed(k))
      return failure();
  }
  if (failed(appendKv(at, op.getLayer(), *k, *v)))
    return failure();
  const LayerCache &cache = kvCache.at(op.getLayer());
  Tensor keys = eval::repeatKv(cache.keys, 1, heads / kvHeads);
  Tensor values = eval::repeatKv(cache.values, 1, heads / kvHeads);

  const std::vector<int64_t> headsFirst = {1, 0, 2};
  FailureOr<Tensor> scores = rounded(
      eval::matmul(at, eval::transpose(*q, headsFirst), eval::transpose(keys, headsFirst), true));
  if (failed(scores))
    return failure();
  scores = rounded(eval::scale(*scores, op.getScale().convertToDouble()));
  if (op.getAlibi())
    scores = rounded(eval::alibiBias(at, *scores, positions));
  if (succeeded(scores))
    scores = eval::causalMask(at, *scores, positions, op.getWindow());
  if (succeeded(scores))
    scores = rounded(eval::softmax(at, *scores, 2));
  if (failed(scores))
    return failure();
  FailureOr<Tensor> out = eval::matmul(at, *scores, eval::transpose(values, headsFirst), false);
  if (failed(out))
    return failure();
  return eval::reshape(at, eval::transpose(*out, headsFirst),
                       {ShapedType::kDynamic, heads * headDim});
}

void EvalSession::Impl::record(Operation *op, ArrayRef<ValuePtr> values, int64_t stepIndex,
                               llvm::StringMap<int> &namesSeen) {
  std::string name = locationName(op->getLoc());
  if (name.empty() || !dumpFilter->match(name))
    return;
  // `~<n>` tells apart the ops of a step that share a location name, `#<i>`
  // the results of one op.
  std::string key = "step" + std::to_string(stepIndex) + "/" + name;
  if (int repeats = namesSeen[name]++)
    key += "~" + std::to_string(repeats);
  for (auto [index, value] : llvm::enumerate(values))
    dumps.push_back({values.size() > 1 ? key + "#" + std::to_string(index) : key,
                     op->getName().getStringRef().str(), *value});
}

//===----------------------------------------------------------------------===//
// EvalSession
//===----------------------------------------------------------------------===//

EvalSession::EvalSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EvalSession::~EvalSession() = default;

FailureOr<std::unique_ptr<EvalSession>> EvalSession::create(ModuleOp module,
                                                            const Checkpoint &checkpoint) {
  if (failed(verify(module)))
    return failure();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal())
    return emitError(module.getLoc()) << "the module has no func.func @forward with a body";
  FunctionType type = forward.getFunctionType();
  auto isIdVector = [](Type type) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    return tensor && tensor.getRank() == 1 && tensor.getElementType().isInteger(32);
  };
  if (type.getNumInputs() != 2 || !isIdVector(type.getInput(0)) || !isIdVector(type.getInput(1)) ||
      type.getNumResults() != 1)
    return forward.emitOpError()
           << "must take (%input_ids: tensor<?xi32>, %positions: tensor<?xi32>) and return "
              "the logits, got "
           << type;
  if (!llvm::hasSingleElement(forward.getBody()))
    return forward.emitOpError("must have a single block");
  bool weightsMatch = true;
  forward.walk(
      [&](tfm::WeightOp weight) { weightsMatch &= succeeded(checkWeight(weight, checkpoint)); });
  if (!weightsMatch)
    return failure();
  return std::unique_ptr<EvalSession>(new EvalSession(std::make_unique<Impl>(forward, checkpoint)));
}

FailureOr<Tensor> EvalSession::step(ArrayRef<int32_t> ids, ArrayRef<int32_t> positions) {
  return impl_->step(ids, positions);
}

LogicalResult EvalSession::setDumpFilter(StringRef regex) {
  llvm::Regex filter(regex);
  std::string error;
  if (!filter.isValid(error))
    return emitError(impl_->forward.getLoc())
           << "invalid dump filter regex '" << regex << "': " << error;
  impl_->dumpFilter = std::move(filter);
  return success();
}

const std::vector<DumpedValue> &EvalSession::dumps() const { return impl_->dumps; }

int64_t EvalSession::stepsRun() const { return impl_->steps; }

} // namespace kiln
