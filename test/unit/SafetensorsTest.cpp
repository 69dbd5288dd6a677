//===- SafetensorsTest.cpp - tests for kiln/Support/Safetensors.h ---------===//

#include "kiln/Support/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace kiln;
namespace fs = std::filesystem;

namespace {

/// `text` contains each of `parts`; the failure message shows what is missing.
::testing::AssertionResult containsAll(const std::string &text, std::initializer_list<std::string> parts) {
  for (const std::string &part : parts)
    if (text.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
  return ::testing::AssertionSuccess();
}

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty())
    std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeFile(const std::string &path, const std::string &contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

/// A safetensors file made by hand: the 8-byte length (of `header`, unless
/// `length` overrides it), `header`, then `data`.
std::string rawFile(const std::string &header, const std::string &data = "",
                    std::optional<uint64_t> length = std::nullopt) {
  uint64_t n = length ? *length : header.size();
  std::string s;
  for (int i = 0; i < 8; ++i)
    s += static_cast<char>((n >> (8 * i)) & 0xFF);
  return s + header + data;
}

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/kiln-safetensors-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string &name) const { return dir + "/" + name; }

  /// Writes a malformed file and returns the error of reading its header.
  std::string headerError(const std::string &contents, const std::string &name = "bad.safetensors") {
    std::string file = path(name);
    writeFile(file, contents);
    Checkpoint checkpoint;
    std::string error;
    EXPECT_FALSE(readSafetensorsHeader(file, checkpoint, error)) << "accepted: " << contents.substr(8);
    EXPECT_TRUE(containsAll(error, {file + ": "}));
    return error;
  }

  /// Writes a small valid file with two F32 tensors ("a" [2], "b" [3]) and metadata.
  std::string writeSmall(const std::string &name, const std::string &prefix = "") {
    std::string file = path(name);
    std::string error;
    std::vector<TensorToWrite> tensors = {
        {prefix + "a", DType::F32, {2}, bytesOf(std::vector<float>{1.0f, 2.0f})},
        {prefix + "b", DType::F32, {3}, bytesOf(std::vector<float>{3.0f, 4.0f, 5.0f})},
    };
    EXPECT_TRUE(writeSafetensors(file, tensors, {{"format", "pt"}, {"shard", name}}, error)) << error;
    return file;
  }

  std::string dir;
};

//===----------------------------------------------------------------------===//
// DTypes
//===----------------------------------------------------------------------===//

TEST(SafetensorsDType, NamesAndSizes) {
  struct Case {
    DType dtype;
    const char *name;
    size_t size;
  } cases[] = {{DType::F64, "F64", 8},         {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
               {DType::BF16, "BF16", 2},       {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
               {DType::I64, "I64", 8},         {DType::I32, "I32", 4},         {DType::I16, "I16", 2},
               {DType::I8, "I8", 1},           {DType::U8, "U8", 1},           {DType::Bool, "BOOL", 1}};
  for (const Case &c : cases) {
    EXPECT_STREQ(dtypeName(c.dtype), c.name);
    EXPECT_EQ(dtypeSize(c.dtype), c.size) << c.name;
    ASSERT_TRUE(parseDType(c.name).has_value()) << c.name;
    EXPECT_EQ(*parseDType(c.name), c.dtype);
  }
  EXPECT_FALSE(parseDType("f32").has_value());
  EXPECT_FALSE(parseDType("F8_E4M3FNUZ").has_value());
  EXPECT_FALSE(parseDType("").has_value());
}

TEST(SafetensorsTensorInfo, NumElements) {
  TensorInfo t;
  t.shape = {};
  EXPECT_EQ(t.numElements(), 1);
  t.shape = {2, 3, 4};
  EXPECT_EQ(t.numElements(), 24);
  t.shape = {5, 0, 7};
  EXPECT_EQ(t.numElements(), 0);
  t.shape = {int64_t(1) << 40, int64_t(1) << 40};
  EXPECT_EQ(t.numElements(), -1);
  t.shape = {int64_t(1) << 40, int64_t(1) << 40, 0};
  EXPECT_EQ(t.numElements(), 0);
  t.shape = {2, -1};
  EXPECT_EQ(t.numElements(), -1);
}

//===----------------------------------------------------------------------===//
// Scalar conversions
//===----------------------------------------------------------------------===//

TEST(SafetensorsConversions, Bf16KnownValues) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBf16(-2.0f), 0xC000);
  EXPECT_EQ(floatToBf16(0.0f), 0x0000);
  EXPECT_EQ(floatToBf16(-0.0f), 0x8000);
  EXPECT_EQ(floatToBf16(3.14159265f), 0x4049);  // 0x40490FDB rounds down
  // Ties: exactly half an ulp rounds to the even neighbour.
  EXPECT_EQ(floatToBf16(bitsToFloat(0x3F808000)), 0x3F80);  // even below: stays
  EXPECT_EQ(floatToBf16(bitsToFloat(0x3F818000)), 0x3F82);  // odd below: rounds up
  EXPECT_EQ(floatToBf16(bitsToFloat(0x3F808001)), 0x3F81);  // above half
  EXPECT_EQ(floatToBf16(bitsToFloat(0x3F807FFF)), 0x3F80);  // below half
  // Infinities, overflow, NaN.
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(floatToBf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
  EXPECT_EQ(floatToBf16(bitsToFloat(0x7F7F7FFF)), 0x7F7F);            // largest below the tie
  EXPECT_EQ(floatToBf16(bitsToFloat(0x7FC00000)), 0x7FC0);
  uint16_t nan = floatToBf16(bitsToFloat(0x7F800001));  // payload only in the dropped bits
  EXPECT_EQ(nan & 0x7F80, 0x7F80);
  EXPECT_NE(nan & 0x007F, 0) << "a NaN must not become infinity";
  EXPECT_EQ(floatToBf16(bitsToFloat(0xFFC00000)), 0xFFC0);  // sign kept
  // Subnormals are just truncated mantissas in bf16.
  EXPECT_EQ(floatToBf16(bitsToFloat(0x00010000)), 0x0001);
  EXPECT_EQ(floatToBf16(bitsToFloat(0x00008000)), 0x0000);  // tie to even zero

  EXPECT_EQ(bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0x4049), 3.140625f);
  EXPECT_EQ(bf16ToFloat(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16ToFloat(0x7FC1)));
}

