//===- WeightPlan.cpp - planning the load-time weight program -------------===//

#include "kiln/Runtime/WeightPlan.h"

#include <algorithm>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

bool runtime::checkpointDType(fa::DType dtype, kiln::DType &out) {
  switch (dtype) {
  case fa::DType::f32: out = kiln::DType::F32; return true;
  case fa::DType::f16: out = kiln::DType::F16; return true;
  case fa::DType::bf16: out = kiln::DType::BF16; return true;
  case fa::DType::i32: out = kiln::DType::I32; return true;
  case fa::DType::i64: out = kiln::DType::I64; return true;
  case fa::DType::i8: out = kiln::DType::I8; return true;
  case fa::DType::u8: out = kiln::DType::U8; return true;
  case fa::DType::f8e4m3: out = kiln::DType::F8_E4M3; return true;
  case fa::DType::i4: return false;
  }
  return false;
}

namespace {
template <typename Range> std::string shapeText(const Range &shape) {
  std::string text = "[";
  bool first = true;
  for (int64_t dim : shape) {
    text += (first ? "" : ", ") + std::to_string(dim);
    first = false;
  }
  return text + "]";
}
} // namespace

bool runtime::matchCheckpoint(const Artifact &artifact, const Checkpoint &checkpoint,
                              std::string &error) {
  constexpr int kMaxListed = 10;
  std::vector<std::string> problems;
  int count = 0;
  for (const fa::WeightValue *value : *artifact.get().weights()) {
    if (value->op() != fa::WeightOp::checkpoint)
      continue;
    const std::string name = value->name()->str();
    std::string problem;
    kiln::DType expected;
    const TensorInfo *tensor = checkpoint.find(name);
    const std::string expectedShape = shapeText(*value->shape());
    if (!checkpointDType(value->dtype(), expected))
      problem = "tensor '" + name + "': the artifact expects dtype " +
                dtypeName(value->dtype()) + ", which a checkpoint cannot hold";
    else if (!tensor)
      problem = "missing tensor '" + name + "' (" + kiln::dtypeName(expected) + " " +
                expectedShape + ")";
    else if (tensor->dtype != expected || shapeText(tensor->shape) != expectedShape)
      problem = "tensor '" + name + "' in " + tensor->file + " is " +
                kiln::dtypeName(tensor->dtype) + " " + shapeText(tensor->shape) +
                ", but the artifact expects " + kiln::dtypeName(expected) + " " + expectedShape;
    if (problem.empty())
      continue;
    if (count++ < kMaxListed)
      problems.push_back(problem);
  }
  if (count == 0)
    return true;
  error = "checkpoint " + checkpoint.location + " does not match artifact " + artifact.name() +
          ":";
  for (const std::string &problem : problems)
    error += "\n  " + problem;
  if (count > kMaxListed)
    error += "\n  ... and " + std::to_string(count - kMaxListed) + " more";
  return false;
}

WeightPlan runtime::planWeights(const Artifact &artifact) {
  const auto &values = *artifact.get().weights();
  const size_t n = values.size();
  WeightPlan plan;
  plan.storage.assign(n, WeightPlan::Storage::Unused);
  plan.owner.resize(n);
  plan.bytes.resize(n);
  plan.freeAfter.resize(n);

  // A value is needed if it lands in the arena or a needed value reads it.
  std::vector<bool> needed(n, false);
  std::vector<int64_t> lastUse(n, -1);
  for (size_t i = n; i-- > 0;) {
    const fa::WeightValue *value = values.Get(uint32_t(i));
    needed[i] = needed[i] || value->weight_offset() >= 0;
    if (!needed[i] || !value->inputs())
      continue;
    for (uint32_t input : *value->inputs()) {
      needed[input] = true;
      lastUse[input] = std::max(lastUse[input], int64_t(i));
    }
  }

  std::vector<int64_t> ownerLastUse(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const fa::WeightValue *value = values.Get(uint32_t(i));
    uint64_t elements = 1;
    for (int64_t dim : *value->shape())
      elements *= uint64_t(dim);
    plan.bytes[i] = elements * elementBytes(value->dtype());
    plan.owner[i] = uint32_t(i);
    if (!needed[i])
      continue;
    if (value->op() == fa::WeightOp::checkpoint) {
      plan.checkpointBytes += plan.bytes[i];
      ++plan.checkpointTensors;
    }
    if (value->weight_offset() >= 0) {
      plan.storage[i] = WeightPlan::Storage::Arena;
    } else if (value->op() == fa::WeightOp::reshape) {
      plan.storage[i] = WeightPlan::Storage::Alias;
      plan.owner[i] = plan.owner[value->inputs()->Get(0)];
    } else {
      plan.storage[i] = WeightPlan::Storage::Staging;
    }
    const uint32_t owner = plan.owner[i];
    ownerLastUse[owner] = std::max({ownerLastUse[owner], lastUse[i], int64_t(i)});
  }

  uint64_t live = 0;
  for (size_t i = 0; i < n; ++i) {
    if (plan.storage[i] == WeightPlan::Storage::Staging) {
      live += plan.bytes[i];
      plan.stagingPeakBytes = std::max(plan.stagingPeakBytes, live);
      plan.freeAfter[size_t(ownerLastUse[i])].push_back(uint32_t(i));
    }
    for (uint32_t freed : plan.freeAfter[i])
      live -= plan.bytes[freed];
  }
  return plan;
}
