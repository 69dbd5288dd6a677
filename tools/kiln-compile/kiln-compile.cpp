//===- kiln-compile.cpp - the kiln compiler driver ------------------------===//
//
//   kiln-compile CONFIG -o model.kiln [--dtype fp32|fp16|bf16] [--max-batch N]
//                [--max-seq-len N] [--max-tokens N] [--check-archs sm_80,sm_90]
//                [--emit=artifact|tfm|fused|cuda|plan]
//
// CONFIG is a Hugging Face config.json or a checkpoint directory, or a .mlir
// file holding a tfm module (--dtype does not apply to it; --split-input-file
// and --verify-diagnostics do, as in kiln-opt). By default kiln-compile fuses
// the program, generates the kernels and the plan, writes the artifact and
// prints a summary. --emit says what else to produce: `tfm`,
// the graph-level tfm IR; `fused`, the IR after the fusion pipeline; `cuda`,
// the generated kernels; `plan`, a readable dump of the artifact. Each output
// kind is one EmitKind value and one case in emit().
//
//===----------------------------------------------------------------------===//

#include "kiln/Codegen/Codegen.h"
#include "kiln/Dialect/Tfm/TfmDialect.h"
#include "kiln/Frontend/Importer.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/Timer.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

enum class EmitKind { Artifact, Tfm, Fused, Cuda, Plan };
enum class Dtype { F32, F16, BF16 };

/// An enum option whose error for an unknown value lists the valid ones.
template <typename T> class ListingParser : public cl::parser<T> {
public:
  using cl::parser<T>::parser;
  bool parse(cl::Option &option, StringRef argName, StringRef arg, T &value) {
    SmallVector<StringRef> valid;
    for (unsigned i = 0, e = this->getNumOptions(); i != e; ++i) {
      if (this->getOption(i) == arg) {
        value = this->Values[i].V.getValue();
        return false;
      }
      valid.push_back(this->getOption(i));
    }
    return option.error("unknown value '" + arg + "'; valid values: " + llvm::join(valid, ", "));
  }
};

cl::OptionCategory compileCategory("kiln-compile options");

cl::opt<std::string> inputPath(cl::Positional, cl::Required, cl::cat(compileCategory),
                               cl::desc("<config.json, checkpoint directory or .mlir file>"));

cl::opt<EmitKind, false, ListingParser<EmitKind>>
    emitKind("emit", cl::init(EmitKind::Artifact), cl::cat(compileCategory),
             cl::desc("What to produce"),
             cl::values(clEnumValN(EmitKind::Artifact, "artifact",
                                   "the artifact, and a summary on stdout (default)"),
                        clEnumValN(EmitKind::Tfm, "tfm", "graph-level tfm IR"),
                        clEnumValN(EmitKind::Fused, "fused", "tfm IR after the fusion pipeline"),
                        clEnumValN(EmitKind::Cuda, "cuda", "the generated CUDA C++ kernels"),
                        clEnumValN(EmitKind::Plan, "plan", "a readable dump of the artifact")));

cl::opt<Dtype, false, ListingParser<Dtype>>
    dtype("dtype", cl::init(Dtype::F32), cl::cat(compileCategory),
          cl::desc("Activation element type"),
          cl::values(clEnumValN(Dtype::F32, "fp32", "float32 (default)"),
                     clEnumValN(Dtype::F16, "fp16", "float16"),
                     clEnumValN(Dtype::BF16, "bf16", "bfloat16")));

cl::opt<std::string> outputPath("o", cl::init("-"), cl::cat(compileCategory),
                                cl::value_desc("file"),
                                cl::desc("Output file (default: standard output; the artifact "
                                         "needs a file)"));

cl::opt<bool> splitInputFile("split-input-file", cl::cat(compileCategory),
                             cl::desc("Compile each '// -----' chunk of a .mlir input alone"));
cl::opt<bool> verifyDiagnostics("verify-diagnostics", cl::cat(compileCategory),
                                cl::desc("Check a .mlir input's diagnostics against its "
                                         "expected-* comments"));

