//===- StepLowering.cpp - one step's ops to kernel launches and GEMMs -----===//
//
// Walks @forward in order. Load-time ops belong to the weight program;
// reshape, slice and transpose of activations are views of their input's
// buffer; every other op becomes launches of generated kernels (and, in
// prefill, cuBLASLt GEMMs) writing new buffers. Consecutive elementwise ops
// whose intermediate results have no other use become one kernel.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <numeric>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

FailureOr<SmallVector<int64_t>> codegen::perTokenShape(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() < 1 || !type.isDynamicDim(0))
    return failure();
  SmallVector<int64_t> shape(type.getShape().drop_front());
  if (llvm::any_of(shape, ShapedType::isDynamic))
    return failure();
  return shape;
}

int64_t View::elements() const {
  return std::accumulate(dims.begin(), dims.end(), int64_t(1), std::multiplies<>());
}

bool View::isContiguous() const {
  int64_t expected = 1;
  for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
    if (dims[d] != 1 && strides[d] != expected)
      return false;
    expected *= dims[d];
  }
  return offset == 0 && tokenStride == expected;
}

View View::contiguous(unsigned buffer, int64_t elements, DType dtype) {
  View view;
  view.buffer = buffer;
  view.tokenStride = elements;
  view.dims = {elements};
  view.strides = {1};
  view.dtype = dtype;
  return view;
}

namespace {

bool isElementwise(Operation *op) {
  return isa<tfm::AddOp, tfm::MulOp, tfm::SiluOp, tfm::GeluOp, tfm::ScaleOp>(op);
}

/// True when `op` is computed inside its only user's elementwise kernel.
bool isFusedIntoUser(Operation *op) {
  if (!isElementwise(op) || !op->getResult(0).hasOneUse())
    return false;
  Operation *user = *op->getUsers().begin();
  return isElementwise(user) && user->getBlock() == op->getBlock() &&
         user->getResult(0).getType() == op->getResult(0).getType();
}

/// Drops unit dims and merges dims that are contiguous with each other.
View simplified(View view) {
  SmallVector<int64_t> dims, strides;
  for (auto [dim, stride] : llvm::zip(view.dims, view.strides)) {
    if (dim == 1)
      continue;
    if (!dims.empty() && strides.back() == stride * dim) {
      dims.back() *= dim;
      strides.back() = stride;
      continue;
    }
    dims.push_back(dim);
    strides.push_back(stride);
  }
  if (dims.empty()) {
    dims.push_back(1);
    strides.push_back(1);
  }
  view.dims = std::move(dims);
  view.strides = std::move(strides);
  return view;
}

CopySegment segmentOf(const View &view, unsigned source) {
  View simple = simplified(view);
  CopySegment segment;
  segment.source = source;
  segment.offset = simple.offset;
  segment.tokenStride = simple.tokenStride;
  segment.dims = simple.dims;
  segment.strides = simple.strides;
  return segment;
}


/// The float expression of elementwise `op` over its operands' names.
std::string elementwiseExpression(Operation *op, ArrayRef<std::string> operands) {
  return llvm::TypeSwitch<Operation *, std::string>(op)
      .Case([&](tfm::AddOp) { return operands[0] + " + " + operands[1]; })
      .Case([&](tfm::MulOp) { return operands[0] + " * " + operands[1]; })
      .Case([&](tfm::SiluOp) { return "kiln::silu(" + operands[0] + ")"; })
      .Case([&](tfm::GeluOp gelu) {
        bool tanh = gelu.getApproximation() == tfm::GeluApproximation::tanh;
        return (tanh ? "kiln::gelu_tanh(" : "kiln::gelu(") + operands[0] + ")";
      })
      .Case([&](tfm::ScaleOp scale) {
        return operands[0] + " * " + floatLiteral(scale.getFactor().convertToDouble());
      });
}

/// RoPE inverse frequencies as transformers computes them: the default ones
/// in float32, then linear or Llama 3 scaling.
std::vector<double> ropeInverseFrequencies(tfm::RopeAttr rope) {
  int64_t rotaryDim = rope.getRotaryDim();
  float theta = static_cast<float>(rope.getTheta().convertToDouble());
  double factor = rope.getFactor().convertToDouble();
  double low = rope.getLowFreqFactor().convertToDouble();
  double high = rope.getHighFreqFactor().convertToDouble();
  double original = static_cast<double>(rope.getOriginalMaxPosition());
  std::vector<double> invFreq;
  for (int64_t j = 0; j < rotaryDim / 2; ++j) {
    float exponent = static_cast<float>(2 * j) / static_cast<float>(rotaryDim);
    float inv = 1.0f / static_cast<float>(std::pow(double(theta), double(exponent)));
    double scaled = inv;
    switch (rope.getScaling()) {
    case tfm::RopeScaling::none:
      break;
    case tfm::RopeScaling::linear:
      scaled = inv / factor;
      break;
    case tfm::RopeScaling::llama3: {
      double wavelength = 2 * M_PI / inv;
      if (wavelength > original / low) {
        scaled = inv / factor;
      } else if (wavelength >= original / high) {
        double smooth = (original / wavelength - low) / (high - low);
        scaled = (1 - smooth) * inv / factor + smooth * inv;
      }
      break;
    }
    }
    invFreq.push_back(static_cast<float>(scaled));
  }
  return invFreq;
}

} // namespace

