//===- Gemm.cpp - cuBLASLt matrix products --------------------------------===//
//
// cuBLASLt is column-major. A row-major [rows, cols] matrix is the same memory
// as a column-major [cols, rows] one, so row-major C = A·Bᵀ is column-major
// Cᵀ[n, m] = B'ᵀ·A' where B' = B seen as column-major [k, n] and A' = A seen
// as column-major [k, m]: cuBLASLt's first operand is B (transposed), its
// second A, and the bias epilogue adds bias[n] along the rows of Cᵀ.
//
//===----------------------------------------------------------------------===//

#include "Gemm.h"

#include <cublasLt.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

using namespace kiln::runtime;
namespace fa = kiln::artifact;

struct GemmRunner::Plan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t weight = nullptr, input = nullptr, output = nullptr;
  std::vector<cublasLtMatmulAlgo_t> candidates;  ///< the heuristic's, best first
  size_t best = 0;                                ///< the one run
  bool tuned = false;
  bool hasBias = false;

  ~Plan() {
    if (output)
      cublasLtMatrixLayoutDestroy(output);
    if (input)
      cublasLtMatrixLayoutDestroy(input);
    if (weight)
      cublasLtMatrixLayoutDestroy(weight);
    if (operation)
      cublasLtMatmulDescDestroy(operation);
  }
};

namespace {

bool blasOk(cublasStatus_t status, const char *what, std::string &error) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return true;
  error = std::string(what) + ": " + cublasLtGetStatusName(status) + " (" +
          cublasLtGetStatusString(status) + ")";
  return false;
}

cudaDataType_t dataType(fa::DType dtype) {
  switch (dtype) {
  case fa::DType::f16:
    return CUDA_R_16F;
  case fa::DType::bf16:
    return CUDA_R_16BF;
  default:
    return CUDA_R_32F;
  }
}

/// The largest power of two up to 256 that divides every pointer; cuBLASLt's
/// heuristic only offers kernels whose alignment needs this meets.
int alignmentOf(const GemmCall &call) {
  int alignment = 256;
  for (CUdeviceptr pointer : {call.a, call.b, call.c, call.bias})
    while (pointer && pointer % uint64_t(alignment) != 0)
      alignment /= 2;
  return alignment;
}

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace

GemmRunner::GemmRunner() = default;

GemmRunner::~GemmRunner() {
  plans_.clear();
  if (handle_)
    cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

bool GemmRunner::init(uint64_t workspaceBytes, std::string &error) {
  cublasLtHandle_t handle = nullptr;
  if (!blasOk(cublasLtCreate(&handle), "cublasLtCreate", error))
    return false;
  handle_ = handle;
  return workspace_.allocate(workspaceBytes, "the cuBLASLt workspace", error);
}

GemmRunner::Plan *GemmRunner::plan(const GemmCall &call, std::string &error) {
  const int alignment = alignmentOf(call);
  const Key key{call.m, call.n, call.k, int(call.dtype), call.bias != 0, alignment};
  if (auto found = plans_.find(key); found != plans_.end())
    return found->second.get();

  auto plan = std::make_unique<Plan>();
  const cudaDataType_t type = dataType(call.dtype);
  const cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  plan->hasBias = call.bias != 0;
  const cublasLtEpilogue_t epilogue = plan->hasBias ? CUBLASLT_EPILOGUE_BIAS
                                                    : CUBLASLT_EPILOGUE_DEFAULT;
  const std::string shape = " for a " + std::to_string(call.m) + "x" + std::to_string(call.n) +
                            "x" + std::to_string(call.k) + " " + dtypeName(call.dtype) + " gemm";
  if (!blasOk(cublasLtMatmulDescCreate(&plan->operation, CUBLAS_COMPUTE_32F, CUDA_R_32F),
              "cublasLtMatmulDescCreate", error) ||
      !blasOk(cublasLtMatmulDescSetAttribute(plan->operation, CUBLASLT_MATMUL_DESC_TRANSA,
                                             &transposed, sizeof(transposed)),
              "cublasLtMatmulDescSetAttribute", error) ||
      !blasOk(cublasLtMatmulDescSetAttribute(plan->operation, CUBLASLT_MATMUL_DESC_TRANSB, &plain,
                                             sizeof(plain)),
              "cublasLtMatmulDescSetAttribute", error) ||
      !blasOk(cublasLtMatmulDescSetAttribute(plan->operation, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                             &epilogue, sizeof(epilogue)),
              "cublasLtMatmulDescSetAttribute", error) ||
      !blasOk(cublasLtMatrixLayoutCreate(&plan->weight, type, uint64_t(call.k), uint64_t(call.n),
                                         call.k),
              "cublasLtMatrixLayoutCreate", error) ||
      !blasOk(cublasLtMatrixLayoutCreate(&plan->input, type, uint64_t(call.k), uint64_t(call.m),
                                         call.k),
              "cublasLtMatrixLayoutCreate", error) ||
      !blasOk(cublasLtMatrixLayoutCreate(&plan->output, type, uint64_t(call.n), uint64_t(call.m),
                                         call.n),
              "cublasLtMatrixLayoutCreate", error))
    return nullptr;

  cublasLtMatmulPreference_t preference = nullptr;
  if (!blasOk(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate",
              error))
    return nullptr;
  const uint64_t workspace = workspace_.size();
  const uint32_t alignmentBytes = uint32_t(alignment);
  bool ok = blasOk(cublasLtMatmulPreferenceSetAttribute(
                       preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                       sizeof(workspace)),
                   "cublasLtMatmulPreferenceSetAttribute", error);
  for (cublasLtMatmulPreferenceAttributes_t attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    ok = ok && blasOk(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &alignmentBytes,
                                                           sizeof(alignmentBytes)),
                      "cublasLtMatmulPreferenceSetAttribute", error);
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  ok = ok && blasOk(cublasLtMatmulAlgoGetHeuristic(
                        static_cast<cublasLtHandle_t>(handle_), plan->operation, plan->weight,
                        plan->input, plan->output, plan->output, preference, kCandidates,
                        results, &found),
                    "cublasLtMatmulAlgoGetHeuristic", error);
  cublasLtMatmulPreferenceDestroy(preference);
  if (!ok) {
    error += shape;
    return nullptr;
  }
  if (found == 0) {
    error = "cuBLASLt has no algorithm" + shape;
    return nullptr;
  }
  for (int i = 0; i < found; ++i)
    plan->candidates.push_back(results[i].algo);
  Plan *raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

bool GemmRunner::prepare(const GemmCall &call, std::string &error) {
  return plan(call, error) != nullptr;
}

bool GemmRunner::enqueue(CUstream stream, const GemmCall &call, Plan &chosen, int candidate,
                         std::string &error) {
  if (chosen.hasBias) {
    const void *bias = reinterpret_cast<const void *>(call.bias);
    if (!blasOk(cublasLtMatmulDescSetAttribute(chosen.operation,
                                               CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                               sizeof(bias)),
                "cublasLtMatmulDescSetAttribute", error))
      return false;
  }
  const float one = 1.f, zero = 0.f;
  return blasOk(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), chosen.operation, &one,
                               reinterpret_cast<const void *>(call.b), chosen.weight,
                               reinterpret_cast<const void *>(call.a), chosen.input, &zero,
                               reinterpret_cast<void *>(call.c), chosen.output,
                               reinterpret_cast<void *>(call.c), chosen.output,
                               &chosen.candidates[size_t(candidate)],
                               reinterpret_cast<void *>(workspace_.get()), workspace_.size(),
                               reinterpret_cast<cudaStream_t>(stream)),
                "cublasLtMatmul", error);
}

