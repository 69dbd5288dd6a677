//===- CodegenTest.cpp - artifacts from codegen, read back ----------------===//
//
// Compiles small Llama configs through the frontend, the fusion pipeline and
// codegen, then reads the artifact back with the runtime's verifier and
// checks what the runtime relies on: every reference resolves, weights that
// steps read live in the weights arena, buffers alive at the same time never
// share bytes, and kernels are shared across layers.
//
//===----------------------------------------------------------------------===//

#include "kiln/Codegen/Codegen.h"
#include "kiln/Frontend/Importer.h"
#include "kiln/Passes/Passes.h"
#include "kiln/Runtime/Artifact.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <unistd.h>

using namespace mlir;
namespace fa = kiln::artifact;

namespace {

/// A Llama config of `layers` layers (GQA, SwiGLU) as config.json text.
std::string llamaConfig(int layers) {
  return R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 64, "intermediate_size": 160, "num_attention_heads": 4,
    "num_key_value_heads": 2, "num_hidden_layers": )" +
         std::to_string(layers) + R"(, "vocab_size": 256, "max_position_embeddings": 128,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
    "tie_word_embeddings": false, "torch_dtype": "bfloat16"})";
}

class CodegenTest : public ::testing::Test {
protected:
  CodegenTest()
      : handler(&context, [this](Diagnostic &diagnostic) {
          llvm::raw_string_ostream(diagnostics) << diagnostic << "\n";
          return success();
        }) {}

  ~CodegenTest() override {
    if (!configPath.empty())
      std::remove(configPath.c_str());
  }

  /// The artifact of `config`, compiled as kiln-compile does; "" on failure
  /// (the reason is in `diagnostics`).
  std::string compile(const std::string &config, const kiln::CodegenOptions &options) {
    configPath = (std::filesystem::temp_directory_path() /
                  ("kiln-codegen-test-" + std::to_string(::getpid()) + ".json"))
                     .string();
    std::ofstream(configPath) << config;
    kiln::ImportOptions import;
    import.activationType = "bf16";
    FailureOr<OwningOpRef<ModuleOp>> module =
        kiln::importHuggingFaceModel(configPath, import, context);
    if (failed(module))
      return "";
    PassManager passes(&context);
    kiln::buildFusionPipeline(passes);
    if (failed(passes.run(**module)))
      return "";
    FailureOr<std::string> artifact = kiln::buildArtifact(**module, options);
    return succeeded(artifact) ? *artifact : "";
  }

  /// The runtime's view of `bytes`, which must pass its verifier.
  std::unique_ptr<kiln::runtime::Artifact> load(const std::string &bytes) {
    std::string error;
    auto artifact = kiln::runtime::Artifact::fromBytes(
        std::vector<uint8_t>(bytes.begin(), bytes.end()), "test.kiln", error);
    EXPECT_TRUE(artifact) << error;
    return artifact;
  }

  MLIRContext context;
  ScopedDiagnosticHandler handler;
  std::string diagnostics;
  std::string configPath;
};

/// Buffer args of each command of `step`.
std::vector<std::vector<uint32_t>> buffersPerCommand(const fa::Step &step) {
  std::vector<std::vector<uint32_t>> result;
  for (const fa::CommandEntry *entry : *step.commands()) {
    std::vector<uint32_t> buffers;
    auto add = [&](const fa::Arg *arg) {
      if (arg && arg->kind() == fa::ArgKind::buffer)
        buffers.push_back(arg->index());
    };
    if (const fa::Launch *launch = entry->command_as_Launch())
      for (const fa::Arg *arg : *launch->args())
        add(arg);
    if (const fa::Gemm *gemm = entry->command_as_Gemm()) {
      add(gemm->a());
      add(gemm->c());
    }
    result.push_back(std::move(buffers));
  }
  return result;
}

