//===- PassEquivalence.h - fusion passes checked on the evaluator -*- C++ -*-===//
#ifndef KILN_EVAL_PASSEQUIVALENCE_H
#define KILN_EVAL_PASSEQUIVALENCE_H

#include "kiln/Support/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"

namespace kiln {

/// Runs `module` before and after every fusion pass (each alone on the
/// imported program, each in pipeline order on its predecessor's output) and
/// after the whole fusion pipeline, on one random prompt and random decode
/// tokens, with `checkpoint`'s weights. Prints a table; returns 0 when every
/// comparison agrees to max_abs_err <= 1e-5 * max|logit|, 1 otherwise.
int checkPassEquivalence(mlir::ModuleOp module, const Checkpoint &checkpoint, unsigned seed);

} // namespace kiln

#endif // KILN_EVAL_PASSEQUIVALENCE_H
