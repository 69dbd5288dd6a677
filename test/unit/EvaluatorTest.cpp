//===- EvaluatorTest.cpp - reference evaluator, op by op ------------------===//
//
// Small programs whose results can be worked out by hand. Inputs enter
// through a weight used as an embedding table (row t is token t's input), and
// values other than the logits are read back through the dump filter
// (`loc("out")`).
//
//===----------------------------------------------------------------------===//

#include "kiln/Evaluator/Evaluator.h"
#include "kiln/Dialect/Tfm/TfmDialect.h"
#include "kiln/Support/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

using namespace mlir;
using kiln::EvalSession;
using kiln::Tensor;

namespace {

struct Weight {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

class EvaluatorTest : public ::testing::Test {
protected:
  EvaluatorTest()
      : handler(&context, [this](Diagnostic &diagnostic) {
          llvm::raw_string_ostream(diagnostics)
              << diagnostic.getLocation() << ": " << diagnostic << "\n";
          return success();
        }) {
    context.loadDialect<kiln::tfm::TfmDialect, func::FuncDialect>();
    context.printOpOnDiagnostic(false);
  }
  ~EvaluatorTest() override {
    for (const std::string &file : checkpointFiles)
      std::remove(file.c_str());
  }

  /// A session over `source` with `weights` as its checkpoint; nullptr on
  /// failure, with the reason in `diagnostics`. The module and the checkpoint
  /// live as long as the test.
  std::unique_ptr<EvalSession> open(llvm::StringRef source, const std::vector<Weight> &weights) {
    std::vector<kiln::TensorToWrite> tensors;
    for (const Weight &weight : weights) {
      kiln::TensorToWrite tensor{weight.name, kiln::DType::F32, weight.shape,
                                 std::vector<uint8_t>(weight.values.size() * sizeof(float))};
      std::memcpy(tensor.bytes.data(), weight.values.data(), tensor.bytes.size());
      tensors.push_back(std::move(tensor));
    }
    std::string file = ::testing::TempDir() + "/" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                       std::to_string(checkpointFiles.size()) + ".safetensors";
    checkpointFiles.push_back(file);
    std::string error;
    kiln::Checkpoint checkpoint;
    if (!kiln::writeSafetensors(file, tensors, {}, error) ||
        !kiln::openCheckpoint(file, checkpoint, error)) {
      ADD_FAILURE() << error;
      return nullptr;
    }
    modules.push_back(parseSourceString<ModuleOp>(source, ParserConfig(&context)));
    if (!modules.back())
      return nullptr;
    FailureOr<std::unique_ptr<EvalSession>> session =
        EvalSession::create(*modules.back(), checkpoint);
    if (failed(session))
      return nullptr;
    EXPECT_TRUE(succeeded((*session)->setDumpFilter("^out$")));
    return std::move(*session);
  }

  /// Runs one step and returns what loc("out") recorded in it.
  Tensor runOut(EvalSession &session, std::vector<int32_t> ids, std::vector<int32_t> positions) {
    size_t before = session.dumps().size();
    if (failed(session.step(ids, positions))) {
      ADD_FAILURE() << "step failed:\n" << diagnostics;
      return Tensor();
    }
    EXPECT_EQ(session.dumps().size(), before + 1) << "expected one value named 'out'";
    return session.dumps().back().value;
  }

  MLIRContext context;
  ScopedDiagnosticHandler handler;
  std::vector<OwningOpRef<ModuleOp>> modules;
  std::vector<std::string> checkpointFiles;
  std::string diagnostics;
};

void expectValues(const Tensor &actual, std::vector<int64_t> shape, std::vector<float> expected,
                  double tolerance = 1e-6) {
  ASSERT_EQ(actual.shape, shape);
  ASSERT_EQ(actual.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::isinf(expected[i]))
      EXPECT_EQ(actual.values[i], expected[i]) << "element " << i;
    else
      EXPECT_NEAR(actual.values[i], expected[i], tolerance) << "element " << i;
  }
}

/// A module whose @forward returns `result` ([T, N] f32) after `body`.
std::string forward(llvm::StringRef body, llvm::StringRef resultType) {
  return ("module {\n  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> " +
          resultType + " {\n" + body + "  }\n}\n")
      .str();
}

/// `text` with every `placeholder` replaced by `value`.
std::string substitute(std::string text, llvm::StringRef placeholder, llvm::StringRef value) {
  for (size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + value.size()))
    text.replace(at, placeholder.size(), value.str());
  return text;
}

