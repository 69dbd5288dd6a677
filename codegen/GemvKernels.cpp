//===- GemvKernels.cpp - matrix-vector products for decode ----------------===//
//
// y[t, n] = Σ_k x[t, k] · w[n, k] for the few rows of a decode step: a warp
// per weight row (grid-stride over rows), 16-byte loads along k, float
// accumulation, and every weight row read once for up to kTokens tokens.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/Support/FormatVariadic.h"

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {
constexpr unsigned kWarpsPerBlock = 8;
} // namespace

KernelSpec codegen::gemvKernel(const GemvParams &params) {
  bool gated = !params.gatedActivation.empty();
  int64_t width = vectorWidth(params.dtype, params.k);
  llvm::StringRef type = cudaTypeName(params.dtype);

  KernelSpec spec;
  std::string op = params.lastTokens ? "lm_head" : gated ? "gated_mlp_" + params.gatedActivation
                                                          : std::string("linear");
  spec.name = formatv("{0}_gemv{1}_n{2}_k{3}_{4}", op, params.bias ? "_bias" : "", params.n,
                      params.k, dtypeName(params.dtype));
  spec.summary =
      params.lastTokens
          ? formatv("tfm.linear (LM head) of each sequence's last token, [{0}, {1}] {2}, "
                    "float logits",
                    params.n, params.k, dtypeName(params.dtype))
                .str()
          : gated ? formatv("tfm.gated_mlp decode GEMV: {0}(x·gateᵀ) * (x·upᵀ), [2 x {1}, {2}] {3}",
                            params.gatedActivation, params.n, params.k, dtypeName(params.dtype))
                        .str()
                  : formatv("decode GEMV y = x·Wᵀ{0}, W [{1}, {2}] {3}",
                            params.bias ? " + b" : "", params.n, params.k,
                            dtypeName(params.dtype))
                        .str();
  spec.launch.block = kWarpsPerBlock * 32;
  int64_t rowBlocks = ceilDiv(params.n, kWarpsPerBlock);
  if (params.lastTokens) {
    // grid.x = this * sequences: a larger batch spreads the rows over more blocks.
    spec.launch.grid = static_cast<unsigned>(ceilDiv(rowBlocks, params.maxBatch));
    spec.launch.scale = GridScale::sequences;
  } else {
    spec.launch.grid = static_cast<unsigned>(rowBlocks);
  }

  std::string parameters = formatv("const {0} *__restrict__ x, const {0} *__restrict__ w, ", type);
  if (params.bias)
    parameters += formatv("const {0} *__restrict__ bias, ", type);
  parameters += params.lastTokens ? "float *__restrict__ y, kiln::StepState step"
                                  : formatv("{0} *__restrict__ y, int num_tokens", type).str();

  std::string accumulators = gated ? "float gate[kTokens] = {}, up[kTokens] = {};"
                                   : "float acc[kTokens] = {};";
  std::string loadWeights = gated ? "        float wg[kVec], wu[kVec];\n        " +
                                        loadFloats("wg", "w + (size_t)row * kK + k", width) +
                                        "\n        " +
                                        loadFloats("wu", "w + (size_t)(kN + row) * kK + k", width)
                                  : "        float wv[kVec];\n        " +
                                        loadFloats("wv", "w + (size_t)row * kK + k", width);
  std::string multiply = gated ? "gate[j] += wg[e] * xv[e];\n            up[j] += wu[e] * xv[e];"
                               : "acc[j] += wv[e] * xv[e];";
  std::string bias = params.bias ? "kiln::to_float(bias[row])" : "0.f";
  std::string gatedBias = params.bias ? "kiln::to_float(bias[kN + row])" : "0.f";
  std::string result =
      gated ? formatv("kiln::{0}(kiln::warp_sum(gate[j]) + {1}) * (kiln::warp_sum(up[j]) + {2})",
                      params.gatedActivation, bias, gatedBias)
                  .str()
            : "kiln::warp_sum(acc[j]) + " + bias;
  std::string store = params.lastTokens ? "y[(size_t)(t0 + j) * kN + row] = value;"
                                        : formatv("y[(size_t)(t0 + j) * kN + row] = "
                                                  "kiln::from_float<{0}>(value);",
                                                  type)
                                              .str();

  spec.source = fillTemplate(R"cuda(
// A warp per weight row, rows strided over the grid; each pass over a row
// serves kTokens tokens.
extern "C" __global__ void __launch_bounds__(${THREADS}) ${NAME}(${PARAMS}) {
  constexpr int kN = ${N}, kK = ${K}, kVec = ${VEC}, kTokens = 4, kWarps = ${WARPS};
  ${TOKENS}
  const int lane = threadIdx.x & 31;
  for (int row = blockIdx.x * kWarps + (threadIdx.x >> 5); row < kN; row += gridDim.x * kWarps) {
    for (int t0 = 0; t0 < tokens; t0 += kTokens) {
      ${ACCUMULATORS}
      const ${T} *xs[kTokens];
#pragma unroll
      for (int j = 0; j < kTokens; ++j)
        xs[j] = x + (size_t)(${X_ROW}) * kK;
      for (int k = lane * kVec; k < kK; k += 32 * kVec) {
${LOAD_WEIGHTS}
#pragma unroll
        for (int j = 0; j < kTokens; ++j) {
          if (t0 + j < tokens) {
            float xv[kVec];
            ${LOAD_X}
            for (int e = 0; e < kVec; ++e) {
              ${MULTIPLY}
            }
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        const float value = ${RESULT};
        if (lane == 0 && t0 + j < tokens)
          ${STORE}
      }
    }
  }
}
)cuda",
                             {{"NAME", spec.name},
                              {"PARAMS", parameters},
                              {"THREADS", std::to_string(spec.launch.block)},
                              {"WARPS", std::to_string(kWarpsPerBlock)},
                              {"N", std::to_string(params.n)},
                              {"K", std::to_string(params.k)},
                              {"VEC", std::to_string(width)},
                              {"T", type.str()},
                              {"TOKENS",
                               params.lastTokens
                                   ? formatv("// grid.x = {0} x sequences\n"
                                             "  const int tokens = gridDim.x / {0};",
                                             spec.launch.grid)
                                         .str()
                                   : "const int tokens = num_tokens;"},
                              {"X_ROW", params.lastTokens
                                            ? "t0 + j < tokens ? step.last_token[t0 + j] : 0"
                                            : "t0 + j < tokens ? t0 + j : 0"},
                              {"ACCUMULATORS", accumulators},
                              {"LOAD_WEIGHTS", loadWeights},
                              {"LOAD_X", loadFloats("xv", "xs[j] + k", width)},
                              {"MULTIPLY", multiply},
                              {"RESULT", result},
                              {"STORE", store}});
  return spec;
}
