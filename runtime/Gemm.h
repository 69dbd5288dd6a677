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
/// once and kept, so that replays and repeated shapes do no host work beyond
/// the call itself: at the first run of a shape of at least kTuneMinRows rows
/// outside a graph capture, the heuristic's best few candidates are timed on
/// the call's own operands and the fastest wins (otherwise the heuristic's
/// first choice is kept).
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
  /// Enqueues the product on `stream`. The first run of a shape that gets
  /// timed first waits for `stream`, then times the candidates on it; with
  /// KILN_GEMM_LOG set, it prints what it chose on stderr.
  bool run(CUstream stream, const GemmCall &call, std::string &error);

  static constexpr uint64_t kDefaultWorkspaceBytes = 64ull << 20;
  /// Heuristic results timed per shape, and the fewest rows for which timing
  /// them pays (below, each new token count would add its cost for little).
  static constexpr int kCandidates = 6;
  static constexpr int64_t kTuneMinRows = 256;

private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool, int>;
  Plan *plan(const GemmCall &call, std::string &error);
  bool enqueue(CUstream stream, const GemmCall &call, Plan &chosen, int candidate,
               std::string &error);
  bool tune(CUstream stream, const GemmCall &call, Plan &chosen, std::string &error);

  void *handle_ = nullptr;  // cublasLtHandle_t
  DeviceBuffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_GEMM_H
