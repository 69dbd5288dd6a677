//===- WeightProgram.cpp - load-time ops to the artifact's weight program -===//

#include "Lowering.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {
constexpr uint64_t kWeightAlignment = 256;

/// The names of a location, outermost first (fused locations give several).
void collectNames(Location loc, SmallVectorImpl<std::string> &names) {
  if (auto name = dyn_cast<NameLoc>(loc)) {
    names.push_back(name.getName().str());
  } else if (auto fused = dyn_cast<FusedLoc>(loc)) {
    for (Location inner : fused.getLocations())
      collectNames(inner, names);
  } else if (auto file = dyn_cast<FileLineColLoc>(loc)) {
    names.push_back((file.getFilename().strref() + ":" + Twine(file.getLine()) + ":" +
                     Twine(file.getColumn()))
                        .str());
  }
}
} // namespace

std::string codegen::describeLocation(Location loc) {
  SmallVector<std::string> names;
  collectNames(loc, names);
  // A name that is a dotted prefix of another says nothing the other does not.
  llvm::erase_if(names, [&](const std::string &name) {
    return llvm::any_of(names, [&](const std::string &other) {
      return other.size() > name.size() && StringRef(other).starts_with(name + ".");
    });
  });
  if (names.empty())
    return "?";
  if (names.size() == 1)
    return names.front();
  // Factor out the dotted components all names share.
  SmallVector<StringRef> first;
  StringRef(names.front()).split(first, '.');
  size_t shared = first.size() - 1;
  for (const std::string &name : names) {
    SmallVector<StringRef> parts;
    StringRef(name).split(parts, '.');
    size_t common = 0;
    while (common < shared && common + 1 < parts.size() && parts[common] == first[common])
      ++common;
    shared = common;
  }
  std::string prefix = shared ? llvm::join(ArrayRef(first).take_front(shared), ".") + "." : "";
  SmallVector<std::string> rests;
  for (const std::string &name : names)
    rests.push_back(name.substr(prefix.size()));
  return prefix + "{" + llvm::join(rests, ",") + "}";
}

FailureOr<DType> codegen::dtypeOf(Type type) {
  if (type.isF32())
    return DType::f32;
  if (type.isF16())
    return DType::f16;
  if (type.isBF16())
    return DType::bf16;
  if (type.isInteger(32))
    return DType::i32;
  if (type.isInteger(64))
    return DType::i64;
  if (type.isInteger(8))
    return DType::i8;
  if (type.isInteger(4))
    return DType::i4;
  if (isa<Float8E4M3FNType>(type))
    return DType::f8e4m3;
  return failure();
}

FailureOr<unsigned> WeightProgram::lower(Value value, Operation *user) {
  auto found = indexOf.find(value);
  if (found != indexOf.end())
    return found->second;

  Operation *def = value.getDefiningOp();
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!def || !type || !type.hasStaticShape() || !tfm::isLoadTimeValue(value))
    return user->emitError("codegen needs this operand to be a weight of static shape (a "
                           "tfm.weight or a load-time transform of weights)"),
           failure();
  FailureOr<DType> dtype = dtypeOf(type.getElementType());
  if (failed(dtype))
    return def->emitError("codegen does not support weights of element type ")
               << type.getElementType(),
           failure();

  WeightValue result;
  result.shape.assign(type.getShape().begin(), type.getShape().end());
  result.dtype = *dtype;
  auto addInputs = [&](ValueRange inputs) -> LogicalResult {
    for (Value input : inputs) {
      FailureOr<unsigned> index = lower(input, def);
      if (failed(index))
        return failure();
      result.inputs.push_back(*index);
    }
    return success();
  };

  LogicalResult status =
      llvm::TypeSwitch<Operation *, LogicalResult>(def)
          .Case([&](tfm::WeightOp op) {
            result.op = WeightOp::checkpoint;
            result.name = op.getName().str();
            return success();
          })
          .Case([&](tfm::WeightCastOp op) {
            result.op = WeightOp::cast;
            return addInputs(op.getInput());
          })
          .Case([&](tfm::WeightConcatOp op) {
            result.op = WeightOp::concat;
            result.axis = op.getAxis();
            return addInputs(op.getInputs());
          })
          .Case([&](tfm::ConcatOp op) {
            result.op = WeightOp::concat;
            result.axis = op.getAxis();
            return addInputs(op.getInputs());
          })
          .Case([&](tfm::ReshapeOp op) {
            result.op = WeightOp::reshape;
            return addInputs(op.getInput());
          })
          .Case([&](tfm::TransposeOp op) {
            result.op = WeightOp::transpose;
            result.permutation.assign(op.getPermutation().begin(), op.getPermutation().end());
            return addInputs(op.getInput());
          })
          .Case([&](tfm::SliceOp op) {
            result.op = WeightOp::slice;
            result.axis = op.getAxis();
            result.start = op.getStart();
            result.size = op.getSize();
            return addInputs(op.getInput());
          })
          .Default([&](Operation *op) {
            return op->emitError("codegen does not support '")
                   << op->getName() << "' in the load-time weight program";
          });
  if (failed(status))
    return failure();

  // One value per checkpoint tensor, however many ops name it.
  if (result.op == WeightOp::checkpoint) {
    auto [it, inserted] = checkpointIndex.try_emplace(result.name, values.size());
    if (!inserted) {
      const WeightValue &earlier = values[it->second];
      if (earlier.shape != result.shape || earlier.dtype != result.dtype)
        return def->emitError("checkpoint tensor '")
                   << result.name << "' is named again with another shape or dtype",
               failure();
      indexOf[value] = it->second;
      return it->second;
    }
  }
  unsigned index = values.size();
  values.push_back(std::move(result));
  bound.push_back(false);
  indexOf[value] = index;
  return index;
}

FailureOr<unsigned> WeightProgram::bind(Value value, Operation *user) {
  FailureOr<unsigned> index = lower(value, user);
  if (succeeded(index))
    bound[*index] = true;
  return index;
}

uint64_t WeightProgram::assignOffsets() {
  uint64_t size = 0;
  for (auto [value, isBound] : llvm::zip(values, bound)) {
    if (!isBound)
      continue;
    value.weightOffset = static_cast<int64_t>(size);
    size = llvm::alignTo(size + value.bytes(), kWeightAlignment);
  }
  return size;
}
