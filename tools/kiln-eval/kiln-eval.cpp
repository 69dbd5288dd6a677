//===- kiln-eval.cpp - run a tfm program on the reference evaluator -------===//
//
// kiln-eval MODEL [--weights PATH] [--prompt-ids "1 2 3"] [--decode-steps N]
//                 [--check-reference FILE] [--dump REGEX] [--dump-file FILE]
//
// MODEL is a tfm .mlir file ("-" reads one from stdin; give --weights), or a
// Hugging Face config.json / model directory that the importer turns into
// tfm IR.
// Greedy decoding prints each step's chosen id and top-5 logits.
// --check-reference replays a fixture's reference.safetensors (prefill over
// prompt_ids, then one step per decode_ids entry) and compares every step's
// logits; it passes when each step's max abs error is at most 1e-4 times that
// step's max |reference logit|.
// --check-passes runs the program before and after each fusion pass (alone
// and in pipeline order) and after the whole pipeline, on random tokens, and
// requires the logits to agree to 1e-5 * max|logit|.
//
//===----------------------------------------------------------------------===//

#include "PassEquivalence.h"

#include "kiln/Dialect/Tfm/TfmDialect.h"
#include "kiln/Evaluator/Evaluator.h"
#include "kiln/Frontend/Importer.h"
#include "kiln/Support/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

using namespace mlir;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory evalCategory("kiln-eval options");

cl::opt<std::string>
    modelPath(cl::Positional, cl::Required, cl::cat(evalCategory),
              cl::desc("<model: tfm .mlir (- for stdin), config.json or model directory>"));
cl::opt<std::string> weightsPath(
    "weights", cl::cat(evalCategory), cl::value_desc("path"),
    cl::desc(
        "checkpoint: .safetensors file, index, or directory (default: the model's directory)"));
cl::opt<std::string> promptIds("prompt-ids", cl::cat(evalCategory), cl::value_desc("\"1 2 3\""),
                               cl::desc("prompt token ids, separated by spaces"));
cl::opt<unsigned> decodeSteps("decode-steps", cl::cat(evalCategory), cl::init(0),
                              cl::desc("greedy decode steps after the prompt"));
cl::opt<std::string>
    referencePath("check-reference", cl::cat(evalCategory), cl::value_desc("file"),
                  cl::desc("compare prefill and decode logits with a reference.safetensors"));
cl::opt<std::string> dumpRegex("dump", cl::cat(evalCategory), cl::value_desc("regex"),
                               cl::desc("record the results of ops whose location name matches"));
cl::opt<std::string>
    activationType("activation-type", cl::cat(evalCategory), cl::init("f32"),
                   cl::value_desc("f32|bf16|f16"),
                   cl::desc("activation element type of an imported model (not for .mlir input)"));
cl::opt<std::string> dumpFile("dump-file", cl::cat(evalCategory), cl::value_desc("file"),
                              cl::desc("write recorded values to this .safetensors file "
                                       "instead of printing them"));

cl::opt<bool> checkPasses(
    "check-passes", cl::cat(evalCategory),
    cl::desc("run the program before and after every fusion pass and the whole fusion pipeline "
             "on random tokens and compare the logits (must agree to 1e-5 * max|logit|)"));
cl::opt<unsigned> seed("seed", cl::cat(evalCategory), cl::init(1),
                       cl::desc("random seed of --check-passes' tokens"));

constexpr double kRelativeTolerance = 1e-4;

int fail(const llvm::Twine &message) {
  llvm::errs() << "kiln-eval: " << message << "\n";
  return 1;
}

std::optional<std::vector<int32_t>> parseIds(llvm::StringRef text) {
  std::vector<int32_t> ids;
  llvm::SmallVector<llvm::StringRef> words;
  text.split(words, ' ', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef word : words) {
    int32_t id;
    if (word.trim().getAsInteger(10, id)) {
      fail("--prompt-ids: '" + word + "' is not a token id");
      return std::nullopt;
    }
    ids.push_back(id);
  }
  return ids;
}

std::vector<int32_t> range(int32_t begin, int32_t count) {
  std::vector<int32_t> values(count);
  std::iota(values.begin(), values.end(), begin);
  return values;
}