llvm::StringRef codegen::activationFunction(tfm::Activation activation) {
  switch (activation) {
  case tfm::Activation::silu:
    return "silu";
  case tfm::Activation::gelu:
    return "gelu";
  case tfm::Activation::gelu_tanh:
    return "gelu_tanh";
  }
  llvm_unreachable("unknown activation");
}

//===----------------------------------------------------------------------===//
// Buffers, views and commands
//===----------------------------------------------------------------------===//

std::string StepLowering::bufferName(Operation *op, llvm::StringRef what) const {
  return (kind == StepKind::prefill ? "prefill:" : "decode:") + describeLocation(op->getLoc()) +
         "/" + what.str();
}

unsigned StepLowering::newBuffer(std::string name, DType dtype, uint64_t bytesPerToken,
                                 uint64_t fixedBytes) {
  Buffer buffer;
  buffer.name = std::move(name);
  buffer.dtype = dtype;
  buffer.bytesPerToken = bytesPerToken;
  buffer.fixedBytes = fixedBytes;
  // A decode step holds one token per sequence, so its buffers have a fixed
  // size for max_batch tokens rather than growing with max_tokens.
  if (kind == StepKind::decode && bytesPerToken) {
    buffer.fixedBytes = bytesPerToken * static_cast<uint64_t>(context.plan.model.maxBatch);
    buffer.bytesPerToken = 0;
  }
  unsigned index = context.plan.buffers.size();
  context.plan.buffers.push_back(std::move(buffer));
  livenessIndex[index] = liveness.size();
  liveness.push_back({index, {}});
  return index;
}

FailureOr<unsigned> StepLowering::define(Value value, llvm::StringRef what) {
  Operation *op = value.getDefiningOp();
  FailureOr<SmallVector<int64_t>> shape = perTokenShape(value);
  FailureOr<DType> dtype = dtypeOf(cast<ShapedType>(value.getType()).getElementType());
  if (failed(shape) || failed(dtype) || !llvm::is_contained({DType::f32, DType::f16, DType::bf16},
                                                            *dtype))
    return op->emitError("codegen needs activations of shape [tokens, ...] with static inner "
                         "dims and element type f32, f16 or bf16, not ")
               << value.getType(),
           failure();
  int64_t elements = 1;
  for (int64_t dim : *shape)
    elements *= dim;
  unsigned buffer =
      newBuffer(bufferName(op, what), *dtype, static_cast<uint64_t>(elements * dtypeBytes(*dtype)), 0);
  View view = View::contiguous(buffer, elements, *dtype);
  view.dims.assign(shape->begin(), shape->end());
  view.strides.assign(shape->size(), 1);
  for (int64_t d = static_cast<int64_t>(shape->size()) - 2; d >= 0; --d)
    view.strides[d] = view.strides[d + 1] * (*shape)[d + 1];
  if (shape->empty()) {
    view.dims = {1};
    view.strides = {1};
  }
  views[value] = view;
  return buffer;
}

void StepLowering::record(Command command) {
  int64_t index = static_cast<int64_t>(commands.size());
  auto touch = [&](const Arg &arg) {
    if (arg.kind != ArgKind::buffer)
      return;
    auto found = livenessIndex.find(arg.index);
    if (found == livenessIndex.end())
      return; // the logits, kept across steps
    Liveness &live = liveness[found->second].second;
    if (live.first < 0)
      live.first = index;
    live.last = index;
  };
  if (auto *launch = std::get_if<Launch>(&command)) {
    llvm::for_each(launch->args, touch);
  } else {
    auto &gemm = std::get<Gemm>(command);
    touch(gemm.a);
    touch(gemm.c);
  }
  commands.push_back(std::move(command));
}

void StepLowering::launch(const KernelSpec &spec, Operation *op, ArrayRef<Arg> args) {
  Launch command;
  command.kernel = context.kernels.add(spec, describeLocation(op->getLoc()));
  command.shape = spec.launch;
  command.args.assign(args.begin(), args.end());
  record(std::move(command));
}

FailureOr<unsigned> StepLowering::weightArg(Value value, Operation *user) {
  return context.weights.bind(value, user);
}

FailureOr<View> StepLowering::viewOf(Value value, Operation *user) {
  auto found = views.find(value);
  if (found != views.end())
    return found->second;
  if (tfm::isLoadTimeValue(value))
    return user->emitError("codegen does not support a weight as this operand; it needs an "
                           "activation"),
           failure();
  if (isa<BlockArgument>(value))
    return user->emitError("codegen reads token ids and positions from the step state: only "
                           "tfm.embedding and tfm.attention may use the function's arguments"),
           failure();
  return user->emitError("codegen has no buffer for this operand"), failure();
}