TEST(SafetensorsConversions, Bf16RoundTripsEveryValue) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16ToFloat(static_cast<uint16_t>(b));
    uint16_t back = floatToBf16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16ToFloat(back))) << b;
      EXPECT_EQ(back & 0x8000u, b & 0x8000u) << b;
    } else {
      EXPECT_EQ(back, b) << std::hex << b;
    }
  }
}

TEST(SafetensorsConversions, F16KnownValues) {
  EXPECT_EQ(floatToF16(1.0f), 0x3C00);
  EXPECT_EQ(floatToF16(-2.0f), 0xC000);
  EXPECT_EQ(floatToF16(0.5f), 0x3800);
  EXPECT_EQ(floatToF16(0.0f), 0x0000);
  EXPECT_EQ(floatToF16(-0.0f), 0x8000);
  EXPECT_EQ(floatToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToF16(1.0f / 3.0f), 0x3555);
  // Ties in the normal range: 1 + 2^-11 is half an ulp above 1.
  EXPECT_EQ(floatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // to even (down)
  EXPECT_EQ(floatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // to even (up)
  EXPECT_EQ(floatToF16(bitsToFloat(0x3F801001)), 0x3C01);           // just above the tie
  // Overflow: 65520 is the tie between 65504 and infinity, and goes to infinity.
  EXPECT_EQ(floatToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(floatToF16(65520.0f), 0x7C00);
  EXPECT_EQ(floatToF16(1e6f), 0x7C00);
  EXPECT_EQ(floatToF16(-1e30f), 0xFC00);
  EXPECT_EQ(floatToF16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(floatToF16(-std::numeric_limits<float>::infinity()), 0xFC00);
  // NaN stays NaN, with its sign and top payload bits.
  EXPECT_EQ(floatToF16(bitsToFloat(0x7FC00000)), 0x7E00);
  EXPECT_EQ(floatToF16(bitsToFloat(0xFFC00000)), 0xFE00);
  uint16_t nan = floatToF16(bitsToFloat(0x7F800001));
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0) << "a NaN must not become infinity";
  // Subnormals (unit 2^-24).
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -25)), 0x0000);           // tie: to even zero
  EXPECT_EQ(floatToF16(std::ldexp(1.5f, -25)), 0x0001);           // above the tie
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(floatToF16(std::ldexp(3.0f, -25)), 0x0002);           // 1.5 units: to even 2
  EXPECT_EQ(floatToF16(std::ldexp(5.0f, -25)), 0x0002);           // 2.5 units: to even 2
  EXPECT_EQ(floatToF16(std::ldexp(7.0f, -25)), 0x0004);           // 3.5 units: to even 4
  EXPECT_EQ(floatToF16(std::ldexp(1023.0f, -24)), 0x03FF);        // largest subnormal
  EXPECT_EQ(floatToF16(std::ldexp(1023.5f, -24)), 0x0400);        // tie: up to smallest normal
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -14)), 0x0400);           // smallest normal
  EXPECT_EQ(floatToF16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(floatToF16(bitsToFloat(0x00000001)), 0x0000);         // float subnormal
  EXPECT_EQ(floatToF16(-bitsToFloat(0x00000001)), 0x8000);

  EXPECT_EQ(f16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(f16ToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16ToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(floatToBits(f16ToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(f16ToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(f16ToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16ToFloat(0x7C01)));
  EXPECT_TRUE(std::isnan(f16ToFloat(0x7E00)));
}

TEST(SafetensorsConversions, F16RoundTripsEveryValue) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = f16ToFloat(static_cast<uint16_t>(b));
    uint16_t back = floatToF16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16ToFloat(back))) << b;
      EXPECT_EQ(back & 0x8000u, b & 0x8000u) << b;
    } else {
      EXPECT_EQ(back, b) << std::hex << b;
    }
  }
}

TEST(SafetensorsConversions, F16MatchesMidpointRule) {
  // For every finite f16 value x and its successor y, the midpoint rounds to
  // the even one of the two, and the floats just beside it to the nearer.
  for (uint32_t b = 0; b < 0x7BFF; ++b) {
    float x = f16ToFloat(static_cast<uint16_t>(b)), y = f16ToFloat(static_cast<uint16_t>(b + 1));
    float mid = x + (y - x) / 2;  // exact: f16 values have few mantissa bits
    uint16_t even = (b & 1) ? static_cast<uint16_t>(b + 1) : static_cast<uint16_t>(b);
    ASSERT_EQ(floatToF16(mid), even) << std::hex << b;
    ASSERT_EQ(floatToF16(std::nextafter(mid, 0.0f)), b) << std::hex << b;
    ASSERT_EQ(floatToF16(std::nextafter(mid, 1e9f)), b + 1) << std::hex << b;
  }
}

