//===- ModelImpl.h - what a Model holds, for Session ------------*- C++ -*-===//
#ifndef KILN_RUNTIME_MODELIMPL_H
#define KILN_RUNTIME_MODELIMPL_H

#include "Device.h"
#include "Jit.h"
#include "WeightLoader.h"

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/WeightPlan.h"

#include <memory>
#include <vector>

namespace kiln::runtime {

struct Model::Impl {
  std::unique_ptr<Artifact> artifact;
  std::unique_ptr<Device> device;
  ModuleSet modules;
  std::vector<CUfunction> kernels;  ///< per artifact kernel
  WeightKernels weightKernels;
  WeightPlan weightPlan;
  DeviceBuffer weights;             ///< the weights arena
  bool weightsBound = false;
  LoadStats stats;

  /// Device address of weight value `index` (one in the arena).
  CUdeviceptr weight(uint32_t index) const {
    return weights.get() +
           CUdeviceptr(artifact->get().weights()->Get(index)->weight_offset());
  }
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_MODELIMPL_H