FailureOr<View> StepLowering::restride(const View &view, ArrayRef<int64_t> shape) {
  // As torch's view(): walk both shapes from the innermost dim, matching
  // chunks of the old dims that are contiguous with each other.
  View result = view;
  result.dims.assign(shape.begin(), shape.end());
  result.strides.assign(shape.size(), 0);
  if (shape.empty()) {
    if (view.elements() != 1)
      return failure();
    result.dims = {1};
    result.strides = {1};
    return result;
  }
  int64_t viewDim = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunkStride = view.strides.back(), oldElements = 1, newElements = 1;
  for (int64_t d = static_cast<int64_t>(view.dims.size()) - 1; d >= 0; --d) {
    oldElements *= view.dims[d];
    if (d == 0 ||
        (view.dims[d - 1] != 1 && view.strides[d - 1] != oldElements * chunkStride)) {
      while (viewDim >= 0 && (newElements < oldElements || shape[viewDim] == 1)) {
        result.strides[viewDim] = newElements * chunkStride;
        newElements *= shape[viewDim];
        --viewDim;
      }
      if (newElements != oldElements)
        return failure();
      if (d > 0) {
        chunkStride = view.strides[d - 1];
        oldElements = newElements = 1;
      }
    }
  }
  if (viewDim != -1)
    return failure();
  return result;
}

unsigned StepLowering::materialize(const View &view, Operation *op) {
  int64_t elements = view.elements();
  unsigned buffer = newBuffer(bufferName(op, "copy"), view.dtype,
                              static_cast<uint64_t>(elements * dtypeBytes(view.dtype)), 0);
  launch(copyKernel("copy", elements, 1, {segmentOf(view, 0)}, view.dtype), op,
         {Arg::buffer(view.buffer), Arg::buffer(buffer)});
  return buffer;
}

FailureOr<unsigned> StepLowering::contiguousBuffer(Value value, Operation *user) {
  FailureOr<View> view = viewOf(value, user);
  if (failed(view))
    return failure();
  if (view->isContiguous())
    return view->buffer;
  unsigned buffer = materialize(*view, user);
  View copy = View::contiguous(buffer, view->elements(), view->dtype);
  views[value] = copy;
  return buffer;
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

LogicalResult StepLowering::run() {
  for (Operation &op : context.forward.getBody().front())
    if (failed(lower(&op)))
      return failure();
  return lowerSampling();
}

LogicalResult StepLowering::lower(Operation *op) {
  if (isa<func::ReturnOp>(op))
    return success();
  if (op->hasTrait<tfm::LoadTimeTrait>() ||
      (op->getNumResults() > 0 && llvm::all_of(op->getResults(), tfm::isLoadTimeValue)))
    return success();
  if (isFusedIntoUser(op))
    return success();
  if (isElementwise(op))
    return lowerElementwise(op);

  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](tfm::EmbeddingOp op) { return lowerEmbedding(op); })
      .Case([&](tfm::RmsNormOp op) {
        return lowerNorm(op, NormKind::rms, op.getInput(), {}, op.getWeight(), {},
                         op.getEpsilon().convertToDouble());
      })
      .Case([&](tfm::LayerNormOp op) {
        return lowerNorm(op, NormKind::layer, op.getInput(), {}, op.getWeight(), op.getBias(),
                         op.getEpsilon().convertToDouble());
      })
      .Case([&](tfm::AddRmsNormOp op) {
        return lowerNorm(op, NormKind::rms, op.getInput(), op.getResidual(), op.getWeight(), {},
                         op.getEpsilon().convertToDouble());
      })
      .Case([&](tfm::AddLayerNormOp op) {
        return lowerNorm(op, NormKind::layer, op.getInput(), op.getResidual(), op.getWeight(),
                         op.getBias(), op.getEpsilon().convertToDouble());
      })
      .Case([&](tfm::LinearOp op) {
        if (op == context.lmHead)
          return lowerLmHead(op, op.getInput(), op.getWeight(), op.getBias());
        return lowerLinear(op, op.getInput(), op.getWeight(), op.getBias());
      })
      .Case([&](tfm::PackedQkvLinearOp op) {
        return lowerLinear(op, op.getInput(), op.getWeight(), op.getBias());
      })
      .Case([&](tfm::GatedMlpOp op) { return lowerGatedMlp(op); })
      .Case([&](tfm::AttentionOp op) { return lowerAttention(op); })
      .Case([&](tfm::ReshapeOp op) { return lowerReshape(op); })
      .Case([&](tfm::SliceOp op) {
        return lowerSlice(op, op.getInput(), op.getResult(), op.getAxis(), op.getStart(),
                          op.getSize());
      })
      .Case([&](tfm::SplitOp op) {
        int64_t start = 0;
        for (Value result : op.getResults()) {
          int64_t size = cast<ShapedType>(result.getType()).getDimSize(op.getAxis());
          if (failed(lowerSlice(op, op.getInput(), result, op.getAxis(), start, size)))
            return failure();
          start += size;
        }
        return success();
      })
      .Case([&](tfm::ConcatOp op) { return lowerConcat(op); })
      .Case([&](tfm::TransposeOp op) { return lowerTranspose(op); })
      .Case<tfm::RopeOp, tfm::SoftmaxOp, tfm::MatmulOp, tfm::KVCacheAppendOp,
            tfm::KVCacheReadOp, tfm::CausalMaskOp, tfm::AlibiBiasOp, tfm::RepeatKvOp>(
          [&](Operation *op) {
            return op->emitError("codegen does not support '")
                   << op->getName()
                   << "': attention must be fused into tfm.attention (run the fusion pipeline, "
                      "--kiln-fusion-pipeline)";
          })
      .Default([&](Operation *op) {
        return op->emitError("codegen does not support '") << op->getName() << "'";
      });
}

