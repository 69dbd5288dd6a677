//===- Importer.h - Hugging Face model descriptions to tfm IR ---*- C++ -*-===//
//
// Turns a Hugging Face config.json (optionally with the checkpoint's
// safetensors headers) into a graph-level tfm module following the
// conventions of dialects/tfm/README.md.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_IMPORTER_H
#define KILN_FRONTEND_IMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace kiln {

struct ImportOptions {
  /// Element type of activations: "f32", "f16" or "bf16".
  std::string activationType = "f32";
};

/// `path` is a config.json file or a directory holding config.json and, when
/// present, the checkpoint (model.safetensors or an index with shards). With a
/// checkpoint, weights take their shapes/dtypes from its headers and every
/// tensor the model needs is checked against the config; without one, they
/// take `torch_dtype`/`dtype` from the config. Errors are reported through the
/// context's diagnostic engine, naming the file and the field or tensor.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
importHuggingFaceModel(llvm::StringRef path, const ImportOptions &options,
                       mlir::MLIRContext &context);

/// Hugging Face architecture names the importer supports, e.g. "LlamaForCausalLM".
std::vector<std::string> supportedArchitectures();

} // namespace kiln

#endif // KILN_FRONTEND_IMPORTER_H