//===----------------------------------------------------------------------===//
// Writing and reading back
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RoundTripAllDTypes) {
  std::vector<TensorToWrite> tensors = {
      {"f64", DType::F64, {2}, bytesOf(std::vector<double>{1.5, -2.25})},
      {"f32", DType::F32, {2, 2}, bytesOf(std::vector<float>{1, 2, 3, 4})},
      {"f16", DType::F16, {3}, bytesOf(std::vector<uint16_t>{0x3C00, 0xC000, 0x7C00})},
      {"bf16", DType::BF16, {2}, bytesOf(std::vector<uint16_t>{0x3F80, 0x4049})},
      {"f8e4m3", DType::F8_E4M3, {5}, {0x38, 0x7E, 0x01, 0xB8, 0x7F}},
      {"f8e5m2", DType::F8_E5M2, {4}, {0x3C, 0x7C, 0x01, 0xFF}},
      {"i64", DType::I64, {2}, bytesOf(std::vector<int64_t>{(int64_t(1) << 40) + 1, -7})},
      {"i32", DType::I32, {2}, bytesOf(std::vector<int32_t>{-100000, 42})},
      {"i16", DType::I16, {2}, bytesOf(std::vector<int16_t>{-300, 300})},
      {"i8", DType::I8, {2}, {0xFB, 0x05}},
      {"u8", DType::U8, {2}, {250, 3}},
      {"bool", DType::Bool, {3}, {1, 0, 1}},
      {"scalar", DType::F32, {}, bytesOf(std::vector<float>{7.5f})},
      {"empty", DType::F32, {0}, {}},
      {"empty2d", DType::BF16, {3, 0}, {}},
  };
  std::string file = path("all.safetensors");
  std::string error;
  ASSERT_TRUE(writeSafetensors(file, tensors, {{"format", "pt"}, {"note", "héllo"}}, error)) << error;

  Checkpoint checkpoint;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.location, file);
  ASSERT_EQ(checkpoint.tensors.size(), tensors.size());
  EXPECT_EQ(checkpoint.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "héllo"}}));

  TensorReader reader(checkpoint);
  for (const TensorToWrite &t : tensors) {
    const TensorInfo *info = checkpoint.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->name, t.name);
    EXPECT_EQ(info->dtype, t.dtype) << t.name;
    EXPECT_EQ(info->shape, t.shape) << t.name;
    EXPECT_EQ(info->file, file);
    EXPECT_EQ(info->numBytes(), t.bytes.size()) << t.name;
    EXPECT_EQ(info->dataBegin % dtypeSize(t.dtype), 0u) << t.name << " is not aligned";
    const uint8_t *p = reader.bytes(*info, error);
    ASSERT_NE(p, nullptr) << error;
    EXPECT_EQ(std::vector<uint8_t>(p, p + info->numBytes()), t.bytes) << t.name;
  }
  EXPECT_EQ(checkpoint.find("scalar")->numElements(), 1);
  EXPECT_EQ(checkpoint.find("empty2d")->numElements(), 0);
  EXPECT_EQ(checkpoint.find("nope"), nullptr);

  // Float conversions of every dtype.
  auto floats = [&](const std::string &name) {
    std::vector<float> out;
    std::string err;
    EXPECT_TRUE(reader.readAsFloat32(name, out, err)) << err;
    return out;
  };
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floats("f64"), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(floats("f32"), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(floats("f16"), (std::vector<float>{1.0f, -2.0f, inf}));
  EXPECT_EQ(floats("bf16"), (std::vector<float>{1.0f, 3.140625f}));
  std::vector<float> e4m3 = floats("f8e4m3");
  ASSERT_EQ(e4m3.size(), 5u);
  EXPECT_EQ(e4m3[0], 1.0f);
  EXPECT_EQ(e4m3[1], 448.0f);  // largest E4M3FN value
  EXPECT_EQ(e4m3[2], std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3[3], -1.0f);
  EXPECT_TRUE(std::isnan(e4m3[4]));
  std::vector<float> e5m2 = floats("f8e5m2");
  ASSERT_EQ(e5m2.size(), 4u);
  EXPECT_EQ(e5m2[0], 1.0f);
  EXPECT_EQ(e5m2[1], inf);
  EXPECT_EQ(e5m2[2], std::ldexp(1.0f, -16));
  EXPECT_TRUE(std::isnan(e5m2[3]));
  EXPECT_EQ(floats("i64"), (std::vector<float>{static_cast<float>((int64_t(1) << 40) + 1), -7.0f}));
  EXPECT_EQ(floats("i32"), (std::vector<float>{-100000.0f, 42.0f}));
  EXPECT_EQ(floats("i16"), (std::vector<float>{-300.0f, 300.0f}));
  EXPECT_EQ(floats("i8"), (std::vector<float>{-5.0f, 5.0f}));
  EXPECT_EQ(floats("u8"), (std::vector<float>{250.0f, 3.0f}));
  EXPECT_EQ(floats("bool"), (std::vector<float>{1.0f, 0.0f, 1.0f}));
  EXPECT_EQ(floats("scalar"), (std::vector<float>{7.5f}));
  EXPECT_TRUE(floats("empty").empty());
  EXPECT_TRUE(floats("empty2d").empty());

  // Integer reads.
  auto ints = [&](const std::string &name) {
    std::vector<int64_t> out;
    std::string err;
    EXPECT_TRUE(reader.readAsInt64(name, out, err)) << err;
    return out;
  };
  EXPECT_EQ(ints("i64"), (std::vector<int64_t>{(int64_t(1) << 40) + 1, -7}));
  EXPECT_EQ(ints("i32"), (std::vector<int64_t>{-100000, 42}));
  EXPECT_EQ(ints("i16"), (std::vector<int64_t>{-300, 300}));
  EXPECT_EQ(ints("i8"), (std::vector<int64_t>{-5, 5}));
  EXPECT_EQ(ints("u8"), (std::vector<int64_t>{250, 3}));
  EXPECT_EQ(ints("bool"), (std::vector<int64_t>{1, 0, 1}));

  for (const char *name : {"f32", "bf16", "f8e4m3", "f64"}) {
    std::vector<int64_t> out;
    EXPECT_FALSE(reader.readAsInt64(name, out, error));
    EXPECT_TRUE(containsAll(error, {file, std::string("'") + name + "'",
                                    dtypeName(checkpoint.find(name)->dtype), "not an integer type"}));
  }
}

