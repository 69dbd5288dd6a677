//===- PointwiseKernels.cpp - per-token kernels ---------------------------===//
//
// Embedding gather, norms, fused elementwise chains, the gated-MLP activation
// and layout copies: each works on the rows of tokens independently.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include <numeric>

using namespace kiln;
using namespace kiln::codegen;
using llvm::formatv;

namespace {

/// Launch of a kernel that covers `size` elements per token with vectors of
/// `width`: grid.x = tiles per token, scaled by tokens.
LaunchShape rowTiles(int64_t size, int64_t width) {
  LaunchShape shape;
  shape.block = threadsFor(size / width, 256);
  shape.grid = static_cast<unsigned>(ceilDiv(size / width, shape.block));
  shape.scale = GridScale::tokens;
  return shape;
}

} // namespace

KernelSpec codegen::embeddingKernel(int64_t hidden, int64_t vocab, DType dtype) {
  int64_t width = vectorWidth(dtype, hidden);
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = formatv("embedding_h{0}_{1}", hidden, dtypeName(dtype));
  spec.summary = formatv("tfm.embedding, a row of {0} {1} per token from a {2}-row table",
                         hidden, dtypeName(dtype), vocab);
  spec.launch.block = threadsFor(hidden / width, 1024);
  spec.launch.scale = GridScale::tokens;
  spec.source = fillTemplate(R"cuda(
// One block per token. An id outside the table (the runtime rejects those
// before a step) gives a zero row instead of reading out of bounds.
extern "C" __global__ void ${NAME}(const ${T} *__restrict__ table, ${T} *__restrict__ out,
                                   kiln::StepState step) {
  constexpr int kHidden = ${HIDDEN}, kVocab = ${VOCAB}, kVec = ${VEC};
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int token = blockIdx.x;
  const int id = step.token_ids[token];
  const bool valid = id >= 0 && id < kVocab;
  const ${T} *src = table + (size_t)(valid ? id : 0) * kHidden;
  ${T} *dst = out + (size_t)token * kHidden;
  for (int i = threadIdx.x * kVec; i < kHidden; i += blockDim.x * kVec) {
    float x[kVec];
    ${LOAD}
    for (int e = 0; e < kVec; ++e)
      x[e] = valid ? x[e] : 0.f;
    ${STORE}
  }
}
)cuda",
                             {{"NAME", spec.name},
                              {"T", cudaTypeName(dtype).str()},
                              {"HIDDEN", std::to_string(hidden)},
                              {"VOCAB", std::to_string(vocab)},
                              {"VEC", std::to_string(width)},
                              {"LOAD", loadFloats("x", "src + i", width)},
                              {"STORE", storeFloats("dst + i", "x", width, dtype)}});
  return spec;
}

