//===- NvrtcCheck.cpp - compiling an artifact's kernels with NVRTC --------===//
//
// NVRTC needs no GPU, so this runs wherever kiln-compile does: each kernel is
// compiled as the runtime compiles it (the prelude, then its source), once
// per target architecture.
//
//===----------------------------------------------------------------------===//

#include "kiln/Codegen/Codegen.h"

#include "kiln/Artifact/artifact_generated.h"
#include "kiln/Runtime/Prelude.h"
#include "kiln/Support/CudaArch.h"

#include <nvrtc.h>

#include <string>
#include <vector>

using namespace kiln;
namespace fa = kiln::artifact;

namespace {

/// Compiles `source` for `arch`; on failure returns false with NVRTC's log.
bool compile(const std::string &source, const std::string &name, const std::string &arch,
             std::string &log) {
  nvrtcProgram program;
  nvrtcResult status =
      nvrtcCreateProgram(&program, source.c_str(), (name + ".cu").c_str(), 0, nullptr, nullptr);
  if (status != NVRTC_SUCCESS) {
    log = nvrtcGetErrorString(status);
    return false;
  }
  const std::string archOption = "--gpu-architecture=" + nvrtcArchitecture(arch);
  const std::string includeOption = std::string("--include-path=") + KILN_CUDA_INCLUDE_DIR;
  const char *options[] = {archOption.c_str(), "-std=c++17", includeOption.c_str()};
  status = nvrtcCompileProgram(program, 3, options);
  size_t logSize = 0;
  nvrtcGetProgramLogSize(program, &logSize);
  log.assign(logSize, '\0');
  if (logSize)
    nvrtcGetProgramLog(program, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n'))
    log.pop_back();
  nvrtcDestroyProgram(&program);
  if (status != NVRTC_SUCCESS && log.empty())
    log = nvrtcGetErrorString(status);
  return status == NVRTC_SUCCESS;
}

} // namespace

mlir::LogicalResult kiln::checkKernelsWithNvrtc(llvm::StringRef artifact,
                                                llvm::ArrayRef<std::string> archs,
                                                std::string &error) {
  const fa::Artifact &root = *fa::GetArtifact(artifact.data());
  // All kernels in one program first (the prelude's headers are parsed once;
  // kernel-local helpers carry the kernel's name, so they do not collide),
  // then, only on failure, one by one to name the kernel at fault.
  std::string all = kPreludeSource;
  for (const fa::Kernel *kernel : *root.kernels())
    all += "\n" + kernel->source()->str();
  for (const std::string &arch : archs) {
    std::string log;
    if (compile(all, "kernels", arch, log))
      continue;
    for (const fa::Kernel *kernel : *root.kernels()) {
      const std::string name = kernel->name()->str();
      if (!compile(std::string(kPreludeSource) + "\n" + kernel->source()->str(), name, arch, log)) {
        error = "NVRTC failed to compile kernel '" + name + "' for " + arch + ":\n" + log;
        return mlir::failure();
      }
    }
    error = "NVRTC failed to compile the kernels together for " + arch + ":\n" + log;
    return mlir::failure();
  }
  return mlir::success();
}
