//===- RuntimeArtifactTest.cpp - the runtime's artifact verifier ----------===//

#include "TestArtifact.h"

#include "kiln/Runtime/Artifact.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::runtime;
using kiln::test::TestArtifact;
namespace fa = kiln::artifact;

namespace {

/// The verifier's error for `bytes`, or "" if it accepts them.
std::string verifyError(std::vector<uint8_t> bytes) {
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::fromBytes(std::move(bytes), "toy.kiln", error);
  if (artifact) {
    EXPECT_TRUE(error.empty());
    return "";
  }
  EXPECT_FALSE(error.empty());
  return error;
}

::testing::AssertionResult rejectedWith(const TestArtifact &t, const std::string &part) {
  const std::string error = verifyError(t.serialize());
  if (error.empty())
    return ::testing::AssertionFailure() << "accepted";
  if (error.find(part) == std::string::npos)
    return ::testing::AssertionFailure() << "'" << error << "' does not contain '" << part << "'";
  return ::testing::AssertionSuccess();
}

TEST(RuntimeArtifact, AcceptsTheToy) {
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::fromBytes(TestArtifact::toy().serialize(), "toy.kiln", error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_EQ(artifact->model().vocab_size(), 16);
  EXPECT_EQ(artifact->activationArenaBytes(), 32u * 16 + 512);
  EXPECT_EQ(artifact->kvCacheBytesPerLayer(), 2u * 32 * 1 * 4 * 4);
  EXPECT_EQ(artifact->bufferBytes(0, 3), 96u);
  EXPECT_EQ(artifact->bufferBytes(1, 3), 128u);
}

TEST(RuntimeArtifact, OpensFilesAndNamesMissingOnes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "kiln-runtime-artifact-test.kiln").string();
  const std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  std::string error;
  EXPECT_TRUE(Artifact::open(path, error)) << error;
  std::remove(path.c_str());
  EXPECT_FALSE(Artifact::open(path, error));
  EXPECT_NE(error.find("cannot open artifact " + path), std::string::npos) << error;
}

TEST(RuntimeArtifact, RejectsEveryTruncation) {
  // FlatBuffers pads the end of a buffer; cutting only padding loses nothing,
  // cutting one byte more must be caught.
  const std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  size_t content = bytes.size();
  while (content > 0 && bytes[content - 1] == 0)
    --content;
  ASSERT_GT(content, bytes.size() - 8);
  for (size_t size = 0; size < content; ++size) {
    const std::string error =
        verifyError(std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(size)));
    ASSERT_FALSE(error.empty()) << "a prefix of " << size << " bytes was accepted";
    if (size >= 8) {
      EXPECT_NE(error.find("truncated or corrupted"), std::string::npos) << error;
    }
  }
  EXPECT_NE(verifyError({}).find("only 0 bytes"), std::string::npos);
}

TEST(RuntimeArtifact, SurvivesEveryByteCorruption) {
  // A flipped byte may still form a valid artifact (a changed number), but it
  // must never crash or hang the verifier (run this under a sanitizer too).
  const std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  int rejected = 0;
  for (size_t i = 0; i < bytes.size(); ++i)
    for (uint8_t flip : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
      std::vector<uint8_t> corrupted = bytes;
      corrupted[i] ^= flip;
      rejected += !verifyError(std::move(corrupted)).empty();
    }
  EXPECT_GT(rejected, 0);
}

TEST(RuntimeArtifact, RejectsACorruptedRootOffset) {
  std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  bytes[0] = bytes[1] = bytes[2] = 0xff;
  EXPECT_NE(verifyError(bytes).find("toy.kiln: truncated or corrupted artifact"),
            std::string::npos);
}

TEST(RuntimeArtifact, RejectsOtherVersions) {
  std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  bytes[7] = '1';  // identifier "KLN1": before weight_tensor_map arguments
  std::string error = verifyError(bytes);
  EXPECT_NE(error.find("format version '1'"), std::string::npos) << error;
  EXPECT_NE(error.find("reads version 2"), std::string::npos) << error;

  TestArtifact t = TestArtifact::toy();
  t.version = 7;
  EXPECT_TRUE(rejectedWith(t, "artifact version 7, but this runtime reads version 2"));
}