KernelSpec codegen::normKernel(const NormParams &params) {
  bool rms = params.kind == NormKind::rms;
  int64_t width = vectorWidth(params.dtype, params.size);
  unsigned threads = threadsFor(params.size / width, 1024);
  llvm::StringRef op = rms ? (params.residual ? "add_rms_norm" : "rms_norm")
                           : (params.residual ? "add_layer_norm" : "layer_norm");
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = formatv("{0}{1}_h{2}_{3}", op, params.bias ? "_bias" : "", params.size,
                      dtypeName(params.dtype));
  spec.summary = formatv("tfm.{0}, {1} {2} per token{3}", op, params.size,
                         dtypeName(params.dtype),
                         params.residual ? "; also writes the residual sum" : "");
  spec.launch.block = threads;
  spec.launch.scale = GridScale::tokens;

  std::string type = cudaTypeName(params.dtype).str();
  std::string weightType = cudaTypeName(params.weightDtype).str();
  std::string parameters = "const " + type + " *__restrict__ input, ";
  if (params.residual)
    parameters += "const " + type + " *__restrict__ residual, ";
  parameters += "const " + weightType + " *__restrict__ weight, ";
  if (params.bias)
    parameters += "const " + weightType + " *__restrict__ bias, ";
  if (params.residual)
    parameters += type + " *__restrict__ sum, ";
  parameters += type + " *__restrict__ out";

  std::string addResidual;
  if (params.residual)
    addResidual = fillTemplate(R"cuda(
    // The sum is rounded to T, as the residual stream is stored.
    float r[kVec];
    ${LOAD}
    for (int e = 0; e < kVec; ++e)
      x[item][e] = kiln::to_float(kiln::from_float<T>(x[item][e] + r[e]));
    ${STORE})cuda",
                               {{"LOAD", loadFloats("r", "residual + row + i", width)},
                                {"STORE", storeFloats("sum + row + i", "x[item]", width,
                                                      params.dtype)}});

  std::string statistics = indented("\n" + normStatistics(rms, "kSize", "x[item][e]"), 2);
  NormWeightReads reads = normWeightReads(params, params.size, "kSize", 0, "weight", "bias");

  spec.source = fillTemplate(R"cuda(
// One block per token; the row stays in registers between the statistics and
// the output.
extern "C" __global__ void __launch_bounds__(${THREADS}) ${NAME}(${PARAMS}) {
  using T = ${T};
  constexpr int kSize = ${SIZE}, kVec = ${VEC}, kThreads = ${THREADS};
  constexpr int kItems = (kSize + kVec * kThreads - 1) / (kVec * kThreads);
  constexpr float kEpsilon = ${EPS};
  __shared__ float scratch[32];${WEIGHTS_AHEAD}
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const size_t row = (size_t)blockIdx.x * kSize;
  float x[kItems][kVec];
  float total = 0.f;
#pragma unroll
  for (int item = 0; item < kItems; ++item) {
    const int i = (item * kThreads + threadIdx.x) * kVec;
    if (i >= kSize)
      continue;
    ${LOAD}${ADD_RESIDUAL}
    for (int e = 0; e < kVec; ++e)
      total += ${ACCUMULATE};
  }
${STATISTICS}${WAIT}
#pragma unroll
  for (int item = 0; item < kItems; ++item) {
    const int i = (item * kThreads + threadIdx.x) * kVec;
    if (i >= kSize)
      continue;
    float y[kVec];
    for (int e = 0; e < kVec; ++e)
      y[e] = (x[item][e] - mean) * inv * ${WEIGHT}${BIAS};
    ${STORE}
  }
}
)cuda",
                             {{"NAME", spec.name},
                              {"PARAMS", parameters},
                              {"T", type},
                              {"SIZE", std::to_string(params.size)},
                              {"VEC", std::to_string(width)},
                              {"THREADS", std::to_string(threads)},
                              {"EPS", floatLiteral(params.epsilon)},
                              {"LOAD", loadFloats("x[item]", "input + row + i", width)},
                              {"ADD_RESIDUAL", addResidual},
                              {"ACCUMULATE", rms ? "x[item][e] * x[item][e]" : "x[item][e]"},
                              {"STATISTICS", statistics},
                              {"WEIGHTS_AHEAD", reads.copies},
                              {"WAIT", reads.wait.empty() ? "" : "\n  " + reads.wait},
                              {"WEIGHT", reads.weight},
                              {"BIAS", reads.bias},
                              {"STORE", storeFloats("out + row + i", "y", width, params.dtype)}});
  return spec;
}

