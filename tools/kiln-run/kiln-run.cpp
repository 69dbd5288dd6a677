//===- kiln-run.cpp - run a kiln artifact on a GPU ------------------------===//
//
//   kiln-run MODEL.kiln --weights CHECKPOINT (--prompt-ids "1 2 3" | --batch-file FILE)
//            [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//            [--stop-ids "2 3"] [--no-graphs] [--sync-each-command]
//            [--dump-logits FILE] [--device N] [--cache-dir DIR | --no-cache]
//   kiln-run MODEL.kiln --weights CHECKPOINT --check
//
// Prints the generated token ids of each prompt and the timings of each phase.
// --check only verifies the artifact and matches the checkpoint against it,
// which needs no GPU.
// --dump-logits writes, for every prompt b, the logits each generated token
// was sampled from (`logits.b`, f32 [generated, vocab]: row 0 from the
// prompt's last token, row i from generated token i-1), the generated ids
// (`tokens.b`) and the prompt (`prompt.b`) as one safetensors file.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Runtime.h"
#include "kiln/Runtime/WeightPlan.h"
#include "kiln/Support/Safetensors.h"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <unistd.h>

using namespace kiln;
using namespace kiln::runtime;

namespace {

const char kUsage[] =
    "usage: kiln-run MODEL.kiln --weights CHECKPOINT (--prompt-ids \"1 2 3\" | --batch-file FILE)\n"
    "                [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "                [--stop-ids \"2 3\"] [--no-graphs] [--sync-each-command]\n"
    "                [--dump-logits FILE] [--device N] [--cache-dir DIR | --no-cache]\n"
    "       kiln-run MODEL.kiln --weights CHECKPOINT --check\n"
    "\n"
    "  --weights PATH        a .safetensors file, a model.safetensors.index.json, or a\n"
    "                        directory holding either\n"
    "  --prompt-ids IDS      one prompt, as token ids separated by spaces\n"
    "  --batch-file FILE     one prompt per line (token ids; '#' starts a comment);\n"
    "                        the prompts run together as one batch\n"
    "  --max-new-tokens N    tokens to generate per prompt (default 16)\n"
    "  --temperature T       0 (default) picks the most likely token\n"
    "  --top-k K, --top-p P  sample among the K most likely / the smallest set with\n"
    "                        probability P (defaults 0 and 1: off)\n"
    "  --seed S              random seed for sampling (default 0)\n"
    "  --stop-ids IDS        a sampled stop id ends its sequence\n"
    "  --no-graphs           run decode steps eagerly instead of replaying CUDA Graphs\n"
    "  --sync-each-command   wait for every kernel and name the first that fails\n"
    "  --dump-logits FILE    write the logits of every sampled token (safetensors, f32)\n"
    "  --device N            GPU ordinal (default 0)\n"
    "  --cache-dir DIR       compiled-kernel cache (default $KILN_CACHE_DIR or\n"
    "                        ~/.cache/kiln); --no-cache turns it off\n"
    "  --check               verify the artifact and match the checkpoint against it,\n"
    "                        without a GPU\n";

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "kiln-run: error: %s\n", message.c_str());
  std::exit(1);
}

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "kiln-run: %s (kiln-run --help shows the options)\n", message.c_str());
  std::exit(2);
}

bool parseInt(const std::string &text, long long &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtoll(text.c_str(), &end, 10);
  return !text.empty() && errno == 0 && *end == '\0';
}

bool parseDouble(const std::string &text, double &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && errno == 0 && *end == '\0';
}

/// Token ids separated by white space; `what` names the source in errors.
std::vector<int32_t> parseIds(const std::string &text, const std::string &what) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    long long value;
    if (!parseInt(word, value) || value < 0 || value > INT32_MAX)
      fail(what + ": '" + word + "' is not a token id");
    ids.push_back(int32_t(value));
  }
  return ids;
}

std::vector<std::vector<int32_t>> readBatchFile(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    fail("cannot open batch file " + path + ": " + std::strerror(errno));
  std::vector<std::vector<int32_t>> prompts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::vector<int32_t> ids = parseIds(line, path + ":" + std::to_string(number));
    if (!ids.empty())
      prompts.push_back(std::move(ids));
  }
  if (prompts.empty())
    fail("batch file " + path + " holds no prompts");
  return prompts;
}

struct Options {
  std::string artifact, weights, batchFile, dumpLogits;
  std::vector<std::vector<int32_t>> prompts;
  GenerateOptions generate;
  SamplingParams sampling;
  ModelOptions model;
  SessionOptions session;
  bool checkOnly = false;
};

