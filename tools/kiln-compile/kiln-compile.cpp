//===- kiln-compile.cpp - the kiln compiler driver ------------------------===//
//
//   kiln-compile CONFIG --emit=KIND [--dtype fp32|fp16|bf16] [-o FILE]
//
// CONFIG is a Hugging Face config.json or a checkpoint directory. --emit says
// what to produce: `tfm`, the graph-level tfm IR. Each output kind is one
// EmitKind value and one case in emit().
//
//===----------------------------------------------------------------------===//

#include "kiln/Frontend/Importer.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

enum class EmitKind { Tfm };
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
                               cl::desc("<config.json or checkpoint directory>"));

cl::opt<EmitKind, false, ListingParser<EmitKind>>
    emitKind("emit", cl::Required, cl::cat(compileCategory), cl::desc("What to produce"),
             cl::values(clEnumValN(EmitKind::Tfm, "tfm", "graph-level tfm IR")));

cl::opt<Dtype, false, ListingParser<Dtype>>
    dtype("dtype", cl::init(Dtype::F32), cl::cat(compileCategory),
          cl::desc("Activation element type"),
          cl::values(clEnumValN(Dtype::F32, "fp32", "float32 (default)"),
                     clEnumValN(Dtype::F16, "fp16", "float16"),
                     clEnumValN(Dtype::BF16, "bf16", "bfloat16")));

cl::opt<std::string> outputPath("o", cl::init("-"), cl::cat(compileCategory),
                                cl::value_desc("file"),
                                cl::desc("Output file (default: standard output)"));

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

LogicalResult emit(ModuleOp module, llvm::raw_ostream &os) {
  switch (emitKind) {
  case EmitKind::Tfm:
    module.print(os);
    os << "\n";
    return success();
  }
  llvm_unreachable("unknown --emit kind");
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
  if (failed(module))
    return 1;

  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(outputPath, &error);
  if (!output) {
    llvm::errs() << "kiln-compile: error: " << error << "\n";
    return 1;
  }
  if (failed(emit(**module, output->os())))
    return 1;
  output->keep();
  return 0;
}
