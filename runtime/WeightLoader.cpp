//===- WeightLoader.cpp - running the weight program on the GPU -----------===//

#include "WeightLoader.h"

#include "kernels/weight_ops.cuh"

#include "kiln/Runtime/WeightOpsSource.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

namespace {

const char *const kCopyNames[4] = {"kiln_copy_b1", "kiln_copy_b2", "kiln_copy_b4",
                                   "kiln_copy_b8"};
const fa::DType kFloatTypes[3] = {fa::DType::f32, fa::DType::f16, fa::DType::bf16};

int floatIndex(fa::DType dtype) {
  return int(std::find(kFloatTypes, kFloatTypes + 3, dtype) - kFloatTypes);
}

std::vector<int64_t> shapeOf(const fa::WeightValue *value) {
  return std::vector<int64_t>(value->shape()->begin(), value->shape()->end());
}

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

/// Launches strided copies on one stream.
class Copier {
public:
  Copier(const Device &device, const WeightKernels &kernels, CUstream stream)
      : device_(device), kernels_(kernels), stream_(stream) {}

  /// Copies `shape` elements from src (at `srcStrides`, `srcOffset`) to dst
  /// (at `dstStrides`, `dstOffset`), converting `from` to `to`.
  bool copy(CUdeviceptr src, fa::DType from, const std::vector<int64_t> &srcStrides,
            int64_t srcOffset, CUdeviceptr dst, fa::DType to,
            const std::vector<int64_t> &dstStrides, int64_t dstOffset,
            const std::vector<int64_t> &shape, std::string &error) {
    CopyParams params = {};
    params.rank = int64_t(shape.size());
    params.count = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      params.shape[d] = shape[d];
      params.srcStride[d] = srcStrides[d];
      params.dstStride[d] = dstStrides[d];
      params.count *= shape[d];
    }
    params.srcOffset = srcOffset;
    params.dstOffset = dstOffset;
    params.src = reinterpret_cast<const void *>(src);
    params.dst = reinterpret_cast<void *>(dst);

    CUfunction function;
    if (from == to) {
      const uint64_t size = elementBytes(from);
      const int index = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
      function = kernels_.copy[index];
    } else {
      function = kernels_.cast[floatIndex(from)][floatIndex(to)];
    }
    constexpr int64_t kThreads = 256;
    const int64_t blocks =
        std::max<int64_t>(1, std::min<int64_t>((params.count + kThreads - 1) / kThreads,
                                               int64_t(device_.multiprocessors()) * 16));
    void *args[] = {&params};
    return cuOk(driver().cuLaunchKernel(function, unsigned(blocks), 1, 1, unsigned(kThreads), 1, 1,
                                        0, stream_, args, nullptr),
                "cuLaunchKernel (weight program)", error);
  }

private:
  const Device &device_;
  const WeightKernels &kernels_;
  CUstream stream_;
};

/// Uploads host bytes through two pinned buffers, so that copying the next
/// chunk out of the memory-mapped file overlaps the transfer of the last.
class Uploader {
public:
  bool init(uint64_t largest, CUstream stream, std::string &error) {
    stream_ = stream;
    const uint64_t chunk = std::min<uint64_t>(largest, kChunkBytes);
    for (Slot &slot : slots_)
      if (!slot.buffer.allocate(chunk, error) ||
          !cuOk(driver().cuEventCreate(&slot.done, CU_EVENT_DISABLE_TIMING), "cuEventCreate",
                error))
        return false;
    return true;
  }

  ~Uploader() {
    for (Slot &slot : slots_)
      if (slot.done)
        driver().cuEventDestroy(slot.done);
  }

  bool upload(CUdeviceptr dst, const uint8_t *src, uint64_t bytes, std::string &error) {
    for (uint64_t offset = 0; offset < bytes;) {
      Slot &slot = slots_[next_];
      next_ ^= 1;
      const uint64_t size = std::min<uint64_t>(slot.buffer.size(), bytes - offset);
      if (slot.used && !cuOk(driver().cuEventSynchronize(slot.done), "cuEventSynchronize", error))
        return false;
      std::memcpy(slot.buffer.get(), src + offset, size);
      if (!cuOk(driver().cuMemcpyHtoDAsync(dst + offset, slot.buffer.get(), size, stream_),
                "cuMemcpyHtoDAsync", error) ||
          !cuOk(driver().cuEventRecord(slot.done, stream_), "cuEventRecord", error))
        return false;
      slot.used = true;
      offset += size;
    }
    return true;
  }

private:
  static constexpr uint64_t kChunkBytes = 64ull << 20;
  struct Slot {
    PinnedBuffer buffer;
    CUevent done = nullptr;
    bool used = false;
  };
  Slot slots_[2];
  int next_ = 0;
  CUstream stream_ = nullptr;
};

