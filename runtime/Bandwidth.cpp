//===- Bandwidth.cpp - the device's streaming bandwidth -------------------===//

#include "kiln/Runtime/Bandwidth.h"

#include "ModelImpl.h"

#include <algorithm>
#include <vector>

using namespace kiln::runtime;

namespace {

// Every thread streams 16-byte loads that skip L1; the xor keeps them live.
const char *const kReadStreamSource = R"cuda(
extern "C" __global__ void kiln_read_stream(const uint4 *__restrict__ data, uint64_t count,
                                            unsigned *sink) {
  unsigned acc = 0;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += uint64_t(gridDim.x) * blockDim.x) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(data + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u)
    *sink = acc;
}
)cuda";

/// Median milliseconds of `enqueue` over `repeats` runs after one warm-up.
bool timeMedian(CUstream stream, int repeats, const std::function<bool(std::string &)> &enqueue,
                double &ms, std::string &error) {
  CUevent start = nullptr, end = nullptr;
  bool ok = cuOk(driver().cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate", error) &&
            cuOk(driver().cuEventCreate(&end, CU_EVENT_DEFAULT), "cuEventCreate", error) &&
            enqueue(error);
  std::vector<float> times;
  for (int i = 0; ok && i < repeats; ++i) {
    float elapsed = 0;
    ok = cuOk(driver().cuEventRecord(start, stream), "cuEventRecord", error) && enqueue(error) &&
         cuOk(driver().cuEventRecord(end, stream), "cuEventRecord", error) &&
         cuOk(driver().cuEventSynchronize(end), "cuEventSynchronize", error) &&
         cuOk(driver().cuEventElapsedTime(&elapsed, start, end), "cuEventElapsedTime", error);
    times.push_back(elapsed);
  }
  for (CUevent event : {start, end})
    if (event)
      driver().cuEventDestroy(event);
  if (!ok)
    return false;
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  ms = times[times.size() / 2];
  return true;
}

} // namespace

bool kiln::runtime::measureStreamingBandwidth(Model &model, uint64_t bytes, int repeats,
                                              StreamingBandwidth &out, std::string &error) {
  const Device &device = *model.impl().device;
  bytes &= ~uint64_t(15);
  ModuleSet modules;
  JitStats stats;
  KernelSource source{"'kiln read-stream benchmark'", kReadStreamSource, {"kiln_read_stream"}};
  DeviceBuffer src, dst, sink;
  CUstream stream = nullptr;
  if (!device.makeCurrent(error) ||
      !compileKernels(device, {source}, KernelCache(""), 1, modules, stats, error) ||
      !src.allocate(bytes, "the bandwidth test's source", error) ||
      !dst.allocate(bytes, "the bandwidth test's destination", error) ||
      !sink.allocate(sizeof(unsigned), "the bandwidth test's sink", error) ||
      !cuOk(driver().cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", error))
    return false;
  CUfunction read = modules.modules[0].functions[0];
  CUdeviceptr data = src.get(), target = sink.get();
  uint64_t count = bytes / 16;
  const unsigned blocks = unsigned(device.multiprocessors()) * 8;
  double copyMs = 0, readMs = 0;
  bool ok =
      cuOk(driver().cuMemsetD8Async(src.get(), 0x5a, bytes, stream), "cuMemsetD8Async", error) &&
      timeMedian(stream, repeats,
                 [&](std::string &e) {
                   return cuOk(driver().cuMemcpyDtoDAsync(dst.get(), src.get(), bytes, stream),
                               "cuMemcpyDtoDAsync", e);
                 },
                 copyMs, error) &&
      timeMedian(stream, repeats,
                 [&](std::string &e) {
                   void *args[] = {&data, &count, &target};
                   return cuOk(driver().cuLaunchKernel(read, blocks, 1, 1, 512, 1, 1, 0, stream,
                                                       args, nullptr),
                               "cuLaunchKernel (read stream)", e);
                 },
                 readMs, error);
  driver().cuStreamSynchronize(stream);
  driver().cuStreamDestroy(stream);
  if (!ok)
    return false;
  out.bytes = bytes;
  out.copyGBs = 2.0 * double(bytes) / copyMs / 1e6;
  out.readGBs = double(bytes) / readMs / 1e6;
  return true;
}