TEST_F(CodegenTest, ArtifactRoundTrips) {
  kiln::CodegenOptions options;
  options.maxBatch = 4;
  options.maxSeqLen = 96;
  options.maxTokens = 64;
  options.targetArchs = {"sm_90"};
  std::string bytes = compile(llamaConfig(2), options);
  ASSERT_FALSE(bytes.empty()) << diagnostics;
  std::unique_ptr<kiln::runtime::Artifact> loaded = load(bytes);
  ASSERT_TRUE(loaded);
  const fa::Artifact &artifact = loaded->get();

  const fa::ModelInfo &model = *artifact.model();
  EXPECT_EQ(model.architecture()->str(), "LlamaForCausalLM");
  EXPECT_EQ(model.num_layers(), 2);
  EXPECT_EQ(model.hidden_size(), 64);
  EXPECT_EQ(model.num_heads(), 4);
  EXPECT_EQ(model.num_kv_heads(), 2);
  EXPECT_EQ(model.head_dim(), 16);
  EXPECT_EQ(model.vocab_size(), 256);
  EXPECT_EQ(model.intermediate_size(), 160);
  EXPECT_EQ(model.dtype(), fa::DType::bf16);
  EXPECT_EQ(model.max_batch(), 4);
  EXPECT_EQ(model.max_seq_len(), 96);
  EXPECT_EQ(model.max_tokens(), 64);
  ASSERT_EQ(model.target_archs()->size(), 1u);
  EXPECT_EQ(model.target_archs()->Get(0)->str(), "sm_90");

  // The weight program: checkpoint tensors by name, casts to bf16, packed
  // q/k/v and gate/up; what steps read has an aligned arena offset.
  std::set<std::string> checkpoints;
  for (uint32_t i = 0; i < artifact.weights()->size(); ++i) {
    const fa::WeightValue *value = artifact.weights()->Get(i);
    if (value->op() == fa::WeightOp::checkpoint)
      checkpoints.insert(value->name()->str());
    if (value->inputs()) {
      for (uint32_t input : *value->inputs())
        EXPECT_LT(input, i);
    }
    if (value->weight_offset() >= 0) {
      EXPECT_EQ(value->weight_offset() % 256, 0);
      EXPECT_EQ(value->dtype(), fa::DType::bf16);
    }
  }
  EXPECT_EQ(checkpoints.size(), 2u + 2 * 9 + 1);
  EXPECT_TRUE(checkpoints.count("model.layers.1.mlp.up_proj.weight"));

  // Kernels: one entry per name, each a non-empty extern "C" source.
  std::set<std::string> names;
  for (const fa::Kernel *kernel : *artifact.kernels()) {
    EXPECT_TRUE(names.insert(kernel->name()->str()).second) << kernel->name()->str();
    EXPECT_NE(kernel->source()->str().find("extern \"C\" __global__"), std::string::npos);
  }

  // Prefill multiplies with cuBLASLt (4 GEMMs a layer), decode with GEMVs;
  // both end by sampling from the logits.
  auto countGemms = [](const fa::Step &step) {
    int gemms = 0;
    for (const fa::CommandEntry *entry : *step.commands())
      gemms += entry->command_type() == fa::Command::Gemm;
    return gemms;
  };
  EXPECT_EQ(countGemms(*artifact.prefill()), 8);
  EXPECT_EQ(countGemms(*artifact.decode()), 0);
  for (const fa::Step *step : {artifact.prefill(), artifact.decode()}) {
    const fa::Launch *last = step->commands()->Get(step->commands()->size() - 1)->command_as_Launch();
    ASSERT_TRUE(last);
    EXPECT_EQ(artifact.kernels()->Get(last->kernel())->name()->str(), "sample_v256");
    EXPECT_EQ(last->args()->Get(0)->index(), artifact.logits());
  }

  // Buffers used by overlapping ranges of a step's commands are disjoint in
  // the arena at max_tokens; the logits, read after the step, overlap nothing.
  const uint64_t logitsBegin = artifact.buffers()->Get(artifact.logits())->offset();
  const uint64_t logitsEnd = logitsBegin + loaded->bufferBytes(artifact.logits(), 64);
  for (const fa::Step *step : {artifact.prefill(), artifact.decode()}) {
    std::map<uint32_t, std::pair<size_t, size_t>> live;
    auto uses = buffersPerCommand(*step);
    for (size_t command = 0; command < uses.size(); ++command)
      for (uint32_t buffer : uses[command]) {
        auto [it, inserted] = live.try_emplace(buffer, command, command);
        it->second.second = command;
      }
    for (const auto &[a, liveA] : live) {
      uint64_t beginA = artifact.buffers()->Get(a)->offset();
      uint64_t endA = beginA + loaded->bufferBytes(a, 64);
      EXPECT_EQ(beginA % 16, 0u);
      if (a != artifact.logits()) {
        EXPECT_TRUE(endA <= logitsBegin || logitsEnd <= beginA) << "buffer " << a;
      }
      for (const auto &[b, liveB] : live) {
        if (b <= a || liveA.second < liveB.first || liveB.second < liveA.first)
          continue;
        uint64_t beginB = artifact.buffers()->Get(b)->offset();
        uint64_t endB = beginB + loaded->bufferBytes(b, 64);
        EXPECT_TRUE(endA <= beginB || endB <= beginA)
            << step->name()->str() << ": buffers " << a << " and " << b << " overlap";
      }
    }
  }

  // printPlan and emitCudaSource read the same bytes.
  std::string plan, cuda;
  llvm::raw_string_ostream planStream(plan), cudaStream(cuda);
  kiln::printPlan(bytes, planStream);
  kiln::emitCudaSource(bytes, cudaStream);
  EXPECT_NE(plan.find("gemm"), std::string::npos);
  EXPECT_NE(cuda.find("sample_v256("), std::string::npos);
}

