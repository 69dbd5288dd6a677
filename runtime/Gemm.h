//===- Gemm.h - cuBLASLt matrix products ------------------------*- C++ -*-===//
#ifndef KILN_RUNTIME_GEMM_H
#define KILN_RUNTIME_GEMM_H

#include "Device.h"

#include "kiln/Runtime/Artifact.h"

#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace kiln::runtime {

/// One product: row-major C[m, n] = A[m, k] · B[n, k]ᵀ (+ bias[n]), with
/// float32 accumulation.
struct GemmCall {
  CUdeviceptr a = 0, b = 0, c = 0, bias = 0;  ///< bias 0: none
  int64_t m = 0, n = 0, k = 0;
  artifact::DType dtype = artifact::DType::f32;
};

/// Runs GemmCalls through cuBLASLt. The algorithm for each shape is chosen
/// once (by cuBLASLt's heuristic) and kept, so that replays and repeated
/// shapes do no host work beyond the call itself.
class GemmRunner {
public:
  GemmRunner();
  ~GemmRunner();
  GemmRunner(const GemmRunner &) = delete;
  GemmRunner &operator=(const GemmRunner &) = delete;

  /// Creates the cuBLASLt handle and a workspace of `workspaceBytes`.
  bool init(uint64_t workspaceBytes, std::string &error);
  /// Chooses the algorithm for `call`'s shape now (before a graph capture).
  bool prepare(const GemmCall &call, std::string &error);
  /// Enqueues the product on `stream`.
  bool run(CUstream stream, const GemmCall &call, std::string &error);

  static constexpr uint64_t kDefaultWorkspaceBytes = 32ull << 20;

private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool, int>;
  Plan *plan(const GemmCall &call, std::string &error);

  void *handle_ = nullptr;  // cublasLtHandle_t
  DeviceBuffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_GEMM_H
