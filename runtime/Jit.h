//===- Jit.h - NVRTC compilation with an on-disk cubin cache ----*- C++ -*-===//
#ifndef KILN_RUNTIME_JIT_H
#define KILN_RUNTIME_JIT_H

#include "Device.h"

#include "kiln/Runtime/KernelCache.h"

#include <string>
#include <vector>

namespace kiln::runtime {

/// One translation unit: the runtime prepends the prelude to `source`.
struct KernelSource {
  std::string label;                    ///< names it in errors: the kernel and its IR location
  std::string source;
  std::vector<std::string> entryPoints; ///< extern "C" functions to look up
};

/// A loaded module and its entry points, in KernelSource::entryPoints order.
struct LoadedModule {
  CUmodule module = nullptr;
  std::vector<CUfunction> functions;
  std::vector<int> maxThreadsPerBlock;  ///< per function, as compiled
};

struct JitStats {
  int compiled = 0;  ///< sources NVRTC compiled
  int cached = 0;    ///< sources loaded from the cache
};

/// Modules stay loaded as long as this lives.
class ModuleSet {
public:
  ModuleSet() = default;
  ~ModuleSet();
  ModuleSet(const ModuleSet &) = delete;
  ModuleSet &operator=(const ModuleSet &) = delete;
  std::vector<LoadedModule> modules;
};

/// Compiles every source for `device` (sources missing from `cache` on
/// `threads` threads, in parallel), stores new cubins in the cache and loads
/// all modules. An NVRTC failure reports the kernel's label and NVRTC's log.
bool compileKernels(const Device &device, const std::vector<KernelSource> &sources,
                    const KernelCache &cache, int threads, ModuleSet &out, JitStats &stats,
                    std::string &error);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_JIT_H