TEST_F(CodegenTest, LayersShareKernels) {
  kiln::CodegenOptions options;
  std::string two = compile(llamaConfig(2), options);
  std::string eight = compile(llamaConfig(8), options);
  ASSERT_FALSE(two.empty() || eight.empty()) << diagnostics;
  kiln::CompileSummary small = kiln::summarizeArtifact(two);
  kiln::CompileSummary large = kiln::summarizeArtifact(eight);
  EXPECT_EQ(small.kernels, large.kernels);
  EXPECT_EQ(large.prefillGemms, 4u * 8);
  // Kernel sources are stored once however many layers use them.
  EXPECT_LT(eight.size(), 2 * two.size());
}

TEST_F(CodegenTest, RejectsLimitsThatCannotHoldADecodeStep) {
  kiln::CodegenOptions options;
  options.maxBatch = 16;
  options.maxTokens = 8;
  EXPECT_TRUE(compile(llamaConfig(1), options).empty());
  EXPECT_NE(diagnostics.find("max_tokens >= max_batch"), std::string::npos) << diagnostics;
}

} // namespace

// The persistent kernel's exchange buffer holds values tagged with the step
// that wrote them, so no other buffer of any step may share its bytes.
TEST_F(CodegenTest, PersistentExchangeSharesNoMemory) {
  kiln::CodegenOptions options;
  options.maxBatch = 4;
  options.maxTokens = 64;
  options.persistentDecode = kiln::CodegenOptions::PersistentDecode::on;
  std::string bytes = compile(llamaConfig(2), options);
  ASSERT_FALSE(bytes.empty()) << diagnostics;
  std::unique_ptr<kiln::runtime::Artifact> loaded = load(bytes);
  ASSERT_TRUE(loaded);
  const fa::Artifact &artifact = loaded->get();
  ASSERT_TRUE(artifact.decode_persistent());
  const auto *buffers = artifact.buffers();
  std::vector<uint32_t> exchange;
  for (uint32_t i = 0; i < buffers->size(); ++i)
    if (buffers->Get(i)->name()->str() == "decode_persistent:exchange")
      exchange.push_back(i);
  ASSERT_EQ(exchange.size(), 1u);
  const uint32_t own = exchange.front();
  // For each of the kernel's tokens and 2 layers: a word a bf16 pair of the
  // residual stream (twice, 64 wide), the MLP activations (160), the packed
  // q/k/v rows (4 + 2 * 2 heads of 16) and attention's output (64).
  const uint64_t begin = buffers->Get(own)->offset(), end = begin + loaded->bufferBytes(own, 64);
  const uint64_t tokens = uint64_t(artifact.decode_persistent()->max_tokens());
  EXPECT_EQ(tokens, 4u);
  EXPECT_GE(end - begin, tokens * 2 * (2 * 64 / 2 + 160 / 2 + 8 * 16 / 2 + 64 / 2) * 8);
  for (uint32_t other = 0; other < buffers->size(); ++other) {
    if (other == own)
      continue;
    uint64_t otherBegin = buffers->Get(other)->offset();
    uint64_t otherEnd = otherBegin + loaded->bufferBytes(other, 64);
    EXPECT_TRUE(otherEnd <= begin || end <= otherBegin)
        << buffers->Get(other)->name()->str() << " shares bytes with the exchange buffer";
  }
  // The persistent kernel takes it, and no buffer of the residual stream,
  // the MLP activations, q or attention's output: they are all in it.
  const fa::Launch *step = artifact.decode_persistent()->commands()->Get(0)->command_as_Launch();
  ASSERT_TRUE(step);
  bool takesExchange = false;
  for (const fa::Arg *arg : *step->args())
    if (arg->kind() == fa::ArgKind::buffer) {
      takesExchange |= arg->index() == own;
      std::string name = buffers->Get(arg->index())->name()->str();
      EXPECT_NE(name, "decode_persistent:residual");
      EXPECT_NE(name, "decode_persistent:mlp");
      EXPECT_NE(name, "decode_persistent:qkv");
      EXPECT_NE(name, "decode_persistent:attention");
    }
  EXPECT_TRUE(takesExchange);
}