/// Fills a checkpoint tensor with random values instead of reading it.
bool fillRandom(const Device &device, const WeightKernels &kernels, CUstream stream,
                CUdeviceptr dst, fa::DType dtype, const std::vector<int64_t> &shape,
                uint64_t seed, std::string &error) {
  const int index = floatIndex(dtype);
  if (index == 3) {
    error = std::string("random weights of dtype ") + dtypeName(dtype) + " are not supported";
    return false;
  }
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  // Uniform on [-a, a) has standard deviation a / sqrt(3).
  float center = 1.0f, scale = 0.1f;
  if (shape.size() >= 2) {
    center = 0.0f;
    scale = std::sqrt(3.0f / float(shape.back()));
  }
  constexpr int64_t kThreads = 256;
  const int64_t blocks = std::max<int64_t>(
      1, std::min<int64_t>((count + kThreads - 1) / kThreads, int64_t(device.multiprocessors()) * 16));
  void *args[] = {&dst, &count, &seed, &center, &scale};
  return cuOk(driver().cuLaunchKernel(kernels.fill[index], unsigned(blocks), 1, 1, unsigned(kThreads),
                                      1, 1, 0, stream, args, nullptr),
              "cuLaunchKernel (random weights)", error);
}

} // namespace

KernelSource WeightKernels::source() {
  KernelSource source;
  source.label = "'kiln weight ops' (runtime/kernels/weight_ops.cuh)";
  source.source = kWeightOpsSource;
  for (const char *name : kCopyNames)
    source.entryPoints.push_back(name);
  for (fa::DType from : kFloatTypes)
    for (fa::DType to : kFloatTypes)
      if (from != to)
        source.entryPoints.push_back(std::string("kiln_cast_") + dtypeName(from) + "_" +
                                     dtypeName(to));
  for (fa::DType type : kFloatTypes)
    source.entryPoints.push_back(std::string("kiln_fill_") + dtypeName(type));
  return source;
}

void WeightKernels::bind(const LoadedModule &module) {
  size_t next = 0;
  for (CUfunction &function : copy)
    function = module.functions[next++];
  for (int from = 0; from < 3; ++from)
    for (int to = 0; to < 3; ++to)
      if (from != to)
        cast[from][to] = module.functions[next++];
  for (CUfunction &function : fill)
    function = module.functions[next++];
}

