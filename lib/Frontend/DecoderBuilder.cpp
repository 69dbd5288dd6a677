//===- DecoderBuilder.cpp - tfm IR for a decoder-only model ---------------===//
//
// One builder for every architecture: the ModelDescription says which norm,
// MLP, residual wiring, q/k/v layout and position scheme a layer uses. Ops
// carry the checkpoint module they come from as a NameLoc
// (loc("model.layers.0.self_attn.q_proj")) so that later stages can name
// them.
//
//===----------------------------------------------------------------------===//

#include "DecoderBuilder.h"

#include "WeightBinder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"

#include <cmath>

using namespace mlir;
using namespace kiln;

namespace {

constexpr int64_t kDynamic = ShapedType::kDynamic;

class DecoderBuilder {
public:
  DecoderBuilder(const ModelDescription &model, WeightBinder &weights,
                 ImplicitLocOpBuilder &builder, Type activationType)
      : model_(model), weights_(weights), builder_(builder), activationType_(activationType) {}

  /// The body of @forward: logits of `ids` at `positions`.
  Value build(Value ids, Value positions);

private:
  RankedTensorType tensor(ArrayRef<int64_t> shape) const {
    return RankedTensorType::get(shape, activationType_);
  }
  /// Names the ops built from here on after checkpoint module `path`.
  void at(StringRef path) { builder_.setLoc(NameLoc::get(builder_.getStringAttr(path))); }
  Value weight(const std::string &module, StringRef kind, ArrayRef<int64_t> shape,
               ArrayRef<std::string> aliases = {}) {
    return weights_.bind(builder_, module + "." + kind.str(), shape, aliases);
  }

  Value linear(Value input, const std::string &module, int64_t out, int64_t in, bool bias);
  Value norm(Value input, const std::string &module);
  Value activation(Value input);
  Value reshape(Value input, ArrayRef<int64_t> shape);
  Value transposeHeads(Value input);
  Value attention(Value input, int64_t layer, const std::string &prefix);
  Value mlp(Value input, const std::string &prefix);
  Value decoderLayer(Value hidden, int64_t layer);

  const ModelDescription &model_;
  WeightBinder &weights_;
  ImplicitLocOpBuilder &builder_;
  Type activationType_;
  Value positions_;
};

Value DecoderBuilder::linear(Value input, const std::string &module, int64_t out, int64_t in,
                             bool bias) {
  at(module);
  Value weightValue = weight(module, "weight", {out, in});
  Value biasValue = bias ? weight(module, "bias", {out}) : Value();
  return tfm::LinearOp::create(builder_, tensor({kDynamic, out}), input, weightValue, biasValue);
}

Value DecoderBuilder::norm(Value input, const std::string &module) {
  at(module);
  int64_t hidden = model_.hiddenSize;
  Value scale = weight(module, "weight", {hidden});
  APFloat epsilon(model_.normEpsilon);
  if (model_.norm == NormKind::RmsNorm)
    return tfm::RmsNormOp::create(builder_, input.getType(), input, scale, epsilon);
  Value bias = weight(module, "bias", {hidden});
  return tfm::LayerNormOp::create(builder_, input.getType(), input, scale, bias, epsilon);
}

Value DecoderBuilder::activation(Value input) {
  switch (model_.activation) {
  case tfm::Activation::silu:
    return tfm::SiluOp::create(builder_, input);
  case tfm::Activation::gelu:
    return tfm::GeluOp::create(builder_, input, tfm::GeluApproximation::none);
  case tfm::Activation::gelu_tanh:
    return tfm::GeluOp::create(builder_, input, tfm::GeluApproximation::tanh);
  }
  llvm_unreachable("unknown activation");
}

Value DecoderBuilder::reshape(Value input, ArrayRef<int64_t> shape) {
  return tfm::ReshapeOp::create(builder_, tensor(shape), input);
}

/// [A, B, D] -> [B, A, D]: tokens-major to heads-major and back.
Value DecoderBuilder::transposeHeads(Value input) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(input.getType()).getShape();
  return tfm::TransposeOp::create(builder_, tensor({shape[1], shape[0], shape[2]}), input,
                                  ArrayRef<int64_t>{1, 0, 2});
}