LogicalResult StepLowering::lowerEmbedding(tfm::EmbeddingOp op) {
  if (op.getIds() != context.forward.getArgument(0))
    return op.emitError("codegen reads token ids from the step state: tfm.embedding must gather "
                        "with the function's first argument");
  auto tableType = cast<RankedTensorType>(op.getTable().getType());
  FailureOr<unsigned> table = weightArg(op.getTable(), op);
  FailureOr<unsigned> out = define(op.getResult(), "embedding");
  if (failed(table) || failed(out))
    return failure();
  if (tableType.getElementType() != op.getType().getElementType())
    return op.emitError("codegen needs the embedding table in the activation type");
  launch(embeddingKernel(tableType.getDimSize(1), tableType.getDimSize(0), views[op.getResult()].dtype),
         op, {Arg::weight(*table), Arg::buffer(*out), Arg::step()});
  return success();
}

LogicalResult StepLowering::lowerNorm(Operation *op, NormKind normKind, Value input,
                                      Value residual, Value weight, Value bias, double epsilon) {
  FailureOr<unsigned> in = contiguousBuffer(input, op);
  if (failed(in))
    return failure();
  FailureOr<unsigned> res = residual ? contiguousBuffer(residual, op) : FailureOr<unsigned>(0u);
  FailureOr<unsigned> w = weightArg(weight, op);
  FailureOr<unsigned> b = bias ? weightArg(bias, op) : FailureOr<unsigned>(0u);
  if (failed(res) || failed(w) || failed(b))
    return failure();

  const View inView = views[input]; // a copy: define() below may grow `views`
  const WeightValue &weightValue = context.weights.value(*w);
  int64_t size = cast<ShapedType>(input.getType()).getShape().back();
  if (weightValue.shape.size() != 1 || weightValue.shape[0] != size ||
      (bias && context.weights.value(*b).shape != weightValue.shape))
    return op->emitError("codegen needs norm weight and bias of shape [") << size << "]";

  NormParams params;
  params.kind = normKind;
  params.residual = static_cast<bool>(residual);
  params.bias = static_cast<bool>(bias);
  params.size = size;
  params.epsilon = epsilon;
  params.dtype = inView.dtype;
  params.weightDtype = weightValue.dtype;
  if (canFuseNormIntoGemvs(op, params, inView)) {
    FusedNorm fused;
    fused.params = params;
    fused.input = *in;
    fused.weight = *w;
    if (residual)
      fused.residual = *res;
    if (bias)
      fused.bias = *b;
    if (residual && !op->getResult(0).use_empty()) {
      FailureOr<unsigned> sum = define(op->getResult(0), "sum");
      if (failed(sum))
        return failure();
      fused.sum = *sum;
    }
    fusedNorms[op->getResult(op->getNumResults() - 1)] = fused;
    return success();
  }

  FailureOr<unsigned> sum = residual ? define(op->getResult(0), "sum") : FailureOr<unsigned>(0u);
  FailureOr<unsigned> out = define(op->getResult(op->getNumResults() - 1), "norm");
  if (failed(sum) || failed(out))
    return failure();
  KernelSpec spec = normKernel(params);
  // Several rows per token when the norm is over an inner dim.
  spec.launch.grid = static_cast<unsigned>(inView.elements() / size);

  SmallVector<Arg> args = {Arg::buffer(*in)};
  if (residual)
    args.push_back(Arg::buffer(*res));
  args.push_back(Arg::weight(*w));
  if (bias)
    args.push_back(Arg::weight(*b));
  if (residual)
    args.push_back(Arg::buffer(*sum));
  args.push_back(Arg::buffer(*out));
  launch(spec, op, args);
  return success();
}

namespace {

/// The operand through which a GEMV-lowered op reads its input row, or null.
OpOperand *gemvInputOperand(Operation *op) {
  if (auto linear = dyn_cast<tfm::LinearOp>(op))
    return &linear.getInputMutable();
  if (auto qkv = dyn_cast<tfm::PackedQkvLinearOp>(op))
    return &qkv.getInputMutable();
  if (auto mlp = dyn_cast<tfm::GatedMlpOp>(op))
    return &mlp.getInputMutable();
  return nullptr;
}

} // namespace

bool StepLowering::canFuseNormIntoGemvs(Operation *op, const NormParams &params,
                                        const View &input) const {
  Value normalized = op->getResult(op->getNumResults() - 1);
  if (kind != StepKind::decode || input.elements() != params.size || normalized.use_empty() ||
      gemvNormTokens(params.size, params.dtype, context.plan.model.maxBatch) == 0)
    return false;
  Operation *firstUser = nullptr;
  for (OpOperand &use : normalized.getUses()) {
    if (gemvInputOperand(use.getOwner()) != &use || use.getOwner()->getBlock() != op->getBlock())
      return false;
    if (!firstUser || use.getOwner()->isBeforeInBlock(firstUser))
      firstUser = use.getOwner();
  }
  // The first GEMV stores the residual sum: nothing may read it before.
  if (params.residual)
    for (Operation *user : op->getResult(0).getUsers())
      if (user->getBlock() != op->getBlock() || !firstUser->isBeforeInBlock(user))
        return false;
  return true;
}

