//===- kiln-bench.cpp - prefill and decode speed against the roofline -----===//
//
//   kiln-bench MODEL.kiln [--weights CHECKPOINT] [--prefill-len N] [--contexts 128,4096]
//              [--decode-steps N] [--repeats N] [--no-graphs] [--json FILE|-] [--device N]
//
// Without --weights the weights are random, made on the GPU (the weight
// program runs as usual on random checkpoint tensors), so a model of any size
// can be timed without a checkpoint. Batch 1, greedy.
//
// - prefill: one prompt of --prefill-len tokens in one step; GPU time from CUDA
//   events (median of --repeats, after a warm-up); TFLOP/s counts
//   2 × parameters × tokens (the parameters of every checkpoint tensor the
//   artifact reads, the embedding table once).
// - decode, at each context length C: a prompt of C tokens, then
//   --decode-steps greedy steps; the median GPU time per step after the first
//   three (graph capture), and the host wall time per step;
// - roofline: the bytes a decode step must read (every weight it reads in
//   full, the embedding rows it gathers, and the KV cache in use) divided by the
//   device's streaming bandwidth, measured in the same run as the larger of a
//   device-to-device copy (read + written) and a read-only streaming kernel.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Bandwidth.h"
#include "kiln/Runtime/Runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

namespace {

const char kUsage[] =
    "usage: kiln-bench MODEL.kiln [--weights CHECKPOINT] [--prefill-len N] [--contexts 128,4096]\n"
    "                  [--decode-steps N] [--repeats N] [--no-graphs] [--json FILE|-] [--device N]\n"
    "\n"
    "  --weights PATH     a checkpoint; without it the weights are random, made on the GPU\n"
    "  --prefill-len N    tokens of the timed prefill (default 2048; at most the\n"
    "                     artifact's max tokens per step)\n"
    "  --contexts LIST    context lengths at which decode is timed (default 128,4096)\n"
    "  --decode-steps N   decode steps timed per context (default 64)\n"
    "  --repeats N        timed prefills (default 5)\n"
    "  --no-graphs        decode eagerly instead of replaying CUDA Graphs\n"
    "  --json FILE        also write the results as one JSON object ('-': stdout, last line)\n";

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "kiln-bench: error: %s\n", message.c_str());
  std::exit(1);
}

long long parseInteger(const std::string &flag, const std::string &text, long long least) {
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < least || value > (1ll << 30))
    fail(flag + " takes an integer of at least " + std::to_string(least) + ", not '" + text + "'");
  return value;
}

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

struct Options {
  std::string artifact, weights, json;
  int prefillLen = 2048, decodeSteps = 64, repeats = 5, device = 0;
  std::vector<int> contexts = {128, 4096};
  bool graphs = true;
};

Options parseOptions(int argc, char **argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--weights") {
      options.weights = value();
    } else if (arg == "--prefill-len") {
      options.prefillLen = int(parseInteger(arg, value(), 1));
    } else if (arg == "--decode-steps") {
      options.decodeSteps = int(parseInteger(arg, value(), 1));
    } else if (arg == "--repeats") {
      options.repeats = int(parseInteger(arg, value(), 1));
    } else if (arg == "--device") {
      options.device = int(parseInteger(arg, value(), 0));
    } else if (arg == "--json") {
      options.json = value();
    } else if (arg == "--no-graphs") {
      options.graphs = false;
    } else if (arg == "--contexts") {
      options.contexts.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');)
        options.contexts.push_back(int(parseInteger(arg, item, 1)));
    } else if (!arg.empty() && arg[0] == '-') {
      fail("unknown option " + arg + "\n" + kUsage);
    } else if (options.artifact.empty()) {
      options.artifact = arg;
    } else {
      fail("more than one artifact given: " + options.artifact + " and " + arg);
    }
  }
  if (options.artifact.empty())
    fail(std::string("no artifact given\n") + kUsage);
  if (options.decodeSteps < 8)
    fail("--decode-steps must be at least 8 (the first 3 steps are not timed)");
  return options;
}

/// What the model's parameters and a decode step's reads amount to.
struct Traffic {
  uint64_t parameters = 0;        ///< elements of all checkpoint tensors read
  uint64_t weightBytesRead = 0;   ///< bytes of weights a batch-1 decode step reads
  uint64_t kvBytesPerToken = 0;   ///< KV-cache bytes per cached position, all layers
};

uint64_t valueBytes(const fa::WeightValue *value) {
  uint64_t elements = 1;
  for (int64_t dim : *value->shape())
    elements *= uint64_t(dim);
  return elements * elementBytes(value->dtype());
}

