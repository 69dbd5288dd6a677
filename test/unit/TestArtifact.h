//===- TestArtifact.h - small artifacts built by hand for tests -*- C++ -*-===//
//
// A plain description of an artifact that tests edit field by field and then
// serialize, so each test states only what it changes. The default is a
// valid two-layer toy model exercising every weight op, a launch and a gemm.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_TESTARTIFACT_H
#define KILN_TEST_UNIT_TESTARTIFACT_H

#include "kiln/Artifact/artifact_generated.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::test {

namespace fa = kiln::artifact;

struct TestWeight {
  fa::WeightOp op = fa::WeightOp::checkpoint;
  std::string name;
  std::vector<uint32_t> inputs;
  std::vector<int64_t> shape;
  fa::DType dtype = fa::DType::f32;
  int64_t axis = 0, start = 0, size = 0;
  std::vector<int64_t> permutation;
  int64_t offset = -1;
};

struct TestBuffer {
  std::string name;
  uint64_t offset = 0, bytesPerToken = 0, fixedBytes = 0;
  fa::DType dtype = fa::DType::f32;
};

/// A weight_tensor_map argument's view (fa::TensorMapView).
struct TestView {
  std::vector<uint64_t> dims, strides;
  std::vector<uint32_t> box;
  uint32_t swizzleBytes = 0;
};

struct TestCommand {
  // A launch unless `gemm`.
  uint32_t kernel = 0;
  std::vector<uint32_t> grid = {1, 1, 1}, block = {128, 1, 1};
  fa::GridScale scale = fa::GridScale::tokens;
  uint32_t tile = 0;
  std::vector<std::pair<fa::ArgKind, uint32_t>> args;
  std::map<size_t, TestView> views;  ///< by argument

  bool gemm = false;
  std::pair<fa::ArgKind, uint32_t> a, b, c;
  std::optional<std::pair<fa::ArgKind, uint32_t>> bias;
  int64_t n = 0, k = 0;
  fa::GridScale rows = fa::GridScale::tokens;

  bool collective = false;
};

struct TestArtifact {
  uint32_t version = 2;
  int numLayers = 2, hidden = 8, heads = 2, kvHeads = 1, headDim = 4, vocab = 16;
  fa::DType dtype = fa::DType::f32;
  int maxBatch = 2, maxSeqLen = 32, maxTokens = 16;
  std::vector<std::string> targetArchs = {"sm_80", "sm_90"};
  std::vector<TestWeight> weights;
  uint64_t weightsArenaBytes = 0;
  std::vector<TestBuffer> buffers;
  uint64_t arenaPerToken = 0, arenaFixed = 0;
  std::vector<std::pair<std::string, std::string>> kernels;  // name, source
  std::vector<TestCommand> prefill, decode;
  /// The optional persistent decode program (absent when empty).
  std::vector<TestCommand> decodePersistent;
  int persistentMaxTokens = 1, persistentComputeCapability = 90;
  uint32_t logits = 0;

  /// The valid default.
  static TestArtifact toy() {
    using fa::ArgKind;
    using fa::WeightOp;
    TestArtifact t;
    auto value = [&](WeightOp op, std::string name, std::vector<uint32_t> inputs,
                     std::vector<int64_t> shape, fa::DType dtype, int64_t offset = -1) {
      TestWeight w;
      w.op = op;
      w.name = std::move(name);
      w.inputs = std::move(inputs);
      w.shape = std::move(shape);
      w.dtype = dtype;
      w.offset = offset;
      t.weights.push_back(w);
      return &t.weights.back();
    };
    // embed [16, 8] f32 in the checkpoint, used as bf16 in the arena.
    value(WeightOp::checkpoint, "embed", {}, {16, 8}, fa::DType::f32);
    value(WeightOp::cast, "", {0}, {16, 8}, fa::DType::bf16, 0);
    // head = [head_a, head_b] stored transposed in the checkpoint: [8, 10] + [8, 6] -> [16, 8].
    value(WeightOp::checkpoint, "head_a", {}, {8, 10}, fa::DType::f32);
    value(WeightOp::checkpoint, "head_b", {}, {8, 6}, fa::DType::f32);
    value(WeightOp::concat, "", {2, 3}, {8, 16}, fa::DType::f32)->axis = 1;
    value(WeightOp::transpose, "", {4}, {16, 8}, fa::DType::f32, 256)->permutation = {1, 0};
    // bias = the first 16 of a [4, 5] tensor seen as [20].
    value(WeightOp::checkpoint, "bias", {}, {4, 5}, fa::DType::f32);
    value(WeightOp::reshape, "", {6}, {20}, fa::DType::f32);
    value(WeightOp::slice, "", {7}, {16}, fa::DType::f32, 768)->size = 16;
    t.weightsArenaBytes = 1024;
    t.buffers = {{"hidden", 0, 8 * 4, 0, fa::DType::f32},
                 {"logits", 512, 0, 2 * 16 * 4, fa::DType::f32}};
    t.arenaPerToken = 32;
    t.arenaFixed = 512;
    t.kernels = {{"embed_kernel", "extern \"C\" __global__ void embed_kernel() {}"},
                 {"sample_kernel", "extern \"C\" __global__ void sample_kernel() {}"}};
    TestCommand embed;
    embed.kernel = 0;
    embed.args = {{ArgKind::step, 0}, {ArgKind::weight, 1}, {ArgKind::buffer, 0},
                  {ArgKind::k_cache, 1}, {ArgKind::v_cache, 0}, {ArgKind::num_tokens, 0}};
    TestCommand head;
    head.gemm = true;
    head.a = {ArgKind::buffer, 0};
    head.b = {ArgKind::weight, 5};
    head.c = {ArgKind::buffer, 1};
    head.bias = std::pair{ArgKind::weight, 8u};
    head.n = 16;
    head.k = 8;
    head.rows = fa::GridScale::sequences;
    TestCommand sample;
    sample.kernel = 1;
    sample.scale = fa::GridScale::sequences;
    sample.args = {{ArgKind::step, 0}, {ArgKind::buffer, 1}};
    t.prefill = {embed, head, sample};
    t.decode = {embed, head, sample};
    t.logits = 1;
    return t;
  }

