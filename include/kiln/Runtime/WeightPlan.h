//===- WeightPlan.h - planning the load-time weight program -----*- C++ -*-===//
//
// The artifact's weight program turns checkpoint tensors into the weights
// arena. Before anything touches the GPU, the checkpoint is matched against
// the program (every tensor there, with the expected dtype and shape) and the
// program is planned: where each value lives and when its temporary storage
// can be freed. Host code only: no CUDA.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_WEIGHTPLAN_H
#define KILN_RUNTIME_WEIGHTPLAN_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Support/Safetensors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The safetensors dtype that holds an artifact dtype, if there is one.
bool checkpointDType(artifact::DType dtype, kiln::DType &out);

/// Checks that `checkpoint` has every tensor the weight program reads, with
/// the dtype and shape it expects. The error lists the mismatches (up to ten),
/// naming each tensor.
bool matchCheckpoint(const Artifact &artifact, const Checkpoint &checkpoint, std::string &error);

/// Where each weight value lives while the program runs.
struct WeightPlan {
  enum class Storage {
    Arena,    ///< its own bytes in the weights arena (weight_offset)
    Staging,  ///< a temporary device allocation
    Alias,    ///< a reshape that reuses its input's bytes
    Unused,   ///< nothing reads it: skipped
  };
  std::vector<Storage> storage;      ///< per value
  std::vector<uint32_t> owner;       ///< per value: the value whose storage it uses
  std::vector<uint64_t> bytes;       ///< per value
  /// freeAfter[i]: staging values whose storage can be freed once value i is done.
  std::vector<std::vector<uint32_t>> freeAfter;
  uint64_t stagingPeakBytes = 0;     ///< the most staging memory alive at once
  uint64_t checkpointBytes = 0;      ///< bytes read from the checkpoint
  size_t checkpointTensors = 0;
};

WeightPlan planWeights(const Artifact &artifact);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_WEIGHTPLAN_H
