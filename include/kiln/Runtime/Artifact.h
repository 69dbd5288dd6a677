//===- Artifact.h - reading and verifying kiln artifacts --------*- C++ -*-===//
//
// An artifact (runtime/schema/artifact.fbs) is read whole into memory and
// verified once: the FlatBuffers verifier (a truncated or corrupted file), the
// identifier and version (an artifact of another format version), then every
// index, size and shape the runtime will rely on, so that later code can use
// the artifact without re-checking it. Host code only: no CUDA.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ARTIFACT_H
#define KILN_RUNTIME_ARTIFACT_H

#include "kiln/Artifact/artifact_generated.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The format version this runtime reads: the digit in the identifier "KLN2"
/// and the value of Artifact.version. (2: weight_tensor_map arguments, and a
/// prelude without the row copies that version 1's persistent kernels call.)
constexpr uint32_t kArtifactVersion = 2;

/// Bytes per element (0 for sub-byte types such as i4).
uint64_t elementBytes(artifact::DType dtype);
/// "f32", "bf16", ...
const char *dtypeName(artifact::DType dtype);

/// A verified artifact and the bytes that hold it.
class Artifact {
public:
  /// Reads and verifies `path`. Errors name the file and what is wrong.
  static std::unique_ptr<Artifact> open(const std::string &path, std::string &error);
  /// Verifies `bytes` (a whole artifact); `name` is used in error messages.
  static std::unique_ptr<Artifact> fromBytes(std::vector<uint8_t> bytes, const std::string &name,
                                             std::string &error);

  const artifact::Artifact &get() const { return *artifact_; }
  const artifact::ModelInfo &model() const { return *artifact_->model(); }
  const std::string &name() const { return name_; }
  uint64_t sizeInBytes() const { return bytes_.size(); }

  /// Activation arena bytes for `max_tokens` tokens per step.
  uint64_t activationArenaBytes() const;
  /// Key (or value) cache bytes of one layer.
  uint64_t kvCacheBytesPerLayer() const;
  /// Bytes buffer `index` occupies in a step of `tokens` tokens.
  uint64_t bufferBytes(uint32_t index, uint64_t tokens) const;

private:
  Artifact(std::vector<uint8_t> bytes, std::string name);
  std::vector<uint8_t> bytes_;
  std::string name_;
  const artifact::Artifact *artifact_ = nullptr;
};

/// "sm_90" for compute capability 9.0.
std::string smName(int major, int minor);

/// Whether an artifact can run on a device of compute capability major.minor:
/// kiln needs sm_80 or newer, and an artifact whose target_archs is non-empty
/// runs only on the architectures it lists. `device` names the GPU in errors.
bool checkDeviceSupport(const Artifact &artifact, int major, int minor, const std::string &device,
                        std::string &error);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ARTIFACT_H