namespace {

/// Checks a linear's operands: input [T, k], weight [rows, k] and bias
/// [rows], all of one dtype; returns k.
FailureOr<int64_t> checkLinear(Operation *op, Value input, Value weight, Value bias,
                               int64_t rows) {
  auto inputType = cast<RankedTensorType>(input.getType());
  auto weightType = cast<RankedTensorType>(weight.getType());
  if (inputType.getRank() != 2)
    return op->emitError("codegen supports linears on [tokens, features] activations only"),
           failure();
  int64_t k = inputType.getDimSize(1);
  if (weightType.getShape() != ArrayRef<int64_t>{rows, k} ||
      weightType.getElementType() != inputType.getElementType() ||
      (bias && cast<RankedTensorType>(bias.getType()).getShape() != ArrayRef<int64_t>{rows}))
    return op->emitError("codegen needs the weight as [")
               << rows << ", " << k << "] (and a bias of [" << rows
               << "]) in the activation type " << inputType.getElementType(),
           failure();
  return k;
}

} // namespace

LogicalResult StepLowering::launchGemv(Operation *op, Value input, GemvParams params,
                                       ArrayRef<Arg> args) {
  params.maxBatch = context.plan.model.maxBatch;
  SmallVector<Arg> all;
  auto fused = fusedNorms.find(input);
  if (fused == fusedNorms.end()) {
    FailureOr<unsigned> in = contiguousBuffer(input, op);
    if (failed(in))
      return failure();
    all.push_back(Arg::buffer(*in));
  } else {
    FusedNorm &norm = fused->second;
    params.norm = norm.params;
    all.push_back(Arg::buffer(norm.input));
    if (norm.residual)
      all.push_back(Arg::buffer(*norm.residual));
    all.push_back(Arg::weight(norm.weight));
    if (norm.bias)
      all.push_back(Arg::weight(*norm.bias));
    if (norm.sum && !norm.sumStored) {
      params.writeSum = true;
      norm.sumStored = true;
      all.push_back(Arg::buffer(*norm.sum));
    }
  }
  all.append(args.begin(), args.end());
  launch(gemvKernel(params), op, all);
  return success();
}

FailureOr<StepLowering::LinearOperands>
StepLowering::linearOperands(Operation *op, Value input, Value weight, Value bias, int64_t rows) {
  FailureOr<int64_t> k = checkLinear(op, input, weight, bias, rows);
  if (failed(k))
    return failure();
  FailureOr<unsigned> w = weightArg(weight, op);
  FailureOr<unsigned> b = bias ? weightArg(bias, op) : FailureOr<unsigned>(0u);
  if (failed(w) || failed(b))
    return failure();
  FailureOr<DType> dtype = dtypeOf(cast<ShapedType>(input.getType()).getElementType());
  if (failed(dtype))
    return op->emitError("codegen does not support this linear's element type"), failure();
  return LinearOperands{*k, *w, *b, *dtype};
}

LogicalResult StepLowering::lowerLinear(Operation *op, Value input, Value weight, Value bias) {
  int64_t n = cast<ShapedType>(op->getResult(0).getType()).getShape().back();
  FailureOr<LinearOperands> operands = linearOperands(op, input, weight, bias, n);
  if (failed(operands))
    return failure();
  auto [k, w, b, dtype] = *operands;

  if (kind == StepKind::prefill) {
    FailureOr<unsigned> in = contiguousBuffer(input, op);
    FailureOr<unsigned> out = define(op->getResult(0), isa<tfm::PackedQkvLinearOp>(op) ? "qkv"
                                                                                         : "linear");
    if (failed(in) || failed(out))
      return failure();
    Gemm gemm;
    gemm.a = Arg::buffer(*in);
    gemm.b = Arg::weight(w);
    gemm.c = Arg::buffer(*out);
    if (bias)
      gemm.bias = Arg::weight(b);
    gemm.n = n;
    gemm.k = k;
    gemm.dtype = dtype;
    gemm.name = describeLocation(op->getLoc());
    record(std::move(gemm));
    return success();
  }
  FailureOr<unsigned> out = define(op->getResult(0), isa<tfm::PackedQkvLinearOp>(op) ? "qkv"
                                                                                       : "linear");
  if (failed(out))
    return failure();
  GemvParams params;
  params.n = n;
  params.k = k;
  params.bias = static_cast<bool>(bias);
  params.dtype = dtype;
  SmallVector<Arg> args = {Arg::weight(w)};
  if (bias)
    args.push_back(Arg::weight(b));
  args.push_back(Arg::buffer(*out));
  // tfm.attention's RoPE and KV-cache write go into the packed-QKV GEMV when
  // the attention is its only user.
  Value qkv = op->getResult(0);
  auto attention = qkv.hasOneUse() ? dyn_cast<tfm::AttentionOp>(*qkv.getUsers().begin())
                                   : tfm::AttentionOp();
  if (isa<tfm::PackedQkvLinearOp>(op) && attention && attention.getQkv() == qkv) {
    FailureOr<AttentionParams> attentionShape = attentionParams(attention);
    if (failed(attentionShape))
      return failure();
    if (gemvCanWriteKvCache(*attentionShape) &&
        n == (attentionShape->heads + 2 * attentionShape->kvHeads) * attentionShape->headDim) {
      params.attention = *attentionShape;
      unsigned layer = static_cast<unsigned>(attention.getLayer());
      args.append({Arg::kCache(layer), Arg::vCache(layer)});
      std::optional<unsigned> counters = decodeCounters(attention, *attentionShape);
      if (counters)
        args.push_back(Arg::buffer(*counters));
      args.push_back(Arg::step());
      kvCacheWritten[qkv] = counters;
    }
  }
  args.push_back(Arg::numTokens());
  return launchGemv(op, input, params, args);
}

