//===- Bandwidth.h - the device's streaming bandwidth -----------*- C++ -*-===//
//
// The denominator of the HBM roofline: measured on the same GPU, in the same
// run as the numbers it divides, as the larger of a device-to-device copy
// (bytes read + bytes written) and a read-only streaming kernel.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BANDWIDTH_H
#define KILN_RUNTIME_BANDWIDTH_H

#include "kiln/Runtime/Runtime.h"

#include <cstdint>
#include <string>

namespace kiln::runtime {

struct StreamingBandwidth {
  uint64_t bytes = 0;    ///< size of the buffer streamed
  double copyGBs = 0;    ///< device-to-device copy, counting read + written bytes
  double readGBs = 0;    ///< read-only kernel with 16-byte loads
  double best() const { return copyGBs > readGBs ? copyGBs : readGBs; }
};

/// Medians of `repeats` timed runs (CUDA events) after a warm-up, on `model`'s
/// GPU, over a buffer of `bytes`.
bool measureStreamingBandwidth(Model &model, uint64_t bytes, int repeats, StreamingBandwidth &out,
                               std::string &error);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_BANDWIDTH_H
