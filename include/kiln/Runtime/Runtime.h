//===- Runtime.h - running kiln artifacts on a GPU --------------*- C++ -*-===//
//
// The runtime's API. A Model is an artifact opened on one GPU: verified, its
// kernels compiled with NVRTC (or loaded from the on-disk cache), and, after
// bindWeights, its weights uploaded once. A Session runs sequences on it: it
// owns a KV cache sized from the artifact's limits, prefills a batch of
// prompts of any lengths and decodes token by token, sampling on the GPU.
// Decode steps are captured as one CUDA Graph per batch size and replayed.
//
//   std::string error;
//   auto model = Model::open("model.kiln", ModelOptions(), error);
//   model->bindWeights("checkpoint/", nullptr, error);
//   auto session = Session::create(*model, SessionOptions(), error);
//   std::vector<Generation> out;
//   generate(*session, {{1, 2, 3}}, SamplingParams(), GenerateOptions(), out, error);
//
// Every call returns false (or null) with `error` set, never aborts.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_RUNTIME_H
#define KILN_RUNTIME_RUNTIME_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/KernelCache.h"
#include "kiln/Runtime/StepPlan.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

struct ModelOptions {
  int device = 0;
  /// Where compiled kernels are cached; empty turns the cache off.
  std::string cacheDir = defaultKernelCacheDir();
  /// Threads for NVRTC; 0: one per CPU core.
  int compileThreads = 0;
};

struct LoadProgress {
  uint64_t bytesDone = 0, bytesTotal = 0;
  size_t tensorsDone = 0, tensorsTotal = 0;
};

struct LoadStats {
  double artifactMs = 0, jitMs = 0, weightsMs = 0;
  int kernelsCompiled = 0, kernelsCached = 0;
  uint64_t checkpointBytes = 0;
  /// Whether decode steps of up to persistentDecodeTokens tokens run as the
  /// artifact's persistent decode program on this GPU; if not, why
  /// (persistentDecodeNote: no such program, an older GPU, too little shared
  /// memory).
  bool persistentDecode = false;
  int persistentDecodeTokens = 0;
  std::string persistentDecodeNote;
};

class Model {
public:
  /// Reads and verifies the artifact, opens the GPU (sm_80 or newer, one the
  /// artifact was compiled for), checks that the model and a session at the
  /// artifact's limits fit in free GPU memory, and compiles the kernels.
  static std::unique_ptr<Model> open(const std::string &artifactPath, const ModelOptions &options,
                                     std::string &error);
  ~Model();

  /// Uploads weights from a checkpoint: a .safetensors file, an index
  /// (model.safetensors.index.json) or a directory with either. `progress`
  /// (may be empty) is called as tensors arrive.
  bool bindWeights(const std::string &checkpointPath,
                   const std::function<void(const LoadProgress &)> &progress, std::string &error);

  /// Binds random weights made on the GPU instead of a checkpoint's (for
  /// benchmarks): the weight program runs as usual on random tensors.
  bool bindRandomWeights(uint64_t seed, std::string &error);

  const Artifact &artifact() const;
  /// "GPU 0 (NVIDIA H100 80GB HBM3)".
  const std::string &deviceDescription() const;
  /// "sm_90".
  std::string deviceArch() const;
  const LoadStats &stats() const;

  struct Impl;
  Impl &impl() { return *impl_; }

private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
  /// Replay decode steps from CUDA Graphs (one per batch size); false runs
  /// every launch eagerly, with the same results.
  bool useGraphs = true;
  /// Wait for each command and report the first that fails, by name (slow;
  /// for debugging kernels; implies useGraphs = false).
  bool syncEachCommand = false;
  /// On sm_90+, let each kernel that waits for its predecessor itself start
  /// while that one drains (programmatic dependent launch); false serializes
  /// every launch, with the same results. The environment variable
  /// KILN_NO_PDL=1 also turns it off, to compare.
  bool programmaticLaunch = true;
  /// Run decode steps as the artifact's persistent decode program where the
  /// model can (LoadStats::persistentDecode); false runs them kernel by
  /// kernel, with the same results up to rounding. The environment variable
  /// KILN_NO_PERSISTENT=1 also turns it off, to compare.
  bool persistentDecode = true;
};

struct SessionStats {
  int prefillSteps = 0, prefillTokens = 0;
  double prefillMs = 0;
  int decodeSteps = 0, decodeTokens = 0;
  double decodeMs = 0;
  /// Decode steps that ran as the persistent decode program.
  int persistentDecodeSteps = 0;
  int graphsCaptured = 0;
  /// GPU time of the last step (prefill chunk or decode), from CUDA events
  /// around its uploads, launches and the read-back of the sampled tokens.
  double lastStepGpuMs = 0;
};

/// A model's state for a batch of sequences. A session must not outlive its
/// Model; several sessions of one model each have their own KV cache.
class Session {
public:
  /// Allocates the KV cache, the activation arena and the step state.
  static std::unique_ptr<Session> create(Model &model, const SessionOptions &options,
                                         std::string &error);
  ~Session();

  /// Adds a sequence to be prefilled; returns its id, or -1 with `error` set
  /// (an empty prompt, one longer than max-seq-len, a token id outside the
  /// vocabulary, or every KV-cache slot taken).
  int add(const std::vector<int32_t> &prompt, const SamplingParams &sampling, std::string &error);
  /// Prefills every sequence added since the last call, chunking prompts
  /// into steps of at most max_tokens tokens; each sequence then has its
  /// first generated token.
  bool prefill(std::string &error);
  /// One decode step: one more token for every running sequence.
  bool decode(std::string &error);
  /// Stops a sequence and frees its KV-cache slot.
  void finish(int sequence);

  /// Tokens generated so far.
  const std::vector<int32_t> &generated(int sequence) const;
  /// Whether the sequence can take another decode step (not finished, and
  /// its KV cache not full).
  bool canDecode(int sequence) const;
  /// Sequences that are neither finished nor waiting for prefill.
  int running() const;

  /// Called after each step with the logits row (vocab_size floats, on the
  /// host) from which `sequence` sampled its new token. Costs a copy per step.
  bool setLogitsObserver(std::function<void(int sequence, const float *logits)> observer,
                         std::string &error);

  const SessionStats &stats() const;

  struct Impl;

private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct GenerateOptions {
  int maxNewTokens = 16;
  /// Sampling one of these ends a sequence (the stop token is kept).
  std::vector<int32_t> stopIds;
};

struct Generation {
  enum class Stop { MaxNewTokens, StopToken, MaxSeqLen };
  std::vector<int32_t> tokens;
  Stop stop = Stop::MaxNewTokens;
};

/// Runs prompts to completion on `session`: one prefill, then decode steps
/// until each sequence has maxNewTokens tokens, sampled a stop token or filled
/// max-seq-len. At most max_batch prompts at once.
bool generate(Session &session, const std::vector<std::vector<int32_t>> &prompts,
              const SamplingParams &sampling, const GenerateOptions &options,
              std::vector<Generation> &out, std::string &error);

/// "1.23 GiB", "512.0 MiB", "3.5 KiB".
std::string formatBytes(uint64_t bytes);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_RUNTIME_H
