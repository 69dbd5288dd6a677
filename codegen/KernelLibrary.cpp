//===- KernelLibrary.cpp - kernel deduplication and source helpers --------===//

#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace kiln;
using namespace kiln::codegen;

namespace {
/// Locations listed in a kernel's header comment; the rest are counted.
constexpr size_t kListedLocations = 4;
} // namespace

unsigned KernelLibrary::add(const KernelSpec &spec, llvm::StringRef location) {
  auto found = indexBySource.find(spec.source);
  if (found != indexBySource.end()) {
    std::vector<std::string> &locations = entries[found->second].locations;
    if (!llvm::is_contained(locations, location))
      locations.push_back(location.str());
    return found->second;
  }
  // The name carries the shapes; specializations it does not spell (an
  // epsilon, a RoPE table) get a numbered name of their own.
  KernelSpec unique = spec;
  for (unsigned version = 2; namesTaken.count(unique.name); ++version) {
    unique.name = spec.name + "_v" + std::to_string(version);
    unique.source = llvm::join(llvm::split(spec.source, spec.name), unique.name);
  }
  unsigned index = entries.size();
  indexBySource[spec.source] = index;
  namesTaken[unique.name] = index;
  entries.push_back({std::move(unique), {location.str()}});
  return index;
}

std::vector<Kernel> KernelLibrary::finish() const {
  std::vector<Kernel> kernels;
  for (const Entry &entry : entries) {
    std::string locations;
    llvm::raw_string_ostream os(locations);
    for (size_t i = 0; i < entry.locations.size() && i < kListedLocations; ++i)
      os << (i ? ", " : "") << entry.locations[i];
    if (entry.locations.size() > kListedLocations)
      os << " and " << entry.locations.size() - kListedLocations << " more";

    Kernel kernel;
    kernel.name = entry.spec.name;
    kernel.location = locations;
    kernel.programmatic = entry.spec.programmatic;
    kernel.source = "// " + entry.spec.name + ": " + entry.spec.summary + "\n// IR: " + locations +
                    "\n" + entry.spec.source;
    kernels.push_back(std::move(kernel));
  }
  return kernels;
}

std::string codegen::fillTemplate(llvm::StringRef text,
                                  llvm::ArrayRef<std::pair<llvm::StringRef, std::string>> values) {
  std::string result;
  while (true) {
    size_t open = text.find("${");
    if (open == llvm::StringRef::npos)
      break;
    size_t close = text.find('}', open);
    llvm::StringRef key = text.slice(open + 2, close);
    const auto *value = llvm::find_if(values, [&](const auto &pair) { return pair.first == key; });
    if (value == values.end())
      llvm::report_fatal_error("kernel template has no value for ${" + key + "}");
    result += text.take_front(open);
    result += value->second;
    text = text.drop_front(close + 1);
  }
  result += text;
  return result;
}

std::string codegen::floatTable(llvm::StringRef name, llvm::ArrayRef<double> values) {
  std::string text =
      llvm::formatv("static __device__ const float {0}[{1}] = {{", name, values.size()).str();
  for (auto [i, value] : llvm::enumerate(values))
    text += (i % 4 == 0 ? "\n    " : " ") + floatLiteral(value) + (i + 1 < values.size() ? "," : "");
  return text + "};\n";
}

std::string codegen::floatLiteral(double value) {
  if (std::isinf(value))
    return value > 0 ? "__int_as_float(0x7f800000)" : "(-__int_as_float(0x7f800000))";
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%.9g", static_cast<float>(value));
  if (text.find_first_of(".e") == std::string::npos)
    text += ".0";
  return text + "f";
}

int64_t codegen::vectorWidth(DType dtype, int64_t extent) {
  int64_t width = 16 / dtypeBytes(dtype);
  return extent % width == 0 ? width : 1;
}

std::string codegen::loadFloats(llvm::StringRef array, llvm::StringRef pointer, int64_t width) {
  if (width == 1)
    return (array + "[0] = kiln::to_float((" + pointer + ")[0]);").str();
  return ("kiln::load16_floats(" + array + ", " + pointer + ");").str();
}

