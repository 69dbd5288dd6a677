//===- Pipelines.cpp - kiln's named pass pipelines ------------------------===//

#include "kiln/Passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace kiln {

void buildFusionPipeline(OpPassManager &pm) {
  OpPassManager &func = pm.nest<func::FuncOp>();
  auto cleanup = [&] {
    func.addPass(createCanonicalizerPass());
    func.addPass(createCSEPass());
  };
  // Attention is formed before RoPE is folded into it; residual norms and MLPs
  // are independent of both.
  func.addPass(createPackQkv());
  cleanup();
  func.addPass(createFuseAttention());
  cleanup();
  func.addPass(createFuseRope());
  cleanup();
  func.addPass(createFuseResidualNorm());
  func.addPass(createFuseGatedMlp());
  cleanup();
}

void registerKilnPassesAndPipelines() {
  registerKilnPasses();
  PassPipelineRegistration<>("kiln-fusion-pipeline",
                             "Fuse a graph-level tfm program to the kernel level",
                             buildFusionPipeline);
}

} // namespace kiln
