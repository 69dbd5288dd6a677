//===- ArtifactWriter.cpp - the plan as a FlatBuffer ----------------------===//

#include "Plan.h"

#include "llvm/Support/ErrorHandling.h"

using namespace kiln;
using namespace kiln::codegen;
namespace fb = flatbuffers;

int64_t codegen::dtypeBytes(DType dtype) {
  switch (dtype) {
  case DType::f32:
  case DType::i32:
    return 4;
  case DType::f16:
  case DType::bf16:
    return 2;
  case DType::i64:
    return 8;
  case DType::i8:
  case DType::u8:
  case DType::f8e4m3:
  case DType::i4: // not emitted: quantized weights are a later issue
    return 1;
  }
  llvm_unreachable("unknown dtype");
}

llvm::StringRef codegen::dtypeName(DType dtype) { return artifact::EnumNameDType(dtype); }

llvm::StringRef codegen::cudaTypeName(DType dtype) {
  switch (dtype) {
  case DType::f32:
    return "float";
  case DType::f16:
    return "__half";
  case DType::bf16:
    return "__nv_bfloat16";
  default:
    llvm_unreachable("no CUDA type for a non-float dtype");
  }
}

int64_t WeightValue::bytes() const {
  int64_t elements = 1;
  for (int64_t dim : shape)
    elements *= dim;
  return elements * dtypeBytes(dtype);
}

namespace {

fb::Offset<artifact::Arg> writeArg(fb::FlatBufferBuilder &builder, const Arg &arg) {
  fb::Offset<artifact::TensorMapView> view;
  if (arg.kind == ArgKind::weight_tensor_map)
    view = artifact::CreateTensorMapViewDirect(builder, &arg.view.dims, &arg.view.strides,
                                               &arg.view.box, arg.view.swizzleBytes);
  return artifact::CreateArg(builder, arg.kind, arg.index, view);
}

fb::Offset<artifact::Step> writeStep(fb::FlatBufferBuilder &builder, llvm::StringRef name,
                                     const std::vector<Command> &commands, int maxTokens = 0,
                                     int minComputeCapability = 0) {
  std::vector<fb::Offset<artifact::CommandEntry>> entries;
  for (const Command &command : commands) {
    if (const auto *launch = std::get_if<Launch>(&command)) {
      std::vector<fb::Offset<artifact::Arg>> args;
      for (const Arg &arg : launch->args)
        args.push_back(writeArg(builder, arg));
      std::vector<uint32_t> grid = {launch->shape.grid, 1, 1};
      std::vector<uint32_t> block = {launch->shape.block, 1, 1};
      auto written = artifact::CreateLaunchDirect(builder, launch->kernel, &grid, launch->shape.scale,
                                                  launch->shape.tile, &block, launch->shape.sharedBytes,
                                                  &args);
      entries.push_back(artifact::CreateCommandEntry(builder, artifact::Command::Launch,
                                                     written.Union()));
      continue;
    }
    const auto &gemm = std::get<Gemm>(command);
    auto a = writeArg(builder, gemm.a);
    auto b = writeArg(builder, gemm.b);
    auto c = writeArg(builder, gemm.c);
    fb::Offset<artifact::Arg> bias;
    if (gemm.bias)
      bias = writeArg(builder, *gemm.bias);
    auto written = artifact::CreateGemmDirect(builder, a, b, c, bias, gemm.n, gemm.k, gemm.dtype,
                                              gemm.name.c_str());
    entries.push_back(
        artifact::CreateCommandEntry(builder, artifact::Command::Gemm, written.Union()));
  }
  return artifact::CreateStepDirect(builder, name.str().c_str(), &entries, maxTokens,
                                    minComputeCapability);
}

} // namespace

std::string codegen::serializePlan(const Plan &plan) {
  fb::FlatBufferBuilder builder(64 * 1024);

  const ModelInfo &model = plan.model;
  std::vector<fb::Offset<fb::String>> archs;
  for (const std::string &arch : model.targetArchs)
    archs.push_back(builder.CreateString(arch));
  auto modelInfo = artifact::CreateModelInfoDirect(
      builder, model.architecture.c_str(), model.numLayers, model.hiddenSize, model.numHeads,
      model.numKvHeads, model.headDim, model.vocabSize, model.intermediateSize, model.dtype,
      model.maxBatch, model.maxSeqLen, model.maxTokens, &archs);

  std::vector<fb::Offset<artifact::WeightValue>> weights;
  for (const WeightValue &value : plan.weights) {
    std::vector<uint32_t> inputs(value.inputs.begin(), value.inputs.end());
    std::vector<int64_t> shape(value.shape.begin(), value.shape.end());
    std::vector<int64_t> permutation(value.permutation.begin(), value.permutation.end());
    weights.push_back(artifact::CreateWeightValueDirect(
        builder, value.op, value.name.empty() ? nullptr : value.name.c_str(), &inputs, &shape,
        value.dtype, value.axis, value.start, value.size,
        permutation.empty() ? nullptr : &permutation, value.weightOffset));
  }

  std::vector<fb::Offset<artifact::Buffer>> buffers;
  for (const Buffer &buffer : plan.buffers)
    buffers.push_back(artifact::CreateBufferDirect(builder, buffer.name.c_str(), buffer.offset,
                                                   buffer.bytesPerToken, buffer.fixedBytes,
                                                   buffer.dtype));

  std::vector<fb::Offset<artifact::Kernel>> kernels;
  for (const Kernel &kernel : plan.kernels)
    kernels.push_back(artifact::CreateKernelDirect(builder, kernel.name.c_str(),
                                                   kernel.source.c_str(), kernel.location.c_str(),
                                                   kernel.programmatic));

  auto prefill = writeStep(builder, "prefill", plan.prefill);
  auto decode = writeStep(builder, "decode", plan.decode);
  fb::Offset<artifact::Step> decodePersistent;
  if (!plan.decodePersistent.empty())
    decodePersistent = writeStep(builder, "decode_persistent", plan.decodePersistent,
                                 static_cast<int>(plan.decodePersistentMaxTokens),
                                 kPersistentDecodeComputeCapability);
  auto root = artifact::CreateArtifactDirect(
      builder, /*version=*/2, "kiln 0.1", modelInfo, &weights, plan.weightsArenaBytes, &buffers,
      plan.arenaBytesPerToken, plan.arenaFixedBytes, &kernels, prefill, decode, plan.logits,
      decodePersistent);
  artifact::FinishArtifactBuffer(builder, root);
  return std::string(reinterpret_cast<const char *>(builder.GetBufferPointer()), builder.GetSize());
}