TEST_F(EvaluatorTest, LinearWithBias) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<2x2xf32>
    %w = tfm.weight "w" : tensor<2x2xf32>
    %b = tfm.weight "b" : tensor<2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<2x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %y = tfm.linear %x, %w, %b : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
)";
  auto session =
      open(forward(body, "tensor<?x2xf32>"),
           {{"x", {2, 2}, {1, 2, 3, 4}}, {"w", {2, 2}, {1, 0.5, -1, 2}}, {"b", {2}, {0.25, -0.5}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> logits = session->step({0, 1}, {0, 1});
  ASSERT_TRUE(succeeded(logits)) << diagnostics;
  expectValues(*logits, {2, 2}, {2.25, 2.5, 5.25, 4.5});
}

/// x = [1, 2, 3, 4] for one head, rotated at positions 0 and 1.
std::string ropeProgram(llvm::StringRef config) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x4xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x4xf32>, tensor<?xi32>) -> tensor<?x4xf32>
    %h = tfm.reshape %x : tensor<?x4xf32> -> tensor<?x1x4xf32>
    %r = tfm.rope %h, %pos config = <$CONFIG>
        : (tensor<?x1x4xf32>, tensor<?xi32>) -> tensor<?x1x4xf32>
    %y = tfm.reshape %r : tensor<?x1x4xf32> -> tensor<?x4xf32>
    return %y : tensor<?x4xf32>
)";
  return forward(substitute(body, "$CONFIG", config), "tensor<?x4xf32>");
}