bool GemmRunner::tune(CUstream stream, const GemmCall &call, Plan &chosen, std::string &error) {
  chosen.tuned = true;
  if (chosen.candidates.size() < 2 || call.m < kTuneMinRows)
    return true;
  const auto start = std::chrono::steady_clock::now();
  // Every candidate computes the same product into C, which the real call
  // then overwrites: timing on the call's own operands needs no scratch.
  constexpr int kRepeats = 3;
  CUevent begin = nullptr, end = nullptr;
  bool ok = cuOk(driver().cuEventCreate(&begin, CU_EVENT_DEFAULT), "cuEventCreate", error) &&
            cuOk(driver().cuEventCreate(&end, CU_EVENT_DEFAULT), "cuEventCreate", error) &&
            cuOk(driver().cuStreamSynchronize(stream), "cuStreamSynchronize", error);
  float bestMs = std::numeric_limits<float>::infinity(), firstMs = bestMs;
  for (size_t i = 0; ok && i < chosen.candidates.size(); ++i) {
    std::string candidateError;  // a candidate cuBLASLt turns down is skipped
    bool ran = enqueue(stream, call, chosen, int(i), candidateError);  // warm-up
    ok = !ran || cuOk(driver().cuEventRecord(begin, stream), "cuEventRecord", error);
    for (int r = 0; ok && ran && r < kRepeats; ++r)
      ran = enqueue(stream, call, chosen, int(i), candidateError);
    if (!ok || !ran)
      continue;
    float ms = 0;
    ok = cuOk(driver().cuEventRecord(end, stream), "cuEventRecord", error) &&
         cuOk(driver().cuEventSynchronize(end), "cuEventSynchronize", error) &&
         cuOk(driver().cuEventElapsedTime(&ms, begin, end), "cuEventElapsedTime", error);
    if (ok && i == 0)
      firstMs = ms;
    if (ok && ms < bestMs) {
      bestMs = ms;
      chosen.best = i;
    }
  }
  for (CUevent event : {begin, end})
    if (event)
      driver().cuEventDestroy(event);
  if (ok && std::getenv("KILN_GEMM_LOG"))
    std::fprintf(stderr,
                 "kiln: gemm %lldx%lldx%lld %s%s: %zu candidates, heuristic's first %.3f ms, "
                 "chose its #%zu %.3f ms (%.0f TFLOP/s); timing took %.1f ms\n",
                 (long long)call.m, (long long)call.n, (long long)call.k, dtypeName(call.dtype),
                 chosen.hasBias ? " + bias" : "", chosen.candidates.size(), firstMs / kRepeats,
                 chosen.best + 1, bestMs / kRepeats,
                 2.0 * double(call.m) * double(call.n) * double(call.k) / (bestMs / kRepeats) / 1e9,
                 millisecondsSince(start));
  return ok;
}

bool GemmRunner::run(CUstream stream, const GemmCall &call, std::string &error) {
  Plan *chosen = plan(call, error);
  if (!chosen)
    return false;
  if (!chosen->tuned) {
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    if (!cuOk(driver().cuStreamIsCapturing(stream, &capture), "cuStreamIsCapturing", error) ||
        (capture == CU_STREAM_CAPTURE_STATUS_NONE && !tune(stream, call, *chosen, error)))
      return false;
  }
  return enqueue(stream, call, *chosen, int(chosen->best), error);
}
