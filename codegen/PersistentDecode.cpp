//===- PersistentDecode.cpp - the decode step as one persistent kernel ----===//
//
// Recognizes a Llama-family decoder stack in the fused @forward and lowers
// its decode step to persistentDecodeKernel plus sampling. The fused ops must
// come in exactly this order, each result used only by the next op that
// needs it:
//
//   embedding -> rms_norm
//   per layer: packed_qkv_linear -> attention (RoPE, no ALiBi) -> linear (o)
//              -> add_rms_norm (with the residual stream) -> gated_mlp
//              -> linear (down) -> add_rms_norm (the next layer's, or the final norm)
//   linear (the LM head)
//
// with every layer of the same shapes, biases and attention options.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// The most bytes of parameters a kernel takes (CUDA 12.1 and newer, Volta
/// and newer).
constexpr int64_t kMaxKernelParameterBytes = 32764;

/// Bytes of a kernel's parameters for these arguments, each at its
/// alignment: a tensor map is 128 bytes at 64, the step state
/// (kiln::StepState) 15 pointers, num_tokens an int, the rest pointers.
int64_t kernelParameterBytes(llvm::ArrayRef<Arg> args) {
  int64_t bytes = 0;
  for (const Arg &arg : args) {
    const ArgKind kind = arg.kind;
    int64_t size = kind == ArgKind::weight_tensor_map ? 128
                   : kind == ArgKind::step            ? 15 * 8
                   : kind == ArgKind::num_tokens      ? 4
                                                      : 8;
    int64_t alignment = kind == ArgKind::weight_tensor_map ? 64 : std::min<int64_t>(size, 8);
    bytes = llvm::alignTo(bytes, alignment) + size;
  }
  return bytes;
}

/// Attention tasks of one token the persistent kernel runs at once at most.
constexpr int64_t kPersistentAttentionBlocks = 128;

struct LayerOps {
  Operation *inputNorm = nullptr; // rms_norm (layer 0) or the previous add_rms_norm
  tfm::PackedQkvLinearOp qkv;
  tfm::AttentionOp attention;
  tfm::LinearOp o;
  tfm::AddRmsNormOp postAttentionNorm;
  tfm::GatedMlpOp mlp;
  tfm::LinearOp down;
};

/// What the persistent kernel reads: the stack's ops in order.
struct DecoderStack {
  tfm::EmbeddingOp embedding;
  std::vector<LayerOps> layers;
  tfm::AddRmsNormOp finalNorm;
  tfm::LinearOp lmHead;
};

bool usedOnlyBy(Value value, Operation *user) {
  return llvm::all_of(value.getUsers(), [&](Operation *u) { return u == user; }) &&
         !value.use_empty();
}

/// True when `norm` adds `delta` to `stream` (in either operand order).
bool addsTo(tfm::AddRmsNormOp norm, Value stream, Value delta) {
  return (norm.getInput() == stream && norm.getResidual() == delta) ||
         (norm.getInput() == delta && norm.getResidual() == stream);
}