KernelSpec codegen::elementwiseKernel(const ElementwiseParams &params) {
  DType rowType = params.outputs.front().dtype;
  int64_t width = vectorWidth(rowType, params.size);
  for (const auto &operand : params.operands)
    if (!operand.broadcast && vectorWidth(operand.dtype, params.size) != width)
      width = 1;
  for (const auto &output : params.outputs)
    if (vectorWidth(output.dtype, params.size) != width)
      width = 1;

  KernelSpec spec;
  spec.programmatic = true;
  spec.name = formatv("{0}_n{1}_{2}", params.name, params.size, dtypeName(rowType));
  spec.summary = formatv("fused elementwise {0} over {1} elements per token", params.name,
                         params.size);
  spec.launch = rowTiles(params.size, width);

  llvm::SmallVector<std::string> parameters;
  std::string loads, operandValues, stores, results;
  for (auto [i, operand] : llvm::enumerate(params.operands)) {
    std::string name = "in" + std::to_string(i), array = "x" + std::to_string(i);
    parameters.push_back(
        formatv("const {0} *__restrict__ {1}", cudaTypeName(operand.dtype), name));
    loads += formatv("  float {0}[kVec];\n", array);
    if (operand.broadcast)
      loads += formatv("  for (int e = 0; e < kVec; ++e)\n"
                       "    {0}[e] = kiln::to_float({1}[(i + e) % {2}]);\n",
                       array, name, operand.broadcast);
    else
      loads += "  " + loadFloats(array, name + " + row + i", width) + "\n";
    operandValues += formatv("{0}a{1} = {2}[e]", i ? ", " : "", i, array);
  }
  for (auto [i, output] : llvm::enumerate(params.outputs)) {
    std::string name = "out" + std::to_string(i), array = "y" + std::to_string(i);
    parameters.push_back(formatv("{0} *__restrict__ {1}", cudaTypeName(output.dtype), name));
    loads += formatv("  float {0}[kVec];\n", array);
    results += formatv("    {0}[e] = v{1};\n", array, output.value);
    stores += "  " + storeFloats(name + " + row + i", array, width, output.dtype) + "\n";
  }
  std::string statements;
  for (const std::string &statement : params.statements)
    statements += "    " + statement + "\n";

  spec.source = fillTemplate(R"cuda(
// Each thread computes ${VEC} consecutive elements of one token's row.
extern "C" __global__ void ${NAME}(${PARAMS}) {
  constexpr int kSize = ${SIZE}, kVec = ${VEC}, kTiles = ${TILES};
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int token = blockIdx.x / kTiles;
  const int i = ((blockIdx.x % kTiles) * blockDim.x + threadIdx.x) * kVec;
  if (i >= kSize)
    return;
  const size_t row = (size_t)token * kSize;
${LOADS}  for (int e = 0; e < kVec; ++e) {
    const float ${OPERANDS};
${STATEMENTS}${RESULTS}  }
${STORES}}
)cuda",
                             {{"NAME", spec.name},
                              {"PARAMS", llvm::join(parameters, ", ")},
                              {"SIZE", std::to_string(params.size)},
                              {"VEC", std::to_string(width)},
                              {"TILES", std::to_string(spec.launch.grid)},
                              {"LOADS", loads},
                              {"OPERANDS", operandValues},
                              {"STATEMENTS", statements},
                              {"RESULTS", results},
                              {"STORES", stores}});
  return spec;
}

KernelSpec codegen::gatedActivationKernel(llvm::StringRef activation, int64_t size,
                                          DType dtype) {
  int64_t width = vectorWidth(dtype, size);
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = formatv("gated_{0}_i{1}_{2}", activation, size, dtypeName(dtype));
  spec.summary = formatv("tfm.gated_mlp activation: {0}(gate) * up over the [T, 2 x {1}] "
                         "gate/up GEMM output",
                         activation, size);
  spec.launch = rowTiles(size, width);
  spec.source = fillTemplate(R"cuda(
extern "C" __global__ void ${NAME}(const ${T} *__restrict__ gate_up, ${T} *__restrict__ out) {
  constexpr int kSize = ${SIZE}, kVec = ${VEC}, kTiles = ${TILES};
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int token = blockIdx.x / kTiles;
  const int i = ((blockIdx.x % kTiles) * blockDim.x + threadIdx.x) * kVec;
  if (i >= kSize)
    return;
  const ${T} *gate = gate_up + (size_t)token * 2 * kSize;
  float g[kVec], u[kVec], y[kVec];
  ${LOAD_GATE}
  ${LOAD_UP}
  for (int e = 0; e < kVec; ++e)
    y[e] = kiln::${ACT}(g[e]) * u[e];
  ${STORE}
}
)cuda",
                             {{"NAME", spec.name},
                              {"T", cudaTypeName(dtype).str()},
                              {"SIZE", std::to_string(size)},
                              {"VEC", std::to_string(width)},
                              {"TILES", std::to_string(spec.launch.grid)},
                              {"ACT", activation.str()},
                              {"LOAD_GATE", loadFloats("g", "gate + i", width)},
                              {"LOAD_UP", loadFloats("u", "gate + kSize + i", width)},
                              {"STORE", storeFloats("out + (size_t)token * kSize + i", "y",
                                                    width, dtype)}});
  return spec;
}

