//===- RuntimeHostTest.cpp - the runtime's host-side bookkeeping ----------===//
//
// Kernel cache keys, step planning and the step-state arrays, and the weight
// program's plan and checkpoint matching: everything the runtime decides
// before it touches a GPU.
//
//===----------------------------------------------------------------------===//

#include "TestArtifact.h"

#include "kiln/Runtime/KernelCache.h"
#include "kiln/Runtime/StepPlan.h"
#include "kiln/Runtime/WeightPlan.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::runtime;
using kiln::test::TestArtifact;
namespace fa = kiln::artifact;
namespace fs = std::filesystem;

namespace {

TEST(KernelCache, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(KernelCache, KeyChangesWithEveryInput) {
  const std::vector<std::string> options = {"--gpu-architecture=sm_90", "-std=c++17"};
  const std::string base = kernelCacheKey("source", options, 13, 0, "sm_90");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, kernelCacheKey("source", options, 13, 0, "sm_90"));
  std::set<std::string> keys = {
      base,
      kernelCacheKey("source ", options, 13, 0, "sm_90"),
      kernelCacheKey("source", {"--gpu-architecture=sm_90"}, 13, 0, "sm_90"),
      kernelCacheKey("source", {"--gpu-architecture=sm_90", "-std=c++", "17"}, 13, 0, "sm_90"),
      kernelCacheKey("source", options, 13, 1, "sm_90"),
      kernelCacheKey("source", options, 12, 0, "sm_90"),
      kernelCacheKey("source", options, 13, 0, "sm_80"),
      // Field boundaries matter: moving text between fields changes the key.
      kernelCacheKey("sourc", {"e--gpu-architecture=sm_90", "-std=c++17"}, 13, 0, "sm_90"),
  };
  EXPECT_EQ(keys.size(), 8u);
}

TEST(KernelCache, StoresAndLoads) {
  const fs::path dir = fs::temp_directory_path() / "kiln-kernel-cache-test" / "nested";
  fs::remove_all(dir.parent_path());
  KernelCache cache(dir.string());
  std::vector<char> cubin;
  EXPECT_FALSE(cache.load("k", cubin));
  std::string error;
  const std::vector<char> stored = {'\x7f', 'E', 'L', 'F', '\0', 'x'};
  ASSERT_TRUE(cache.store("k", stored, error)) << error;
  ASSERT_TRUE(cache.load("k", cubin));
  EXPECT_EQ(cubin, stored);
  cache.remove("k");
  EXPECT_FALSE(cache.load("k", cubin));
  fs::remove_all(dir.parent_path());

  KernelCache off("");
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.store("k", stored, error));
  EXPECT_FALSE(off.load("k", cubin));
}

