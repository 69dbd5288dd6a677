//===- Session.cpp - sequences, steps and CUDA Graphs ---------------------===//
//
// A session resolves the artifact's step programs once: every launch's
// arguments are fixed device addresses (buffers, weights, KV cache, the step
// state), so a step only rewrites the step-state arrays, uploads them and
// enqueues the commands, or replays the decode graph captured for its batch
// size. Nothing is allocated per step.
//
//===----------------------------------------------------------------------===//

#include "Gemm.h"
#include "ModelImpl.h"

#include "kernels/prelude.cuh"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

namespace {

/// One command of a step program with its arguments resolved.
struct Command {
  std::string where;  ///< "decode.commands[3] (kernel 'rms_norm_0')", for errors

  // A kernel launch.
  CUfunction function = nullptr;
  uint32_t grid[3] = {}, block[3] = {};
  fa::GridScale scale = fa::GridScale::fixed;
  uint32_t tile = 1, sharedBytes = 0;
  /// Launched with programmatic stream serialization (PDL): the kernel waits
  /// for the previous grid itself (see prelude.cuh), so it may start early.
  bool programmatic = false;
  std::vector<uint64_t> pointers;  ///< pointer arguments' values, by argument
  std::vector<CUtensorMap> maps;   ///< tensor-map arguments' values, in order
  std::vector<void *> params;      ///< what cuLaunchKernelEx reads
  int numTokens = 0;               ///< the num_tokens argument's value

  // A cuBLASLt product (when isGemm).
  bool isGemm = false;
  GemmCall gemm;
  fa::GridScale rows = fa::GridScale::tokens;
};

struct Sequence {
  enum class State { Pending, Running, Finished };
  State state = State::Pending;
  std::vector<int32_t> prompt, generated;
  int cached = 0;  ///< positions in the KV cache
  int slot = -1;
  SamplingParams sampling;
};

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

/// The copy engine's descriptor of `view` over a weight at `address`
/// (Artifact.cpp checked the view against the weight already).
bool encodeTensorMap(const fa::TensorMapView &view, fa::DType dtype, uint64_t address,
                     CUtensorMap &map, const std::string &where, std::string &error) {
  const uint32_t rank = view.dims()->size();
  const uint64_t bytes = elementBytes(dtype);
  cuuint64_t dims[5], strides[4];
  cuuint32_t box[5], elementStrides[5];
  for (uint32_t d = 0; d < rank; ++d) {
    dims[d] = view.dims()->Get(d);
    box[d] = view.box()->Get(d);
    elementStrides[d] = 1;
    if (d > 0)
      strides[d - 1] = view.strides()->Get(d - 1) * bytes;
  }
  const CUtensorMapDataType type = dtype == fa::DType::f32   ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                   : dtype == fa::DType::f16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                             : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const CUtensorMapSwizzle swizzle = view.swizzle_bytes() == 128  ? CU_TENSOR_MAP_SWIZZLE_128B
                                     : view.swizzle_bytes() == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                     : view.swizzle_bytes() == 32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                                                  : CU_TENSOR_MAP_SWIZZLE_NONE;
  return cuOk(driver().cuTensorMapEncodeTiled(
                  &map, type, rank, reinterpret_cast<void *>(address), dims, strides, box,
                  elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
              (where + ": cuTensorMapEncodeTiled").c_str(), error);
}

} // namespace

struct Session::Impl {
  Model::Impl &model;
  const Artifact &artifact;
  SessionOptions options;
  CUstream stream = nullptr;
  DeviceBuffer kvCache, activations, deviceState;
  PinnedBuffer hostState, hostLogits;
  StepStateLayout layout;
  kiln::StepState stepState = {};
  GemmRunner gemm;
  std::vector<std::unique_ptr<Command>> prefillCommands, decodeCommands;
  /// The persistent decode program (empty unless the model runs it here).
  std::vector<std::unique_ptr<Command>> persistentCommands;
  std::vector<CUgraphExec> decodeGraphs, persistentGraphs;  ///< by batch size
  std::vector<Sequence> sequences;
  std::vector<int> freeSlots;
  std::function<void(int, const float *)> logitsObserver;
  SessionStats stats;
  StepBatch decodeBatch;
  std::vector<std::pair<uint64_t, uint64_t>> uploads;
  CUevent stepStart = nullptr, stepEnd = nullptr;  ///< time each step on the GPU
  /// The last step's number (kiln::StepState::epoch).
  uint32_t epoch = 0;

