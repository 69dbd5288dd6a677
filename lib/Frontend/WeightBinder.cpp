//===- WeightBinder.cpp - checkpoint tensors as tfm.weight ops ------------===//

#include "WeightBinder.h"

#include "kiln/Dialect/Tfm/TfmOps.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace kiln;

namespace {

/// Bad tensors reported in full; a checkpoint of another model would
/// otherwise give one error per tensor.
constexpr int kMaxReportedTensors = 10;

std::string shapeText(ArrayRef<int64_t> shape) {
  return "[" +
         llvm::join(llvm::map_range(shape, [](int64_t dim) { return std::to_string(dim); }), ", ") +
         "]";
}

/// The MLIR element type of a float checkpoint dtype; null for others.
Type elementType(MLIRContext *context, DType dtype) {
  switch (dtype) {
  case DType::F32:
    return Float32Type::get(context);
  case DType::F16:
    return Float16Type::get(context);
  case DType::BF16:
    return BFloat16Type::get(context);
  default:
    return nullptr;
  }
}

} // namespace

const TensorInfo *WeightBinder::find(StringRef name, ArrayRef<std::string> aliases) const {
  if (const TensorInfo *info = checkpoint_->find(name.str()))
    return info;
  for (const std::string &alias : aliases)
    if (const TensorInfo *info = checkpoint_->find(alias))
      return info;
  if (name.starts_with(basePrefix_))
    return checkpoint_->find(name.drop_front(basePrefix_.size()).str());
  return nullptr;
}

void WeightBinder::report(MLIRContext *context, const Twine &message) {
  if (++errors_ <= kMaxReportedTensors)
    emitError(UnknownLoc::get(context)) << message;
}

Value WeightBinder::bind(ImplicitLocOpBuilder &builder, StringRef name, ArrayRef<int64_t> shape,
                         ArrayRef<std::string> aliases) {
  if (Value bound = bound_.lookup(name))
    return bound;
  MLIRContext *context = builder.getContext();
  Type stored = elementType(context, configDtype_);
  std::string storedName = name.str();
  if (checkpoint_) {
    if (const TensorInfo *info = find(name, aliases)) {
      storedName = info->name;
      if (info->shape != std::vector<int64_t>(shape.begin(), shape.end()))
        report(context, info->name + ": shape " + shapeText(info->shape) + " in checkpoint " +
                            info->file + ", config implies " + shapeText(shape));
      if (Type type = elementType(context, info->dtype))
        stored = type;
      else
        report(context, info->name + ": dtype " + dtypeName(info->dtype) + " in checkpoint " +
                            info->file + "; kiln reads F32, F16 and BF16 weights");
    } else {
      report(context, name + ": missing from checkpoint " + checkpoint_->location);
    }
  }
  Value value = tfm::WeightOp::create(builder, RankedTensorType::get(shape, stored), storedName);
  if (stored != activationType_)
    value =
        tfm::WeightCastOp::create(builder, RankedTensorType::get(shape, activationType_), value);
  bound_[name] = value;
  return value;
}

LogicalResult WeightBinder::finish(MLIRContext *context) const {
  if (errors_ > kMaxReportedTensors)
    emitError(UnknownLoc::get(context))
        << (errors_ - kMaxReportedTensors) << " more checkpoint tensor errors not shown";
  return failure(errors_ > 0);
}