/// Self-attention as dialects/tfm/README.md spells it.
Value DecoderBuilder::attention(Value input, int64_t layer, const std::string &prefix) {
  const TensorNames &names = model_.names;
  int64_t heads = model_.numHeads, kvHeads = model_.numKvHeads, headDim = model_.headDim;
  int64_t group = heads / kvHeads;
  std::string module = prefix + names.attentionOut.rsplit('.').first.str();

  Value query, key, value;
  if (model_.qkvLayout == QkvLayout::Separate) {
    query = linear(input, prefix + names.query.str(), heads * headDim, model_.hiddenSize,
                   model_.qkvBias);
    key = linear(input, prefix + names.key.str(), kvHeads * headDim, model_.hiddenSize,
                 model_.qkvBias);
    value = linear(input, prefix + names.value.str(), kvHeads * headDim, model_.hiddenSize,
                   model_.qkvBias);
    at(module);
    query = reshape(query, {kDynamic, heads, headDim});
    key = reshape(key, {kDynamic, kvHeads, headDim});
    value = reshape(value, {kDynamic, kvHeads, headDim});
  } else {
    // Rows grouped per kv head: [KVH, G + 2, D] = G query heads, key, value.
    Value packed = linear(input, prefix + names.qkv.str(), (heads + 2 * kvHeads) * headDim,
                          model_.hiddenSize, model_.qkvBias);
    at(module);
    Value grouped = reshape(packed, {kDynamic, kvHeads, (group + 2) * headDim});
    auto slice = [&](int64_t start, int64_t size) -> Value {
      return tfm::SliceOp::create(builder_, tensor({kDynamic, kvHeads, size}), grouped, 2, start,
                                  size);
    };
    query = slice(0, group * headDim);
    if (group > 1)
      query = reshape(query, {kDynamic, heads, headDim});
    key = slice(group * headDim, headDim);
    value = slice((group + 1) * headDim, headDim);
  }

  if (model_.rope) {
    const RopeDescription &rope = *model_.rope;
    auto config =
        tfm::RopeAttr::get(builder_.getContext(), rope.style, rope.rotaryDim, APFloat(rope.theta),
                           rope.scaling, APFloat(rope.factor), APFloat(rope.lowFreqFactor),
                           APFloat(rope.highFreqFactor), rope.originalMaxPosition);
    query = tfm::RopeOp::create(builder_, query.getType(), query, positions_, config);
    key = tfm::RopeOp::create(builder_, key.getType(), key, positions_, config);
  }

  tfm::KVCacheAppendOp::create(builder_, layer, key, value);
  RankedTensorType cached = tensor({kDynamic, kvHeads, headDim});
  auto read = tfm::KVCacheReadOp::create(builder_, cached, cached, layer);
  Value keys = read.getKeys(), values = read.getValues();
  if (group > 1) {
    RankedTensorType repeated = tensor({kDynamic, heads, headDim});
    keys = tfm::RepeatKvOp::create(builder_, repeated, keys, 1, group);
    values = tfm::RepeatKvOp::create(builder_, repeated, values, 1, group);
  }

  // One statement per op: argument evaluation order would make op order
  // compiler-dependent.
  Value queryByHead = transposeHeads(query);
  Value keysByHead = transposeHeads(keys);
  Value valuesByHead = transposeHeads(values);
  RankedTensorType scoresType = tensor({heads, kDynamic, kDynamic});
  Value scores = tfm::MatmulOp::create(builder_, scoresType, queryByHead, keysByHead,
                                       /*transpose_b=*/true);
  scores = tfm::ScaleOp::create(builder_, scores,
                                APFloat(1.0 / std::sqrt(static_cast<double>(headDim))));
  if (model_.alibi)
    scores = tfm::AlibiBiasOp::create(builder_, scoresType, scores, positions_);
  IntegerAttr window;
  if (!model_.slidingWindows.empty() && model_.slidingWindows[layer])
    window = builder_.getI64IntegerAttr(*model_.slidingWindows[layer]);
  scores = tfm::CausalMaskOp::create(builder_, scoresType, scores, positions_, window);
  Value probs = tfm::SoftmaxOp::create(builder_, scores, 2);
  Value context =
      tfm::MatmulOp::create(builder_, tensor({heads, kDynamic, headDim}), probs, valuesByHead);
  context = reshape(transposeHeads(context), {kDynamic, heads * headDim});
  return linear(context, prefix + names.attentionOut.str(), model_.hiddenSize, heads * headDim,
                model_.attentionOutBias);
}

Value DecoderBuilder::mlp(Value input, const std::string &prefix) {
  const TensorNames &names = model_.names;
  int64_t hidden = model_.hiddenSize, inner = model_.intermediateSize;
  std::string module = prefix + names.mlpDown.rsplit('.').first.str();
  Value up;
  if (model_.mlp == MlpKind::Gated) {
    Value gate = linear(input, prefix + names.mlpGate.str(), inner, hidden, model_.mlpBias);
    Value product = linear(input, prefix + names.mlpUp.str(), inner, hidden, model_.mlpBias);
    at(module);
    up = tfm::MulOp::create(builder_, product.getType(), activation(gate), product);
  } else {
    up = linear(input, prefix + names.mlpUp.str(), inner, hidden, model_.mlpBias);
    at(module);
    up = activation(up);
  }
  return linear(up, prefix + names.mlpDown.str(), hidden, inner, model_.mlpBias);
}