/// Ids of the `k` largest logits of `row`, largest first.
std::vector<int64_t> topK(const float *row, int64_t vocab, int64_t k) {
  std::vector<int64_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min(k, vocab);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [row](int64_t a, int64_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  ids.resize(k);
  return ids;
}

/// Prints the dumps recorded since `printed` (one line each), unless they go
/// to a file.
void printDumps(const kiln::EvalSession &session, size_t &printed) {
  const std::vector<kiln::DumpedValue> &dumps = session.dumps();
  for (; dumpFile.empty() && printed < dumps.size(); ++printed) {
    const kiln::DumpedValue &dump = dumps[printed];
    int64_t count = dump.value.numElements();
    double minimum = INFINITY, maximum = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < count; ++i) {
      minimum = std::min<double>(minimum, dump.value.at(i));
      maximum = std::max<double>(maximum, dump.value.at(i));
      sum += dump.value.at(i);
    }
    llvm::outs() << dump.name << " (" << dump.opName << ") [";
    llvm::interleaveComma(dump.value.shape, llvm::outs());
    llvm::outs() << "] min " << llvm::format("%g", minimum) << " max "
                 << llvm::format("%g", maximum) << " mean "
                 << llvm::format("%g", count ? sum / count : 0.0) << ":";
    for (int64_t i = 0; i < std::min<int64_t>(count, 8); ++i)
      llvm::outs() << " " << llvm::format("%g", dump.value.at(i));
    llvm::outs() << (count > 8 ? " ...\n" : "\n");
  }
}

/// A reference.safetensors: the prompt, the decode ids and the logits of both.
struct Reference {
  std::vector<int32_t> promptIds, decodeIds;
  std::vector<float> prefillLogits, decodeLogits;
  int64_t vocab = 0;
};

std::optional<Reference> readReference(const std::string &path) {
  kiln::Checkpoint checkpoint;
  std::string error;
  if (!kiln::openCheckpoint(path, checkpoint, error)) {
    fail(error);
    return std::nullopt;
  }
  kiln::TensorReader reader(checkpoint);
  Reference reference;
  auto shapeOf = [&](const std::string &name) -> std::vector<int64_t> {
    const kiln::TensorInfo *info = checkpoint.find(name);
    return info ? info->shape : std::vector<int64_t>();
  };
  auto readIds = [&](const std::string &name, std::vector<int32_t> &out) {
    std::vector<int64_t> ids;
    if (!reader.readAsInt64(name, ids, error))
      return false;
    out.assign(ids.begin(), ids.end());
    return true;
  };
  if (!readIds("prompt_ids", reference.promptIds) || !readIds("decode_ids", reference.decodeIds) ||
      !reader.readAsFloat32("prefill_logits", reference.prefillLogits, error) ||
      !reader.readAsFloat32("decode_logits", reference.decodeLogits, error)) {
    fail(error);
    return std::nullopt;
  }
  std::vector<int64_t> prefillShape = shapeOf("prefill_logits");
  reference.vocab = prefillShape.size() == 2 ? prefillShape[1] : 0;
  int64_t prompt = reference.promptIds.size(), decode = reference.decodeIds.size();
  if (prompt == 0 || prefillShape != std::vector<int64_t>{prompt, reference.vocab} ||
      shapeOf("decode_logits") != std::vector<int64_t>{decode, reference.vocab}) {
    fail(path + ": expected prompt_ids [T], prefill_logits [T, V], decode_ids [N] and "
                "decode_logits [N, V] with T > 0");
    return std::nullopt;
  }
  return reference;
}

