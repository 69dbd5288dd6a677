//===- Codegen.cpp - buildArtifact: model info, steps, buffer plan --------===//

#include "Lowering.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// Alignment of per-token offsets (times max_tokens in the arena) and of the
/// fixed region's buffers.
constexpr uint64_t kPerTokenAlignment = 16;
constexpr uint64_t kFixedAlignment = 256;

FailureOr<int64_t> intAttribute(ModuleOp module, StringRef name, bool required = true) {
  auto attr = module->getAttrOfType<IntegerAttr>(name);
  if (attr && attr.getInt() > 0)
    return attr.getInt();
  if (!required && !attr)
    return int64_t(0);
  return module.emitError("codegen needs the module attribute '")
             << name << "' as a positive integer (see dialects/tfm/README.md)",
         failure();
}

LogicalResult readModelInfo(ModuleOp module, const CodegenOptions &options, ModelInfo &model) {
  auto architecture = module->getAttrOfType<StringAttr>("tfm.architecture");
  auto dtype = module->getAttrOfType<TypeAttr>("tfm.dtype");
  if (!architecture || !dtype)
    return module.emitError("codegen needs the module attributes 'tfm.architecture' (a string) "
                            "and 'tfm.dtype' (a type)");
  model.architecture = architecture.getValue().str();
  FailureOr<DType> activation = dtypeOf(dtype.getValue());
  if (failed(activation) ||
      !llvm::is_contained({DType::f32, DType::f16, DType::bf16}, *activation))
    return module.emitError("codegen supports activations of f32, f16 or bf16, not ")
           << dtype.getValue();
  model.dtype = *activation;

  struct Field {
    StringRef name;
    int64_t *value;
  };
  for (Field field : {Field{"tfm.num_layers", &model.numLayers},
                      Field{"tfm.hidden_size", &model.hiddenSize},
                      Field{"tfm.num_heads", &model.numHeads},
                      Field{"tfm.num_kv_heads", &model.numKvHeads},
                      Field{"tfm.head_dim", &model.headDim},
                      Field{"tfm.vocab_size", &model.vocabSize}}) {
    FailureOr<int64_t> value = intAttribute(module, field.name);
    if (failed(value))
      return failure();
    *field.value = *value;
  }
  FailureOr<int64_t> maxPositions =
      intAttribute(module, "tfm.max_position_embeddings", /*required=*/false);
  if (failed(maxPositions))
    return failure();

  model.maxBatch = options.maxBatch;
  model.maxTokens = options.maxTokens;
  model.maxSeqLen = options.maxSeqLen;
  if (model.maxSeqLen == 0)
    model.maxSeqLen = *maxPositions ? std::min(*maxPositions, CodegenOptions::kDefaultMaxSeqLen)
                                    : CodegenOptions::kDefaultMaxSeqLen;
  if (model.maxBatch <= 0 || model.maxSeqLen <= 0 || model.maxTokens < model.maxBatch)
    return module.emitError("codegen needs max_batch > 0, max_seq_len > 0 and max_tokens >= "
                            "max_batch (a decode step holds one token per sequence); got ")
           << model.maxBatch << ", " << model.maxSeqLen << " and " << model.maxTokens;
  // Offsets and grid sizes are 32-bit in the artifact and the kernels.
  if (model.maxSeqLen > (1 << 24) || model.maxTokens > (1 << 20) || model.maxBatch > (1 << 16))
    return module.emitError("codegen limits are max_seq_len <= 2^24, max_tokens <= 2^20 and "
                            "max_batch <= 2^16");
  model.targetArchs = options.targetArchs;
  return success();
}

/// The MLP width for ModelInfo: a gated MLP's result, else the widest linear
/// that feeds neither a reshape (fused QKV) nor the logits.
int64_t intermediateSize(func::FuncOp forward, Operation *lmHead) {
  int64_t gated = 0, widest = 0;
  forward.walk([&](Operation *op) {
    if (auto mlp = dyn_cast<tfm::GatedMlpOp>(op))
      gated = std::max(gated, mlp.getType().getShape().back());
    auto linear = dyn_cast<tfm::LinearOp>(op);
    if (linear && op != lmHead &&
        llvm::none_of(linear->getUsers(), [](Operation *user) { return isa<tfm::ReshapeOp>(user); }))
      widest = std::max(widest, linear.getType().getShape().back());
  });
  return gated ? gated : widest;
}

/// Packs `items` (size, liveness) first-fit by offset so that buffers live
/// at the same time never overlap; returns the region size.
uint64_t pack(ArrayRef<std::pair<uint64_t, Liveness>> items, SmallVectorImpl<uint64_t> &offsets) {
  SmallVector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  llvm::stable_sort(order, [&](size_t a, size_t b) {
    return items[a].second.first < items[b].second.first;
  });
  offsets.assign(items.size(), 0);
  uint64_t end = 0;
  SmallVector<size_t> placed;
  for (size_t item : order) {
    auto [size, live] = items[item];
    SmallVector<std::pair<uint64_t, uint64_t>> busy;
    for (size_t other : placed) {
      const Liveness &otherLive = items[other].second;
      if (otherLive.first <= live.last && live.first <= otherLive.last)
        busy.push_back({offsets[other], offsets[other] + items[other].first});
    }
    llvm::sort(busy);
    uint64_t offset = 0;
    for (auto [begin, finish] : busy) {
      if (offset + size <= begin)
        break;
      offset = std::max(offset, finish);
    }
    offsets[item] = offset;
    placed.push_back(item);
    end = std::max(end, offset + size);
  }
  return end;
}

