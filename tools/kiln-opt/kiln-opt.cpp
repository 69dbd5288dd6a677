//===- kiln-opt.cpp - the kiln optimizer driver ---------------------------===//
//
// mlir-opt for kiln: the tfm dialect, the upstream dialects kiln programs
// use, and every kiln pass and pipeline.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Tfm/TfmDialect.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  kiln::registerKilnPassesAndPipelines();

  mlir::DialectRegistry registry;
  registry.insert<kiln::tfm::TfmDialect, mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