Traffic measureTraffic(const Artifact &artifact) {
  const fa::Artifact &a = artifact.get();
  Traffic traffic;
  std::set<std::string> names;
  for (const fa::WeightValue *value : *a.weights())
    if (value->op() == fa::WeightOp::checkpoint && names.insert(value->name()->str()).second)
      traffic.parameters += valueBytes(value) / elementBytes(value->dtype());

  // A weight read only by an embedding gather costs one row per token;
  // every other weight a decode command names is streamed in full.
  std::map<uint32_t, bool> fullyRead;
  auto note = [&](const fa::Arg *arg, bool gathered) {
    if (arg && arg->kind() == fa::ArgKind::weight)
      fullyRead[arg->index()] = fullyRead[arg->index()] || !gathered;
  };
  for (const fa::CommandEntry *entry : *a.decode()->commands()) {
    if (const fa::Launch *launch = entry->command_as_Launch()) {
      const std::string kernel = a.kernels()->Get(launch->kernel())->name()->str();
      const bool gathered = kernel.rfind("embedding", 0) == 0;
      for (const fa::Arg *arg : *launch->args())
        note(arg, gathered);
    } else if (const fa::Gemm *gemm = entry->command_as_Gemm()) {
      note(gemm->a(), false);
      note(gemm->b(), false);
      note(gemm->bias(), false);
    }
  }
  const fa::ModelInfo &info = artifact.model();
  const uint64_t dtypeBytes = elementBytes(info.dtype());
  for (const auto &[index, full] : fullyRead)
    traffic.weightBytesRead +=
        full ? valueBytes(a.weights()->Get(index)) : uint64_t(info.hidden_size()) * dtypeBytes;
  traffic.kvBytesPerToken = 2ull * uint64_t(info.num_layers()) * uint64_t(info.num_kv_heads()) *
                            uint64_t(info.head_dim()) * dtypeBytes;
  return traffic;
}

std::vector<int32_t> randomTokens(int count, int vocab, std::mt19937 &rng) {
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t &id : ids)
    id = token(rng);
  return ids;
}

struct DecodeResult {
  int context = 0;
  double gpuMs = 0, wallMs = 0, bytes = 0, roofline = 0;
};

} // namespace

