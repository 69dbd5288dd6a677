//===- WeightLoader.h - running the weight program on the GPU ---*- C++ -*-===//
#ifndef KILN_RUNTIME_WEIGHTLOADER_H
#define KILN_RUNTIME_WEIGHTLOADER_H

#include "Device.h"
#include "Jit.h"

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/WeightPlan.h"

#include <functional>

namespace kiln::runtime {

/// The runtime's weight kernels (runtime/kernels/weight_ops.cuh).
struct WeightKernels {
  /// The source to compile: its entry points in the order bind() expects.
  static KernelSource source();
  /// Takes the functions of the module compiled from source().
  void bind(const LoadedModule &module);

  CUfunction copy[4] = {};      ///< same-type copies of 1, 2, 4 and 8-byte elements
  CUfunction cast[3][3] = {};   ///< [from][to] over f32, f16, bf16
  CUfunction fill[3] = {};      ///< random values of f32, f16, bf16
};

/// Runs the artifact's weight program: uploads the checkpoint tensors it
/// reads (memory-mapped, through pinned staging buffers) and applies its
/// casts, concatenations, transposes and slices with the weight kernels,
/// leaving the results in `arena`. `checkpoint` must already match the
/// artifact (matchCheckpoint); without one, every checkpoint tensor is made
/// of random values from `randomSeed` on the GPU (for benchmarks): matrices
/// uniform with standard deviation 1/sqrt(columns), vectors around 1.
bool runWeightProgram(const Device &device, const Artifact &artifact, const Checkpoint *checkpoint,
                      uint64_t randomSeed,
                      const WeightPlan &plan, const WeightKernels &kernels, CUdeviceptr arena,
                      const std::function<void(const LoadProgress &)> &progress,
                      std::string &error);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_WEIGHTLOADER_H