TEST(KernelCache, DirectoryFollowsTheEnvironment) {
  const char *saved[3];
  const char *names[3] = {"KILN_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
  std::string copies[3];
  for (int i = 0; i < 3; ++i) {
    saved[i] = std::getenv(names[i]);
    if (saved[i])
      copies[i] = saved[i];
  }
  setenv("KILN_CACHE_DIR", "/a", 1);
  setenv("XDG_CACHE_HOME", "/b", 1);
  setenv("HOME", "/c", 1);
  EXPECT_EQ(defaultKernelCacheDir(), "/a");
  unsetenv("KILN_CACHE_DIR");
  EXPECT_EQ(defaultKernelCacheDir(), "/b/kiln");
  unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(defaultKernelCacheDir(), "/c/.cache/kiln");
  unsetenv("HOME");
  EXPECT_EQ(defaultKernelCacheDir(), "");
  for (int i = 0; i < 3; ++i)
    if (saved[i])
      setenv(names[i], copies[i].c_str(), 1);
}

TEST(StepPlan, LayoutIsAlignedAndDisjoint) {
  const StepStateLayout layout = StepStateLayout::make(/*maxTokens=*/37, /*maxBatch=*/5);
  struct Array {
    uint64_t offset, bytes;
  };
  const std::vector<Array> arrays = {
      {layout.queryStart, 6 * 4}, {layout.kvLen, 20},       {layout.slot, 20},
      {layout.lastToken, 20},     {layout.temperature, 20}, {layout.topK, 20},
      {layout.topP, 20},          {layout.stepCounter, 20}, {layout.seed, 40},
      {layout.bestLogit, 40},     {layout.epoch, 4},        {layout.tokenIds, 148},
      {layout.positions, 148},    {layout.tokenSeq, 148},   {layout.sampled, 20}};
  for (size_t i = 0; i < arrays.size(); ++i) {
    EXPECT_EQ(arrays[i].offset % 16, 0u) << i;
    EXPECT_LE(arrays[i].offset + arrays[i].bytes, layout.totalBytes) << i;
    for (size_t j = 0; j < i; ++j)
      EXPECT_TRUE(arrays[j].offset + arrays[j].bytes <= arrays[i].offset ||
                  arrays[i].offset + arrays[i].bytes <= arrays[j].offset)
          << i << " overlaps " << j;
  }
  // Everything the host writes (and zeroes) per step comes before perSequenceBytes.
  for (size_t i = 0; i < 11; ++i)
    EXPECT_LE(arrays[i].offset + arrays[i].bytes, layout.perSequenceBytes) << i;
  EXPECT_GE(layout.tokenIds, layout.perSequenceBytes);
}

PendingPrompt pending(int sequence, int slot, const std::vector<int32_t> &prompt, int cached = 0) {
  PendingPrompt p;
  p.sequence = sequence;
  p.slot = slot;
  p.prompt = &prompt;
  p.cached = cached;
  return p;
}

TEST(StepPlan, PacksPromptsIntoOneStep) {
  const std::vector<int32_t> a = {1, 2, 3}, b = {4, 5}, c = {6, 7, 8, 9};
  const std::vector<StepBatch> steps =
      planPrefill({pending(0, 3, a), pending(1, 0, b), pending(2, 1, c)}, 16, 4);
  ASSERT_EQ(steps.size(), 1u);
  const StepBatch &step = steps[0];
  EXPECT_EQ(step.tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_EQ(step.numSequences(), 3);
  EXPECT_EQ(step.longestQuery(), 4);
  EXPECT_EQ(step.rows[0].slot, 3);
  EXPECT_EQ(step.rows[2].position, 0);
  EXPECT_EQ(step.rows[2].length, 4);
  for (const StepRow &row : step.rows)
    EXPECT_TRUE(row.endsPrompt);
}

TEST(StepPlan, ChunksLongPromptsAndRespectsMaxBatch) {
  std::vector<int32_t> longPrompt(11);
  for (int i = 0; i < 11; ++i)
    longPrompt[size_t(i)] = 100 + i;
  const std::vector<int32_t> shortPrompt = {1, 2}, other = {3}, resumed = {7, 8, 9, 10, 11, 12};
  // max 4 tokens per step, 2 sequences per step.
  const std::vector<StepBatch> steps =
      planPrefill({pending(0, 0, shortPrompt), pending(1, 1, longPrompt), pending(2, 2, other),
                   pending(3, 3, resumed, /*cached=*/4)},
                  4, 2);
  // Step 0: seq 0 (2 tokens) + seq 1 [0, 2); step 1: seq 1 [2, 6); step 2: [6, 10);
  // step 3: seq 1 [10, 11) + seq 2; step 4: seq 3 [4, 6).
  ASSERT_EQ(steps.size(), 5u);
  auto rowsOf = [](const StepBatch &step) {
    std::vector<std::vector<int>> rows;
    for (const StepRow &row : step.rows)
      rows.push_back({row.sequence, row.position, row.length, int(row.endsPrompt)});
    return rows;
  };
  using Rows = std::vector<std::vector<int>>;
  EXPECT_EQ(rowsOf(steps[0]), (Rows{{0, 0, 2, 1}, {1, 0, 2, 0}}));
  EXPECT_EQ(rowsOf(steps[1]), (Rows{{1, 2, 4, 0}}));
  EXPECT_EQ(rowsOf(steps[2]), (Rows{{1, 6, 4, 0}}));
  EXPECT_EQ(rowsOf(steps[3]), (Rows{{1, 10, 1, 1}, {2, 0, 1, 1}}));
  EXPECT_EQ(rowsOf(steps[4]), (Rows{{3, 4, 2, 1}}));
  EXPECT_EQ(steps[2].tokens, (std::vector<int32_t>{106, 107, 108, 109}));
  EXPECT_EQ(steps[4].tokens, (std::vector<int32_t>{11, 12}));
  for (const StepBatch &step : steps) {
    EXPECT_LE(step.numTokens(), 4);
    EXPECT_LE(step.numSequences(), 2);
  }
}

TEST(StepPlan, WritesTheStepStateArrays) {
  const StepStateLayout layout = StepStateLayout::make(8, 3);
  StepBatch step;
  StepRow first;
  first.sequence = 5;
  first.slot = 2;
  first.position = 0;
  first.length = 3;
  first.sampling = {0.7f, 40, 0.9f, 1234};
  first.counter = 0;
  StepRow second;
  second.sequence = 6;
  second.slot = 0;
  second.position = 10;  // a later chunk: 10 positions already cached
  second.length = 2;
  second.counter = 4;
  step.rows = {first, second};
  step.tokens = {11, 12, 13, 21, 22};

  std::vector<uint8_t> block(layout.totalBytes, 0xab);
  std::vector<std::pair<uint64_t, uint64_t>> uploads;
  step.write(layout, block.data(), uploads);
  auto ints = [&](uint64_t offset, int count) {
    std::vector<int32_t> values(static_cast<size_t>(count));
    std::memcpy(values.data(), block.data() + offset, size_t(count) * 4);
    return values;
  };
  using Ints = std::vector<int32_t>;
  EXPECT_EQ(ints(layout.tokenIds, 5), (Ints{11, 12, 13, 21, 22}));
  EXPECT_EQ(ints(layout.positions, 5), (Ints{0, 1, 2, 10, 11}));
  EXPECT_EQ(ints(layout.tokenSeq, 5), (Ints{0, 0, 0, 1, 1}));
  EXPECT_EQ(ints(layout.queryStart, 4), (Ints{0, 3, 5, 5}));
  EXPECT_EQ(ints(layout.kvLen, 2), (Ints{3, 12}));
  EXPECT_EQ(ints(layout.slot, 2), (Ints{2, 0}));
  EXPECT_EQ(ints(layout.lastToken, 2), (Ints{2, 4}));
  EXPECT_EQ(ints(layout.topK, 2), (Ints{40, 0}));
  EXPECT_EQ(ints(layout.stepCounter, 2), (Ints{0, 4}));
  float temperature, topP;
  std::memcpy(&temperature, block.data() + layout.temperature, 4);
  std::memcpy(&topP, block.data() + layout.topP + 4, 4);
  EXPECT_EQ(temperature, 0.7f);
  EXPECT_EQ(topP, 1.f);
  uint64_t seed;
  std::memcpy(&seed, block.data() + layout.seed, 8);
  EXPECT_EQ(seed, 1234u);

  using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
  EXPECT_EQ(uploads, (Ranges{{0, layout.perSequenceBytes},
                             {layout.tokenIds, layout.tokenIds + 20},
                             {layout.positions, layout.positions + 20},
                             {layout.tokenSeq, layout.tokenSeq + 20}}));
  // Nothing past the uploaded ranges was touched.
  EXPECT_EQ(block[layout.tokenIds + 20], 0xab);
  EXPECT_EQ(block[layout.sampled], 0xab);
}

std::unique_ptr<Artifact> toyArtifact() {
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::fromBytes(TestArtifact::toy().serialize(), "toy.kiln", error);
  EXPECT_TRUE(artifact) << error;
  return artifact;
}

TEST(WeightPlan, PlansStorageAndFrees) {
  std::unique_ptr<Artifact> artifact = toyArtifact();
  const WeightPlan plan = planWeights(*artifact);
  using S = WeightPlan::Storage;
  EXPECT_EQ(plan.storage,
            (std::vector<S>{S::Staging, S::Arena, S::Staging, S::Staging, S::Staging, S::Arena,
                            S::Staging, S::Alias, S::Arena}));
  EXPECT_EQ(plan.owner[7], 6u);
  // embed (512 B) is freed after the cast; the head parts after the concat,
  // which is freed after the transpose; bias after the slice of its alias.
  EXPECT_EQ(plan.freeAfter[1], (std::vector<uint32_t>{0}));
  EXPECT_EQ(plan.freeAfter[4], (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(plan.freeAfter[5], (std::vector<uint32_t>{4}));
  EXPECT_EQ(plan.freeAfter[8], (std::vector<uint32_t>{6}));
  // Peak: head_a + head_b + concat = 320 + 192 + 512.
  EXPECT_EQ(plan.stagingPeakBytes, 1024u);
  EXPECT_EQ(plan.checkpointTensors, 4u);
  EXPECT_EQ(plan.checkpointBytes, 512u + 320 + 192 + 80);
}

TEST(WeightPlan, SkipsValuesNothingNeeds) {
  TestArtifact t = TestArtifact::toy();
  kiln::test::TestWeight unused;
  unused.name = "unused";
  unused.shape = {4};
  t.weights.push_back(unused);
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::fromBytes(t.serialize(), "toy.kiln", error);
  ASSERT_TRUE(artifact) << error;
  const WeightPlan plan = planWeights(*artifact);
  EXPECT_EQ(plan.storage.back(), WeightPlan::Storage::Unused);
  EXPECT_EQ(plan.checkpointTensors, 4u);
}

TEST(WeightPlan, MatchesCheckpointsAndNamesMismatches) {
  std::unique_ptr<Artifact> artifact = toyArtifact();
  const fs::path dir = fs::temp_directory_path() / "kiln-weight-plan-test";
  fs::create_directories(dir);
  auto tensor = [](const std::string &name, DType dtype, std::vector<int64_t> shape) {
    int64_t elements = 1;
    for (int64_t d : shape)
      elements *= d;
    return TensorToWrite{name, dtype, shape,
                         std::vector<uint8_t>(size_t(elements) * dtypeSize(dtype), 0)};
  };
  const std::string good = (dir / "good.safetensors").string();
  const std::string bad = (dir / "bad.safetensors").string();
  std::string error;
  ASSERT_TRUE(writeSafetensors(good,
                               {tensor("embed", DType::F32, {16, 8}),
                                tensor("head_a", DType::F32, {8, 10}),
                                tensor("head_b", DType::F32, {8, 6}),
                                tensor("bias", DType::F32, {4, 5}),
                                tensor("extra", DType::F32, {3})},
                               {}, error))
      << error;
  ASSERT_TRUE(writeSafetensors(bad,
                               {tensor("embed", DType::BF16, {16, 8}),
                                tensor("head_a", DType::F32, {10, 8}),
                                tensor("bias", DType::F32, {4, 5})},
                               {}, error))
      << error;
  Checkpoint checkpoint;
  ASSERT_TRUE(openCheckpoint(good, checkpoint, error)) << error;
  EXPECT_TRUE(matchCheckpoint(*artifact, checkpoint, error)) << error;

  ASSERT_TRUE(openCheckpoint(bad, checkpoint, error)) << error;
  EXPECT_FALSE(matchCheckpoint(*artifact, checkpoint, error));
  EXPECT_EQ(error, "checkpoint " + bad + " does not match artifact toy.kiln:\n"
                   "  tensor 'embed' in " + bad + " is BF16 [16, 8], but the artifact expects "
                   "F32 [16, 8]\n"
                   "  tensor 'head_a' in " + bad + " is F32 [10, 8], but the artifact expects "
                   "F32 [8, 10]\n"
                   "  missing tensor 'head_b' (F32 [8, 6])");
  fs::remove_all(dir);
}

} // namespace