Value DecoderBuilder::decoderLayer(Value hidden, int64_t layer) {
  const TensorNames &names = model_.names;
  std::string layerPath = names.layers.str() + std::to_string(layer);
  std::string prefix = layerPath + ".";
  Type type = hidden.getType();
  auto add = [&](Value lhs, Value rhs) -> Value {
    at(layerPath);
    return tfm::AddOp::create(builder_, type, lhs, rhs);
  };

  Value attentionIn = norm(hidden, prefix + names.attentionNorm.str());
  Value attended = attention(attentionIn, layer, prefix);
  switch (model_.residual) {
  case ResidualStyle::Sequential: {
    Value mid = add(model_.residualFromNorm ? attentionIn : hidden, attended);
    Value mlpIn = norm(mid, prefix + names.mlpNorm.str());
    return add(model_.residualFromNorm ? mlpIn : mid, mlp(mlpIn, prefix));
  }
  case ResidualStyle::ParallelOneNorm:
    return add(add(attended, mlp(attentionIn, prefix)), hidden);
  case ResidualStyle::ParallelTwoNorms: {
    Value mlpOut = mlp(norm(hidden, prefix + names.mlpNorm.str()), prefix);
    return add(add(attended, mlpOut), hidden);
  }
  }
  llvm_unreachable("unknown residual style");
}

Value DecoderBuilder::build(Value ids, Value positions) {
  const TensorNames &names = model_.names;
  int64_t hidden = model_.hiddenSize, vocab = model_.vocabSize;
  positions_ = positions;

  std::string embedding = names.embedding.str();
  at(embedding);
  Value table = weight(embedding, "weight", {vocab, hidden});
  Value state = tfm::EmbeddingOp::create(builder_, tensor({kDynamic, hidden}), table, ids);
  if (model_.embeddingNorm)
    state = norm(state, names.embeddingNorm.str());

  for (int64_t layer = 0; layer < model_.numLayers; ++layer)
    state = decoderLayer(state, layer);
  state = norm(state, names.finalNorm.str());

  std::string head = names.lmHead.str();
  at(head);
  Value headWeight = table;
  if (!model_.tiedEmbeddings) {
    SmallVector<std::string> aliases;
    if (!names.lmHeadAlias.empty())
      aliases.push_back(names.lmHeadAlias.str() + ".weight");
    headWeight = weight(head, "weight", {vocab, hidden}, aliases);
  }
  Value headBias = model_.lmHeadBias ? weight(head, "bias", {vocab}) : Value();
  return tfm::LinearOp::create(builder_, tensor({kDynamic, vocab}), state, headWeight, headBias);
}

} // namespace

FailureOr<OwningOpRef<ModuleOp>> kiln::buildDecoder(const ModelDescription &model,
                                                    const Checkpoint *checkpoint,
                                                    Type activationType, Location location) {
  MLIRContext *context = location.getContext();
  OwningOpRef<ModuleOp> module = ModuleOp::create(location);
  ImplicitLocOpBuilder builder(location, context);
  auto attribute = [&](StringRef name, Attribute value) {
    (*module)->setAttr(("tfm." + name).str(), value);
  };
  attribute("architecture", builder.getStringAttr(model.architecture));
  attribute("num_layers", builder.getI64IntegerAttr(model.numLayers));
  attribute("hidden_size", builder.getI64IntegerAttr(model.hiddenSize));
  attribute("num_heads", builder.getI64IntegerAttr(model.numHeads));
  attribute("num_kv_heads", builder.getI64IntegerAttr(model.numKvHeads));
  attribute("head_dim", builder.getI64IntegerAttr(model.headDim));
  attribute("vocab_size", builder.getI64IntegerAttr(model.vocabSize));
  if (model.maxPositions)
    attribute("max_position_embeddings", builder.getI64IntegerAttr(*model.maxPositions));
  attribute("dtype", TypeAttr::get(activationType));

  RankedTensorType idsType = RankedTensorType::get({kDynamic}, builder.getI32Type());
  RankedTensorType logitsType = RankedTensorType::get({kDynamic, model.vocabSize}, activationType);
  builder.setInsertionPointToEnd(module->getBody());
  auto forward = func::FuncOp::create(builder, "forward",
                                      builder.getFunctionType({idsType, idsType}, {logitsType}));
  Block *body = forward.addEntryBlock();
  body->getArgument(0).setLoc(NameLoc::get(builder.getStringAttr("input_ids")));
  body->getArgument(1).setLoc(NameLoc::get(builder.getStringAttr("positions")));
  builder.setInsertionPointToEnd(body);

  WeightBinder weights(checkpoint, model.configDtype, activationType, model.names.basePrefix);
  DecoderBuilder decoder(model, weights, builder, activationType);
  Value logits = decoder.build(body->getArgument(0), body->getArgument(1));
  builder.setLoc(location);
  func::ReturnOp::create(builder, logits);

  if (failed(weights.finish(context)) || failed(verify(*module)))
    return failure();
  return module;
}