  Impl(Model::Impl &model, const SessionOptions &options)
      : model(model), artifact(*model.artifact), options(options) {}

  ~Impl() {
    if (stream)
      driver().cuStreamSynchronize(stream);
    for (const std::vector<CUgraphExec> *graphs : {&decodeGraphs, &persistentGraphs})
      for (CUgraphExec graph : *graphs)
        if (graph)
          driver().cuGraphExecDestroy(graph);
    for (CUevent event : {stepStart, stepEnd})
      if (event)
        driver().cuEventDestroy(event);
    if (stream)
      driver().cuStreamDestroy(stream);
  }

  const fa::ModelInfo &info() const { return artifact.model(); }

  bool allocate(std::string &error);
  bool resolve(const fa::Step &step, const char *name,
               std::vector<std::unique_ptr<Command>> &out, std::string &error);
  bool enqueue(const std::vector<std::unique_ptr<Command>> &commands, int tokens, int sequences,
               int longestQuery, std::string &error);
  /// The captured graph of `commands` (a decode program) for `batch`
  /// sequences, kept in `graphs`.
  bool decodeGraph(const std::vector<std::unique_ptr<Command>> &commands,
                   std::vector<CUgraphExec> &graphs, int batch, CUgraphExec &graph,
                   std::string &error);
  /// Whether a decode step of `batch` sequences runs the persistent program.
  bool persistentStep(int batch) const {
    return !persistentCommands.empty() && batch <= model.stats.persistentDecodeTokens;
  }
  bool runStep(const StepBatch &batch, bool isDecode, std::string &error);
};

bool Session::Impl::allocate(std::string &error) {
  const uint64_t perLayer = artifact.kvCacheBytesPerLayer();
  layout = StepStateLayout::make(info().max_tokens(), info().max_batch());
  if (!model.device->makeCurrent(error) ||
      !cuOk(driver().cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", error) ||
      !kvCache.allocate(2 * uint64_t(info().num_layers()) * perLayer, "the KV cache", error) ||
      !activations.allocate(artifact.activationArenaBytes(), "the activation arena", error) ||
      !deviceState.allocate(layout.totalBytes, "the step state", error) ||
      !hostState.allocate(layout.totalBytes, error) ||
      !gemm.init(GemmRunner::kDefaultWorkspaceBytes, error) ||
      !cuOk(driver().cuEventCreate(&stepStart, CU_EVENT_DEFAULT), "cuEventCreate", error) ||
      !cuOk(driver().cuEventCreate(&stepEnd, CU_EVENT_DEFAULT), "cuEventCreate", error))
    return false;
  // Activations start as NaN (all bits set), so a kernel that reads what no
  // kernel wrote shows up in the logits instead of passing by luck.
  if (!cuOk(driver().cuMemsetD8Async(activations.get(), 0xff, activations.size(), stream),
            "cuMemsetD8Async", error) ||
      !cuOk(driver().cuMemsetD8Async(kvCache.get(), 0, kvCache.size(), stream), "cuMemsetD8Async",
            error) ||
      !cuOk(driver().cuMemsetD8Async(deviceState.get(), 0, deviceState.size(), stream),
            "cuMemsetD8Async", error))
    return false;

  const CUdeviceptr base = deviceState.get();
  auto at = [&](uint64_t offset) { return reinterpret_cast<int32_t *>(base + offset); };
  stepState.token_ids = at(layout.tokenIds);
  stepState.positions = at(layout.positions);
  stepState.token_seq = at(layout.tokenSeq);
  stepState.query_start = at(layout.queryStart);
  stepState.kv_len = at(layout.kvLen);
  stepState.slot = at(layout.slot);
  stepState.last_token = at(layout.lastToken);
  stepState.temperature = reinterpret_cast<const float *>(base + layout.temperature);
  stepState.top_k = at(layout.topK);
  stepState.top_p = reinterpret_cast<const float *>(base + layout.topP);
  stepState.seed = reinterpret_cast<const uint64_t *>(base + layout.seed);
  stepState.sampled = at(layout.sampled);
  stepState.step_counter = at(layout.stepCounter);
  stepState.best_logit = reinterpret_cast<uint64_t *>(base + layout.bestLogit);
  stepState.epoch = reinterpret_cast<const uint32_t *>(base + layout.epoch);

  const int slots = info().max_batch();
  for (int slot = slots - 1; slot >= 0; --slot)
    freeSlots.push_back(slot);
  decodeGraphs.assign(size_t(slots) + 1, nullptr);
  persistentGraphs.assign(size_t(slots) + 1, nullptr);
  return cuOk(driver().cuStreamSynchronize(stream), "session setup", error);
}

bool Session::Impl::resolve(const fa::Step &step, const char *name,
                            std::vector<std::unique_ptr<Command>> &out, std::string &error) {
  const fa::Artifact &program = artifact.get();
  const uint64_t perLayer = artifact.kvCacheBytesPerLayer();
  auto address = [&](const fa::Arg *arg) -> uint64_t {
    switch (arg->kind()) {
    case fa::ArgKind::buffer:
      return activations.get() + program.buffers()->Get(arg->index())->offset();
    case fa::ArgKind::weight:
      return model.weight(arg->index());
    case fa::ArgKind::k_cache:
      return kvCache.get() + 2 * uint64_t(arg->index()) * perLayer;
    case fa::ArgKind::v_cache:
      return kvCache.get() + (2 * uint64_t(arg->index()) + 1) * perLayer;
    default:
      return 0;
    }
  };
  for (flatbuffers::uoffset_t i = 0; i < step.commands()->size(); ++i) {
    const fa::CommandEntry *entry = step.commands()->Get(i);
    auto command = std::make_unique<Command>();
    command->where = std::string(name) + ".commands[" + std::to_string(i) + "]";
    if (const fa::Launch *launch = entry->command_as_Launch()) {
      command->where += " (kernel '" + program.kernels()->Get(launch->kernel())->name()->str() +
                        "')";
      command->function = model.kernels[launch->kernel()];
      for (int d = 0; d < 3; ++d) {
        command->grid[d] = launch->grid()->Get(d);
        command->block[d] = launch->block()->Get(d);
      }
      command->scale = launch->scale();
      command->tile = launch->tile();
      command->sharedBytes = launch->shared_bytes();
      command->programmatic = program.kernels()->Get(launch->kernel())->programmatic() &&
                              model.device->major() >= 9 && options.programmaticLaunch &&
                              !std::getenv("KILN_NO_PDL");
      const size_t count = launch->args() ? launch->args()->size() : 0;
      command->pointers.resize(count);
      // Room for every map first: params point into it.
      if (count)
        command->maps.reserve(size_t(std::count_if(
            launch->args()->begin(), launch->args()->end(),
            [](const fa::Arg *arg) { return arg->kind() == fa::ArgKind::weight_tensor_map; })));
      for (size_t a = 0; a < count; ++a) {
        const fa::Arg *arg = launch->args()->Get(uint32_t(a));
        command->pointers[a] = address(arg);
        void *param = &command->pointers[a];
        if (arg->kind() == fa::ArgKind::step)
          param = &stepState;
        else if (arg->kind() == fa::ArgKind::num_tokens)
          param = &command->numTokens;
        else if (arg->kind() == fa::ArgKind::weight_tensor_map) {
          param = &command->maps.emplace_back();
          if (!encodeTensorMap(*arg->view(), program.weights()->Get(arg->index())->dtype(),
                               model.weight(arg->index()), command->maps.back(),
                               command->where + ".args[" + std::to_string(a) + "]", error))
            return false;
        }
        command->params.push_back(param);
      }
    } else if (const fa::Gemm *gemm = entry->command_as_Gemm()) {
      command->where += " (gemm '" + (gemm->name() ? gemm->name()->str() : std::string()) + "')";
      command->isGemm = true;
      command->gemm.a = address(gemm->a());
      command->gemm.b = address(gemm->b());
      command->gemm.c = address(gemm->c());
      command->gemm.bias = gemm->bias() ? address(gemm->bias()) : 0;
      command->gemm.n = gemm->n();
      command->gemm.k = gemm->k();
      command->gemm.dtype = gemm->dtype();
      command->rows = gemm->rows();
    } else {
      error = command->where + ": unsupported command";  // the verifier admits no other
      return false;
    }
    out.push_back(std::move(command));
  }
  return true;
}

bool Session::Impl::enqueue(const std::vector<std::unique_ptr<Command>> &commands, int tokens,
                            int sequences, int longestQuery, std::string &error) {
  for (const std::unique_ptr<Command> &command : commands) {
    bool ok;
    if (command->isGemm) {
      command->gemm.m = command->rows == fa::GridScale::sequences ? sequences : tokens;
      ok = gemm.run(stream, command->gemm, error);
    } else {
      uint32_t factor = 1;
      switch (command->scale) {
      case fa::GridScale::fixed:
        break;
      case fa::GridScale::tokens:
        factor = uint32_t(tokens);
        break;
      case fa::GridScale::sequences:
        factor = uint32_t(sequences);
        break;
      case fa::GridScale::query_tiles:
        factor = uint32_t(sequences) * ((uint32_t(longestQuery) + command->tile - 1) / command->tile);
        break;
      case fa::GridScale::multiprocessors:
        factor = uint32_t(model.device->multiprocessors());
        break;
      }
      command->numTokens = tokens;
      CUlaunchAttribute attributes[2] = {};
      unsigned numAttributes = 0;
      if (command->programmatic) {
        attributes[numAttributes].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attributes[numAttributes++].value.programmaticStreamSerializationAllowed = 1;
      }
      if (command->scale == fa::GridScale::multiprocessors) {
        attributes[numAttributes].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
        attributes[numAttributes++].value.cooperative = 1;
      }
      CUlaunchConfig config = {};
      config.gridDimX = command->grid[0] * factor;
      config.gridDimY = command->grid[1];
      config.gridDimZ = command->grid[2];
      config.blockDimX = command->block[0];
      config.blockDimY = command->block[1];
      config.blockDimZ = command->block[2];
      config.sharedMemBytes = command->sharedBytes;
      config.hStream = stream;
      config.attrs = attributes;
      config.numAttrs = numAttributes;
      ok = cuOk(driver().cuLaunchKernelEx(&config, command->function, command->params.data(),
                                          nullptr),
                "cuLaunchKernelEx", error);
    }
    if (ok && options.syncEachCommand)
      ok = cuOk(driver().cuStreamSynchronize(stream), "after it ran", error);
    if (!ok) {
      error = command->where + ": " + error;
      return false;
    }
  }
  return true;
}

bool Session::Impl::decodeGraph(const std::vector<std::unique_ptr<Command>> &commands,
                                std::vector<CUgraphExec> &graphs, int batch, CUgraphExec &graph,
                                std::string &error) {
  graph = graphs[size_t(batch)];
  if (graph)
    return true;
  // cuBLASLt's choices are made before the capture, which must record only
  // stream work.
  for (const std::unique_ptr<Command> &command : commands)
    if (command->isGemm) {
      command->gemm.m = batch;
      if (!gemm.prepare(command->gemm, error))
        return false;
    }
  if (!cuOk(driver().cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            "cuStreamBeginCapture", error))
    return false;
  const bool recorded = enqueue(commands, batch, batch, 1, error);
  CUgraph captured = nullptr;
  std::string endError;
  const bool ended =
      cuOk(driver().cuStreamEndCapture(stream, &captured), "cuStreamEndCapture", endError);
  if (!recorded || !ended) {
    if (recorded)
      error = endError;
    if (captured)
      driver().cuGraphDestroy(captured);
    error = "capturing the decode step for batch " + std::to_string(batch) + ": " + error;
    return false;
  }
  const bool instantiated =
      cuOk(driver().cuGraphInstantiate(&graph, captured, 0), "cuGraphInstantiate", error);
  driver().cuGraphDestroy(captured);
  if (!instantiated)
    return false;
  graphs[size_t(batch)] = graph;
  ++stats.graphsCaptured;
  return true;
}

bool Session::Impl::runStep(const StepBatch &batch, bool isDecode, std::string &error) {
  const int count = batch.numSequences();
  uploads.clear();
  batch.write(layout, hostState.get(), uploads);
  // The persistent kernel's tagged words name the step that wrote them; they
  // start as all ones (the arena's fill), which no epoch is.
  epoch = epoch + 1 == 0xffffffffu ? 1 : epoch + 1;
  std::memcpy(hostState.get() + layout.epoch, &epoch, sizeof(epoch));
  if (!cuOk(driver().cuEventRecord(stepStart, stream), "cuEventRecord", error))
    return false;
  for (const auto &[begin, end] : uploads)
    if (!cuOk(driver().cuMemcpyHtoDAsync(deviceState.get() + begin, hostState.get() + begin,
                                         end - begin, stream),
              "cuMemcpyHtoDAsync", error))
      return false;

  const bool persistent = isDecode && persistentStep(count);
  const char *stepName = persistent ? "persistent decode" : isDecode ? "decode" : "prefill";
  const std::vector<std::unique_ptr<Command>> &commands =
      persistent ? persistentCommands : isDecode ? decodeCommands : prefillCommands;
  stats.persistentDecodeSteps += persistent;
  if (isDecode && options.useGraphs && !options.syncEachCommand) {
    CUgraphExec graph;
    if (!decodeGraph(commands, persistent ? persistentGraphs : decodeGraphs, count, graph, error) ||
        !cuOk(driver().cuGraphLaunch(graph, stream), "cuGraphLaunch", error))
      return false;
  } else if (!enqueue(commands, batch.numTokens(), count, batch.longestQuery(), error)) {
    return false;
  }

  const uint64_t vocab = uint64_t(info().vocab_size());
  if (!cuOk(driver().cuMemcpyDtoHAsync(hostState.get() + layout.sampled,
                                       deviceState.get() + layout.sampled,
                                       uint64_t(count) * sizeof(int32_t), stream),
            "cuMemcpyDtoHAsync", error))
    return false;
  if (logitsObserver) {
    const CUdeviceptr logits =
        activations.get() + artifact.get().buffers()->Get(artifact.get().logits())->offset();
    if (!cuOk(driver().cuMemcpyDtoHAsync(hostLogits.get(), logits,
                                         uint64_t(count) * vocab * sizeof(float), stream),
              "cuMemcpyDtoHAsync", error))
      return false;
  }
  if (!cuOk(driver().cuEventRecord(stepEnd, stream), "cuEventRecord", error))
    return false;
  if (CUresult result = driver().cuStreamSynchronize(stream); result != CUDA_SUCCESS) {
    error = std::string("GPU error in a ") + stepName + " step: " +
            describe(result, "cuStreamSynchronize") +
            (options.syncEachCommand ? "" : "; run with --sync-each-command to find the kernel");
    return false;
  }

  float gpuMs = 0;
  if (!cuOk(driver().cuEventElapsedTime(&gpuMs, stepStart, stepEnd), "cuEventElapsedTime", error))
    return false;
  stats.lastStepGpuMs = gpuMs;

  const int32_t *sampled = reinterpret_cast<const int32_t *>(hostState.get() + layout.sampled);
  for (int b = 0; b < count; ++b) {
    const StepRow &row = batch.rows[size_t(b)];
    Sequence &sequence = sequences[size_t(row.sequence)];
    sequence.cached = row.position + row.length;
    if (!row.endsPrompt)
      continue;
    sequence.state = Sequence::State::Running;
    sequence.generated.push_back(sampled[b]);
    if (logitsObserver)
      logitsObserver(row.sequence,
                     reinterpret_cast<const float *>(hostLogits.get()) + size_t(b) * vocab);
  }
  return true;
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::unique_ptr<Session> Session::create(Model &model, const SessionOptions &options,
                                         std::string &error) {
  Model::Impl &modelImpl = model.impl();
  if (!modelImpl.weightsBound) {
    error = "bind the model's weights before creating a session";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(modelImpl, options);
  const fa::Artifact &program = modelImpl.artifact->get();
  if (!impl->allocate(error) ||
      !impl->resolve(*program.prefill(), "prefill", impl->prefillCommands, error) ||
      !impl->resolve(*program.decode(), "decode", impl->decodeCommands, error))
    return nullptr;
  if (modelImpl.stats.persistentDecode && options.persistentDecode &&
      !std::getenv("KILN_NO_PERSISTENT") &&
      !impl->resolve(*program.decode_persistent(), "decode_persistent", impl->persistentCommands,
                     error))
    return nullptr;
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

int Session::add(const std::vector<int32_t> &prompt, const SamplingParams &sampling,
                 std::string &error) {
  Impl &s = *impl_;
  const int maxSeqLen = s.info().max_seq_len(), vocab = s.info().vocab_size();
  if (prompt.empty()) {
    error = "empty prompt";
    return -1;
  }
  if (int64_t(prompt.size()) > maxSeqLen) {
    error = "prompt of " + std::to_string(prompt.size()) +
            " tokens is longer than the model's max-seq-len " + std::to_string(maxSeqLen) +
            " (compile with a larger --max-seq-len)";
    return -1;
  }
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= vocab) {
      error = "token id " + std::to_string(prompt[i]) + " at prompt position " +
              std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
      return -1;
    }
  if (sampling.temperature < 0 || sampling.topK < 0 || !(sampling.topP > 0 && sampling.topP <= 1)) {
    error = "sampling needs temperature >= 0, top-k >= 0 and 0 < top-p <= 1";
    return -1;
  }
  if (s.freeSlots.empty()) {
    error = "all " + std::to_string(s.info().max_batch()) +
            " sequence slots are taken (the artifact's max-batch)";
    return -1;
  }
  Sequence sequence;
  sequence.prompt = prompt;
  sequence.sampling = sampling;
  sequence.slot = s.freeSlots.back();
  s.freeSlots.pop_back();
  s.sequences.push_back(std::move(sequence));
  return int(s.sequences.size()) - 1;
}

bool Session::prefill(std::string &error) {
  Impl &s = *impl_;
  std::vector<PendingPrompt> pending;
  for (size_t id = 0; id < s.sequences.size(); ++id) {
    const Sequence &sequence = s.sequences[id];
    if (sequence.state != Sequence::State::Pending)
      continue;
    PendingPrompt prompt;
    prompt.sequence = int(id);
    prompt.slot = sequence.slot;
    prompt.prompt = &sequence.prompt;
    prompt.cached = sequence.cached;
    prompt.sampling = sequence.sampling;
    pending.push_back(prompt);
  }
  const auto start = std::chrono::steady_clock::now();
  for (const StepBatch &step : planPrefill(pending, s.info().max_tokens(), s.info().max_batch())) {
    if (!s.runStep(step, /*isDecode=*/false, error))
      return false;
    ++s.stats.prefillSteps;
    s.stats.prefillTokens += step.numTokens();
  }
  s.stats.prefillMs += millisecondsSince(start);
  return true;
}

bool Session::decode(std::string &error) {
  Impl &s = *impl_;
  StepBatch &batch = s.decodeBatch;
  batch.clear();
  for (size_t id = 0; id < s.sequences.size(); ++id) {
    if (!canDecode(int(id)))
      continue;
    const Sequence &sequence = s.sequences[id];
    StepRow row;
    row.sequence = int(id);
    row.slot = sequence.slot;
    row.position = sequence.cached;
    row.length = 1;
    row.sampling = sequence.sampling;
    row.counter = int32_t(sequence.generated.size());
    batch.rows.push_back(row);
    batch.tokens.push_back(sequence.generated.back());
  }
  if (batch.rows.empty())
    return true;
  const auto start = std::chrono::steady_clock::now();
  if (!s.runStep(batch, /*isDecode=*/true, error))
    return false;
  s.stats.decodeMs += millisecondsSince(start);
  ++s.stats.decodeSteps;
  s.stats.decodeTokens += batch.numSequences();
  return true;
}

void Session::finish(int id) {
  Sequence &sequence = impl_->sequences[size_t(id)];
  if (sequence.state == Sequence::State::Finished)
    return;
  sequence.state = Sequence::State::Finished;
  impl_->freeSlots.push_back(sequence.slot);
  sequence.slot = -1;
}

const std::vector<int32_t> &Session::generated(int id) const {
  return impl_->sequences[size_t(id)].generated;
}

bool Session::canDecode(int id) const {
  const Sequence &sequence = impl_->sequences[size_t(id)];
  return sequence.state == Sequence::State::Running &&
         sequence.cached < impl_->info().max_seq_len();
}

int Session::running() const {
  return int(std::count_if(impl_->sequences.begin(), impl_->sequences.end(),
                           [](const Sequence &sequence) {
                             return sequence.state == Sequence::State::Running;
                           }));
}

bool Session::setLogitsObserver(std::function<void(int, const float *)> observer,
                                std::string &error) {
  Impl &s = *impl_;
  const uint64_t bytes = uint64_t(s.info().max_batch()) * uint64_t(s.info().vocab_size()) * 4;
  if (observer && !s.hostLogits.get() && !s.hostLogits.allocate(bytes, error))
    return false;
  s.logitsObserver = std::move(observer);
  return true;
}

const SessionStats &Session::stats() const { return impl_->stats; }