TEST(RuntimeArtifact, RejectsOtherFiles) {
  std::vector<uint8_t> bytes = TestArtifact::toy().serialize();
  bytes[4] = 'P';
  bytes[5] = 'K';
  EXPECT_NE(verifyError(bytes).find("not a kiln artifact (file identifier 'PKN2'"),
            std::string::npos);
}

TEST(RuntimeArtifact, RejectsBadModelInfo) {
  TestArtifact t = TestArtifact::toy();
  t.vocab = 0;
  EXPECT_TRUE(rejectedWith(t, "model.vocab_size: must be positive"));
  t = TestArtifact::toy();
  t.dtype = fa::DType::i8;
  EXPECT_TRUE(rejectedWith(t, "model.dtype"));
  t = TestArtifact::toy();
  t.maxTokens = 1;
  EXPECT_TRUE(rejectedWith(t, "max_tokens 1 < max_batch 2"));
  t = TestArtifact::toy();
  t.targetArchs = {"ampere"};
  EXPECT_TRUE(rejectedWith(t, "'ampere' is not an architecture"));
}

TEST(RuntimeArtifact, RejectsBadWeightPrograms) {
  TestArtifact t = TestArtifact::toy();
  t.weights[1].inputs = {1};
  EXPECT_TRUE(rejectedWith(t, "weights[1] (cast): input 1 is not an earlier value"));
  t = TestArtifact::toy();
  t.weights[4].shape = {8, 15};
  EXPECT_TRUE(rejectedWith(t, "inputs add up to 16 along axis 1, not 15"));
  t = TestArtifact::toy();
  t.weights[5].permutation = {0, 0};
  EXPECT_TRUE(rejectedWith(t, "permutation [0, 0] does not map [8, 16] to [16, 8]"));
  t = TestArtifact::toy();
  t.weights[8].start = 5;
  EXPECT_TRUE(rejectedWith(t, "slice [5, +16) on axis 0 of [20]"));
  t = TestArtifact::toy();
  t.weights[7].shape = {21};
  EXPECT_TRUE(rejectedWith(t, "changes the element count"));
  t = TestArtifact::toy();
  t.weights[1].dtype = fa::DType::i32;
  EXPECT_TRUE(rejectedWith(t, "cast from f32 to i32 is not supported"));
  t = TestArtifact::toy();
  t.weights[5].offset = 600;
  EXPECT_TRUE(rejectedWith(t, "weights[5] (transpose): ends past the weights arena (1024 bytes)"));
  t = TestArtifact::toy();
  t.weights[0].name = "";
  EXPECT_TRUE(rejectedWith(t, "checkpoint value has no tensor name"));
  t = TestArtifact::toy();
  t.weights[0].shape = {16, -8};
  EXPECT_TRUE(rejectedWith(t, "weights[0] ('embed'): bad shape [16, -8]"));
}