cl::opt<int64_t> maxBatch("max-batch", cl::init(kiln::CodegenOptions().maxBatch),
                          cl::cat(compileCategory), cl::desc("Sequences per step"));
cl::opt<int64_t> maxSeqLen("max-seq-len", cl::init(0), cl::cat(compileCategory),
                           cl::desc("Positions per sequence, the KV-cache capacity (default: "
                                    "max_position_embeddings, at most 4096)"));
cl::opt<int64_t> maxTokens("max-tokens", cl::init(kiln::CodegenOptions().maxTokens),
                           cl::cat(compileCategory),
                           cl::desc("Tokens per step (the prefill chunk limit)"));
cl::list<std::string> checkArchs("check-archs", cl::CommaSeparated, cl::cat(compileCategory),
                                 cl::value_desc("sm_80,sm_90"),
                                 cl::desc("Compile every kernel with NVRTC for these GPU "
                                          "architectures and record them in the artifact"));

using PersistentDecode = kiln::CodegenOptions::PersistentDecode;
cl::opt<PersistentDecode, false, ListingParser<PersistentDecode>> persistentDecode(
    "persistent-decode", cl::init(PersistentDecode::automatic), cl::cat(compileCategory),
    cl::desc("The decode step as one persistent kernel too (run on sm_90+)"),
    cl::values(clEnumValN(PersistentDecode::automatic, "auto",
                          "where it measured faster: Llama-family layers of up to 256 MiB "
                          "(default)"),
               clEnumValN(PersistentDecode::on, "on", "for every Llama-family decoder stack"),
               clEnumValN(PersistentDecode::off, "off", "never; decode runs kernel by kernel")));

StringRef severityName(DiagnosticSeverity severity) {
  switch (severity) {
  case DiagnosticSeverity::Error:
    return "error";
  case DiagnosticSeverity::Warning:
    return "warning";
  case DiagnosticSeverity::Note:
    return "note";
  case DiagnosticSeverity::Remark:
    return "remark";
  }
  llvm_unreachable("unknown severity");
}

double millisecondsSince(const llvm::TimeRecord &start) {
  return (llvm::TimeRecord::getCurrentTime(true).getWallTime() - start.getWallTime()) * 1e3;
}

/// Generates the artifact of the fused `module`, checking its kernels with
/// NVRTC when --check-archs asks; prints the summary unless `quiet`.
FailureOr<std::string> compileArtifact(ModuleOp module, const llvm::TimeRecord &start,
                                       bool quiet) {
  kiln::CodegenOptions options;
  options.maxBatch = maxBatch;
  options.maxSeqLen = maxSeqLen;
  options.maxTokens = maxTokens;
  options.targetArchs.assign(checkArchs.begin(), checkArchs.end());
  options.persistentDecode = persistentDecode;
  std::string notes;
  FailureOr<std::string> artifact = kiln::buildArtifact(module, options, &notes);
  if (failed(artifact))
    return failure();
  double compileMs = millisecondsSince(start);
  if (!checkArchs.empty()) {
    llvm::TimeRecord checkStart = llvm::TimeRecord::getCurrentTime(true);
    std::string error;
    if (failed(kiln::checkKernelsWithNvrtc(*artifact, options.targetArchs, error))) {
      llvm::errs() << "kiln-compile: error: " << error << "\n";
      return failure();
    }
    if (!quiet)
      llvm::outs() << "checked " << kiln::summarizeArtifact(*artifact).kernels
                   << " kernels with NVRTC for " << llvm::join(checkArchs, ", ") << " in "
                   << llvm::format("%.0f", millisecondsSince(checkStart)) << " ms\n";
  }
  if (!quiet) {
 kiln::printSummary(kiln::summarizeArtifact(*artifact), llvm::outs());
    for (StringRef note : llvm::split(StringRef(notes).rtrim('\n'), '\n'))
      if (!note.empty())
        llvm::outs() << "  " << note << "\n";
    llvm::outs() << "compiled in " << llvm::format("%.0f", compileMs) << " ms\n";
  }
  return artifact;
}