TEST_F(SafetensorsTest, WrittenFileLayout) {
  std::string file = path("layout.safetensors");
  std::string error;
  std::vector<TensorToWrite> tensors = {
      {"zeta", DType::U8, {3}, {1, 2, 3}},
      {"Alpha", DType::F32, {1}, bytesOf(std::vector<float>{1.0f})},
      {"beta", DType::I64, {1}, bytesOf(std::vector<int64_t>{9})},
  };
  ASSERT_TRUE(writeSafetensors(file, tensors, {{"format", "pt"}}, error)) << error;
  std::string contents = readFile(file);
  ASSERT_GE(contents.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<uint8_t>(contents[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(contents.size(), 8 + n + 3 + 4 + 8);
  std::string header = contents.substr(8, n);
  EXPECT_EQ(header[0], '{');
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  // Keys are sorted (byte order).
  size_t alpha = header.find("\"Alpha\""), meta = header.find("\"__metadata__\""),
         beta = header.find("\"beta\""), zeta = header.find("\"zeta\"");
  ASSERT_NE(alpha, std::string::npos);
  ASSERT_NE(meta, std::string::npos);
  EXPECT_LT(alpha, meta);
  EXPECT_LT(meta, beta);
  EXPECT_LT(beta, zeta);
  EXPECT_NE(header.find("\"data_offsets\":[0,8],\"dtype\":\"I64\",\"shape\":[1]"), std::string::npos) << header;
  // Data: larger elements first, so each tensor is aligned to its element size.
  EXPECT_EQ(contents.substr(8 + n + 12), std::string("\x01\x02\x03", 3));
}

TEST_F(SafetensorsTest, WriteValidation) {
  std::string file = path("w.safetensors");
  std::string error;
  EXPECT_FALSE(writeSafetensors(file, {{"x", DType::F32, {2, 2}, std::vector<uint8_t>(12)}}, {}, error));
  EXPECT_TRUE(containsAll(error, {file, "'x'", "12 bytes", "[2, 2]", "F32", "needs 16"}));
  EXPECT_FALSE(fs::exists(file));

  EXPECT_FALSE(writeSafetensors(file, {{"x", DType::F32, {-1}, {}}}, {}, error));
  EXPECT_TRUE(containsAll(error, {file, "'x'", "negative"}));

  EXPECT_FALSE(writeSafetensors(file, {{"x", DType::U8, {1}, {1}}, {"x", DType::U8, {1}, {2}}}, {}, error));
  EXPECT_TRUE(containsAll(error, {file, "'x'", "twice"}));

  EXPECT_FALSE(writeSafetensors(file, {{"__metadata__", DType::U8, {1}, {1}}}, {}, error));
  EXPECT_TRUE(containsAll(error, {file, "__metadata__"}));

  EXPECT_FALSE(writeSafetensors(file, {{"\xff\xfe", DType::U8, {1}, {1}}}, {}, error));
  EXPECT_TRUE(containsAll(error, {file, "UTF-8"}));

  EXPECT_FALSE(writeSafetensors(dir + "/no/such/dir/x.safetensors", {}, {}, error));
  EXPECT_TRUE(containsAll(error, {"no/such/dir/x.safetensors", "cannot create"}));

  // No tensors at all is a valid (empty) checkpoint.
  ASSERT_TRUE(writeSafetensors(file, {}, {}, error)) << error;
  Checkpoint checkpoint;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  EXPECT_TRUE(checkpoint.tensors.empty());
}

//===----------------------------------------------------------------------===//
// Header validation
//===----------------------------------------------------------------------===//

const std::string kF32x2 = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";

TEST_F(SafetensorsTest, AcceptsHandMadeHeader) {
  // Padding spaces, unknown entry fields, a tensor after a hole, an empty tensor.
  std::string header = R"({"a":{)" + kF32x2 + R"(,"extra":1},"b":{"dtype":"U8","shape":[2],"data_offsets":[12,14]},)"
                       R"("e":{"dtype":"F16","shape":[0,5],"data_offsets":[8,8]}})"
                       "     ";
  std::string file = path("ok.safetensors");
  writeFile(file, rawFile(header, std::string(14, 'x')));
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  ASSERT_EQ(checkpoint.tensors.size(), 3u);
  EXPECT_EQ(checkpoint.find("b")->dataBegin, 8 + header.size() + 12);
  EXPECT_EQ(checkpoint.find("b")->dataEnd, 8 + header.size() + 14);
  EXPECT_TRUE(checkpoint.metadata.empty());
}

TEST_F(SafetensorsTest, ParsesFromMemory) {
  std::string contents = rawFile("{\"a\":{" + kF32x2 + "}}", std::string(8, '\0'));
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(parseSafetensorsHeader("mem", reinterpret_cast<const uint8_t *>(contents.data()), contents.size(),
                                     contents.size(), checkpoint, error))
      << error;
  EXPECT_EQ(checkpoint.find("a")->file, "mem");
  // The same bytes claimed to be part of a shorter file: data beyond its end.
  EXPECT_FALSE(parseSafetensorsHeader("mem", reinterpret_cast<const uint8_t *>(contents.data()),
                                      contents.size(), contents.size() - 1, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {"mem: tensor 'a'", "past the end"}));
  // Fewer bytes given than the header length says.
  EXPECT_FALSE(parseSafetensorsHeader("mem", reinterpret_cast<const uint8_t *>(contents.data()), 12,
                                      contents.size(), checkpoint, error));
  EXPECT_TRUE(containsAll(error, {"mem: ", "only 4 header bytes"}));
}

TEST_F(SafetensorsTest, FileTooShort) {
  std::string error = headerError(std::string("\x02\x00\x00", 3));
  EXPECT_TRUE(containsAll(error, {"too short", "3 bytes"}));
  error = headerError("");
  EXPECT_TRUE(containsAll(error, {"too short", "0 bytes"}));
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFile) {
  std::string error = headerError(rawFile("{}", "", 100));
  EXPECT_TRUE(containsAll(error, {"header length 100", "larger than the rest of the file", "2 bytes"}));
}

TEST_F(SafetensorsTest, HeaderLengthAbsurd) {
  std::string error = headerError(rawFile("{}", "", uint64_t(1) << 40));
  EXPECT_TRUE(containsAll(error, {"header length 1099511627776", "exceeds the limit of 100000000"}));
  error = headerError(rawFile("{}", "", ~uint64_t(1)));
  EXPECT_TRUE(containsAll(error, {"header length 18446744073709551614", "exceeds"}));
}

TEST_F(SafetensorsTest, EmptyOrNonObjectHeader) {
  EXPECT_TRUE(containsAll(headerError(rawFile("")), {"header is empty"}));
  EXPECT_TRUE(containsAll(headerError(rawFile("[1, 2]")), {"does not start with '{'"}));
  EXPECT_TRUE(containsAll(headerError(rawFile(" {}")), {"does not start with '{'"}));
}

TEST_F(SafetensorsTest, InvalidJson) {
  std::string error = headerError(rawFile("{\"a\": {\"dtype\": F32}}"));
  // Positions are nlohmann's: 1-based, 'F' is the 17th byte.
  EXPECT_TRUE(containsAll(error, {"not valid JSON", "at byte 17", "column 17", "syntax error", "invalid literal"}));
  error = headerError(rawFile("{\"a\": 1} x"));
  EXPECT_TRUE(containsAll(error, {"not valid JSON", "byte 10"}));
  error = headerError(rawFile("{\"a\":{" + kF32x2 + std::string("}}\0\0\0\0", 6)));  // NUL padding is not JSON
  EXPECT_TRUE(containsAll(error, {"header is not valid JSON (at byte 55): NUL byte"}));
  error = headerError(rawFile("{\"\xff\": 1}"));  // invalid UTF-8
  EXPECT_TRUE(containsAll(error, {"not valid JSON", "UTF-8"}));
}

TEST_F(SafetensorsTest, DeepNesting) {
  std::string error = headerError(rawFile("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"));
  EXPECT_TRUE(containsAll(error, {"nested more than 32 levels"}));
  error = headerError(rawFile("{\"__metadata__\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}"));
  EXPECT_TRUE(containsAll(error, {"nested more than 32 levels"}));
}

TEST_F(SafetensorsTest, DuplicateKeys) {
  std::string error = headerError(rawFile("{\"a\":{" + kF32x2 + "},\"a\":{" + kF32x2 + "}}", std::string(8, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'a' is listed twice"}));
  error = headerError(rawFile("{\"a\":{" + kF32x2 + ",\"dtype\":\"I32\"}}", std::string(8, 'x')));
  EXPECT_TRUE(containsAll(error, {"'a'", "key 'dtype' appears twice"}));
}

TEST_F(SafetensorsTest, EntryNotObject) {
  std::string error = headerError(rawFile(R"({"w": [1, 2]})"));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "must be an object", "not an array"}));
  error = headerError(rawFile(R"({"w": 5})"));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "must be an object"}));
}