TEST_F(EvaluatorTest, RopeNeoxPairsIWithIPlusHalf) {
  // inv_freq = [1, 10000^(-1/2)] = [1, 0.01]; pairs (0, 2) and (1, 3).
  auto session = open(ropeProgram("style = neox, rotary_dim = 4, theta = 10000.0"),
                      {{"x", {1, 4}, {1, 2, 3, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0, 0}, {0, 1});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  expectValues(*y, {2, 4},
               {1, 2, 3, 4, // position 0: no rotation
                float(1 * c1 - 3 * s1), float(2 * c2 - 4 * s2), float(3 * c1 + 1 * s1),
                float(4 * c2 + 2 * s2)});
}

TEST_F(EvaluatorTest, RopeGptjPairsNeighbours) {
  // Pairs (0, 1) with inv_freq 1 and (2, 3) with 0.01.
  auto session = open(ropeProgram("style = gptj, rotary_dim = 4, theta = 10000.0"),
                      {{"x", {1, 4}, {1, 2, 3, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0, 0}, {0, 1});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  expectValues(*y, {2, 4},
               {1, 2, 3, 4, float(1 * c1 - 2 * s1), float(2 * c1 + 1 * s1), float(3 * c2 - 4 * s2),
                float(4 * c2 + 3 * s2)});
}

TEST_F(EvaluatorTest, RopePartialRotaryLeavesTheRest) {
  auto session = open(ropeProgram("style = neox, rotary_dim = 2, theta = 10000.0"),
                      {{"x", {1, 4}, {1, 2, 3, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {1});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  double c = std::cos(1.0), s = std::sin(1.0);
  expectValues(*y, {1, 4}, {float(1 * c - 2 * s), float(2 * c + 1 * s), 3, 4});
}

TEST_F(EvaluatorTest, RopeLinearScalingDividesPositions) {
  // Position 2 with factor 2 rotates like position 1 unscaled.
  auto session = open(
      ropeProgram("style = neox, rotary_dim = 4, theta = 10000.0, scaling = linear, factor = 2.0"),
      {{"x", {1, 4}, {1, 2, 3, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {2});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  expectValues(*y, {1, 4},
               {float(1 * c1 - 3 * s1), float(2 * c2 - 4 * s2), float(3 * c1 + 1 * s1),
                float(4 * c2 + 2 * s2)});
}

TEST_F(EvaluatorTest, RopeLlama3ScalingFrequencies) {
  // theta 100, rotary_dim 6: inv_freq [1, 0.21544, 0.046416], wavelengths
  // [6.28, 29.2, 135]; with original context 32, low 1, high 4 the first is
  // kept (< 8), the last divided by 8 (> 32), the middle one smoothed.
  // Expected values from transformers' _compute_llama3_parameters formula.
  std::vector<double> frequencies = {1.0, 0.03304105712196635, 0.005801986042015974};
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x6xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x6xf32>, tensor<?xi32>) -> tensor<?x6xf32>
    %h = tfm.reshape %x : tensor<?x6xf32> -> tensor<?x1x6xf32>
    %r = tfm.rope %h, %pos config = <style = neox, rotary_dim = 6, theta = 100.0,
        scaling = llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0,
        original_max_position = 32> : (tensor<?x1x6xf32>, tensor<?xi32>) -> tensor<?x1x6xf32>
    %y = tfm.reshape %r : tensor<?x1x6xf32> -> tensor<?x6xf32>
    return %y : tensor<?x6xf32>
)";
  auto session = open(forward(body, "tensor<?x6xf32>"), {{"x", {1, 6}, {1, 1, 1, 0, 0, 0}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {1});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  std::vector<float> expected;
  for (double frequency : frequencies)
    expected.push_back(float(std::cos(frequency)));
  for (double frequency : frequencies)
    expected.push_back(float(std::sin(frequency)));
  expectValues(*y, {1, 6}, expected);
}

TEST_F(EvaluatorTest, Softmax) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x3xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x3xf32>, tensor<?xi32>) -> tensor<?x3xf32>
    %p = tfm.softmax %x axis = 1 : tensor<?x3xf32>
    return %p : tensor<?x3xf32>
)";
  auto session = open(forward(body, "tensor<?x3xf32>"), {{"x", {1, 3}, {1, 2, 3}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> p = session->step({0}, {0});
  ASSERT_TRUE(succeeded(p)) << diagnostics;
  expectValues(*p, {1, 3}, {0.09003057317038046f, 0.24472847105479767f, 0.6652409557748219f});
}

TEST_F(EvaluatorTest, CausalMaskWithWindow) {
  // Queries at positions 2, 3, 4 over keys 0..4; window 2 keeps s in (p - 2, p].
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x5xf32>
    %s = tfm.embedding %table[%ids] : (tensor<1x5xf32>, tensor<?xi32>) -> tensor<?x5xf32>
    %m = tfm.causal_mask %s, %pos window = 2 : (tensor<?x5xf32>, tensor<?xi32>) -> tensor<?x5xf32> loc("out")
    %p = tfm.softmax %m axis = 1 : tensor<?x5xf32>
    return %p : tensor<?x5xf32>
)";
  auto session = open(forward(body, "tensor<?x5xf32>"), {{"x", {1, 5}, {0, 0, 0, 0, 0}}});
  ASSERT_TRUE(session) << diagnostics;
  float inf = std::numeric_limits<float>::infinity();
  expectValues(runOut(*session, {0, 0, 0}, {2, 3, 4}), {3, 5},
               {-inf, 0, 0, -inf, -inf, //
                -inf, -inf, 0, 0, -inf, //
                -inf, -inf, -inf, 0, 0});
}

TEST_F(EvaluatorTest, AlibiSlopesForSixHeads) {
  // Bloom's slopes for 6 heads: 4 geometric (2^-2 ...), then 2 of 8 heads'
  // odd powers of 2^-1. The bias is slope * (s - position) = -slope at s = 0.
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x12xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x12xf32>, tensor<?xi32>) -> tensor<?x12xf32>
    %s = tfm.reshape %x : tensor<?x12xf32> -> tensor<6x?x2xf32>
    %b = tfm.alibi_bias %s, %pos : (tensor<6x?x2xf32>, tensor<?xi32>) -> tensor<6x?x2xf32>
    %y = tfm.reshape %b : tensor<6x?x2xf32> -> tensor<?x12xf32>
    return %y : tensor<?x12xf32>
)";
  auto session =
      open(forward(body, "tensor<?x12xf32>"), {{"x", {1, 12}, std::vector<float>(12, 0.0f)}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {1});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  expectValues(*y, {1, 12},
               {-0.25, 0, -0.0625, 0, -0.015625, 0, -0.00390625, 0, -0.5, 0, -0.125, 0});
}

/// Quantizes [0.9, -2, 0.5, 4] in groups of 2 to `type`, records the
/// quantized values as "out", returns the dequantized row.
std::string quantizeProgram(llvm::StringRef type) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x4xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x4xf32>, tensor<?xi32>) -> tensor<?x4xf32>
    %q, %s = tfm.quantize %x group_size = 2
        : tensor<?x4xf32> -> tensor<?x4x$TYPE>, tensor<?x2xf32> loc("out")
    %y = tfm.dequantize %q, %s group_size = 2
        : (tensor<?x4x$TYPE>, tensor<?x2xf32>) -> tensor<?x4xf32>
    return %y : tensor<?x4xf32>
)";
  return forward(substitute(body, "$TYPE", type), "tensor<?x4xf32>");
}

TEST_F(EvaluatorTest, QuantizeInt8) {
  auto session = open(quantizeProgram("i8"), {{"x", {1, 4}, {0.9f, -2, 0.5f, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  ASSERT_TRUE(succeeded(session->step({0}, {0}))) << diagnostics;
  ASSERT_EQ(session->dumps().size(), 2u);
  EXPECT_EQ(session->dumps()[0].name, "step0/out#0");
  EXPECT_EQ(session->dumps()[1].name, "step0/out#1");
  // scale = max|x| / 127 per group; q = round(x / scale).
  expectValues(session->dumps()[0].value, {1, 4}, {57, -127, 16, 127});
  expectValues(session->dumps()[1].value, {1, 2}, {2.0f / 127, 4.0f / 127});
}

TEST_F(EvaluatorTest, QuantizeInt4RoundTrip) {
  auto session = open(quantizeProgram("i4"), {{"x", {1, 4}, {0.9f, -2, 0.5f, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  expectValues(session->dumps()[0].value, {1, 4}, {3, -7, 1, 7});
  expectValues(*y, {1, 4}, {3 * 2.0f / 7, -2, 4.0f / 7, 4});
}

TEST_F(EvaluatorTest, QuantizeFloat8RoundsToE4M3) {
  // Group [0.3, 1]: scale 1/448, 0.3 * 448 = 134.4 -> 128 (e4m3 steps by 16 there).
  auto session = open(quantizeProgram("f8E4M3FN"), {{"x", {1, 4}, {1, -2, 0.3f, 1}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  expectValues(session->dumps()[0].value, {1, 4}, {224, -448, 128, 448}, 1e-3);
  expectValues(*y, {1, 4}, {1, -2, 128.0f / 448, 1});
}

TEST_F(EvaluatorTest, QuantizedLinearUsesTheDequantizedWeight) {
  // Weight rows [1, -1 | 0.5, 2] and [2, 2 | -4, 1] in groups of 2.
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x4xf32>
    %w = tfm.weight "w" : tensor<2x4xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x4xf32>, tensor<?xi32>) -> tensor<?x4xf32>
    %q, %s = tfm.quantize %w group_size = 2 : tensor<2x4xf32> -> tensor<2x4xi8>, tensor<2x2xf32>
    %y = tfm.quantized_linear %x, %q, %s group_size = 2
        : (tensor<?x4xf32>, tensor<2x4xi8>, tensor<2x2xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
)";
  auto session = open(forward(body, "tensor<?x2xf32>"),
                      {{"x", {1, 4}, {1, 2, 3, 4}}, {"w", {2, 4}, {1, -1, 0.5, 2, 2, 2, -4, 1}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  // 0.5 in group [0.5, 2] (scale 2/127) and 1 in [-4, 1] (scale 4/127) are
  // 31.75 steps: they come back as 32 steps.
  float half = 32 * (2.0f / 127), one = 32 * (4.0f / 127);
  expectValues(*y, {1, 2}, {1 - 2 + 3 * half + 8, 2 + 4 - 12 + 4 * one}, 1e-5);
}

TEST_F(EvaluatorTest, Bfloat16ProgramRoundsEveryResult) {
  // 1 + 2^-8 is a tie between bf16 neighbours 1 and 1 + 2^-7: it rounds to 1.
  // (1 + 2^-7)^2 = 1 + 2^-6 + 2^-14 rounds to 1 + 2^-6.
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x2xf32>
    %c = tfm.weight_cast %table : tensor<1x2xf32> to tensor<1x2xbf16>
    %x = tfm.embedding %c[%ids] : (tensor<1x2xbf16>, tensor<?xi32>) -> tensor<?x2xbf16>
    %y = tfm.mul %x, %x : (tensor<?x2xbf16>, tensor<?x2xbf16>) -> tensor<?x2xbf16>
    return %y : tensor<?x2xbf16>
)";
  auto session =
      open(forward(body, "tensor<?x2xbf16>"), {{"x", {1, 2}, {1.00390625f, 1.0078125f}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  ASSERT_EQ(y->values.size(), 2u);
  EXPECT_EQ(y->values[0], 1.0f);
  EXPECT_EQ(y->values[1], 1.015625f);
}

TEST_F(EvaluatorTest, GatedMlpMatchesItsGraphLevelSpelling) {
  // silu(x·Wgᵀ + bg) * (x·Wuᵀ + bu) both ways, with I = 2, hidden = 2.
  std::vector<Weight> weights = {{"x", {1, 2}, {0.5, -1}},
                                 {"wg", {2, 2}, {1, 2, -3, 0.5}},
                                 {"wu", {2, 2}, {0.25, 1, 2, -2}},
                                 {"bg", {2}, {0.1f, -0.2f}},
                                 {"bu", {2}, {0.3f, 0.4f}}};
  const char *common = R"(
    %table = tfm.weight "x" : tensor<1x2xf32>
    %wg = tfm.weight "wg" : tensor<2x2xf32>
    %wu = tfm.weight "wu" : tensor<2x2xf32>
    %bg = tfm.weight "bg" : tensor<2xf32>
    %bu = tfm.weight "bu" : tensor<2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
)";
  std::string graphBody = std::string(common) + R"(
    %g = tfm.linear %x, %wg, %bg : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
    %u = tfm.linear %x, %wu, %bu : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
    %a = tfm.silu %g : tensor<?x2xf32>
    %y = tfm.mul %a, %u : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
)";
  auto graph = open(forward(graphBody, "tensor<?x2xf32>"), weights);
  ASSERT_TRUE(graph) << diagnostics;
  FailureOr<Tensor> expected = graph->step({0}, {0});
  ASSERT_TRUE(succeeded(expected)) << diagnostics;

  std::string fusedBody = std::string(common) + R"(
    %w = tfm.weight_concat %wg, %wu axis = 0 : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
    %b = tfm.weight_concat %bg, %bu axis = 0 : (tensor<2xf32>, tensor<2xf32>) -> tensor<4xf32>
    %y = tfm.gated_mlp silu %x, %w, %b : (tensor<?x2xf32>, tensor<4x2xf32>, tensor<4xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
)";
  auto fused = open(forward(fusedBody, "tensor<?x2xf32>"), weights);
  ASSERT_TRUE(fused) << diagnostics;
  FailureOr<Tensor> actual = fused->step({0}, {0});
  ASSERT_TRUE(succeeded(actual)) << diagnostics;
  double g0 = 0.5 - 2 + 0.1, u0 = 0.125 - 1 + 0.3;
  EXPECT_NEAR(actual->values[0], g0 / (1 + std::exp(-g0)) * u0, 1e-6);
  expectValues(*actual, expected->shape, expected->values);
}

/// The graph-level attention of dialects/tfm/README.md, with GQA (4 query
/// heads, 2 kv heads, head_dim 4), rope, ALiBi and a window of 2.
constexpr const char *kGraphAttention = R"(
    %table = tfm.weight "qkv" : tensor<8x32xf32>
    %qkv = tfm.embedding %table[%ids] : (tensor<8x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
    %q0 = tfm.slice %qkv axis = 1 start = 0 size = 16 : tensor<?x32xf32> -> tensor<?x16xf32>
    %k0 = tfm.slice %qkv axis = 1 start = 16 size = 8 : tensor<?x32xf32> -> tensor<?x8xf32>
    %v0 = tfm.slice %qkv axis = 1 start = 24 size = 8 : tensor<?x32xf32> -> tensor<?x8xf32>
    %q1 = tfm.reshape %q0 : tensor<?x16xf32> -> tensor<?x4x4xf32>
    %k1 = tfm.reshape %k0 : tensor<?x8xf32> -> tensor<?x2x4xf32>
    %v1 = tfm.reshape %v0 : tensor<?x8xf32> -> tensor<?x2x4xf32>
    %q = tfm.rope %q1, %pos config = <style = neox, rotary_dim = 4, theta = 10000.0> : (tensor<?x4x4xf32>, tensor<?xi32>) -> tensor<?x4x4xf32>
    %k = tfm.rope %k1, %pos config = <style = neox, rotary_dim = 4, theta = 10000.0> : (tensor<?x2x4xf32>, tensor<?xi32>) -> tensor<?x2x4xf32>
    tfm.kv_cache_append layer 0, %k, %v1 : tensor<?x2x4xf32>, tensor<?x2x4xf32>
    %kc, %vc = tfm.kv_cache_read layer 0 : tensor<?x2x4xf32>, tensor<?x2x4xf32>
    %kr = tfm.repeat_kv %kc axis = 1 times = 2 : tensor<?x2x4xf32> -> tensor<?x4x4xf32>
    %vr = tfm.repeat_kv %vc axis = 1 times = 2 : tensor<?x2x4xf32> -> tensor<?x4x4xf32>
    %qt = tfm.transpose %q [1, 0, 2] : tensor<?x4x4xf32> -> tensor<4x?x4xf32>
    %kt = tfm.transpose %kr [1, 0, 2] : tensor<?x4x4xf32> -> tensor<4x?x4xf32>
    %vt = tfm.transpose %vr [1, 0, 2] : tensor<?x4x4xf32> -> tensor<4x?x4xf32>
    %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x4xf32>, tensor<4x?x4xf32>) -> tensor<4x?x?xf32>
    %ss = tfm.scale %s by 0.5 : tensor<4x?x?xf32>
    %sa = tfm.alibi_bias %ss, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
    %sm = tfm.causal_mask %sa, %pos window = 2 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
    %p = tfm.softmax %sm axis = 2 : tensor<4x?x?xf32>
    %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x4xf32>) -> tensor<4x?x4xf32>
    %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x4xf32> -> tensor<?x4x4xf32>
    %y = tfm.reshape %ot : tensor<?x4x4xf32> -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
)";

constexpr const char *kFusedAttention = R"(
    %table = tfm.weight "qkv" : tensor<8x32xf32>
    %qkv = tfm.embedding %table[%ids] : (tensor<8x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
    %y = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 4 scale = 0.5
        rope = <style = neox, rotary_dim = 4, theta = 10000.0> window = 2 alibi
        : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
)";

TEST_F(EvaluatorTest, FusedAttentionMatchesGraphLevel) {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal;
  Weight table{"qkv", {8, 32}, std::vector<float>(8 * 32)};
  for (float &value : table.values)
    value = normal(generator);
  auto graph = open(forward(kGraphAttention, "tensor<?x16xf32>"), {table});
  ASSERT_TRUE(graph) << diagnostics;
  auto fused = open(forward(kFusedAttention, "tensor<?x16xf32>"), {table});
  ASSERT_TRUE(fused) << diagnostics;
  // A 3-token prefill, then two decode steps reading the cache.
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> steps = {
      {{0, 1, 2}, {0, 1, 2}}, {{3}, {3}}, {{4}, {4}}};
  for (const auto &[ids, positions] : steps) {
    FailureOr<Tensor> expected = graph->step(ids, positions);
    FailureOr<Tensor> actual = fused->step(ids, positions);
    ASSERT_TRUE(succeeded(expected) && succeeded(actual)) << diagnostics;
    expectValues(*actual, expected->shape, expected->values);
  }
}

TEST_F(EvaluatorTest, AttentionOfOneTokenAtPositionZeroIsItsValue) {
  // softmax over one key is 1: the output is v, repeated for each group.
  Weight table{"qkv", {8, 32}, std::vector<float>(8 * 32)};
  for (size_t i = 0; i < table.values.size(); ++i)
    table.values[i] = static_cast<float>(i % 32);
  auto session = open(forward(kFusedAttention, "tensor<?x16xf32>"), {table});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  expectValues(*y, {1, 16}, {24, 25, 26, 27, 24, 25, 26, 27, 28, 29, 30, 31, 28, 29, 30, 31});
}

TEST_F(EvaluatorTest, SingleRankCollectivesAreTheIdentity) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %r = tfm.all_reduce %x sum ranks = 1 : tensor<?x2xf32>
    %g = tfm.all_gather %r axis = 1 ranks = 1 : tensor<?x2xf32> -> tensor<?x2xf32>
    return %g : tensor<?x2xf32>
)";
  auto session = open(forward(body, "tensor<?x2xf32>"), {{"x", {1, 2}, {1, 2}}});
  ASSERT_TRUE(session) << diagnostics;
  FailureOr<Tensor> y = session->step({0}, {0});
  ASSERT_TRUE(succeeded(y)) << diagnostics;
  expectValues(*y, {1, 2}, {1, 2});
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

constexpr const char *kLinearBody = R"(
    %table = tfm.weight "x" : tensor<2x2xf32>
    %w = tfm.weight "w" : tensor<3x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<2x2xf32>, tensor<?xi32>) -> tensor<?x2xf32> loc("embed")
    %y = tfm.linear %x, %w : (tensor<?x2xf32>, tensor<3x2xf32>) -> tensor<?x3xf32>
    return %y : tensor<?x3xf32>
)";

TEST_F(EvaluatorTest, MissingWeightIsNamed) {
  EXPECT_FALSE(open(forward(kLinearBody, "tensor<?x3xf32>"), {{"x", {2, 2}, {1, 2, 3, 4}}}));
  EXPECT_NE(diagnostics.find("weight 'w' is not in the checkpoint"), std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, WeightShapeMismatchIsNamed) {
  EXPECT_FALSE(open(forward(kLinearBody, "tensor<?x3xf32>"),
                    {{"x", {2, 2}, {1, 2, 3, 4}}, {"w", {2, 3}, {1, 2, 3, 4, 5, 6}}}));
  EXPECT_NE(diagnostics.find("weight 'w' is F32 [2, 3] in"), std::string::npos) << diagnostics;
  EXPECT_NE(diagnostics.find("but the program declares 'tensor<3x2xf32>'"), std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, TokenIdOutOfRangeNamesIdAndVocabulary) {
  auto session = open(forward(kLinearBody, "tensor<?x3xf32>"),
                      {{"x", {2, 2}, {1, 2, 3, 4}}, {"w", {3, 2}, {1, 2, 3, 4, 5, 6}}});
  ASSERT_TRUE(session) << diagnostics;
  EXPECT_TRUE(failed(session->step({0, 7}, {0, 1})));
  EXPECT_NE(diagnostics.find("loc(\"embed\"): 'tfm.embedding' op token id 7 (token 1) is out of "
                             "range for vocabulary size 2"),
            std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, UnknownOpIsNamed) {
  context.allowUnregisteredDialects();
  const char *body = R"(
    %table = tfm.weight "x" : tensor<2x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<2x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %y = "mystery.op"(%x) : (tensor<?x2xf32>) -> tensor<?x2xf32> loc("model.mystery")
    return %y : tensor<?x2xf32>
)";
  auto session = open(forward(body, "tensor<?x2xf32>"), {{"x", {2, 2}, {1, 2, 3, 4}}});
  ASSERT_TRUE(session) << diagnostics;
  EXPECT_TRUE(failed(session->step({0}, {0})));
  EXPECT_NE(
      diagnostics.find(
          "loc(\"model.mystery\"): 'mystery.op' op is not supported by the reference evaluator"),
      std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, CollectiveOverSeveralRanksIsAnError) {
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %r = tfm.all_reduce %x sum ranks = 2 : tensor<?x2xf32> loc("reduce")
    return %r : tensor<?x2xf32>
)";
  auto session = open(forward(body, "tensor<?x2xf32>"), {{"x", {1, 2}, {1, 2}}});
  ASSERT_TRUE(session) << diagnostics;
  EXPECT_TRUE(failed(session->step({0}, {0})));
  EXPECT_NE(diagnostics.find("loc(\"reduce\"): 'tfm.all_reduce' op spans 2 ranks; the reference "
                             "evaluator runs a single rank"),
            std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, RuntimeShapesThatDoNotBroadcastAreAnError) {
  // [?, 2] + [2, ?] verifies, but with 3 tokens it is [3, 2] + [2, 3].
  const char *body = R"(
    %table = tfm.weight "x" : tensor<1x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<1x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %t = tfm.reshape %x : tensor<?x2xf32> -> tensor<2x?xf32>
    %y = tfm.add %x, %t : (tensor<?x2xf32>, tensor<2x?xf32>) -> tensor<2x2xf32> loc("sum")
    return %y : tensor<2x2xf32>
)";
  auto session = open(forward(body, "tensor<2x2xf32>"), {{"x", {1, 2}, {1, 2}}});
  ASSERT_TRUE(session) << diagnostics;
  EXPECT_TRUE(succeeded(session->step({0, 0}, {0, 1}))) << diagnostics;
  EXPECT_TRUE(failed(session->step({0, 0, 0}, {2, 3, 4})));
  EXPECT_NE(
      diagnostics.find("loc(\"sum\"): 'tfm.add' op shapes [3, 2] and [2, 3] do not broadcast"),
      std::string::npos)
      << diagnostics;
}

TEST_F(EvaluatorTest, FailedStepLeavesTheCacheAsItWas) {
  // The append happens before the second embedding, which fails for id 1.
  const char *body = R"(
    %table = tfm.weight "x" : tensor<2x2xf32>
    %small = tfm.weight "small" : tensor<1x2xf32>
    %x = tfm.embedding %table[%ids] : (tensor<2x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    %k = tfm.reshape %x : tensor<?x2xf32> -> tensor<?x1x2xf32>
    tfm.kv_cache_append layer 0, %k, %k : tensor<?x1x2xf32>, tensor<?x1x2xf32>
    %kc, %vc = tfm.kv_cache_read layer 0 : tensor<?x1x2xf32>, tensor<?x1x2xf32> loc("out")
    %y = tfm.embedding %small[%ids] : (tensor<1x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
)";
  auto session = open(forward(body, "tensor<?x2xf32>"),
                      {{"x", {2, 2}, {1, 2, 3, 4}}, {"small", {1, 2}, {5, 6}}});
  ASSERT_TRUE(session) << diagnostics;
  ASSERT_TRUE(succeeded(session->step({0, 0}, {0, 1}))) << diagnostics;
  EXPECT_TRUE(failed(session->step({1}, {2})));
  ASSERT_TRUE(succeeded(session->step({0}, {2}))) << diagnostics;
  // Step 2 sees the two cached rows of step 0 and its own: 3 rows, not 4.
  EXPECT_EQ(session->dumps().back().name, "step2/out#1");
  expectValues(session->dumps().back().value, {3, 1, 2}, {1, 2, 1, 2, 1, 2});
}

} // namespace