LogicalResult StepLowering::lowerLmHead(Operation *op, Value input, Value weight, Value bias) {
  int64_t n = cast<ShapedType>(op->getResult(0).getType()).getShape().back();
  FailureOr<LinearOperands> operands = linearOperands(op, input, weight, bias, n);
  if (failed(operands))
    return failure();
  auto [k, w, b, dtype] = *operands;
  GemvParams params;
  params.n = n;
  params.k = k;
  params.bias = static_cast<bool>(bias);
  params.lastTokens = true;
  params.dtype = dtype;
  SmallVector<Arg> args = {Arg::weight(w)};
  if (bias)
    args.push_back(Arg::weight(b));
  args.append({Arg::buffer(context.plan.logits), Arg::step()});
  return launchGemv(op, input, params, args);
}

LogicalResult StepLowering::lowerGatedMlp(tfm::GatedMlpOp op) {
  int64_t size = op.getType().getShape().back();
  FailureOr<LinearOperands> operands = linearOperands(op, op.getInput(), op.getWeight(), op.getBias(), 2 * size);
  if (failed(operands))
    return failure();
  auto [k, w, b, dtype] = *operands;
  llvm::StringRef activation = activationFunction(op.getActivation());

  if (kind == StepKind::prefill) {
    FailureOr<unsigned> in = contiguousBuffer(op.getInput(), op);
    FailureOr<unsigned> out = define(op.getResult(), "mlp");
    if (failed(in) || failed(out))
      return failure();
    unsigned gateUp = newBuffer(bufferName(op, "gate_up"), dtype,
                                static_cast<uint64_t>(2 * size * dtypeBytes(dtype)), 0);
    Gemm gemm;
    gemm.a = Arg::buffer(*in);
    gemm.b = Arg::weight(w);
    gemm.c = Arg::buffer(gateUp);
    if (op.getBias())
      gemm.bias = Arg::weight(b);
    gemm.n = 2 * size;
    gemm.k = k;
    gemm.dtype = dtype;
    gemm.name = describeLocation(op.getLoc());
    record(std::move(gemm));
    launch(gatedActivationKernel(activation, size, dtype), op,
           {Arg::buffer(gateUp), Arg::buffer(*out)});
    return success();
  }
  FailureOr<unsigned> out = define(op.getResult(), "mlp");
  if (failed(out))
    return failure();
  GemvParams params;
  params.n = size;
  params.k = k;
  params.bias = static_cast<bool>(op.getBias());
  params.gatedActivation = activation.str();
  params.dtype = dtype;
  SmallVector<Arg> args = {Arg::weight(w)};
  if (op.getBias())
    args.push_back(Arg::weight(b));
  args.append({Arg::buffer(*out), Arg::numTokens()});
  return launchGemv(op, op.getInput(), params, args);
}

FailureOr<AttentionParams> StepLowering::attentionParams(tfm::AttentionOp op) {
  return attentionParamsOf(context, op);
}

FailureOr<AttentionParams> codegen::attentionParamsOf(LoweringContext &context,
                                                      tfm::AttentionOp op) {
  const ModelInfo &model = context.plan.model;
  AttentionParams params;
  params.heads = op.getNumHeads();
  params.kvHeads = op.getNumKvHeads();
  params.headDim = op.getHeadDim();
  if (params.kvHeads != model.numKvHeads || params.headDim != model.headDim)
    return op.emitError("codegen sizes every layer's KV cache from the module's tfm.num_kv_heads ")
           << "(" << model.numKvHeads << ") and tfm.head_dim (" << model.headDim
           << "); this attention has " << params.kvHeads << " kv heads of " << params.headDim;
  if (op.getLayer() < 0 || op.getLayer() >= model.numLayers)
    return op.emitError("attention layer ")
           << op.getLayer() << " is outside the module's " << model.numLayers << " layers";
  if (op.getPositions() != context.forward.getArgument(1))
    return op.emitError("codegen reads positions from the step state: tfm.attention must use the "
                        "function's second argument");
  params.scale = op.getScale().convertToDouble();
  params.window = op.getWindow() ? *op.getWindow() : 0;
  if (op.getAlibi())
    params.alibiSlopes = alibiSlopes(params.heads);
  params.maxSeqLen = model.maxSeqLen;
  params.maxTokens = model.maxTokens;
  params.maxBatch = model.maxBatch;
  params.decodeSplits = chooseDecodeSplits(params);
  if (tfm::RopeAttr rope = op.getRopeAttr()) {
    params.rope = true;
    params.ropeGptj = rope.getStyle() == tfm::RopeStyle::gptj;
    params.rotaryDim = rope.getRotaryDim();
    params.invFreq = ropeInverseFrequencies(rope);
  }
  FailureOr<DType> dtype = dtypeOf(op.getQkv().getType().getElementType());
  if (failed(dtype))
    return op.emitError("codegen does not support this attention's element type"), failure();
  params.dtype = *dtype;
  return params;
}