TEST_F(SafetensorsTest, BadDType) {
  std::string error = headerError(rawFile(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "missing \"dtype\""}));
  error = headerError(rawFile(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "unknown dtype 'F99'", "known: F64, F32, F16, BF16, F8_E4M3",
                                  "U8, BOOL"}));
  error = headerError(rawFile(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"dtype\" must be a string"}));
}

TEST_F(SafetensorsTest, BadShape) {
  const std::string data(8, 'x');
  std::string error = headerError(rawFile(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "missing \"shape\""}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"shape\" must be a list of non-negative integers"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"shape\"", "element 1 is -1 (a negative number)"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"shape\"", "element 0 is 2.0 (a non-integer number)"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"shape\"", "element 0 is \"2\""}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "too large"}));
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  const std::string data(8, 'x');
  std::string error = headerError(
      rawFile(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "shape [4294967296, 4294967296]", "overflows"}));
  // Fits in elements but not in bytes.
  error = headerError(rawFile(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "overflows"}));
  // A zero dimension makes the tensor empty, however large the others are.
  std::string file = path("zero.safetensors");
  writeFile(file, rawFile(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"));
  Checkpoint checkpoint;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.find("w")->numElements(), 0);
}

TEST_F(SafetensorsTest, BadDataOffsets) {
  const std::string data(16, 'x');
  std::string error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "missing \"data_offsets\""}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"data_offsets\" must be [begin, end], not [0]"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"data_offsets\" must be [begin, end]"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":{"a":1}}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "\"data_offsets\" must be [begin, end]"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "two non-negative integers", "[-8,0]"}));
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", data));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "two non-negative integers"}));
}