  std::vector<uint8_t> serialize() const {
    flatbuffers::FlatBufferBuilder builder;
    std::vector<flatbuffers::Offset<flatbuffers::String>> archs;
    for (const std::string &arch : targetArchs)
      archs.push_back(builder.CreateString(arch));
    auto model = fa::CreateModelInfoDirect(builder, "ToyForCausalLM", numLayers, hidden, heads,
                                           kvHeads, headDim, vocab, 32, dtype, maxBatch,
                                           maxSeqLen, maxTokens, &archs);
    std::vector<flatbuffers::Offset<fa::WeightValue>> weightOffsets;
    for (const TestWeight &w : weights)
      weightOffsets.push_back(fa::CreateWeightValueDirect(
          builder, w.op, w.name.empty() ? nullptr : w.name.c_str(), &w.inputs, &w.shape, w.dtype,
          w.axis, w.start, w.size, w.permutation.empty() ? nullptr : &w.permutation, w.offset));
    std::vector<flatbuffers::Offset<fa::Buffer>> bufferOffsets;
    for (const TestBuffer &b : buffers)
      bufferOffsets.push_back(fa::CreateBufferDirect(builder, b.name.c_str(), b.offset,
                                                     b.bytesPerToken, b.fixedBytes, b.dtype));
    std::vector<flatbuffers::Offset<fa::Kernel>> kernelOffsets;
    for (const auto &[name, source] : kernels)
      kernelOffsets.push_back(
          fa::CreateKernelDirect(builder, name.c_str(), source.c_str(), "loc(toy)"));
    auto prefillStep = writeStep(builder, "prefill", prefill);
    auto decodeStep = writeStep(builder, "decode", decode);
    flatbuffers::Offset<fa::Step> persistentStep;
    if (!decodePersistent.empty())
      persistentStep = writeStep(builder, "decode_persistent", decodePersistent,
                                 persistentMaxTokens, persistentComputeCapability);
    auto root = fa::CreateArtifactDirect(builder, version, "kiln test", model, &weightOffsets,
                                         weightsArenaBytes, &bufferOffsets, arenaPerToken,
                                         arenaFixed, &kernelOffsets, prefillStep, decodeStep,
                                         logits, persistentStep);
    fa::FinishArtifactBuffer(builder, root);
    return std::vector<uint8_t>(builder.GetBufferPointer(),
                                builder.GetBufferPointer() + builder.GetSize());
  }

private:
  static flatbuffers::Offset<fa::Step> writeStep(flatbuffers::FlatBufferBuilder &builder,
                                                 const char *name,
                                                 const std::vector<TestCommand> &commands,
                                                 int maxTokens = 0, int computeCapability = 0) {
    auto arg = [&](const std::pair<fa::ArgKind, uint32_t> &a) {
      return fa::CreateArg(builder, a.first, a.second);
    };
    std::vector<flatbuffers::Offset<fa::CommandEntry>> entries;
    for (const TestCommand &command : commands) {
      if (command.collective) {
        auto written = fa::CreateCollective(builder, fa::CollectiveOp::all_reduce,
                                            arg({fa::ArgKind::buffer, 0}), 8, fa::DType::f32);
        entries.push_back(
            fa::CreateCommandEntry(builder, fa::Command::Collective, written.Union()));
      } else if (command.gemm) {
        auto a = arg(command.a), b = arg(command.b), c = arg(command.c);
        flatbuffers::Offset<fa::Arg> bias;
        if (command.bias)
          bias = arg(*command.bias);
        auto written = fa::CreateGemmDirect(builder, a, b, c, bias, command.n, command.k,
                                            fa::DType::f32, "head", command.rows);
        entries.push_back(fa::CreateCommandEntry(builder, fa::Command::Gemm, written.Union()));
      } else {
        std::vector<flatbuffers::Offset<fa::Arg>> args;
        for (size_t i = 0; i < command.args.size(); ++i) {
          auto view = command.views.find(i);
          if (view == command.views.end()) {
            args.push_back(arg(command.args[i]));
            continue;
          }
          const TestView &v = view->second;
          args.push_back(fa::CreateArg(
              builder, command.args[i].first, command.args[i].second,
              fa::CreateTensorMapViewDirect(builder, &v.dims, &v.strides, &v.box, v.swizzleBytes)));
        }
        auto written =
            fa::CreateLaunchDirect(builder, command.kernel, &command.grid, command.scale,
                                   command.tile, &command.block, 0, &args);
        entries.push_back(fa::CreateCommandEntry(builder, fa::Command::Launch, written.Union()));
      }
    }
    return fa::CreateStepDirect(builder, name, &entries, maxTokens, computeCapability);
  }
};

} // namespace kiln::test

#endif // KILN_TEST_UNIT_TESTARTIFACT_H
