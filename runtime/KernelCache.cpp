//===- KernelCache.cpp - on-disk cache of compiled kernels ----------------===//

#include "kiln/Runtime/KernelCache.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

using namespace kiln::runtime;
namespace fs = std::filesystem;

namespace {

/// SHA-256 (FIPS 180-4).
class Sha256 {
public:
  void update(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      block_[used_++] = data[i];
      if (used_ == 64) {
        compress();
        used_ = 0;
      }
    }
    length_ += size;
  }

  std::array<uint8_t, 32> finish() {
    const uint64_t bits = length_ * 8;
    const uint8_t pad = 0x80, zero = 0;
    update(&pad, 1);
    while (used_ != 56)
      update(&zero, 1);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i)
      length[i] = uint8_t(bits >> (56 - 8 * i));
    update(length, 8);
    std::array<uint8_t, 32> digest;
    for (int i = 0; i < 8; ++i)
      for (int b = 0; b < 4; ++b)
        digest[4 * i + b] = uint8_t(state_[i] >> (24 - 8 * b));
    return digest;
  }

private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress() {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(block_[4 * i]) << 24 | uint32_t(block_[4 * i + 1]) << 16 |
             uint32_t(block_[4 * i + 2]) << 8 | uint32_t(block_[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4],
             f = state_[5], g = state_[6], h = state_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                          k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    const uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i)
      state_[i] += add[i];
  }

  uint32_t state_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block_[64] = {};
  size_t used_ = 0;
  uint64_t length_ = 0;
};

void appendField(std::string &text, const std::string &field) {
  text += std::to_string(field.size());
  text += ':';
  text += field;
}

} // namespace

std::string kiln::runtime::sha256Hex(const std::string &data) {
  Sha256 hash;
  hash.update(reinterpret_cast<const uint8_t *>(data.data()), data.size());
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : hash.finish()) {
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
}

std::string kiln::runtime::kernelCacheKey(const std::string &source,
                                          const std::vector<std::string> &options,
                                          int nvrtcMajor, int nvrtcMinor,
                                          const std::string &arch) {
  std::string text;
  appendField(text, "kiln kernel cache 1");
  appendField(text, source);
  appendField(text, std::to_string(options.size()));
  for (const std::string &option : options)
    appendField(text, option);
  appendField(text, std::to_string(nvrtcMajor) + "." + std::to_string(nvrtcMinor));
  appendField(text, arch);
  return sha256Hex(text);
}

std::string kiln::runtime::defaultKernelCacheDir() {
  if (const char *dir = std::getenv("KILN_CACHE_DIR"); dir && *dir)
    return dir;
  if (const char *dir = std::getenv("XDG_CACHE_HOME"); dir && *dir)
    return std::string(dir) + "/kiln";
  if (const char *home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/kiln";
  return "";
}

std::string KernelCache::pathFor(const std::string &key) const {
  return dir_ + "/" + key + ".cubin";
}

bool KernelCache::load(const std::string &key, std::vector<char> &cubin) const {
  if (!enabled())
    return false;
  std::ifstream in(pathFor(key), std::ios::binary);
  if (!in)
    return false;
  cubin.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad() && !cubin.empty();
}

bool KernelCache::store(const std::string &key, const std::vector<char> &cubin,
                        std::string &error) const {
  if (!enabled())
    return true;
  std::error_code code;
  fs::create_directories(dir_, code);
  if (code) {
    error = "cannot create kernel cache directory " + dir_ + ": " + code.message();
    return false;
  }
  const std::string path = pathFor(key);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(cubin.data(), std::streamsize(cubin.size()));
    if (!out.flush()) {
      error = "cannot write kernel cache file " + temporary;
      fs::remove(temporary, code);
      return false;
    }
  }
  fs::rename(temporary, path, code);
  if (code) {
    error = "cannot write kernel cache file " + path + ": " + code.message();
    fs::remove(temporary, code);
    return false;
  }
  return true;
}

void KernelCache::remove(const std::string &key) const {
  std::error_code ignored;
  fs::remove(pathFor(key), ignored);
}