TEST(RuntimeArtifact, RejectsBadBuffersAndCommands) {
  TestArtifact t = TestArtifact::toy();
  t.buffers[1].offset = 1000;
  EXPECT_TRUE(rejectedWith(t, "buffers[1] ('logits'): bytes [1000, 1128)"));
  t = TestArtifact::toy();
  t.decode[0].kernel = 9;
  EXPECT_TRUE(rejectedWith(t, "decode.commands[0]: kernel 9 does not exist (2 kernels)"));
  t = TestArtifact::toy();
  t.prefill[0].args[2] = {fa::ArgKind::buffer, 5};
  EXPECT_TRUE(rejectedWith(
      t, "prefill.commands[0] (launch of 'embed_kernel').args[2]: buffer 5 does not exist"));
  t = TestArtifact::toy();
  t.prefill[0].args[3] = {fa::ArgKind::k_cache, 2};
  EXPECT_TRUE(rejectedWith(t, "layer 2 does not exist (2 layers)"));
  t = TestArtifact::toy();
  t.prefill[0].args[1] = {fa::ArgKind::weight, 0};
  EXPECT_TRUE(rejectedWith(t, "weight 0 is a load-time temporary"));
  t = TestArtifact::toy();
  t.prefill[0].block = {64, 32, 1};
  EXPECT_TRUE(rejectedWith(t, "has more than 1024 threads"));
  t = TestArtifact::toy();
  t.decode[0].scale = fa::GridScale::query_tiles;
  EXPECT_TRUE(rejectedWith(t, "query_tiles needs a positive tile"));
  t = TestArtifact::toy();
  t.decode[1].k = 9;
  EXPECT_TRUE(rejectedWith(t, "decode.commands[1] (gemm 'head').a: buffer 0 is too small"));
  t = TestArtifact::toy();
  t.decode[1].n = 15;
  EXPECT_TRUE(rejectedWith(t, ".b: weight 5 is f32 [16, 8], not f32 [15, 8]"));
  t = TestArtifact::toy();
  t.decode[1].rows = fa::GridScale::tokens;
  EXPECT_TRUE(rejectedWith(t, ".c: buffer 1 is too small for 16 columns per row"));
  t = TestArtifact::toy();
  t.decode.push_back(TestArtifact::toy().decode[0]);
  t.decode.back().collective = true;
  EXPECT_TRUE(rejectedWith(t, "collectives need a multi-GPU runtime"));
  t = TestArtifact::toy();
  t.prefill.clear();
  EXPECT_TRUE(rejectedWith(t, "prefill: missing or empty"));
}

TEST(RuntimeArtifact, ChecksThePersistentDecodeProgram) {
  TestArtifact t = TestArtifact::toy();
  kiln::test::TestCommand step = t.decode[0];
  step.scale = fa::GridScale::multiprocessors;
  t.decodePersistent = {step, t.decode[2]};
  EXPECT_EQ(verifyError(t.serialize()), "");
  t.persistentMaxTokens = 3;  // max_batch is 2
  EXPECT_TRUE(rejectedWith(t, "decode_persistent.max_tokens: must be in [1, max_batch 2], not 3"));
  t.persistentMaxTokens = 0;
  EXPECT_TRUE(rejectedWith(t, "decode_persistent.max_tokens: must be in [1, max_batch 2], not 0"));
  t.persistentMaxTokens = 2;
  t.decodePersistent[0].args[2] = {fa::ArgKind::buffer, 7};
  EXPECT_TRUE(rejectedWith(t, "decode_persistent.commands[0] (launch of 'embed_kernel').args[2]: "
                              "buffer 7 does not exist"));
}

