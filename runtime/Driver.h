//===- Driver.h - the CUDA driver API, loaded at run time -------*- C++ -*-===//
//
// The runtime calls the driver through this table instead of linking
// libcuda.so.1, so that kiln-run starts on a machine without an NVIDIA driver
// and says so, instead of failing in the dynamic loader. Each entry has the
// type of the cuda.h function of the same name; cuda.h's version macros
// (cuMemAlloc -> cuMemAlloc_v2, ...) apply to the symbol looked up, exactly as
// they would to a linked call.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_DRIVER_H
#define KILN_RUNTIME_DRIVER_H

#include <cuda.h>

#include <string>

namespace kiln::runtime {

#define KILN_DRIVER_FUNCTIONS(X)                                                                   \
  X(cuInit)                                                                                        \
  X(cuDriverGetVersion)                                                                            \
  X(cuGetErrorName)                                                                                \
  X(cuGetErrorString)                                                                              \
  X(cuDeviceGetCount)                                                                              \
  X(cuDeviceGet)                                                                                   \
  X(cuDeviceGetName)                                                                               \
  X(cuDeviceGetAttribute)                                                                          \
  X(cuDevicePrimaryCtxRetain)                                                                      \
  X(cuDevicePrimaryCtxRelease)                                                                     \
  X(cuCtxSetCurrent)                                                                               \
  X(cuMemGetInfo)                                                                                  \
  X(cuMemAlloc)                                                                                    \
  X(cuMemFree)                                                                                     \
  X(cuMemAllocHost)                                                                                \
  X(cuMemFreeHost)                                                                                 \
  X(cuMemAllocAsync)                                                                               \
  X(cuMemFreeAsync)                                                                                \
  X(cuMemcpyHtoDAsync)                                                                             \
  X(cuMemcpyDtoHAsync)                                                                             \
  X(cuMemsetD8Async)                                                                               \
  X(cuStreamCreate)                                                                                \
  X(cuStreamDestroy)                                                                               \
  X(cuStreamSynchronize)                                                                           \
  X(cuStreamBeginCapture)                                                                          \
  X(cuStreamEndCapture)                                                                            \
  X(cuStreamIsCapturing)                                                                           \
  X(cuGraphInstantiate)                                                                            \
  X(cuGraphLaunch)                                                                                 \
  X(cuGraphDestroy)                                                                                \
  X(cuGraphExecDestroy)                                                                            \
  X(cuEventCreate)                                                                                 \
  X(cuEventDestroy)                                                                                \
  X(cuEventRecord)                                                                                 \
  X(cuEventSynchronize)                                                                            \
  X(cuEventElapsedTime)                                                                            \
  X(cuMemcpyDtoDAsync)                                                                             \
  X(cuModuleLoadData)                                                                              \
  X(cuModuleUnload)                                                                                \
  X(cuModuleGetFunction)                                                                           \
  X(cuFuncGetAttribute)                                                                            \
  X(cuFuncSetAttribute)                                                                            \
  X(cuFuncGetParamInfo)                                                                            \
  X(cuTensorMapEncodeTiled)                                                                        \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor)                                                   \
  X(cuLaunchKernel)                                                                                \
  X(cuLaunchKernelEx)

struct DriverApi {
#define KILN_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_DRIVER_FUNCTIONS(KILN_DRIVER_MEMBER)
#undef KILN_DRIVER_MEMBER
};

/// The driver, loaded and initialised (cuInit) on first use; nullptr with
/// `error` set when there is no usable NVIDIA driver.
const DriverApi *loadDriver(std::string &error);

/// The loaded driver; only valid after loadDriver succeeded.
const DriverApi &driver();

/// "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
std::string describe(CUresult result, const char *what);

/// True on CUDA_SUCCESS; otherwise sets `error` to describe(result, what).
inline bool cuOk(CUresult result, const char *what, std::string &error) {
  if (result == CUDA_SUCCESS)
    return true;
  error = describe(result, what);
  return false;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_DRIVER_H