LogicalResult emit(ModuleOp module, const llvm::TimeRecord &start, llvm::raw_ostream &os) {
  if (emitKind == EmitKind::Tfm) {
    module.print(os);
    os << "\n";
    return success();
  }
  PassManager passes(module.getContext());
  kiln::buildFusionPipeline(passes);
  if (failed(passes.run(module)))
    return failure();
  if (emitKind == EmitKind::Fused) {
    module.print(os);
    os << "\n";
    return success();
  }
  FailureOr<std::string> artifact = compileArtifact(module, start, emitKind != EmitKind::Artifact);
  if (failed(artifact))
    return failure();
  switch (emitKind) {
  case EmitKind::Artifact:
    os << *artifact;
    return success();
  case EmitKind::Cuda:
    kiln::emitCudaSource(*artifact, os);
    return success();
  case EmitKind::Plan:
    kiln::printPlan(*artifact, os);
    return success();
  case EmitKind::Tfm:
  case EmitKind::Fused:
    break;
  }
  llvm_unreachable("unknown --emit kind");
}

/// Compiles the tfm module of one .mlir chunk.
LogicalResult compileChunk(std::unique_ptr<llvm::MemoryBuffer> chunk,
                           const llvm::MemoryBufferRef &, llvm::raw_ostream &os) {
  llvm::TimeRecord start = llvm::TimeRecord::getCurrentTime(true);
  MLIRContext context;
  context.loadDialect<kiln::tfm::TfmDialect, func::FuncDialect>();
  context.printOpOnDiagnostic(!verifyDiagnostics);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(chunk), llvm::SMLoc());
  if (verifyDiagnostics) {
    SourceMgrDiagnosticVerifierHandler handler(sourceMgr, &context);
    OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
    if (module)
      (void)emit(*module, start, os);
    return handler.verify();
  }
  SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  return success(module && succeeded(emit(*module, start, os)));
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  cl::HideUnrelatedOptions(compileCategory);
  cl::ParseCommandLineOptions(argc, argv,
                              "kiln compiler driver\n\n"
                              "  --mlir-print-debuginfo prints each op's checkpoint module as its "
                              "location.\n");

  llvm::TimeRecord start = llvm::TimeRecord::getCurrentTime(true);
  if (emitKind == EmitKind::Artifact && outputPath == "-") {
    llvm::errs() << "kiln-compile: error: the artifact is binary; name its file with -o\n";
    return 1;
  }

  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(outputPath, &error);
  if (!output) {
    llvm::errs() << "kiln-compile: error: " << error << "\n";
    return 1;
  }

  if (StringRef(inputPath).ends_with(".mlir")) {
    std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(inputPath, &error);
    if (!input) {
      llvm::errs() << "kiln-compile: error: " << error << "\n";
      return 1;
    }
    StringRef marker = splitInputFile ? kDefaultSplitMarker : "";
    if (failed(splitAndProcessBuffer(std::move(input), compileChunk, output->os(), marker, marker)))
      return 1;
    output->keep();
    return 0;
  }

  MLIRContext context;
  // Diagnostics at a line of config.json show that line; those without a
  // line (missing files, checkpoint tensors) name their file in the message.
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler sourceHandler(sourceMgr, &context);
  ScopedDiagnosticHandler plainHandler(&context, [](Diagnostic &diagnostic) {
    if (!isa<UnknownLoc>(diagnostic.getLocation()))
      return failure();
    llvm::errs() << "kiln-compile: " << severityName(diagnostic.getSeverity()) << ": " << diagnostic
                 << "\n";
    for (const Diagnostic &note : diagnostic.getNotes())
      llvm::errs() << "kiln-compile: note: " << note << "\n";
    return success();
  });

  kiln::ImportOptions options;
  options.activationType = dtype == Dtype::F16 ? "f16" : dtype == Dtype::BF16 ? "bf16" : "f32";
  FailureOr<OwningOpRef<ModuleOp>> module =
      kiln::importHuggingFaceModel(inputPath, options, context);
  if (failed(module) || failed(emit(**module, start, output->os())))
    return 1;
  output->keep();
  return 0;
}