/// Assigns every step buffer its arena offset. Per-token buffers are packed
/// in bytes per token (valid for any token count) and placed at offset ×
/// max_tokens; fixed-size ones follow, after the logits that both steps share;
/// exclusive ones come last, each in memory of its own.
void planBuffers(Plan &plan, ArrayRef<const BufferLiveness *> steps) {
  uint64_t maxTokens = static_cast<uint64_t>(plan.model.maxTokens);
  uint64_t perTokenRegion = 0, fixedRegion = 0;
  struct Placement {
    unsigned buffer;
    bool perToken;
    uint64_t offset;
  };
  std::vector<Placement> placements;
  SmallVector<unsigned> exclusive;
  for (const BufferLiveness *step : steps) {
    SmallVector<std::pair<uint64_t, Liveness>> perToken, fixed;
    SmallVector<unsigned> perTokenIds, fixedIds;
    for (auto [index, live] : *step) {
      const Buffer &buffer = plan.buffers[index];
      if (buffer.exclusive) {
        exclusive.push_back(index);
      } else if (buffer.fixedBytes) {
        fixed.push_back({llvm::alignTo(buffer.fixedBytes, kFixedAlignment), live});
        fixedIds.push_back(index);
      } else {
        perToken.push_back({llvm::alignTo(buffer.bytesPerToken, kPerTokenAlignment), live});
        perTokenIds.push_back(index);
      }
    }
    SmallVector<uint64_t> offsets;
    perTokenRegion = std::max(perTokenRegion, pack(perToken, offsets));
    for (auto [id, offset] : llvm::zip(perTokenIds, offsets))
      placements.push_back({id, true, offset});
    fixedRegion = std::max(fixedRegion, pack(fixed, offsets));
    for (auto [id, offset] : llvm::zip(fixedIds, offsets))
      placements.push_back({id, false, offset});
  }

  uint64_t fixedBase = llvm::alignTo(perTokenRegion * maxTokens, kFixedAlignment);
  Buffer &logits = plan.buffers[plan.logits];
  logits.offset = fixedBase;
  uint64_t stepFixedBase = fixedBase + llvm::alignTo(logits.fixedBytes, kFixedAlignment);
  for (const Placement &placement : placements)
    plan.buffers[placement.buffer].offset =
        placement.perToken ? placement.offset * maxTokens : stepFixedBase + placement.offset;
  uint64_t end = stepFixedBase + fixedRegion;
  for (unsigned index : exclusive) {
    Buffer &buffer = plan.buffers[index];
    assert(buffer.fixedBytes && "exclusive buffers are fixed-size");
    buffer.offset = end;
    end += llvm::alignTo(buffer.fixedBytes, kFixedAlignment);
  }
  plan.arenaBytesPerToken = perTokenRegion;
  plan.arenaFixedBytes = end - perTokenRegion * maxTokens;
}

} // namespace

static FailureOr<Plan> buildPlan(ModuleOp module, const CodegenOptions &options,
                                 std::string &notes) {
  Plan plan;
  if (failed(readModelInfo(module, options, plan.model)))
    return failure();

  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal())
    return module.emitError("codegen needs a function @forward with a body"), failure();
  auto idsType = RankedTensorType::get({ShapedType::kDynamic},
                                       IntegerType::get(module.getContext(), 32));
  if (forward.getNumArguments() != 2 || forward.getArgumentTypes()[0] != idsType ||
      forward.getArgumentTypes()[1] != idsType || forward.getNumResults() != 1)
    return forward.emitError("codegen needs @forward(%input_ids: tensor<?xi32>, %positions: "
                             "tensor<?xi32>) -> logits"),
           failure();
  auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
  auto lmHead = ret.getOperand(0).getDefiningOp<tfm::LinearOp>();
  if (!lmHead)
    return ret.emitError("codegen needs the returned logits to be computed by tfm.linear (the "
                         "LM head)"),
           failure();
  if (lmHead.getType().getShape().back() != plan.model.vocabSize)
    return lmHead.emitError("the LM head produces ")
               << lmHead.getType().getShape().back() << " logits, but tfm.vocab_size is "
               << plan.model.vocabSize,
           failure();
  plan.model.intermediateSize = intermediateSize(forward, lmHead);

  Buffer logits;
  logits.name = "logits";
  logits.dtype = DType::f32;
  logits.fixedBytes = static_cast<uint64_t>(plan.model.maxBatch * plan.model.vocabSize * 4);
  plan.logits = plan.buffers.size();
  plan.buffers.push_back(logits);

  KernelLibrary kernels;
  WeightProgram weights;
  LoweringContext context{forward, options, plan, kernels, weights, lmHead};
  StepLowering prefill(context, StepKind::prefill), decode(context, StepKind::decode);
  if (failed(prefill.run()) || failed(decode.run()))
    return failure();
  PersistentDecodeLowering persistent(context);
  if (options.persistentDecode != CodegenOptions::PersistentDecode::off) {
    if (failed(persistent.run()))
      return failure();
    if (!persistent.reason().empty())
      notes += "no persistent decode program: " + persistent.reason() + "\n";
  }

  plan.weightsArenaBytes = weights.assignOffsets();
  plan.weights = weights.takeValues();
  plan.kernels = kernels.finish();
  plan.prefill = prefill.takeCommands();
  plan.decode = decode.takeCommands();
  planBuffers(plan, {&prefill.bufferLiveness(), &decode.bufferLiveness(),
                     &persistent.bufferLiveness()});
  return plan;
}

FailureOr<std::string> kiln::buildArtifact(ModuleOp module, const CodegenOptions &options,
                                           std::string *notes) {
  std::string text;
  FailureOr<Plan> plan = buildPlan(module, options, text);
  if (failed(plan))
    return failure();
  if (notes)
    *notes = std::move(text);
  return serializePlan(*plan);
}