bool kiln::runtime::runWeightProgram(const Device &device, const Artifact &artifact,
                                     const Checkpoint *checkpoint, uint64_t randomSeed,
                                     const WeightPlan &plan,
                                     const WeightKernels &kernels, CUdeviceptr arena,
                                     const std::function<void(const LoadProgress &)> &progress,
                                     std::string &error) {
  const auto &values = *artifact.get().weights();
  const size_t n = values.size();
  CUstream stream = nullptr;
  if (!cuOk(driver().cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", error))
    return false;
  // Whatever happens, wait for queued work and free what is still held.
  std::vector<CUdeviceptr> location(n, 0);
  std::vector<bool> allocated(n, false);
  auto finish = [&](bool ok) {
    ok = cuOk(driver().cuStreamSynchronize(stream), "weight program", error) && ok;
    for (size_t i = 0; i < n; ++i)
      if (allocated[i])
        driver().cuMemFreeAsync(location[i], stream);
    driver().cuStreamSynchronize(stream);
    driver().cuStreamDestroy(stream);
    return ok;
  };

  uint64_t largest = 1;
  for (size_t i = 0; i < n; ++i)
    if (plan.storage[i] != WeightPlan::Storage::Unused &&
        values.Get(uint32_t(i))->op() == fa::WeightOp::checkpoint)
      largest = std::max(largest, plan.bytes[i]);
  Uploader uploader;
  if (!uploader.init(largest, stream, error))
    return finish(false);
  Copier copier(device, kernels, stream);
  std::optional<TensorReader> reader;
  if (checkpoint)
    reader.emplace(*checkpoint);
  LoadProgress state;
  state.bytesTotal = plan.checkpointBytes;
  state.tensorsTotal = plan.checkpointTensors;

  for (size_t i = 0; i < n; ++i) {
    const fa::WeightValue *value = values.Get(uint32_t(i));
    switch (plan.storage[i]) {
    case WeightPlan::Storage::Unused:
      continue;
    case WeightPlan::Storage::Arena:
      location[i] = arena + CUdeviceptr(value->weight_offset());
      break;
    case WeightPlan::Storage::Alias:
      location[i] = location[plan.owner[i]];
      break;
    case WeightPlan::Storage::Staging: {
      CUresult result = driver().cuMemAllocAsync(&location[i], plan.bytes[i], stream);
      if (result != CUDA_SUCCESS) {
        error = "cannot allocate " + formatBytes(plan.bytes[i]) +
                " of GPU memory for the weight program: " + describe(result, "cuMemAllocAsync");
        return finish(false);
      }
      allocated[i] = true;
      break;
    }
    }

    const std::vector<int64_t> shape = shapeOf(value);
    const std::vector<int64_t> strides = contiguousStrides(shape);
    const fa::WeightValue *input =
        value->inputs() && value->inputs()->size() ? values.Get(value->inputs()->Get(0)) : nullptr;
    const CUdeviceptr source = input ? location[value->inputs()->Get(0)] : 0;
    bool ok = true;
    switch (value->op()) {
    case fa::WeightOp::checkpoint: {
      if (!checkpoint) {
        ok = fillRandom(device, kernels, stream, location[i], value->dtype(), shape,
                        randomSeed + i, error);
      } else {
        const TensorInfo *tensor = checkpoint->find(value->name()->str());
        const uint8_t *bytes = reader->bytes(*tensor, error);
        ok = bytes && uploader.upload(location[i], bytes, plan.bytes[i], error);
      }
      state.bytesDone += plan.bytes[i];
      ++state.tensorsDone;
      if (ok && progress)
        progress(state);
      break;
    }
    case fa::WeightOp::cast:
    case fa::WeightOp::reshape: {
      // Element order is unchanged: a flat copy (or nothing, for an alias).
      if (location[i] == source)
        break;
      const std::vector<int64_t> flat = {int64_t(plan.bytes[i] / elementBytes(value->dtype()))};
      ok = copier.copy(source, input->dtype(), {1}, 0, location[i], value->dtype(), {1}, 0, flat,
                       error);
      break;
    }
    case fa::WeightOp::transpose: {
      const std::vector<int64_t> inputStrides = contiguousStrides(shapeOf(input));
      std::vector<int64_t> srcStrides(shape.size());
      for (size_t d = 0; d < shape.size(); ++d)
        srcStrides[d] = inputStrides[size_t(value->permutation()->Get(uint32_t(d)))];
      ok = copier.copy(source, input->dtype(), srcStrides, 0, location[i], value->dtype(), strides,
                       0, shape, error);
      break;
    }
    case fa::WeightOp::slice: {
      const std::vector<int64_t> inputStrides = contiguousStrides(shapeOf(input));
      ok = copier.copy(source, input->dtype(), inputStrides,
                       value->start() * inputStrides[size_t(value->axis())], location[i],
                       value->dtype(), strides, 0, shape, error);
      break;
    }
    case fa::WeightOp::concat: {
      int64_t along = 0;
      for (uint32_t index : *value->inputs()) {
        const fa::WeightValue *part = values.Get(index);
        const std::vector<int64_t> partShape = shapeOf(part);
        ok = ok && copier.copy(location[index], part->dtype(), contiguousStrides(partShape), 0,
                               location[i], value->dtype(), strides,
                               along * strides[size_t(value->axis())], partShape, error);
        along += partShape[size_t(value->axis())];
      }
      break;
    }
    }
    if (!ok) {
      if (value->op() == fa::WeightOp::checkpoint)
        error = "weight '" + value->name()->str() + "': " + error;
      return finish(false);
    }
    for (uint32_t freed : plan.freeAfter[i]) {
      driver().cuMemFreeAsync(location[freed], stream);
      allocated[freed] = false;
    }
  }
  return finish(true);
}
