//===- Passes.h - kiln passes and pipelines ---------------------*- C++ -*-===//
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace kiln {

#define GEN_PASS_DECL
#include "kiln/Passes/Passes.h.inc"

/// The fusion pipeline: every fusion, with canonicalize and CSE between steps.
void buildFusionPipeline(mlir::OpPassManager &pm);

#define GEN_PASS_REGISTRATION
#include "kiln/Passes/Passes.h.inc"

/// Registers every kiln pass and the named pipelines (--kiln-fusion-pipeline).
void registerKilnPassesAndPipelines();

} // namespace kiln

#endif // KILN_PASSES_PASSES_H