TEST_F(SafetensorsTest, EndBeforeBegin) {
  std::string error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
                                          std::string(16, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "data_offsets [8, 0] end before they begin"}));
}

TEST_F(SafetensorsTest, SizeMismatch) {
  std::string error = headerError(rawFile(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})",
                                          std::string(16, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "data_offsets [0, 8] span 8 bytes", "shape [2, 3]", "BF16",
                                  "needs 12 (6 elements of 2 bytes)"}));
  // Too many bytes is as wrong as too few.
  error = headerError(rawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", std::string(16, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "span 8 bytes", "needs 4"}));
}

TEST_F(SafetensorsTest, OffsetsBeyondFile) {
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string error = headerError(rawFile(header, std::string(12, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "data_offsets [0, 16] extend past the end of the file",
                                  "holds 12 bytes"}));
  // Offsets near 2^64 must not wrap around.
  error = headerError(rawFile(
      R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551614,18446744073709551618]}})",
      std::string(12, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "data_offsets"}));
  error = headerError(rawFile(
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})",
      std::string(12, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensor 'w'", "past the end"}));
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string error = headerError(rawFile(header, std::string(16, 'x')));
  EXPECT_TRUE(containsAll(error, {"tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [4, 12]) overlap"}));
  // One inside another, with an unrelated tensor in between by name.
  header = R"({"big":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
           R"("c":{"dtype":"U8","shape":[1],"data_offsets":[20,21]},)"
           R"("small":{"dtype":"U8","shape":[2],"data_offsets":[5,7]}})";
  error = headerError(rawFile(header, std::string(24, 'x')));
  EXPECT_TRUE(containsAll(error, {"'big'", "'small'", "overlap"}));
  // Touching tensors and empty tensors inside others are fine.
  header = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
           R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},)"
           R"("e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})";
  std::string file = path("touch.safetensors");
  writeFile(file, rawFile(header, std::string(8, 'x')));
  Checkpoint checkpoint;
  EXPECT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
}

TEST_F(SafetensorsTest, BadMetadata) {
  std::string error = headerError(rawFile(R"({"__metadata__":{"format":"pt","step":5}})"));
  EXPECT_TRUE(containsAll(error, {"__metadata__ must map strings to strings", "'step' is a number"}));
  error = headerError(rawFile(R"({"__metadata__":["pt"]})"));
  EXPECT_TRUE(containsAll(error, {"__metadata__ must be an object", "not an array"}));
  error = headerError(rawFile(R"({"__metadata__":{"a":{"b":"c"}}})"));
  EXPECT_TRUE(containsAll(error, {"__metadata__", "'a' is an object"}));
}

TEST_F(SafetensorsTest, MissingFileAndDirectory) {
  Checkpoint checkpoint;
  std::string error;
  std::string missing = path("missing.safetensors");
  EXPECT_FALSE(readSafetensorsHeader(missing, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {missing + ": cannot open", "No such file"}));
  EXPECT_FALSE(readSafetensorsHeader(dir, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {dir + ": ", "directory"}));
  EXPECT_FALSE(openCheckpoint(missing, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {missing, "No such file"}));
}

TEST_F(SafetensorsTest, FailedReadLeavesCheckpointUnchanged) {
  std::string file = writeSmall("good.safetensors");
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  writeFile(path("bad.safetensors"), rawFile("{"));
  EXPECT_FALSE(readSafetensorsHeader(path("bad.safetensors"), checkpoint, error));
  EXPECT_EQ(checkpoint.tensors.size(), 2u);
  EXPECT_EQ(checkpoint.location, file);
}

//===----------------------------------------------------------------------===//
// Reading tensors
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, MissingTensor) {
  std::string file = writeSmall("m.safetensors");
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(openCheckpoint(file, checkpoint, error)) << error;
  TensorReader reader(checkpoint);
  std::vector<float> floats;
  EXPECT_FALSE(reader.readAsFloat32("model.embed", floats, error));
  EXPECT_TRUE(containsAll(error, {file, "no tensor named 'model.embed'"}));
  std::vector<int64_t> ints;
  EXPECT_FALSE(reader.readAsInt64("model.embed", ints, error));
  EXPECT_TRUE(containsAll(error, {file, "no tensor named 'model.embed'"}));
  ASSERT_TRUE(reader.readAsFloat32("b", floats, error)) << error;
  EXPECT_EQ(floats, (std::vector<float>{3, 4, 5}));
}

TEST_F(SafetensorsTest, FileShrankAfterHeaderRead) {
  std::string file = writeSmall("s.safetensors");
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(readSafetensorsHeader(file, checkpoint, error)) << error;
  fs::resize_file(file, checkpoint.find("b")->dataEnd - 4);
  TensorReader reader(checkpoint);
  std::vector<float> floats;
  EXPECT_FALSE(reader.readAsFloat32("b", floats, error));
  EXPECT_TRUE(containsAll(error, {file, "tensor 'b'", "outside the file"}));
  EXPECT_TRUE(reader.readAsFloat32("a", floats, error)) << error;
}

