//===- CudaArch.h - the architecture NVRTC compiles kernels for -*- C++ -*-===//
//
// Shared by the runtime's JIT and kiln-compile's --check-archs, so that the
// check compiles what a GPU of that architecture will run.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_CUDAARCH_H
#define KILN_SUPPORT_CUDAARCH_H

#include <string>

namespace kiln {

/// NVRTC's target for a GPU of `arch` (sm_XY): on Hopper the arch-specific
/// sm_90a, whose setmaxnreg lets the persistent decode kernel move registers
/// from its copy warpgroup to its compute warps (kiln::kMovesRegisters);
/// elsewhere `arch` itself.
inline std::string nvrtcArchitecture(const std::string &arch) {
  return arch == "sm_90" ? arch + "a" : arch;
}

} // namespace kiln

#endif // KILN_SUPPORT_CUDAARCH_H
