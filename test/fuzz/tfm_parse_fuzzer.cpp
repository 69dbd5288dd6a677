//===- tfm_parse_fuzzer.cpp - libFuzzer target ----------------------------===//
//
// Feeds arbitrary bytes to what `kiln-opt` does first: parse them as MLIR with
// the tfm and func dialects, then verify. Bad input must end in a diagnostic,
// never in a crash, a sanitizer report or an assertion. A module that
// verifies must also survive a round trip: its custom, generic and bytecode
// forms parse back and verify.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Tfm/TfmDialect.h"

#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace mlir;

namespace {

/// The module in `source` if it parses and verifies, else null.
OwningOpRef<ModuleOp> parseAndVerify(const std::string &source, MLIRContext &context) {
  // The lexer relies on the NUL that std::string keeps after its data.
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, ParserConfig(&context));
  if (!module || failed(verify(*module)))
    return nullptr;
  return module;
}

[[noreturn]] void roundTripFailed(const char *form, const std::string &text) {
  std::fprintf(stderr, "tfm-parse-fuzzer: the %s form of a verified module does not parse back:\n%s\n",
               form, text.c_str());
  std::abort();
}

} // namespace

// llvm::BumpPtrAllocator poisons fresh slabs for ASan in its inline code
// (compiled into this instrumented binary) and unpoisons allocations in code
// that may live in the uninstrumented LLVM libraries, which leaves live memory
// poisoned. Ignoring manual poisoning avoids those false reports; ASan still
// sees every heap, stack and global overflow.
extern "C" const char *__asan_default_options() { return "allow_user_poisoning=0"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A fresh context per input: types and attributes stay uniqued for the
  // context's lifetime, so a shared one would grow without bound and carry
  // state from one input to the next.
  DialectRegistry registry;
  registry.insert<kiln::tfm::TfmDialect, func::FuncDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.loadAllAvailableDialects();
  ScopedDiagnosticHandler swallowDiagnostics(&context, [](Diagnostic &) { return success(); });

  OwningOpRef<ModuleOp> module =
      parseAndVerify(std::string(reinterpret_cast<const char *>(data), size), context);
  if (!module)
    return 0;

  std::string custom;
  llvm::raw_string_ostream(custom) << *module;
  if (!parseAndVerify(custom, context))
    roundTripFailed("custom", custom);

  std::string generic;
  {
    llvm::raw_string_ostream os(generic);
    module->print(os, OpPrintingFlags().printGenericOpForm());
  }
  if (!parseAndVerify(generic, context))
    roundTripFailed("generic", generic);

  std::string bytecode;
  {
    llvm::raw_string_ostream os(bytecode);
    if (failed(writeBytecodeToFile(*module, os)))
      roundTripFailed("bytecode (write failed)", custom);
  }
  if (!parseAndVerify(bytecode, context))
    roundTripFailed("bytecode", custom);
  return 0;
}