Options parseArguments(int argc, char **argv) {
  Options options;
  bool havePrompt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usageError("option " + arg + " needs a value");
      return argv[++i];
    };
    auto integer = [&](long long low, long long high) {
      const std::string text = value();
      long long number;
      if (!parseInt(text, number) || number < low || number > high)
        usageError("option " + arg + " needs an integer in [" + std::to_string(low) + ", " +
                   std::to_string(high) + "], not '" + text + "'");
      return number;
    };
    auto real = [&]() {
      const std::string text = value();
      double number;
      if (!parseDouble(text, number))
        usageError("option " + arg + " needs a number, not '" + text + "'");
      return number;
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--weights") {
      options.weights = value();
    } else if (arg == "--prompt-ids") {
      options.prompts.push_back(parseIds(value(), "--prompt-ids"));
      havePrompt = true;
    } else if (arg == "--batch-file") {
      options.batchFile = value();
    } else if (arg == "--max-new-tokens") {
      options.generate.maxNewTokens = int(integer(1, 1 << 30));
    } else if (arg == "--temperature") {
      options.sampling.temperature = float(real());
    } else if (arg == "--top-k") {
      options.sampling.topK = int32_t(integer(0, INT32_MAX));
    } else if (arg == "--top-p") {
      options.sampling.topP = float(real());
    } else if (arg == "--seed") {
      options.sampling.seed = uint64_t(integer(0, INT64_MAX));
    } else if (arg == "--stop-ids") {
      options.generate.stopIds = parseIds(value(), "--stop-ids");
    } else if (arg == "--no-graphs") {
      options.session.useGraphs = false;
    } else if (arg == "--sync-each-command") {
      options.session.syncEachCommand = true;
    } else if (arg == "--dump-logits") {
      options.dumpLogits = value();
    } else if (arg == "--device") {
      options.model.device = int(integer(0, 1 << 16));
    } else if (arg == "--cache-dir") {
      options.model.cacheDir = value();
    } else if (arg == "--check") {
      options.checkOnly = true;
    } else if (arg == "--no-cache") {
      options.model.cacheDir.clear();
    } else if (!arg.empty() && arg[0] == '-') {
      usageError("unknown option " + arg);
    } else if (options.artifact.empty()) {
      options.artifact = arg;
    } else {
      usageError("unexpected argument '" + arg + "'");
    }
  }
  if (options.artifact.empty())
    usageError("no artifact given");
  if (options.weights.empty())
    usageError("--weights is required");
  if (options.checkOnly)
    return options;
  if (havePrompt == !options.batchFile.empty())
    usageError("give exactly one of --prompt-ids and --batch-file");
  if (!options.batchFile.empty())
    options.prompts = readBatchFile(options.batchFile);
  for (const std::vector<int32_t> &prompt : options.prompts)
    if (prompt.empty())
      usageError("--prompt-ids holds no token ids");
  return options;
}

/// "loading weights: 12/45 tensors, 0.51/1.23 GiB", redrawn in place on a
/// terminal and printed every 10% otherwise.
class ProgressLine {
public:
  void operator()(const LoadProgress &progress) {
    const bool last = progress.tensorsDone == progress.tensorsTotal;
    const auto now = std::chrono::steady_clock::now();
    const int tenth = progress.bytesTotal ? int(10 * progress.bytesDone / progress.bytesTotal) : 10;
    if (terminal_ ? !last && now - lastDrawn_ < std::chrono::milliseconds(100)
                  : !last && tenth == lastTenth_)
      return;
    lastDrawn_ = now;
    lastTenth_ = tenth;
    std::fprintf(stderr, "%sloading weights: %zu/%zu tensors, %.2f/%.2f GiB%s", terminal_ ? "\r" : "",
                 progress.tensorsDone, progress.tensorsTotal,
                 double(progress.bytesDone) / double(1ull << 30),
                 double(progress.bytesTotal) / double(1ull << 30), terminal_ && !last ? "" : "\n");
    std::fflush(stderr);
  }

private:
  bool terminal_ = isatty(STDERR_FILENO);
  std::chrono::steady_clock::time_point lastDrawn_;
  int lastTenth_ = -1;
};

const char *stopName(Generation::Stop stop) {
  switch (stop) {
  case Generation::Stop::MaxNewTokens:
    return "max-new-tokens";
  case Generation::Stop::StopToken:
    return "stop token";
  case Generation::Stop::MaxSeqLen:
    return "max-seq-len";
  }
  return "";
}

void writeLogits(const std::string &path, const Options &options,
                 const std::vector<Generation> &generations,
                 const std::map<int, std::vector<float>> &logits, int vocab) {
  std::vector<TensorToWrite> tensors;
  auto int32Tensor = [](const std::string &name, const std::vector<int32_t> &values) {
    TensorToWrite tensor{name, DType::I32, {int64_t(values.size())}, {}};
    tensor.bytes.resize(values.size() * 4);
    std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
    return tensor;
  };
  for (size_t b = 0; b < generations.size(); ++b) {
    const std::vector<float> &rows = logits.at(int(b));
    TensorToWrite tensor{"logits." + std::to_string(b), DType::F32,
                         {int64_t(rows.size() / size_t(vocab)), vocab}, {}};
    tensor.bytes.resize(rows.size() * 4);
    std::memcpy(tensor.bytes.data(), rows.data(), tensor.bytes.size());
    tensors.push_back(std::move(tensor));
    tensors.push_back(int32Tensor("tokens." + std::to_string(b), generations[b].tokens));
    tensors.push_back(int32Tensor("prompt." + std::to_string(b), options.prompts[b]));
  }
  std::string error;
  if (!writeSafetensors(path, tensors, {{"format", "kiln-run logits"}}, error))
    fail(error);
}