std::string codegen::storeFloats(llvm::StringRef pointer, llvm::StringRef array, int64_t width,
                                 DType dtype) {
  if (width == 1)
    return ("(" + pointer + ")[0] = kiln::from_float<" + cudaTypeName(dtype) + ">(" + array +
            "[0]);")
        .str();
  return ("kiln::store16_floats(" + pointer + ", " + array + ");").str();
}

std::string codegen::indented(llvm::StringRef text, size_t spaces) {
  std::string result;
  for (llvm::StringRef line : llvm::split(text, '\n'))
    result += (line.empty() || line.starts_with("#") ? "" : std::string(spaces, ' ')) +
              line.str() + "\n";
  result.pop_back();
  return result;
}

std::string codegen::normStatistics(bool rms, llvm::StringRef size, llvm::StringRef element) {
  if (rms)
    return fillTemplate(R"cuda(const float inv = rsqrtf(kiln::block_sum(total, scratch) / ${SIZE} + kEpsilon);
const float mean = 0.f;)cuda",
                        {{"SIZE", size.str()}});
  return fillTemplate(R"cuda(const float mean = kiln::block_sum(total, scratch) / ${SIZE};
float deviation = 0.f;
#pragma unroll
for (int item = 0; item < kItems; ++item) {
  const int i = (item * kThreads + threadIdx.x) * kVec;
  if (i < ${SIZE})
    for (int e = 0; e < kVec; ++e)
      deviation += (${X} - mean) * (${X} - mean);
}
const float inv = rsqrtf(kiln::block_sum(deviation, scratch) / ${SIZE} + kEpsilon);)cuda",
                      {{"SIZE", size.str()}, {"X", element.str()}});
}

NormWeightReads codegen::normWeightReads(const NormParams &norm, int64_t size,
                                         llvm::StringRef sizeName, int64_t sharedBytes,
                                         llvm::StringRef weight, llvm::StringRef bias) {
  // Static shared memory stops at 48 KiB a block; 1 KiB is left for the
  // kernels' scratch.
  constexpr int64_t kStaticSharedBytes = 47 * 1024;
  const int64_t aheadBytes = size * dtypeBytes(norm.weightDtype) * (norm.bias ? 2 : 1);
  std::string type = cudaTypeName(norm.weightDtype).str();
  NormWeightReads reads;
  if (sharedBytes + aheadBytes > kStaticSharedBytes) {
    reads.weight = "kiln::to_float(" + weight.str() + "[i + e])";
    if (norm.bias)
      reads.bias = " + kiln::to_float(" + bias.str() + "[i + e])";
    return reads;
  }
  std::string copy = "kiln::copy_ahead<" + type + ", kVec>";
  reads.copies = fillTemplate(R"cuda(
  // The norm's weights do not depend on its input: copied to shared memory
  // before the wait, so that no round trip follows the statistics.
  __shared__ __align__(16) ${W} weight_ahead[${SIZE}]${BIAS_DECL};
#pragma unroll
  for (int item = 0; item < kItems; ++item) {
    const int i = (item * kThreads + threadIdx.x) * kVec;
    if (i < ${SIZE}) {
      ${COPY}(weight_ahead + i, ${WEIGHT} + i);${BIAS_COPY}
    }
  })cuda",
                              {{"W", type},
                               {"SIZE", sizeName.str()},
                               {"COPY", copy},
                               {"WEIGHT", weight.str()},
                               {"BIAS_DECL",
                                norm.bias ? ", bias_ahead[" + sizeName.str() + "]" : ""},
                               {"BIAS_COPY", norm.bias ? "\n      " + copy + "(bias_ahead + i, " +
                                                             bias.str() + " + i);"
                                                       : std::string()}});
  reads.wait = "kiln::wait_copies_ahead();";
  reads.weight = "kiln::to_float(weight_ahead[i + e])";
  if (norm.bias)
    reads.bias = " + kiln::to_float(bias_ahead[i + e])";
  return reads;
}

unsigned codegen::threadsFor(int64_t work, unsigned limit) {
  int64_t threads = ceilDiv(std::max<int64_t>(work, 1), 32) * 32;
  return static_cast<unsigned>(std::min<int64_t>(threads, limit));
}