TEST_F(SafetensorsTest, InconsistentTensorInfo) {
  Checkpoint checkpoint;
  checkpoint.location = "handmade";
  TensorInfo info;
  info.name = "t";
  info.file = writeSmall("h.safetensors");
  info.dtype = DType::F32;
  info.shape = {3};
  info.dataBegin = 8;
  info.dataEnd = 16;  // 8 bytes for 3 floats
  checkpoint.tensors["t"] = info;
  TensorReader reader(checkpoint);
  std::vector<float> floats;
  std::string error;
  EXPECT_FALSE(reader.readAsFloat32("t", floats, error));
  EXPECT_TRUE(containsAll(error, {"tensor 't'", "8 bytes do not match shape [3]"}));

  checkpoint.tensors["t"].file = path("gone.safetensors");
  checkpoint.tensors["t"].shape = {2};
  EXPECT_FALSE(reader.readAsFloat32("t", floats, error));
  EXPECT_TRUE(containsAll(error, {path("gone.safetensors"), "cannot open"}));
}

TEST_F(SafetensorsTest, MappedFile) {
  std::string error;
  EXPECT_EQ(MappedFile::open(path("none"), error), nullptr);
  EXPECT_TRUE(containsAll(error, {path("none"), "cannot open"}));
  writeFile(path("five"), "hello");
  std::unique_ptr<MappedFile> mapped = MappedFile::open(path("five"), error);
  ASSERT_NE(mapped, nullptr) << error;
  EXPECT_EQ(mapped->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(mapped->data()), 5), "hello");
  writeFile(path("empty"), "");
  mapped = MappedFile::open(path("empty"), error);
  ASSERT_NE(mapped, nullptr) << error;
  EXPECT_EQ(mapped->size(), 0u);
}

//===----------------------------------------------------------------------===//
// Sharded checkpoints and directories
//===----------------------------------------------------------------------===//

class ShardedTest : public SafetensorsTest {
protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    shard1 = writeSmall("model-00001-of-00002.safetensors", "layer0.");
    shard2 = writeSmall("model-00002-of-00002.safetensors", "layer1.");
  }
  std::string writeIndex(const std::string &weightMap, const std::string &name = "model.safetensors.index.json") {
    std::string file = path(name);
    writeFile(file, R"({"metadata":{"total_size":40},"weight_map":)" + weightMap + "}");
    return file;
  }
  static std::string fullMap() {
    return R"({"layer0.a":"model-00001-of-00002.safetensors","layer0.b":"model-00001-of-00002.safetensors",)"
           R"("layer1.a":"model-00002-of-00002.safetensors","layer1.b":"model-00002-of-00002.safetensors"})";
  }
  std::string indexError(const std::string &weightMap) {
    std::string index = writeIndex(weightMap);
    Checkpoint checkpoint;
    std::string error;
    EXPECT_FALSE(openCheckpoint(index, checkpoint, error));
    EXPECT_TRUE(containsAll(error, {index + ": "}));
    return error;
  }
  std::string shard1, shard2;
};

TEST_F(ShardedTest, OpensIndexAndReadsBothShards) {
  std::string index = writeIndex(fullMap());
  for (const std::string &location : {index, dir, dir + "/"}) {
    Checkpoint checkpoint;
    std::string error;
    ASSERT_TRUE(openCheckpoint(location, checkpoint, error)) << error;
    EXPECT_EQ(checkpoint.location, location);
    ASSERT_EQ(checkpoint.tensors.size(), 4u);
    EXPECT_EQ(checkpoint.find("layer0.a")->file, shard1);
    EXPECT_EQ(checkpoint.find("layer1.b")->file, shard2);
    EXPECT_EQ(checkpoint.metadata.at("shard"), "model-00001-of-00002.safetensors");
    TensorReader reader(checkpoint);
    std::vector<float> floats;
    ASSERT_TRUE(reader.readAsFloat32("layer1.b", floats, error)) << error;
    EXPECT_EQ(floats, (std::vector<float>{3, 4, 5}));
    ASSERT_TRUE(reader.readAsFloat32("layer0.a", floats, error)) << error;
    EXPECT_EQ(floats, (std::vector<float>{1, 2}));
    EXPECT_FALSE(reader.readAsFloat32("layer2.a", floats, error));
    EXPECT_TRUE(containsAll(error, {location + ": no tensor named 'layer2.a'"}));
  }
}

