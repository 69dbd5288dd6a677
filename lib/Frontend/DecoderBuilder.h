//===- DecoderBuilder.h - tfm IR for a decoder-only model --------*- C++ -*-===//
#ifndef KILN_LIB_FRONTEND_DECODERBUILDER_H
#define KILN_LIB_FRONTEND_DECODERBUILDER_H

#include "ModelDescription.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln {

/// Builds the graph-level tfm module of `model` as dialects/tfm/README.md
/// lays it out: one @forward(%input_ids, %positions) -> logits, activations
/// of `activationType`. Weights come from `checkpoint` when given (checked
/// against the description) or from the description alone. Reports bad
/// checkpoint tensors through the context.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> buildDecoder(const ModelDescription &model,
                                                                const Checkpoint *checkpoint,
                                                                mlir::Type activationType,
                                                                mlir::Location location);

} // namespace kiln

#endif // KILN_LIB_FRONTEND_DECODERBUILDER_H