/// The stack, or a reason why @forward is not one.
FailureOr<DecoderStack> matchStack(LoweringContext &context, std::string &whyNot) {
  SmallVector<Operation *> ops;
  func::FuncOp forward = context.forward;
  for (Operation &op : forward.getBody().front()) {
    if (isa<func::ReturnOp>(op) || op.hasTrait<tfm::LoadTimeTrait>() ||
        (op.getNumResults() > 0 && llvm::all_of(op.getResults(), tfm::isLoadTimeValue)))
      continue;
    ops.push_back(&op);
  }
  auto fail = [&](const std::string &why) -> FailureOr<DecoderStack> {
    whyNot = why;
    return failure();
  };
  if (ops.size() < 10 || (ops.size() - 3) % 7 != 0)
    return fail("its ops are not embedding, rms_norm, 7 ops a layer and the LM head");
  DecoderStack stack;
  stack.embedding = dyn_cast<tfm::EmbeddingOp>(ops[0]);
  auto firstNorm = dyn_cast<tfm::RmsNormOp>(ops[1]);
  stack.lmHead = dyn_cast<tfm::LinearOp>(ops.back());
  if (!stack.embedding || !firstNorm || !stack.lmHead || stack.lmHead != context.lmHead ||
      firstNorm.getInput() != stack.embedding.getResult())
    return fail("it does not start with embedding -> rms_norm and end with the LM head");

  Value stream = stack.embedding.getResult(), normalized = firstNorm.getResult();
  Operation *inputNorm = firstNorm;
  for (size_t at = 2; at + 1 < ops.size(); at += 7) {
    LayerOps layer;
    layer.inputNorm = inputNorm;
    layer.qkv = dyn_cast<tfm::PackedQkvLinearOp>(ops[at]);
    layer.attention = dyn_cast<tfm::AttentionOp>(ops[at + 1]);
    layer.o = dyn_cast<tfm::LinearOp>(ops[at + 2]);
    layer.postAttentionNorm = dyn_cast<tfm::AddRmsNormOp>(ops[at + 3]);
    layer.mlp = dyn_cast<tfm::GatedMlpOp>(ops[at + 4]);
    layer.down = dyn_cast<tfm::LinearOp>(ops[at + 5]);
    auto next = dyn_cast<tfm::AddRmsNormOp>(ops[at + 6]);
    std::string where = llvm::formatv("layer {0}: ", stack.layers.size()).str();
    if (!layer.qkv || !layer.attention || !layer.o || !layer.postAttentionNorm || !layer.mlp ||
        !layer.down || !next)
      return fail(where + "not packed_qkv_linear, attention, linear, add_rms_norm, gated_mlp, "
                          "linear, add_rms_norm");
    if (layer.qkv.getInput() != normalized || !usedOnlyBy(normalized, layer.qkv) ||
        layer.attention.getQkv() != layer.qkv.getResult() ||
        !usedOnlyBy(layer.qkv.getResult(), layer.attention) ||
        layer.o.getInput() != layer.attention.getResult() ||
        !usedOnlyBy(layer.attention.getResult(), layer.o) ||
        !addsTo(layer.postAttentionNorm, stream, layer.o.getResult()) ||
        !usedOnlyBy(layer.o.getResult(), layer.postAttentionNorm) ||
        (!usedOnlyBy(stream, layer.postAttentionNorm) && stream != stack.embedding.getResult()) ||
        layer.mlp.getInput() != layer.postAttentionNorm.getResult() ||
        !usedOnlyBy(layer.postAttentionNorm.getResult(), layer.mlp) ||
        layer.down.getInput() != layer.mlp.getResult() ||
        !usedOnlyBy(layer.mlp.getResult(), layer.down) ||
        !addsTo(next, layer.postAttentionNorm.getSum(), layer.down.getResult()) ||
        !usedOnlyBy(layer.down.getResult(), next) ||
        !usedOnlyBy(layer.postAttentionNorm.getSum(), next))
      return fail(where + "its values flow elsewhere than the decoder layer's own chain");
    if (layer.attention.getLayer() != static_cast<int64_t>(stack.layers.size()))
      return fail(where + "its attention's KV-cache layer is " +
                  std::to_string(layer.attention.getLayer()));
    stack.layers.push_back(layer);
    stream = next.getSum();
    normalized = next.getResult();
    inputNorm = next;
    stack.finalNorm = next;
  }
  // The embedding feeds the first norm and the first residual add alone.
  if (llvm::any_of(stack.embedding.getResult().getUsers(), [&](Operation *user) {
        return user != firstNorm && user != stack.layers.front().postAttentionNorm;
      }))
    return fail("the embedding has other users");
  if (stack.lmHead.getInput() != normalized || !usedOnlyBy(normalized, stack.lmHead) ||
      !stream.use_empty())
    return fail("the LM head does not read the last norm alone");
  return stack;
}