TEST(RuntimeArtifact, ChecksTensorMapViews) {
  // Weight 5 is f32 [16, 8] at byte 256 of the arena: boxes of 4 columns x
  // 16 rows, its columns in 2 blocks, rows below the blocks.
  auto withView = [](kiln::test::TestView view, uint32_t weight = 5) {
    TestArtifact t = TestArtifact::toy();
    kiln::test::TestCommand &embed = t.decode[0];
    embed.args.push_back({fa::ArgKind::weight_tensor_map, weight});
    embed.views[embed.args.size() - 1] = std::move(view);
    return t;
  };
  const kiln::test::TestView good{{4, 16, 2}, {8, 4}, {4, 16, 2}, 0};
  EXPECT_EQ(verifyError(withView(good).serialize()), "");
  kiln::test::TestView swizzled = good;
  swizzled.swizzleBytes = 16;
  EXPECT_TRUE(rejectedWith(withView(swizzled), "decode.commands[0] (launch of 'embed_kernel').args[6]: "
                                               "tensor map of weight 5 (''): swizzle_bytes must be 0, "
                                               "32, 64 or 128, not 16"));
  swizzled.swizzleBytes = 32;
  swizzled.box[0] = 16;  // 64 bytes: more than a 32-byte span
  EXPECT_TRUE(rejectedWith(withView(swizzled), "the box's first dimension is 64 bytes; it must be a "
                                               "multiple of 16 and at most the swizzle span of 32"));
  kiln::test::TestView past = good;
  past.dims[2] = 3;  // a third column block reads past the last row
  EXPECT_TRUE(rejectedWith(withView(past), "the view reaches element 131, but the weight has 128 "
                                           "(shape [16, 8])"));
  kiln::test::TestView wide = good;
  wide.box[1] = 300;
  EXPECT_TRUE(rejectedWith(withView(wide), "dimension 1 has 16 elements and a box of 300"));
  kiln::test::TestView odd = good;
  odd.strides[0] = 6;  // 24 bytes
  EXPECT_TRUE(rejectedWith(withView(odd), "the stride of dimension 1 is 6 elements; it must be a "
                                          "positive multiple of 16 bytes below 2^40"));
  odd.strides[0] = 0;
  EXPECT_TRUE(rejectedWith(withView(odd), "the stride of dimension 1 is 0 elements"));
  odd.strides[0] = uint64_t(1) << 40;  // 2^42 bytes
  EXPECT_TRUE(rejectedWith(withView(odd), "the stride of dimension 1 is 1099511627776 elements"));
  kiln::test::TestView huge = good;
  huge.dims[1] = (uint64_t(1) << 32) + 1;
  EXPECT_TRUE(rejectedWith(withView(huge), "dimension 1 has 4294967297 elements; the copy engine "
                                           "takes at most 2^32"));
  kiln::test::TestView ranks = good;
  ranks.strides.pop_back();
  EXPECT_TRUE(rejectedWith(withView(ranks), "a view has 1 to 5 dimensions"));
  EXPECT_TRUE(rejectedWith(withView(good, 0), "tensor map of weight 0, which is not a value in the "
                                              "weights arena"));
  // Weight 1, the bf16 embedding [16, 8], as one 2-D box of 16 rows.
  EXPECT_EQ(verifyError(withView({{8, 16}, {8}, {8, 16}, 0}, 1).serialize()), "");
  TestArtifact missing = TestArtifact::toy();
  missing.decode[0].args.push_back({fa::ArgKind::weight_tensor_map, 5});
  EXPECT_TRUE(rejectedWith(missing, "tensor map of weight 5 (''): the view (dims, box) is missing"));
}

TEST(RuntimeArtifact, RejectsBadLogits) {
  TestArtifact t = TestArtifact::toy();
  t.logits = 0;  // per-token f32 [8]: too narrow for 16 logits
  EXPECT_TRUE(rejectedWith(t, "logits: buffer 0 cannot hold 2 rows of 16 logits"));
  t = TestArtifact::toy();
  t.buffers[1].dtype = fa::DType::bf16;
  EXPECT_TRUE(rejectedWith(t, "logits: buffer must be f32"));
}

TEST(RuntimeArtifact, ChecksTheDevice) {
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::fromBytes(TestArtifact::toy().serialize(), "toy.kiln", error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_TRUE(checkDeviceSupport(*artifact, 9, 0, "GPU 0 (H100)", error)) << error;
  EXPECT_TRUE(checkDeviceSupport(*artifact, 8, 0, "GPU 0 (A100)", error)) << error;
  EXPECT_FALSE(checkDeviceSupport(*artifact, 8, 9, "GPU 0 (L4)", error));
  EXPECT_EQ(error, "toy.kiln was compiled for sm_80, sm_90, but GPU 0 (L4) is sm_89; compile it "
                   "again for this GPU");
  EXPECT_FALSE(checkDeviceSupport(*artifact, 7, 5, "GPU 0 (T4)", error));
  EXPECT_NE(error.find("GPU 0 (T4) is sm_75; kiln needs compute capability 8.0"),
            std::string::npos);

  TestArtifact anyArch = TestArtifact::toy();
  anyArch.targetArchs.clear();
  artifact = Artifact::fromBytes(anyArch.serialize(), "any.kiln", error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_TRUE(checkDeviceSupport(*artifact, 8, 9, "GPU 0 (L4)", error)) << error;
  EXPECT_FALSE(checkDeviceSupport(*artifact, 7, 0, "GPU 0 (V100)", error));
}

} // namespace
