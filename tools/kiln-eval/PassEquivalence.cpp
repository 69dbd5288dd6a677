//===- PassEquivalence.cpp - fusion passes checked on the evaluator -------===//
//
// Meaning preservation of the rewrite passes, measured: the reference
// evaluator runs a program and its rewritten form on the same random tokens
// and the logits must agree to float32 rounding.
//
//===----------------------------------------------------------------------===//

#include "PassEquivalence.h"

#include "kiln/Evaluator/Evaluator.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <functional>
#include <random>

using namespace mlir;

namespace kiln {
namespace {

constexpr double kTolerance = 1e-5;
constexpr int kPromptLength = 6;
constexpr int kDecodeSteps = 3;

/// One step's tokens: the prompt, then single decode tokens.
struct Inputs {
  std::vector<std::vector<int32_t>> steps;
};

Inputs randomInputs(int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  Inputs inputs;
  inputs.steps.emplace_back();
  for (int i = 0; i < kPromptLength; ++i)
    inputs.steps[0].push_back(token(rng));
  for (int i = 0; i < kDecodeSteps; ++i)
    inputs.steps.push_back({token(rng)});
  return inputs;
}

/// Logits of every step, or failure (the evaluator has reported why).
FailureOr<std::vector<Tensor>> run(ModuleOp module, const Checkpoint &checkpoint,
                                   const Inputs &inputs) {
  FailureOr<std::unique_ptr<EvalSession>> session = EvalSession::create(module, checkpoint);
  if (failed(session))
    return failure();
  std::vector<Tensor> logits;
  int32_t position = 0;
  for (const std::vector<int32_t> &ids : inputs.steps) {
    std::vector<int32_t> positions(ids.size());
    for (int32_t &p : positions)
      p = position++;
    FailureOr<Tensor> step = (*session)->step(ids, positions);
    if (failed(step))
      return failure();
    logits.push_back(std::move(*step));
  }
  return logits;
}

/// Worst max_abs_err / max|ref| over the steps; infinity on a shape mismatch or NaN.
double worstRatio(const std::vector<Tensor> &ref, const std::vector<Tensor> &got) {
  double worst = 0.0;
  for (size_t s = 0; s < ref.size(); ++s) {
    if (ref[s].shape != got[s].shape)
      return INFINITY;
    double maxError = 0.0, maxRef = 0.0;
    for (size_t i = 0; i < ref[s].values.size(); ++i) {
      double error = std::fabs(double(ref[s].values[i]) - got[s].values[i]);
      maxError = std::isnan(error) ? INFINITY : std::max(maxError, error);
      maxRef = std::max(maxRef, std::fabs(double(ref[s].values[i])));
    }
    worst = std::max(worst, maxRef > 0 ? maxError / maxRef : maxError);
  }
  return worst;
}

size_t countOps(ModuleOp module) {
  size_t count = 0;
  module.walk([&](Operation *) { ++count; });
  return count;
}

using PassAdder = std::function<void(OpPassManager &)>;

/// `module` cloned and rewritten by the passes `add` puts in a pass manager.
FailureOr<OwningOpRef<ModuleOp>> rewritten(ModuleOp module, const PassAdder &add) {
  OwningOpRef<ModuleOp> copy = module.clone();
  PassManager pm(module.getContext());
  add(pm);
  if (failed(pm.run(*copy)))
    return failure();
  return copy;
}

} // namespace

int checkPassEquivalence(ModuleOp module, const Checkpoint &checkpoint, unsigned seed) {
  auto vocabAttr = module->getAttrOfType<IntegerAttr>("tfm.vocab_size");
  if (!vocabAttr) {
    llvm::errs() << "kiln-eval: --check-passes needs the module attribute tfm.vocab_size\n";
    return 1;
  }
  Inputs inputs = randomInputs(vocabAttr.getInt(), seed);
  FailureOr<std::vector<Tensor>> original = run(module, checkpoint, inputs);
  if (failed(original))
    return 1;

  // Each fusion pass runs with the cleanup the pipeline gives it.
  auto single = [](std::function<std::unique_ptr<Pass>()> create) -> PassAdder {
    return [create](OpPassManager &pm) {
      OpPassManager &func = pm.nest<func::FuncOp>();
      func.addPass(create());
      func.addPass(createCanonicalizerPass());
      func.addPass(createCSEPass());
    };
  };
  const std::pair<const char *, PassAdder> passes[] = {
      {"kiln-pack-qkv", single([] { return createPackQkv(); })},
      {"kiln-fuse-attention", single([] { return createFuseAttention(); })},
      {"kiln-fuse-rope", single([] { return createFuseRope(); })},
      {"kiln-fuse-residual-norm", single([] { return createFuseResidualNorm(); })},
      {"kiln-fuse-gated-mlp", single([] { return createFuseGatedMlp(); })},
  };

  llvm::outs() << llvm::format("%-34s %12s %14s  %s\n", "program", "ops", "worst ratio", "");
  int failures = 0;
  auto compare = [&](const std::string &name, ModuleOp before, const std::vector<Tensor> &ref,
                     ModuleOp after) -> std::optional<std::vector<Tensor>> {
    FailureOr<std::vector<Tensor>> got = run(after, checkpoint, inputs);
    double ratio = succeeded(got) ? worstRatio(ref, *got) : INFINITY;
    bool ok = ratio <= kTolerance;
    failures += !ok;
    std::string ops = std::to_string(countOps(before)) + " -> " + std::to_string(countOps(after));
    llvm::outs() << llvm::format("%-34s %12s %14.3e  %s\n", name.c_str(), ops.c_str(), ratio,
                                 ok ? "ok" : "FAIL");
    if (succeeded(got))
      return std::move(*got);
    return std::nullopt;
  };

  for (const auto &[name, add] : passes) {
    FailureOr<OwningOpRef<ModuleOp>> after = rewritten(module, add);
    if (failed(after))
      return 1;
    compare(std::string(name) + " (alone)", module, *original, **after);
  }
  OwningOpRef<ModuleOp> previous = module.clone();
  std::vector<Tensor> previousLogits = *original;
  for (const auto &[name, add] : passes) {
    FailureOr<OwningOpRef<ModuleOp>> after = rewritten(*previous, add);
    if (failed(after))
      return 1;
    std::optional<std::vector<Tensor>> logits =
        compare(std::string(name) + " (in order)", *previous, previousLogits, **after);
    if (!logits)
      return 1;
    previous = std::move(*after);
    previousLogits = std::move(*logits);
  }
  FailureOr<OwningOpRef<ModuleOp>> pipeline =
      rewritten(module, [](OpPassManager &pm) { buildFusionPipeline(pm); });
  if (failed(pipeline))
    return 1;
  compare("kiln-fusion-pipeline", module, *original, **pipeline);

  if (failures) {
    llvm::outs() << "FAIL: " << failures << " rewritten programs differ by more than 1e-5 * max|logit|\n";
    return 1;
  }
  llvm::outs() << "PASS: every rewritten program agrees within 1e-5 * max|logit| ("
               << kPromptLength << "-token prompt + " << kDecodeSteps << " decode steps, seed "
               << seed << ")\n";
  return 0;
}

} // namespace kiln