std::optional<unsigned> StepLowering::decodeCounters(tfm::AttentionOp op,
                                                     const AttentionParams &params) {
  int64_t perToken = decodeCountersPerToken(params);
  if (perToken == 0)
    return std::nullopt;
  return newBuffer(bufferName(op, "counters"), DType::i32, static_cast<uint64_t>(perToken * 4), 0);
}

LogicalResult StepLowering::lowerAttention(tfm::AttentionOp op) {
  FailureOr<AttentionParams> shape = attentionParams(op);
  if (failed(shape))
    return failure();
  AttentionParams &params = *shape;
  // RoPE rotates q and k in place, so the packed row must be ours alone.
  FailureOr<View> qkvView = viewOf(op.getQkv(), op);
  if (failed(qkvView))
    return failure();
  unsigned qkv = qkvView->isContiguous() && op.getQkv().hasOneUse()
                     ? qkvView->buffer
                     : materialize(*qkvView, op);
  FailureOr<unsigned> out = define(op.getResult(), "attention");
  if (failed(out))
    return failure();

  unsigned layer = static_cast<unsigned>(op.getLayer());
  Arg kCache = Arg::kCache(layer), vCache = Arg::vCache(layer);
  if (kind == StepKind::prefill) {
    launch(ropeKvCacheKernel(params, /*zeroCounters=*/false), op,
           {Arg::buffer(qkv), kCache, vCache, Arg::step()});
    launch(attentionPrefillKernel(params), op,
           {Arg::buffer(qkv), kCache, vCache, Arg::buffer(*out), Arg::step()});
    return success();
  }
  // Decode: RoPE and the cache write zero the counters the attention's
  // splits count themselves in (unless the QKV GEMV did all that).
  std::optional<unsigned> counters;
  if (auto fused = kvCacheWritten.find(op.getQkv()); fused != kvCacheWritten.end()) {
    counters = fused->second;
  } else {
    counters = decodeCounters(op, params);
    SmallVector<Arg> args = {Arg::buffer(qkv), kCache, vCache};
    if (counters)
      args.push_back(Arg::buffer(*counters));
    args.push_back(Arg::step());
    launch(ropeKvCacheKernel(params, counters.has_value()), op, args);
  }
  SmallVector<Arg> args = {Arg::buffer(qkv), kCache, vCache};
  if (counters) {
    unsigned partial =
        newBuffer(bufferName(op, "partial"), DType::f32,
                  static_cast<uint64_t>(decodePartialFloatsPerToken(params) * 4), 0);
    args.append({Arg::buffer(partial), Arg::buffer(*counters)});
  }
  args.append({Arg::buffer(*out), Arg::step()});
  launch(attentionDecodeKernel(params), op, args);
  return success();
}

LogicalResult StepLowering::lowerElementwise(Operation *root) {
  FailureOr<SmallVector<int64_t>> shape = perTokenShape(root->getResult(0));
  if (failed(shape))
    return root->emitError("codegen needs activations of shape [tokens, ...] with static inner "
                           "dims, not ")
           << root->getResult(0).getType();
  int64_t size = 1;
  for (int64_t dim : *shape)
    size *= dim;

  ElementwiseParams params;
  params.size = size;
  SmallVector<Arg> args;
  llvm::DenseMap<Value, std::string> names;
  SmallVector<std::string> opNames;

  // Each op becomes a statement `const float v<j> = ...;` over the names of
  // its operands: v<j> of a producer fused here, else a new operand a<i>.
  std::function<FailureOr<std::string>(Value, Operation *)> nameOf;
  auto statementOf = [&](Operation *op) -> FailureOr<std::string> {
    SmallVector<std::string> operands;
    for (Value operand : op->getOperands()) {
      FailureOr<std::string> name = nameOf(operand, op);
      if (failed(name))
        return failure();
      operands.push_back(*name);
    }
    std::string name = "v" + std::to_string(params.statements.size());
    params.statements.push_back("const float " + name + " = " +
                                elementwiseExpression(op, operands) + ";");
    opNames.push_back(op->getName().stripDialect().str());
    return names[op->getResult(0)] = name;
  };
  nameOf = [&](Value value, Operation *user) -> FailureOr<std::string> {
    if (auto found = names.find(value); found != names.end())
      return found->second;
    Operation *def = value.getDefiningOp();
    if (def && isFusedIntoUser(def))
      return statementOf(def);

    ElementwiseParams::Operand operand;
    auto type = cast<RankedTensorType>(value.getType());
    if (tfm::isLoadTimeValue(value)) {
      // A weight broadcast along the row: its shape must be the row's
      // trailing dims (leading unit dims aside).
      ArrayRef<int64_t> weightShape = type.getShape();
      while (!weightShape.empty() && weightShape.front() == 1)
        weightShape = weightShape.drop_front();
      if (!type.hasStaticShape() || weightShape.size() > shape->size() ||
          ArrayRef<int64_t>(*shape).take_back(weightShape.size()) != weightShape)
        return user->emitError("codegen supports weights in elementwise ops only when their "
                               "shape is the activation's trailing dims"),
               failure();
      FailureOr<unsigned> weight = weightArg(value, user);
      if (failed(weight))
        return failure();
      operand.dtype = context.weights.value(*weight).dtype;
      operand.broadcast = std::max<int64_t>(1, type.getNumElements());
      args.push_back(Arg::weight(*weight));
    } else {
      FailureOr<SmallVector<int64_t>> operandShape = perTokenShape(value);
      if (failed(operandShape) || *operandShape != *shape)
        return user->emitError("codegen does not support broadcasting between activations in "
                               "elementwise ops"),
               failure();
      FailureOr<unsigned> buffer = contiguousBuffer(value, user);
      if (failed(buffer))
        return failure();
      operand.dtype = views[value].dtype;
      args.push_back(Arg::buffer(*buffer));
    }
    std::string name = "a" + std::to_string(params.operands.size());
    params.operands.push_back(operand);
    return names[value] = name;
  };

  if (failed(statementOf(root)))
    return failure();
  unsigned result = params.statements.size() - 1;
  FailureOr<unsigned> out = define(root->getResult(0), llvm::join(opNames, "_"));
  if (failed(out))
    return failure();
  params.name = llvm::join(opNames, "_");
  params.outputs.push_back({result, views[root->getResult(0)].dtype});
  args.push_back(Arg::buffer(*out));
  launch(elementwiseKernel(params), root, args);
  return success();
}

