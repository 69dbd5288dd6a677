//===- safetensors_header_fuzzer.cpp - libFuzzer target -------------------===//
//
// Feeds arbitrary bytes to the safetensors header parser as the contents of a
// whole file, and checks the invariants that an accepted header promises.
//
//===----------------------------------------------------------------------===//

#include "kiln/Support/Safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
void check(bool condition, const char *what) {
  if (!condition) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::Checkpoint checkpoint;
  std::string error;
  bool ok = kiln::parseSafetensorsHeader("fuzz.safetensors", data, size, size, checkpoint, error);
  if (!ok) {
    check(!error.empty(), "failure without a message");
    check(error.rfind("fuzz.safetensors: ", 0) == 0, "message does not name the file");
    return 0;
  }
  check(size >= 8, "accepted a file shorter than 8 bytes");
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i)
    headerLength = (headerLength << 8) | data[i];
  const uint64_t dataStart = 8 + headerLength;
  std::vector<const kiln::TensorInfo *> tensors;
  for (const auto &entry : checkpoint.tensors) {
    const kiln::TensorInfo &t = entry.second;
    check(t.name == entry.first, "name mismatch");
    check(t.dataBegin >= dataStart && t.dataBegin <= t.dataEnd && t.dataEnd <= size,
          "tensor bytes outside the data section");
    int64_t n = t.numElements();
    check(n >= 0, "numElements overflowed on a validated shape");
    check(static_cast<uint64_t>(n) * kiln::dtypeSize(t.dtype) == t.numBytes(), "byte size mismatch");
    if (t.numBytes())
      tensors.push_back(&t);
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const kiln::TensorInfo *a, const kiln::TensorInfo *b) { return a->dataBegin < b->dataBegin; });
  for (size_t i = 1; i < tensors.size(); ++i)
    check(tensors[i]->dataBegin >= tensors[i - 1]->dataEnd, "overlapping tensors accepted");
  return 0;
}