/// Replays the reference's steps and prints how far each is from it.
int checkReference(kiln::EvalSession &session, const Reference &reference) {
  int64_t prompt = reference.promptIds.size(), vocab = reference.vocab;
  llvm::outs() << llvm::format("%-10s %6s %13s %13s %11s\n", "step", "tokens", "max_abs_err",
                               "max_abs_ref", "ratio");
  std::vector<std::string> failures;
  size_t printed = 0;
  auto compare = [&](const std::string &name, const kiln::Tensor &logits, const float *expected,
                     int64_t rows) {
    if (logits.shape != std::vector<int64_t>{rows, vocab}) {
      llvm::outs() << llvm::format("%-10s logits [%lld, %lld] but the reference has [%lld, %lld]\n",
                                   name.c_str(), (long long)logits.shape[0],
                                   (long long)logits.shape[1], (long long)rows, (long long)vocab);
      failures.push_back(name);
      return;
    }
    double maxError = 0.0, maxReference = 0.0;
    for (int64_t i = 0; i < rows * vocab; ++i) {
      double error = std::fabs(static_cast<double>(logits.values[i]) - expected[i]);
      maxError = std::isnan(error) ? INFINITY : std::max(maxError, error);
      maxReference = std::max(maxReference, std::fabs(static_cast<double>(expected[i])));
    }
    double ratio = maxReference > 0 ? maxError / maxReference : maxError;
    llvm::outs() << llvm::format("%-10s %6lld %13.3e %13.3e %11.3e\n", name.c_str(),
                                 (long long)rows, maxError, maxReference, ratio);
    if (!(maxError <= kRelativeTolerance * maxReference))
      failures.push_back(name);
  };

  FailureOr<kiln::Tensor> logits = session.step(reference.promptIds, range(0, prompt));
  printDumps(session, printed);
  if (failed(logits))
    return fail("prefill failed");
  compare("prefill", *logits, reference.prefillLogits.data(), prompt);
  for (size_t i = 0; i < reference.decodeIds.size(); ++i) {
    std::string name = "decode " + std::to_string(i);
    logits = session.step({reference.decodeIds[i]}, {static_cast<int32_t>(prompt + i)});
    printDumps(session, printed);
    if (failed(logits))
      return fail("step '" + name + "' failed");
    compare(name, *logits, reference.decodeLogits.data() + i * vocab, 1);
  }
  size_t steps = 1 + reference.decodeIds.size();
  if (!failures.empty()) {
    llvm::outs() << "FAIL: " << failures.size() << " of " << steps
                 << " steps exceed max_abs_err <= 1e-4 * max|ref logit|: ";
    llvm::interleaveComma(failures, llvm::outs());
    llvm::outs() << "\n";
    return 1;
  }
  llvm::outs() << "PASS: " << steps << " steps (prefill + " << reference.decodeIds.size()
               << " decode) within 1e-4 * max|ref logit|\n";
  return 0;
}

/// Prefill over `prompt`, then `decodeSteps` greedy steps.
int greedyDecode(kiln::EvalSession &session, const std::vector<int32_t> &prompt) {
  std::vector<int32_t> ids = prompt, positions = range(0, prompt.size()), generated;
  size_t printed = 0;
  for (unsigned stepIndex = 0; stepIndex <= decodeSteps; ++stepIndex) {
    FailureOr<kiln::Tensor> logits = session.step(ids, positions);
    printDumps(session, printed);
    if (failed(logits))
      return fail("step " + llvm::Twine(stepIndex) + " failed");
    int64_t vocab = logits->shape[1];
    if (vocab == 0)
      return fail("the logits have no vocabulary entries");
    const float *last = logits->values.data() + (logits->shape[0] - 1) * vocab;
    std::vector<int64_t> top = topK(last, vocab, 5);
    llvm::outs() << "step " << stepIndex;
    if (stepIndex)
      llvm::outs() << " (decode id " << ids[0] << " at position " << positions[0] << ")";
    else
      llvm::outs() << " (prefill, " << ids.size() << " tokens)";
    llvm::outs() << ": next " << top[0] << "; top-5";
    for (int64_t id : top)
      llvm::outs() << " " << id << ":" << llvm::format("%.4f", last[id]);
    llvm::outs() << "\n";
    generated.push_back(static_cast<int32_t>(top[0]));
    ids = {generated.back()};
    positions = {positions.back() + 1};
  }
  llvm::outs() << "generated:";
  for (int32_t id : generated)
    llvm::outs() << " " << id;
  llvm::outs() << "\n";
  return 0;
}

