//===- Importer.cpp - Hugging Face model descriptions to tfm IR -----------===//
//
// config.json -> ModelDescription (Architectures.cpp) -> tfm module
// (DecoderBuilder.cpp), with the checkpoint's safetensors headers, when there
// is a checkpoint, to check and type the weights.
//
//===----------------------------------------------------------------------===//

#include "kiln/Frontend/Importer.h"

#include "Architectures.h"
#include "DecoderBuilder.h"

#include "kiln/Dialect/Tfm/TfmDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace kiln;

namespace {

/// Whether directory `dir` holds safetensors files or a shard index.
bool holdsCheckpoint(StringRef dir) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json"))
      return true;
  }
  return false;
}

Type activationType(StringRef name, MLIRContext &context) {
  if (name == "f32")
    return Float32Type::get(&context);
  if (name == "f16")
    return Float16Type::get(&context);
  if (name == "bf16")
    return BFloat16Type::get(&context);
  return nullptr;
}

} // namespace

std::vector<std::string> kiln::supportedArchitectures() { return architectureNames(); }

FailureOr<OwningOpRef<ModuleOp>>
kiln::importHuggingFaceModel(StringRef path, const ImportOptions &options, MLIRContext &context) {
  context.loadDialect<tfm::TfmDialect, func::FuncDialect>();
  Type activations = activationType(options.activationType, context);
  if (!activations) {
    emitError(UnknownLoc::get(&context)) << "activation type '" << options.activationType
                                         << "' is not supported; kiln supports f32, f16 and bf16";
    return failure();
  }

  std::string configPath = path.str();
  bool withCheckpoint = false;
  if (llvm::sys::fs::is_directory(path)) {
    SmallString<256> joined(path);
    llvm::sys::path::append(joined, "config.json");
    configPath = joined.str().str();
    if (!llvm::sys::fs::exists(configPath)) {
      emitError(UnknownLoc::get(&context)) << path << ": no config.json in this directory";
      return failure();
    }
    withCheckpoint = holdsCheckpoint(path);
  }

  std::unique_ptr<ConfigFile> file = ConfigFile::load(configPath, &context);
  if (!file)
    return failure();
  ModelDescription model;
  if (failed(describeModel(ConfigReader(*file), model)))
    return failure();

  Checkpoint checkpoint;
  if (withCheckpoint) {
    std::string error;
    if (!openCheckpoint(path.str(), checkpoint, error)) {
      emitError(UnknownLoc::get(&context)) << error;
      return failure();
    }
  }
  return buildDecoder(model, withCheckpoint ? &checkpoint : nullptr, activations,
                      file->location(""));
}