/// --check: everything that can be known about artifact and checkpoint
/// without a GPU.
int check(const Options &options) {
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(options.artifact, error);
  if (!artifact)
    fail(error);
  const artifact::ModelInfo &info = artifact->model();
  std::printf("artifact %s: ok (%s, %s, %d layers, %u kernels, max batch %d, max seq len %d)\n",
              options.artifact.c_str(), info.architecture() ? info.architecture()->c_str() : "",
              dtypeName(info.dtype()), info.num_layers(), artifact->get().kernels()->size(),
              info.max_batch(), info.max_seq_len());
  Checkpoint checkpoint;
  if (!openCheckpoint(options.weights, checkpoint, error) ||
      !matchCheckpoint(*artifact, checkpoint, error))
    fail(error);
  const WeightPlan plan = planWeights(*artifact);
  std::printf("checkpoint %s: ok (%zu tensors read, %s; weights arena %s, load-time temporaries "
              "%s)\n",
              options.weights.c_str(), plan.checkpointTensors,
              formatBytes(plan.checkpointBytes).c_str(),
              formatBytes(artifact->get().weights_arena_bytes()).c_str(),
              formatBytes(plan.stagingPeakBytes).c_str());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  const Options options = parseArguments(argc, argv);
  if (options.checkOnly)
    return check(options);
  std::string error;

  std::unique_ptr<Model> model = Model::open(options.artifact, options.model, error);
  if (!model)
    fail(error);
  const artifact::ModelInfo &info = model->artifact().model();
  std::fprintf(stderr, "kiln-run: %s: %s, %d layers, %s, on %s (%s)\n", options.artifact.c_str(),
               info.architecture() ? info.architecture()->c_str() : "model", info.num_layers(),
               dtypeName(info.dtype()), model->deviceDescription().c_str(),
               model->deviceArch().c_str());

  ProgressLine progress;
  if (!model->bindWeights(options.weights, std::ref(progress), error))
    fail(error);
  std::unique_ptr<Session> session = Session::create(*model, options.session, error);
  if (!session)
    fail(error);

  // Session ids follow the order in which generate() adds the prompts.
  std::map<int, std::vector<float>> logits;
  const int vocab = info.vocab_size();
  if (!options.dumpLogits.empty() &&
      !session->setLogitsObserver(
          [&](int sequence, const float *row) {
            std::vector<float> &rows = logits[sequence];
            rows.insert(rows.end(), row, row + vocab);
          },
          error))
    fail(error);

  std::vector<Generation> generations;
  if (!generate(*session, options.prompts, options.sampling, options.generate, generations, error))
    fail(error);

  for (size_t b = 0; b < generations.size(); ++b) {
    std::printf("ids[%zu]:", b);
    for (int32_t id : generations[b].tokens)
      std::printf(" %d", id);
    std::printf("\n");
  }
  if (!options.dumpLogits.empty())
    writeLogits(options.dumpLogits, options, generations, logits, vocab);

  const LoadStats &load = model->stats();
  const SessionStats &run = session->stats();
  std::printf("timings:\n");
  std::printf("  artifact load  %9.2f ms (%s)\n", load.artifactMs,
              formatBytes(model->artifact().sizeInBytes()).c_str());
  std::printf("  JIT            %9.2f ms (%d kernel sources compiled, %d from the cache)\n",
              load.jitMs, load.kernelsCompiled, load.kernelsCached);
  std::printf("  weight load    %9.2f ms (%s, %.2f GiB/s)\n", load.weightsMs,
              formatBytes(load.checkpointBytes).c_str(),
              load.weightsMs > 0
                  ? double(load.checkpointBytes) / double(1ull << 30) / (load.weightsMs / 1e3)
                  : 0.0);
  std::printf("  prefill        %9.2f ms (%d tokens in %d steps)\n", run.prefillMs,
              run.prefillTokens, run.prefillSteps);
  if (run.decodeSteps > 0)
    std::printf("  decode         %9.3f ms per token step (%d steps, %d tokens, %s)\n",
                run.decodeMs / run.decodeSteps, run.decodeSteps, run.decodeTokens,
                options.session.useGraphs && !options.session.syncEachCommand
                    ? (std::to_string(run.graphsCaptured) + " CUDA Graphs captured").c_str()
                    : "eager");
  if (run.decodeSteps > 0)
    std::printf("  decode program %d of %d steps as the persistent kernel%s\n",
                run.persistentDecodeSteps, run.decodeSteps,
                load.persistentDecode ? "" : (" (" + load.persistentDecodeNote + ")").c_str());
  for (size_t b = 0; b < generations.size(); ++b)
    if (generations[b].stop != Generation::Stop::MaxNewTokens)
      std::printf("sequence %zu stopped at its %s\n", b, stopName(generations[b].stop));
  return 0;
}