int64_t CopySegment::elements() const {
  return std::accumulate(dims.begin(), dims.end(), int64_t(1), std::multiplies<>());
}

namespace {

/// The source index of element `r` of a segment, as C++: Σ idx_d · stride_d
/// where idx are the row-major coordinates of r in the segment's dims.
std::string segmentIndex(const CopySegment &segment) {
  std::string index = formatv("(size_t)token * {0} + {1}", segment.tokenStride, segment.offset);
  int64_t inner = segment.elements();
  for (auto [d, dim] : llvm::enumerate(segment.dims)) {
    inner /= dim;
    std::string coordinate = inner == 1 ? "r" : formatv("r / {0}", inner).str();
    if (d != 0)
      coordinate = formatv(inner == 1 ? "{0} % {1}" : "({0}) % {1}", coordinate, dim);
    bool simple = coordinate == "r";
    index += " + " + (segment.strides[d] == 1
                          ? coordinate
                          : formatv(simple ? "{0} * {1}" : "({0}) * {1}", coordinate,
                                    segment.strides[d])
                                .str());
  }
  return index;
}

} // namespace

KernelSpec codegen::copyKernel(llvm::StringRef what, int64_t size, unsigned numSources,
                               llvm::ArrayRef<CopySegment> segments, DType dtype) {
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = formatv("{0}_n{1}_{2}", what, size, dtypeName(dtype));
  spec.summary = formatv("tfm.{0}, a row of {1} {2} per token from {3} strided piece(s)", what,
                         size, dtypeName(dtype), segments.size());
  spec.launch = rowTiles(size, 1);

  llvm::SmallVector<std::string> parameters;
  for (unsigned i = 0; i < numSources; ++i)
    parameters.push_back(formatv("const {0} *__restrict__ src{1}", cudaTypeName(dtype), i));
  parameters.push_back(formatv("{0} *__restrict__ out", cudaTypeName(dtype)));

  std::string pieces;
  int64_t start = 0;
  for (auto [i, segment] : llvm::enumerate(segments)) {
    int64_t end = start + segment.elements();
    pieces += formatv("{0}if (i < {1}) {{\n"
                      "    const int r = i - {2};\n"
                      "    out[row + i] = src{3}[{4}];\n"
                      "  }",
                      i ? " else " : "  ", end, start, segment.source, segmentIndex(segment));
    start = end;
  }

  spec.source = fillTemplate(R"cuda(
// One thread per element of the output row; piece by piece, each element reads
// its source through the piece's strides.
extern "C" __global__ void ${NAME}(${PARAMS}) {
  constexpr int kSize = ${SIZE}, kTiles = ${TILES};
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int token = blockIdx.x / kTiles;
  const int i = (blockIdx.x % kTiles) * blockDim.x + threadIdx.x;
  if (i >= kSize)
    return;
  const size_t row = (size_t)token * kSize;
${PIECES}
}
)cuda",
                             {{"NAME", spec.name},
                              {"PARAMS", llvm::join(parameters, ", ")},
                              {"SIZE", std::to_string(size)},
                              {"TILES", std::to_string(spec.launch.grid)},
                              {"PIECES", pieces}});
  return spec;
}