LogicalResult StepLowering::lowerReshape(tfm::ReshapeOp op) {
  FailureOr<View> view = viewOf(op.getInput(), op);
  if (failed(view))
    return failure();
  if (failed(perTokenShape(op.getResult())))
    return op.emitError("codegen supports reshapes of activations that keep the leading token "
                        "dimension, not ")
           << op.getInput().getType() << " -> " << op.getType();
  views[op.getResult()] = *view;
  return success();
}

LogicalResult StepLowering::lowerSlice(Operation *op, Value input, Value result, int64_t axis,
                                       int64_t start, int64_t size) {
  FailureOr<SmallVector<int64_t>> shape = perTokenShape(input);
  FailureOr<View> view = viewOf(input, op);
  if (failed(view))
    return failure();
  if (failed(shape) || axis < 1)
    return op->emitError("codegen supports slices of activations along an inner axis only");
  FailureOr<View> sliced = restride(*view, *shape);
  if (failed(sliced))
    sliced = restride(View::contiguous(materialize(*view, op), view->elements(), view->dtype),
                      *shape);
  sliced->offset += start * sliced->strides[axis - 1];
  sliced->dims[axis - 1] = size;
  views[result] = *sliced;
  return success();
}

LogicalResult StepLowering::lowerConcat(tfm::ConcatOp op) {
  FailureOr<SmallVector<int64_t>> shape = perTokenShape(op.getResult());
  if (failed(shape) || op.getAxis() < 1)
    return op.emitError("codegen supports concatenation of activations along an inner axis only");
  for (int64_t d = 0; d + 1 < op.getAxis(); ++d)
    if ((*shape)[d] != 1)
      return op.emitError("codegen supports concatenation along the first inner axis only");

  SmallVector<Arg> args;
  SmallVector<CopySegment> segments;
  llvm::DenseMap<unsigned, unsigned> sourceOf; // buffer -> parameter
  for (Value input : op.getInputs()) {
    FailureOr<View> view = viewOf(input, op);
    if (failed(view))
      return failure();
    auto [it, inserted] = sourceOf.try_emplace(view->buffer, args.size());
    if (inserted)
      args.push_back(Arg::buffer(view->buffer));
    segments.push_back(segmentOf(*view, it->second));
  }
  FailureOr<unsigned> out = define(op.getResult(), "concat");
  if (failed(out))
    return failure();
  unsigned sources = args.size();
  args.push_back(Arg::buffer(*out));
  const View &outView = views[op.getResult()];
  launch(copyKernel("concat", outView.elements(), sources, segments, outView.dtype), op, args);
  return success();
}

LogicalResult StepLowering::lowerTranspose(tfm::TransposeOp op) {
  FailureOr<SmallVector<int64_t>> shape = perTokenShape(op.getInput());
  ArrayRef<int64_t> permutation = op.getPermutation();
  if (failed(shape) || failed(perTokenShape(op.getResult())) || permutation.front() != 0)
    return op.emitError("codegen supports transposes of activations that keep the token "
                        "dimension first only");
  FailureOr<View> view = viewOf(op.getInput(), op);
  if (failed(view))
    return failure();
  FailureOr<View> input = restride(*view, *shape);
  if (failed(input))
    input = restride(View::contiguous(materialize(*view, op), view->elements(), view->dtype),
                     *shape);
  View result = *input;
  for (auto [d, from] : llvm::enumerate(permutation.drop_front())) {
    result.dims[d] = input->dims[from - 1];
    result.strides[d] = input->strides[from - 1];
  }
  views[op.getResult()] = result;
  return success();
}

LogicalResult StepLowering::lowerSampling() {
  launch(samplingKernel(context.plan.model.vocabSize), context.lmHead,
         {Arg::buffer(context.plan.logits), Arg::step()});
  return success();
}