OwningOpRef<ModuleOp> loadModel(MLIRContext &context, llvm::SourceMgr &sourceMgr) {
  bool isMlir = modelPath == "-" || llvm::StringRef(modelPath).ends_with(".mlir");
  if (!isMlir) {
    kiln::ImportOptions options;
    options.activationType = activationType;
    FailureOr<OwningOpRef<ModuleOp>> imported =
        kiln::importHuggingFaceModel(modelPath, options, context);
    return succeeded(imported) ? std::move(*imported) : nullptr;
  }
  if (activationType.getNumOccurrences()) {
    fail("--activation-type applies to imported models; a .mlir file has its own types");
    return nullptr;
  }
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> file = mlir::openInputFile(modelPath, &error);
  if (!file) {
    fail(error);
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  cl::HideUnrelatedOptions(evalCategory);
  cl::ParseCommandLineOptions(argc, argv,
                              "kiln reference evaluator: runs a tfm program on the CPU\n");

  MLIRContext context;
  context.loadDialect<kiln::tfm::TfmDialect, func::FuncDialect>();
  // Errors name the op and its location; the op's generic form adds nothing.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  // Imported programs (and `loc("name")` in a file) have locations without a
  // file position: print `error: loc("name"): ...`, not SourceMgr's
  // `<unknown>:0:` prefix. (The handler registered last is asked first.)
  ScopedDiagnosticHandler namedLocations(&context, [](Diagnostic &diagnostic) {
    if (diagnostic.getLocation()->findInstanceOf<FileLineColLoc>())
      return failure();
    auto print = [](Diagnostic &part) {
      DiagnosticSeverity severity = part.getSeverity();
      llvm::errs() << (severity == DiagnosticSeverity::Error     ? "error"
                       : severity == DiagnosticSeverity::Warning ? "warning"
                       : severity == DiagnosticSeverity::Note    ? "note"
                                                                 : "remark")
                   << ": " << part.getLocation() << ": " << part << "\n";
    };
    print(diagnostic);
    for (Diagnostic &note : diagnostic.getNotes())
      print(note);
    return success();
  });

  OwningOpRef<ModuleOp> module = loadModel(context, sourceMgr);
  if (!module)
    return 1;

  std::string weights = weightsPath;
  if (weights.empty() && modelPath == "-")
    return fail("reading the model from stdin needs --weights");
  if (weights.empty()) {
    weights = llvm::sys::fs::is_directory(modelPath)
                  ? std::string(modelPath)
                  : std::string(llvm::sys::path::parent_path(modelPath));
    if (weights.empty())
      weights = ".";
  }
  kiln::Checkpoint checkpoint;
  std::string error;
  if (!kiln::openCheckpoint(weights, checkpoint, error))
    return fail(error);

  if (checkPasses)
    return kiln::checkPassEquivalence(*module, checkpoint, seed);

  FailureOr<std::unique_ptr<kiln::EvalSession>> session =
      kiln::EvalSession::create(*module, checkpoint);
  if (failed(session))
    return 1;
  if (!dumpRegex.empty() && failed((*session)->setDumpFilter(dumpRegex)))
    return 1;
  if (!dumpFile.empty() && dumpRegex.empty())
    return fail("--dump-file needs --dump REGEX to say what to record");

  int status;
  if (!referencePath.empty()) {
    if (!promptIds.empty() || decodeSteps)
      return fail("--check-reference takes the prompt and decode ids from the reference; "
                  "drop --prompt-ids/--decode-steps");
    std::optional<Reference> reference = readReference(referencePath);
    if (!reference)
      return 1;
    status = checkReference(**session, *reference);
  } else {
    std::optional<std::vector<int32_t>> prompt = parseIds(promptIds);
    if (!prompt)
      return 1;
    if (prompt->empty())
      return fail("give the prompt with --prompt-ids \"1 2 3\" (or use --check-reference)");
    status = greedyDecode(**session, *prompt);
  }

  if (!dumpFile.empty()) {
    if (!kiln::writeDumps(dumpFile, (*session)->dumps(), error))
      return fail(error);
    llvm::outs() << "wrote " << (*session)->dumps().size() << " values to " << dumpFile << "\n";
  }
  return status;
}
