//===- Driver.cpp - the CUDA driver API, loaded at run time ---------------===//

#include "Driver.h"

#include <dlfcn.h>
#include <mutex>

using namespace kiln::runtime;

namespace {

#define KILN_SYMBOL_NAME(name) KILN_SYMBOL_NAME_EXPANDED(name)
#define KILN_SYMBOL_NAME_EXPANDED(name) #name

DriverApi api;
std::string loadError;

void load() {
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *reason = dlerror();
    loadError = std::string("no NVIDIA driver found: cannot load libcuda.so.1 (") +
                (reason ? reason : "unknown reason") + "); kiln-run needs an NVIDIA GPU";
    return;
  }
#define KILN_DRIVER_RESOLVE(name)                                                                  \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(library, KILN_SYMBOL_NAME(name)));         \
  if (!api.name) {                                                                                 \
    loadError = "the NVIDIA driver is too old: libcuda.so.1 has no " KILN_SYMBOL_NAME(name)        \
                "; kiln needs a driver for CUDA 13 or newer";                                      \
    return;                                                                                        \
  }
  KILN_DRIVER_FUNCTIONS(KILN_DRIVER_RESOLVE)
#undef KILN_DRIVER_RESOLVE

  CUresult result = api.cuInit(0);
  if (result == CUDA_ERROR_NO_DEVICE) {
    loadError = "no CUDA GPU found (the NVIDIA driver is installed but sees no device)";
    return;
  }
  if (result != CUDA_SUCCESS) {
    loadError = "cannot initialise the NVIDIA driver: " + describe(result, "cuInit");
    return;
  }
  int version = 0;
  if (api.cuDriverGetVersion(&version) == CUDA_SUCCESS && version < CUDA_VERSION) {
    loadError = "the NVIDIA driver supports CUDA " + std::to_string(version / 1000) + "." +
                std::to_string(version % 1000 / 10) + ", but kiln was built with CUDA " +
                std::to_string(CUDA_VERSION / 1000) + "." +
                std::to_string(CUDA_VERSION % 1000 / 10) + "; update the driver";
  }
}

} // namespace

const DriverApi *kiln::runtime::loadDriver(std::string &error) {
  static std::once_flag once;
  std::call_once(once, load);
  if (!loadError.empty()) {
    error = loadError;
    return nullptr;
  }
  return &api;
}

const DriverApi &kiln::runtime::driver() { return api; }

std::string kiln::runtime::describe(CUresult result, const char *what) {
  const char *name = nullptr, *text = nullptr;
  if (api.cuGetErrorName)
    api.cuGetErrorName(result, &name);
  if (api.cuGetErrorString)
    api.cuGetErrorString(result, &text);
  std::string message = std::string(what) + ": " + (name ? name : "CUDA error " + std::to_string(int(result)));
  if (text)
    message += std::string(" (") + text + ")";
  return message;
}