int main(int argc, char **argv) {
  Options options = parseOptions(argc, argv);
  std::string error;
  ModelOptions modelOptions;
  modelOptions.device = options.device;
  std::unique_ptr<Model> model = Model::open(options.artifact, modelOptions, error);
  if (!model)
    fail(error);
  const fa::ModelInfo &info = model->artifact().model();
  const bool bound = options.weights.empty() ? model->bindRandomWeights(1, error)
                                             : model->bindWeights(options.weights, nullptr, error);
  if (!bound)
    fail(error);
  if (options.prefillLen > info.max_tokens())
    fail("--prefill-len " + std::to_string(options.prefillLen) + " exceeds the artifact's " +
         std::to_string(info.max_tokens()) + " tokens per step (kiln-compile --max-tokens)");
  for (int context : options.contexts)
    if (context + options.decodeSteps > info.max_seq_len())
      fail("context " + std::to_string(context) + " + " + std::to_string(options.decodeSteps) +
           " decode steps exceeds the artifact's max sequence length " +
           std::to_string(info.max_seq_len()) + " (kiln-compile --max-seq-len)");

  StreamingBandwidth bandwidth;
  if (!measureStreamingBandwidth(*model, 2ull << 30, 10, bandwidth, error))
    fail(error);
  const Traffic traffic = measureTraffic(model->artifact());

  SessionOptions sessionOptions;
  sessionOptions.useGraphs = options.graphs;
  std::unique_ptr<Session> session = Session::create(*model, sessionOptions, error);
  if (!session)
    fail(error);
  std::mt19937 rng(7);
  auto prefillOnce = [&](int tokens) {
    int sequence = session->add(randomTokens(tokens, info.vocab_size(), rng), {}, error);
    if (sequence < 0 || !session->prefill(error))
      fail(error);
    return sequence;
  };

  // Prefill: one step of prefillLen tokens; the first run warms cuBLASLt up.
  std::vector<double> prefillMs;
  for (int i = 0; i <= options.repeats; ++i) {
    int sequence = prefillOnce(options.prefillLen);
    if (i > 0)
      prefillMs.push_back(session->stats().lastStepGpuMs);
    session->finish(sequence);
  }
  const double prefillMedian = median(prefillMs);
  const double prefillTflops =
      2.0 * double(traffic.parameters) * options.prefillLen / prefillMedian / 1e9;

  std::vector<DecodeResult> decodes;
  for (int context : options.contexts) {
    int sequence = prefillOnce(context);
    std::vector<double> gpu, wall;
    for (int step = 0; step < options.decodeSteps; ++step) {
      const auto start = std::chrono::steady_clock::now();
      if (!session->decode(error))
        fail(error);
      const double elapsed =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (step >= 3) {
        gpu.push_back(session->stats().lastStepGpuMs);
        wall.push_back(elapsed);
      }
    }
    session->finish(sequence);
    DecodeResult result;
    result.context = context;
    result.gpuMs = median(gpu);
    result.wallMs = median(wall);
    result.bytes = double(traffic.weightBytesRead) +
                   double(traffic.kvBytesPerToken) * (context + options.decodeSteps / 2.0);
    result.roofline = result.bytes / (bandwidth.best() * 1e6) / result.gpuMs;
    decodes.push_back(result);
  }

  // Which decode program ran: the persistent kernel, or kernel by kernel.
  const bool persistent = session->stats().persistentDecodeSteps > 0;
  const std::string program =
      persistent ? "persistent (one kernel a step)"
                 : "kernel by kernel (" +
                       (model->stats().persistentDecode ? std::string("persistent turned off")
                                                        : model->stats().persistentDecodeNote) +
                       ")";
  std::printf("%s on %s (%s, batch 1)\n", info.architecture()->c_str(),
              model->deviceDescription().c_str(), dtypeName(info.dtype()));
  std::printf("decode: %s\n", program.c_str());
  std::printf("streaming bandwidth: copy %.0f GB/s (read + written), read %.0f GB/s -> %.0f GB/s\n",
              bandwidth.copyGBs, bandwidth.readGBs, bandwidth.best());
  std::printf("parameters %.3f B; a decode step reads %.3f GB of weights + %.1f KiB of KV cache per "
              "cached token\n",
              traffic.parameters / 1e9, traffic.weightBytesRead / 1e9,
              traffic.kvBytesPerToken / 1024.0);
  std::printf("prefill %d tokens: %.2f ms (median of %d), %.0f TFLOP/s\n", options.prefillLen,
              prefillMedian, options.repeats, prefillTflops);
  std::printf("%-8s %12s %12s %10s %14s %10s\n", "context", "ms/token", "wall ms", "tokens/s",
              "roofline ms", "roofline");
  for (const DecodeResult &d : decodes)
    std::printf("%-8d %12.3f %12.3f %10.1f %14.3f %9.1f%%\n", d.context, d.gpuMs, d.wallMs,
                1e3 / d.gpuMs, d.bytes / (bandwidth.best() * 1e6), 100 * d.roofline);
  const double growth = decodes.back().gpuMs / decodes.front().gpuMs - 1.0;
  if (decodes.size() > 1)
    std::printf("decode ms/token grows %.1f%% from context %d to %d\n", 100 * growth,
                decodes.front().context, decodes.back().context);

  if (!options.json.empty()) {
    std::ostringstream json;
    json.precision(6);
    json << "{\"architecture\": \"" << info.architecture()->str() << "\", \"device\": \""
         << model->deviceDescription() << "\", \"dtype\": \"" << dtypeName(info.dtype())
         << "\", \"decode_program\": \"" << (persistent ? "persistent" : "kernels")
         << "\", \"parameters\": " << traffic.parameters
         << ", \"copy_gbs\": " << bandwidth.copyGBs << ", \"read_gbs\": " << bandwidth.readGBs
         << ", \"bandwidth_gbs\": " << bandwidth.best() << ", \"prefill_tokens\": "
         << options.prefillLen << ", \"prefill_ms\": " << prefillMedian
         << ", \"prefill_tflops\": " << prefillTflops
         << ", \"decode_ms_per_token\": " << decodes.front().gpuMs
         << ", \"decode_wall_ms_per_token\": " << decodes.front().wallMs
         << ", \"tokens_per_s\": " << 1e3 / decodes.front().gpuMs
         << ", \"bytes_per_step\": " << decodes.front().bytes
         << ", \"roofline_fraction\": " << decodes.front().roofline
         << ", \"context_growth\": " << growth << ", \"contexts\": [";
    for (size_t i = 0; i < decodes.size(); ++i)
      json << (i ? ", " : "") << "{\"context\": " << decodes[i].context
           << ", \"ms_per_token\": " << decodes[i].gpuMs << ", \"wall_ms\": " << decodes[i].wallMs
           << ", \"roofline_fraction\": " << decodes[i].roofline << "}";
    json << "]}";
    if (options.json == "-") {
      std::printf("%s\n", json.str().c_str());
    } else {
      std::ofstream out(options.json);
      out << json.str() << "\n";
      if (!out)
        fail("cannot write " + options.json);
    }
  }
  return 0;
}