TEST_F(ShardedTest, ShardsInSubdirectory) {
  fs::create_directory(path("sub"));
  fs::rename(shard2, path("sub/model-00002-of-00002.safetensors"));
  std::string map = fullMap();
  for (size_t at; (at = map.find("\"model-00002")) != std::string::npos;)
    map.replace(at, 1, "\"sub/");
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(openCheckpoint(writeIndex(map), checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.find("layer1.a")->file, path("sub/model-00002-of-00002.safetensors"));
}

TEST_F(ShardedTest, TensorMissingFromShard) {
  std::string map = fullMap();
  map.insert(map.size() - 1, R"(,"layer1.c":"model-00002-of-00002.safetensors")");
  std::string error = indexError(map);
  EXPECT_TRUE(containsAll(error, {"tensor 'layer1.c' is mapped to " + shard2, "no such tensor"}));
}

TEST_F(ShardedTest, TensorMissingFromIndex) {
  std::string error = indexError(R"({"layer0.a":"model-00001-of-00002.safetensors",)"
                                 R"("layer1.a":"model-00002-of-00002.safetensors"})");
  EXPECT_TRUE(containsAll(error, {"shard " + shard1, "1 tensor(s) that the index does not list",
                                  "first: 'layer0.b'"}));
}

TEST_F(ShardedTest, DuplicateAcrossShards) {
  writeSmall("model-00002-of-00002.safetensors", "layer0.");  // same names as shard 1
  std::string error = indexError(R"({"layer0.a":"model-00001-of-00002.safetensors",)"
                                 R"("layer0.b":"model-00002-of-00002.safetensors"})");
  EXPECT_TRUE(containsAll(error, {"tensor 'layer0.a' is in two shards", shard1, shard2}));
}

TEST_F(ShardedTest, MissingShard) {
  fs::remove(shard2);
  std::string error = indexError(fullMap());
  EXPECT_TRUE(containsAll(error, {"shard of tensor 'layer1.a'", shard2 + ": cannot open", "No such file"}));
}

TEST_F(ShardedTest, BadShard) {
  writeFile(shard2, rawFile("{\"x\": 1}"));
  std::string error = indexError(fullMap());
  EXPECT_TRUE(containsAll(error, {shard2 + ": tensor 'x': entry must be an object"}));
}

TEST_F(ShardedTest, MalformedIndex) {
  std::string index = path("model.safetensors.index.json");
  auto openError = [&](const std::string &contents) {
    writeFile(index, contents);
    Checkpoint checkpoint;
    std::string error;
    EXPECT_FALSE(openCheckpoint(index, checkpoint, error));
    EXPECT_TRUE(containsAll(error, {index + ": "}));
    return error;
  };
  EXPECT_TRUE(containsAll(openError("{\"weight_map\": {"), {"not valid JSON"}));
  EXPECT_TRUE(containsAll(openError("[]"), {"must be a JSON object"}));
  EXPECT_TRUE(containsAll(openError("{\"metadata\": {}}"), {"no \"weight_map\""}));
  EXPECT_TRUE(containsAll(openError("{\"weight_map\": []}"), {"\"weight_map\" must be an object"}));
  EXPECT_TRUE(containsAll(openError("{\"weight_map\": {}}"), {"\"weight_map\" is empty"}));
  EXPECT_TRUE(containsAll(openError(R"({"weight_map": {"layer0.a": 3}})"),
                          {"tensor 'layer0.a' maps to a number, not a shard file name"}));
  EXPECT_TRUE(containsAll(openError(R"({"weight_map": {"layer0.a": "../x.safetensors"}})"),
                          {"tensor 'layer0.a'", "'../x.safetensors'", "relative to the index's directory"}));
  EXPECT_TRUE(containsAll(openError(R"({"weight_map": {"layer0.a": "/etc/x.safetensors"}})"),
                          {"relative to the index's directory"}));
  EXPECT_TRUE(containsAll(openError(R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})"),
                          {"weight_map lists tensor 'a' twice"}));
}

TEST_F(SafetensorsTest, DirectoryResolution) {
  Checkpoint checkpoint;
  std::string error;
  // Empty directory: says what it looked for.
  EXPECT_FALSE(openCheckpoint(dir, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {dir + ": no checkpoint", "model.safetensors.index.json", "model.safetensors",
                                  "*.safetensors"}));

  // A single file of any name.
  writeSmall("weights.safetensors");
  writeFile(path("config.json"), "{}");
  ASSERT_TRUE(openCheckpoint(dir, checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.location, dir);
  EXPECT_EQ(checkpoint.find("a")->file, path("weights.safetensors"));

  // Two files and no index: ambiguous.
  writeSmall("other.safetensors", "o.");
  EXPECT_FALSE(openCheckpoint(dir, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {dir + ": ", "2 .safetensors files", "other.safetensors", "weights.safetensors",
                                  "no model.safetensors.index.json"}));

  // model.safetensors wins over other files.
  writeSmall("model.safetensors", "m.");
  ASSERT_TRUE(openCheckpoint(dir, checkpoint, error)) << error;
  EXPECT_NE(checkpoint.find("m.a"), nullptr);
  EXPECT_EQ(checkpoint.find("m.a")->file, path("model.safetensors"));

  // The index wins over model.safetensors.
  writeFile(path("model.safetensors.index.json"),
            R"({"weight_map":{"o.a":"other.safetensors","o.b":"other.safetensors"}})");
  ASSERT_TRUE(openCheckpoint(dir, checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.tensors.size(), 2u);
  EXPECT_EQ(checkpoint.find("o.a")->file, path("other.safetensors"));

  // A broken model.safetensors in a directory: the error names that file.
  fs::remove(path("model.safetensors.index.json"));
  writeFile(path("model.safetensors"), "xx");
  EXPECT_FALSE(openCheckpoint(dir, checkpoint, error));
  EXPECT_TRUE(containsAll(error, {path("model.safetensors") + ": file is too short"}));
}

TEST_F(SafetensorsTest, DirectoryWithSingleOtherIndex) {
  writeSmall("diffusion_pytorch_model.safetensors", "d.");
  writeSmall("extra.safetensors", "e.");
  writeFile(path("diffusion_pytorch_model.safetensors.index.json"),
            R"({"weight_map":{"d.a":"diffusion_pytorch_model.safetensors","d.b":"diffusion_pytorch_model.safetensors"}})");
  Checkpoint checkpoint;
  std::string error;
  ASSERT_TRUE(openCheckpoint(dir, checkpoint, error)) << error;
  EXPECT_EQ(checkpoint.tensors.size(), 2u);
  EXPECT_NE(checkpoint.find("d.b"), nullptr);
}

}  // namespace