bool sameAttention(const AttentionParams &a, const AttentionParams &b) {
  return a.heads == b.heads && a.kvHeads == b.kvHeads && a.headDim == b.headDim &&
         a.scale == b.scale && a.window == b.window && a.alibiSlopes == b.alibiSlopes &&
         a.rope == b.rope && a.ropeGptj == b.ropeGptj && a.rotaryDim == b.rotaryDim &&
         a.invFreq == b.invFreq && a.dtype == b.dtype;
}

double epsilonOf(Operation *norm) {
  if (auto rms = dyn_cast<tfm::RmsNormOp>(norm))
    return rms.getEpsilon().convertToDouble();
  return cast<tfm::AddRmsNormOp>(norm).getEpsilon().convertToDouble();
}

Value normWeightOf(Operation *norm) {
  if (auto rms = dyn_cast<tfm::RmsNormOp>(norm))
    return rms.getWeight();
  return cast<tfm::AddRmsNormOp>(norm).getWeight();
}

} // namespace

LogicalResult PersistentDecodeLowering::run() {
  FailureOr<DecoderStack> stack = matchStack(context, whyNot);
  if (failed(stack))
    return success();
  const ModelInfo &model = context.plan.model;

  PersistentDecodeParams params;
  params.layers = static_cast<int64_t>(stack->layers.size());
  params.hidden = model.hiddenSize;
  params.vocab = model.vocabSize;
  params.dtype = model.dtype;
  LayerOps first = stack->layers.front();
  params.inter = first.mlp.getType().getShape().back();
  params.activation = activationFunction(first.mlp.getActivation()).str();
  params.epsilon = epsilonOf(first.inputNorm);
  params.qkvBias = static_cast<bool>(first.qkv.getBias());
  params.oBias = static_cast<bool>(first.o.getBias());
  params.gateUpBias = static_cast<bool>(first.mlp.getBias());
  params.downBias = static_cast<bool>(first.down.getBias());
  params.lmHeadBias = static_cast<bool>(stack->lmHead.getBias());
  FailureOr<AttentionParams> attention = attentionParamsOf(context, first.attention);
  if (failed(attention))
    return failure();
  params.attention = *attention;
  // Every block's o product waits for attention's output: as many splits of
  // a long context as keep one round of tasks within the 132 SMs of an H100
  // or H200, each with one tile a warp (bench/NOTES.md, sections 6 and 9).
  AttentionParams &persistentAttention = params.attention;
  persistentAttention.decodeMinTilesPerWarp = 1;
  // Half the loads ahead of the attention kernel's where the persistent
  // kernel's threads have 168 registers (12 warps a block), as 16 spill at
  // head dim 128; all of them where its compute warps take 240 (sm_90a).
  persistentAttention.decodeLoadsAhead = 8;
  persistentAttention.decodeLoadsAheadMovedRegisters = 16;
  // Shorter tasks, as attention holds up every other block: two query heads
  // a task (of head dim 64: 1B 0.89 -> 0.84 ms with grid barriers;
  // bench/NOTES.md §6).
  persistentAttention.decodeMaxGroupDims = std::max<int64_t>(128, 2 * persistentAttention.headDim);
  persistentAttention.decodeSplits =
      std::clamp<int64_t>(kPersistentAttentionBlocks /
                              (persistentAttention.kvHeads * decodeHeadGroups(persistentAttention)),
                          1, ceilDiv(model.maxSeqLen, 8 * 32));
  auto normType = [](Value weight) {
    return dtypeOf(cast<ShapedType>(weight.getType()).getElementType());
  };
  FailureOr<DType> normDtype = normType(normWeightOf(first.inputNorm));
  if (failed(normDtype)) {
    whyNot = "its norm weights are not of a float type";
    return success();
  }
  params.normWeightDtype = *normDtype;

  // Every layer like the first.
  auto elementType = [](Value value) { return cast<ShapedType>(value.getType()).getElementType(); };
  for (LayerOps layer : stack->layers) {
    FailureOr<AttentionParams> shape = attentionParamsOf(context, layer.attention);
    if (failed(shape))
      return failure();
    bool same = sameAttention(*shape, params.attention) &&
                layer.mlp.getActivation() == first.mlp.getActivation() &&
                layer.mlp.getType().getShape().back() == params.inter &&
                static_cast<bool>(layer.qkv.getBias()) == params.qkvBias &&
                static_cast<bool>(layer.o.getBias()) == params.oBias &&
                static_cast<bool>(layer.mlp.getBias()) == params.gateUpBias &&
                static_cast<bool>(layer.down.getBias()) == params.downBias;
    for (Operation *norm : {layer.inputNorm, layer.postAttentionNorm.getOperation()}) {
      FailureOr<DType> dtype = normType(normWeightOf(norm));
      same = same && epsilonOf(norm) == params.epsilon && succeeded(dtype) &&
             *dtype == params.normWeightDtype;
    }
    if (!same) {
      whyNot = "its layers differ in shapes, biases, norms or attention options";
      return success();
    }
  }
  if (epsilonOf(stack->finalNorm) != params.epsilon) {
    whyNot = "its final norm's epsilon differs from the layers'";
    return success();
  }
  const AttentionParams &shape = params.attention;
  int64_t vector = 16 / dtypeBytes(params.dtype);
  int64_t qkvRows = (shape.heads + 2 * shape.kvHeads) * shape.headDim;
  if (!shape.alibiSlopes.empty() || !shape.rope || !gemvCanWriteKvCache(shape) ||
      params.hidden % vector || params.inter % vector || (shape.heads * shape.headDim) % vector ||
      shape.headDim % vector || first.qkv.getType().getShape().back() != qkvRows ||
      elementType(stack->embedding.getTable()) != elementType(stack->embedding.getResult())) {
    whyNot = "its attention (ALiBi, no RoPE) or sizes (not whole 16-byte vectors) are not covered";
    return success();
  }
  int64_t layerBytes = (qkvRows * params.hidden + params.hidden * shape.heads * shape.headDim +
                        3 * params.inter * params.hidden) *
                       dtypeBytes(params.dtype);
  if (context.options.persistentDecode == CodegenOptions::PersistentDecode::automatic &&
      layerBytes > CodegenOptions::kPersistentDecodeLayerBytes) {
    whyNot = llvm::formatv("its layers' {0} MiB of weights each stream faster kernel by kernel "
                           "(--persistent-decode=on builds it anyway)",
                           layerBytes >> 20)
                 .str();
    return success();
  }
  // Blocks hand q, k and v on as tagged words of two 16-bit values: neox
  // rotation pairs (i, i + rotary / 2) of even units must start words.
  if (dtypeBytes(params.dtype) == 2 && !shape.ropeGptj && shape.rotaryDim % 4) {
    whyNot = "its rotary dim is not a multiple of 4 (rotation pairs would not start tagged words)";
    return success();
  }
  params.tokens = persistentDecodeTokens(params, model.maxBatch);
  if (params.tokens == 0) {
    whyNot = "one token's inputs leave too little shared memory for the weight ring";
    return success();
  }
  std::optional<PersistentWeightViews> views = persistentWeightViews(params, whyNot);
  if (!views)
    return success();
  // Arguments in persistentDecodeKernel's order: weight matrices as the copy
  // engine's maps, with their views. (The decode program bound every weight
  // already, so binding them here adds nothing to the artifact.)
  SmallVector<Arg> args;
  auto weight = [&](Value value, Operation *user,
                    llvm::ArrayRef<const TensorMapView *> maps = {}) -> LogicalResult {
    FailureOr<unsigned> index = context.weights.bind(value, user);
    if (failed(index))
      return failure();
    if (maps.empty())
      args.push_back(Arg::weight(*index));
    for (const TensorMapView *view : maps)
      args.push_back(Arg::weightTensorMap(*index, *view));
    return success();
  };
  SmallVector<const TensorMapView *, 2> qkvMaps = {&views->qkvPairs};
  if (views->hasQkvHalves)
    qkvMaps.push_back(&views->qkvHalves);
  Operation *lmHead = stack->lmHead;
  if (failed(weight(stack->embedding.getTable(), stack->embedding)) ||
      failed(weight(stack->finalNorm.getWeight(), stack->finalNorm)) ||
      failed(weight(stack->lmHead.getWeight(), lmHead, {&views->lmHead})) ||
      (params.lmHeadBias && failed(weight(stack->lmHead.getBias(), lmHead))))
    return failure();
  for (LayerOps layer : stack->layers) {
    Operation *qkv = layer.qkv, *o = layer.o, *mlp = layer.mlp, *down = layer.down;
    if (failed(weight(normWeightOf(layer.inputNorm), layer.inputNorm)) ||
        failed(weight(layer.qkv.getWeight(), qkv, qkvMaps)) ||
        (params.qkvBias && failed(weight(layer.qkv.getBias(), qkv))) ||
        failed(weight(layer.o.getWeight(), o, {&views->o})) ||
        (params.oBias && failed(weight(layer.o.getBias(), o))) ||
        failed(weight(layer.postAttentionNorm.getWeight(), layer.postAttentionNorm)) ||
        failed(weight(layer.mlp.getWeight(), mlp, {&views->gateUp})) ||
        (params.gateUpBias && failed(weight(layer.mlp.getBias(), mlp))) ||
        failed(weight(layer.down.getWeight(), down, {&views->down})) ||
        (params.downBias && failed(weight(layer.down.getBias(), down))))
      return failure();
    unsigned index = static_cast<unsigned>(layer.attention.getLayer());
    args.append({Arg::kCache(index), Arg::vCache(index)});
  }
  // The step's buffers, live for the whole (one-kernel) program; added to
  // the plan once the arguments fit.
  SmallVector<Buffer, 2> stepBuffers;
  auto buffer = [&](llvm::StringRef name, DType dtype, int64_t bytes, bool exclusive = false) {
    Buffer created;
    created.name = ("decode_persistent:" + name).str();
    created.dtype = dtype;
    created.fixedBytes = static_cast<uint64_t>(bytes);
    created.exclusive = exclusive;
    args.push_back(Arg::buffer(context.plan.buffers.size() + stepBuffers.size()));
    stepBuffers.push_back(std::move(created));
  };
  // The attention splits' partials, a slot per layer
  // (codegen/PersistentDecodeKernel.cpp).
  if (shape.decodeSplits > 1)
    buffer("partial", DType::f32,
           params.layers * params.tokens * decodePartialFloatsPerToken(shape) * 4);
  // Tagged words name the step that wrote them, so the memory must be the
  // exchange's alone: no other step may leave values there.
  buffer("exchange", DType::i32, persistentExchangeBytes(params), /*exclusive=*/true);
  args.append({Arg::buffer(context.plan.logits), Arg::step(), Arg::numTokens()});
  // CUDA takes up to 32764 bytes of kernel parameters.
  int64_t parameterBytes = kernelParameterBytes(args);
  if (parameterBytes > kMaxKernelParameterBytes) {
    whyNot = llvm::formatv("its {0} layers' weight maps and pointers ({1} bytes) exceed the {2} "
                           "bytes of kernel parameters CUDA takes",
                           params.layers, parameterBytes, kMaxKernelParameterBytes)
                 .str();
    return success();
  }
  for (Buffer &created : stepBuffers) {
    liveness.push_back({static_cast<unsigned>(context.plan.buffers.size()), Liveness{0, 0}});
    context.plan.buffers.push_back(std::move(created));
  }

  KernelSpec spec = persistentDecodeKernel(params);
  Launch step;
  step.kernel = context.kernels.add(spec, describeLocation(context.forward.getLoc()));
  step.shape = spec.launch;
  step.args = std::move(args);
  Launch sampling;
  KernelSpec sampler = samplingKernel(model.vocabSize);
  sampling.kernel = context.kernels.add(sampler, describeLocation(lmHead->getLoc()));
  sampling.shape = sampler.launch;
  sampling.args = {Arg::buffer(context.plan.logits), Arg::step()};
  context.plan.decodePersistent = {step, sampling};
  context.plan.decodePersistentMaxTokens = params.tokens;
  return success();
}
