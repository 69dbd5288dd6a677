//===- Model.cpp - an artifact opened on a GPU ----------------------------===//

#include "ModelImpl.h"

#include "Gemm.h"

#include "kernels/prelude.cuh"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

namespace {

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

/// Fails unless the GPU has room for the weights (with the weight program's
/// temporaries) and one session at the artifact's limits.
bool checkMemory(const Model::Impl &model, std::string &error) {
  const Artifact &artifact = *model.artifact;
  const uint64_t weights = artifact.get().weights_arena_bytes();
  const uint64_t kvCache = 2 * uint64_t(artifact.model().num_layers()) *
                           artifact.kvCacheBytesPerLayer();
  const uint64_t activations = artifact.activationArenaBytes();
  const uint64_t workspace = GemmRunner::kDefaultWorkspaceBytes;
  const uint64_t needed =
      weights + std::max(model.weightPlan.stagingPeakBytes, kvCache + activations + workspace);
  uint64_t free = 0, total = 0;
  if (!model.device->memoryInfo(free, total, error))
    return false;
  if (needed <= free)
    return true;
  error = "not enough GPU memory for " + artifact.name() + ": it needs " + formatBytes(needed) +
          " (weights " + formatBytes(weights) + ", KV cache " + formatBytes(kvCache) +
          ", activations " + formatBytes(activations) + ", cuBLASLt workspace " +
          formatBytes(workspace) + ", load-time temporaries " +
          formatBytes(model.weightPlan.stagingPeakBytes) + "), but " +
          model.device->description() + " has " + formatBytes(free) + " free of " +
          formatBytes(total) + "; compile with a smaller --max-batch or --max-seq-len";
  return false;
}

/// The bytes a launch argument of this kind passes.
size_t argumentBytes(fa::ArgKind kind) {
  switch (kind) {
  case fa::ArgKind::step:
    return sizeof(kiln::StepState);
  case fa::ArgKind::num_tokens:
    return sizeof(int);
  case fa::ArgKind::weight_tensor_map:
    return sizeof(CUtensorMap);
  default:
    return sizeof(void *);
  }
}

/// Checks each launch against its compiled kernel (parameter count and
/// sizes, threads per block, shared memory) and raises the kernel's dynamic
/// shared-memory limit where a launch needs more than the default 48 KiB.
bool checkLaunches(Model::Impl &model, std::string &error) {
  const fa::Artifact &artifact = model.artifact->get();
  const int sharedLimit = model.device->maxSharedBytesPerBlock();
  std::vector<uint32_t> sharedNeeded(model.kernels.size(), 0);
  for (const auto &[step, name] : {std::pair{artifact.prefill(), "prefill"},
                                   std::pair{artifact.decode(), "decode"},
                                   std::pair{artifact.decode_persistent(), "decode_persistent"}}) {
    if (!step)
      continue;
    for (flatbuffers::uoffset_t i = 0; i < step->commands()->size(); ++i) {
      const fa::Launch *launch = step->commands()->Get(i)->command_as_Launch();
      if (!launch)
        continue;
      const std::string kernelName = artifact.kernels()->Get(launch->kernel())->name()->str();
      const std::string where = std::string(name) + ".commands[" + std::to_string(i) +
                                "] (launch of '" + kernelName + "')";
      CUfunction function = model.kernels[launch->kernel()];
      const size_t argCount = launch->args() ? launch->args()->size() : 0;
      for (size_t a = 0; a <= argCount; ++a) {
        size_t offset = 0, size = 0;
        CUresult result = driver().cuFuncGetParamInfo(function, a, &offset, &size);
        if (a == argCount) {
          if (result == CUDA_SUCCESS) {
            error = where + ": passes " + std::to_string(argCount) +
                    " arguments, but the kernel takes more parameters";
            return false;
          }
          break;
        }
        const fa::ArgKind kind = launch->args()->Get(uint32_t(a))->kind();
        if (result != CUDA_SUCCESS) {
          error = where + ": passes " + std::to_string(argCount) + " arguments, but the kernel " +
                  "takes " + std::to_string(a);
          return false;
        }
        if (size != argumentBytes(kind)) {
          error = where + ": argument " + std::to_string(a) + " (" + fa::EnumNameArgKind(kind) +
                  ") is " + std::to_string(argumentBytes(kind)) +
                  " bytes, but the kernel's parameter is " + std::to_string(size);
          return false;
        }
      }
      const auto *block = launch->block();
      const int threads = int(block->Get(0) * block->Get(1) * block->Get(2));
      const int maxThreads = model.modules.modules[launch->kernel()].maxThreadsPerBlock[0];
      if (threads > maxThreads) {
        error = where + ": block of " + std::to_string(threads) +
                " threads, but the compiled kernel runs at most " + std::to_string(maxThreads);
        return false;
      }
      // The persistent program's shared memory decides whether it runs here
      // (choosePersistentDecode), not whether the model loads.
      if (step == artifact.decode_persistent())
        continue;
      if (launch->shared_bytes() > uint32_t(sharedLimit)) {
        error = where + ": " + std::to_string(launch->shared_bytes()) +
                " bytes of shared memory, but " + model.device->description() + " has " +
                std::to_string(sharedLimit) + " per block";
        return false;
      }
      sharedNeeded[launch->kernel()] = std::max(sharedNeeded[launch->kernel()],
                                                launch->shared_bytes());
    }
  }
  for (size_t k = 0; k < model.kernels.size(); ++k)
    if (sharedNeeded[k] > 48 * 1024 &&
        !cuOk(driver().cuFuncSetAttribute(model.kernels[k],
                                          CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          int(sharedNeeded[k])),
              "cuFuncSetAttribute", error))
      return false;
  return true;
}

/// For developers working on a generated kernel, as IREE's executable
/// substitution: with KILN_SUBSTITUTE_KERNELS=DIR, DIR/<kernel name>.cu (the
/// kernel's source as --emit=cuda prints it, without the prelude) replaces
/// the artifact's source of that kernel.
bool substituteKernelSource(const std::string &name, std::string &source, std::string &error) {
  const char *dir = std::getenv("KILN_SUBSTITUTE_KERNELS");
  if (!dir || !*dir)
    return true;
  const std::string path = std::string(dir) + "/" + name + ".cu";
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return true;
  std::ostringstream text;
  text << file.rdbuf();
  if (!file.good() && !file.eof()) {
    error = "KILN_SUBSTITUTE_KERNELS: cannot read " + path;
    return false;
  }
  source = text.str();
  std::fprintf(stderr, "kiln: kernel '%s' substituted from %s\n", name.c_str(), path.c_str());
  return true;
}

/// Decides whether this GPU runs the artifact's persistent decode program:
/// it must be new enough, and every block of its cooperative launches must
/// fit on the GPU at once.
bool choosePersistentDecode(Model::Impl &model, std::string &error) {
  const fa::Step *step = model.artifact->get().decode_persistent();
  LoadStats &stats = model.stats;
  if (!step) {
    stats.persistentDecodeNote = "the artifact has no persistent decode program";
    return true;
  }
  const int capability = model.device->major() * 10 + model.device->minor();
  if (capability < step->min_compute_capability()) {
    stats.persistentDecodeNote = "it needs sm_" + std::to_string(step->min_compute_capability()) +
                                 " or newer; " + model.device->description() + " is " +
                                 model.device->arch();
    return true;
  }
  for (const fa::CommandEntry *entry : *step->commands()) {
    const fa::Launch *launch = entry->command_as_Launch();
    if (!launch || launch->scale() != fa::GridScale::multiprocessors)
      continue;
    // Its static shared memory (known once compiled) and the launch's dynamic
    // shared memory must fit a block together.
    const CUfunction function = model.kernels[launch->kernel()];
    const std::string kernelName =
        model.artifact->get().kernels()->Get(launch->kernel())->name()->str();
    int staticBytes = 0;
    if (!cuOk(driver().cuFuncGetAttribute(&staticBytes, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                          function),
              "cuFuncGetAttribute", error))
      return false;
    const int sharedLimit = model.device->maxSharedBytesPerBlock();
    if (staticBytes + int(launch->shared_bytes()) > sharedLimit) {
      stats.persistentDecodeNote = "its kernel '" + kernelName + "' needs " +
                                   std::to_string(staticBytes + launch->shared_bytes()) +
                                   " bytes of shared memory; " + model.device->description() +
                                   " has " + std::to_string(sharedLimit) + " per block";
      return true;
    }
    if (launch->shared_bytes() > 48 * 1024 &&
        !cuOk(driver().cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          int(launch->shared_bytes())),
              "cuFuncSetAttribute", error))
      return false;
    int blocksPerSm = 0;
    const uint32_t threads = launch->block()->Get(0) * launch->block()->Get(1) *
                             launch->block()->Get(2);
    if (!cuOk(driver().cuOccupancyMaxActiveBlocksPerMultiprocessor(
                  &blocksPerSm, function, int(threads),
                  launch->shared_bytes()),
              "cuOccupancyMaxActiveBlocksPerMultiprocessor", error))
      return false;
    if (uint32_t(blocksPerSm) < launch->grid()->Get(0)) {
      stats.persistentDecodeNote = "its kernel '" + kernelName + "' needs " +
                                   std::to_string(launch->grid()->Get(0)) +
                                   " resident block(s) per SM; " + model.device->description() +
                                   " holds " + std::to_string(blocksPerSm);
      return true;
    }
  }
  stats.persistentDecode = true;
  stats.persistentDecodeTokens = step->max_tokens();
  return true;
}

} // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::open(const std::string &artifactPath, const ModelOptions &options,
                                   std::string &error) {
  auto impl = std::make_unique<Impl>();
  auto start = std::chrono::steady_clock::now();
  impl->artifact = Artifact::open(artifactPath, error);
  if (!impl->artifact)
    return nullptr;
  impl->stats.artifactMs = millisecondsSince(start);
  impl->weightPlan = planWeights(*impl->artifact);

  impl->device = Device::open(options.device, error);
  if (!impl->device ||
      !checkDeviceSupport(*impl->artifact, impl->device->major(), impl->device->minor(),
                          impl->device->description(), error) ||
      !checkMemory(*impl, error))
    return nullptr;

  start = std::chrono::steady_clock::now();
  std::vector<KernelSource> sources;
  for (const fa::Kernel *kernel : *impl->artifact->get().kernels()) {
    KernelSource source;
    source.label = "'" + kernel->name()->str() + "'";
    if (kernel->location() && kernel->location()->size())
      source.label += " (from " + kernel->location()->str() + ")";
    source.source = kernel->source()->str();
    if (!substituteKernelSource(kernel->name()->str(), source.source, error))
      return nullptr;
    source.entryPoints = {kernel->name()->str()};
    sources.push_back(std::move(source));
  }
  sources.push_back(WeightKernels::source());
  JitStats jit;
  if (!compileKernels(*impl->device, sources, KernelCache(options.cacheDir),
                      options.compileThreads, impl->modules, jit, error))
    return nullptr;
  impl->stats.jitMs = millisecondsSince(start);
  impl->stats.kernelsCompiled = jit.compiled;
  impl->stats.kernelsCached = jit.cached;
  for (size_t k = 0; k + 1 < impl->modules.modules.size(); ++k)
    impl->kernels.push_back(impl->modules.modules[k].functions[0]);
  impl->weightKernels.bind(impl->modules.modules.back());
  if (!checkLaunches(*impl, error) || !choosePersistentDecode(*impl, error))
    return nullptr;
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

bool Model::bindWeights(const std::string &checkpointPath,
                        const std::function<void(const LoadProgress &)> &progress,
                        std::string &error) {
  Impl &model = *impl_;
  if (model.weightsBound) {
    error = "weights are already bound";
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  Checkpoint checkpoint;
  if (!openCheckpoint(checkpointPath, checkpoint, error) ||
      !matchCheckpoint(*model.artifact, checkpoint, error) || !model.device->makeCurrent(error) ||
      !model.weights.allocate(model.artifact->get().weights_arena_bytes(), "the weights", error) ||
      !runWeightProgram(*model.device, *model.artifact, &checkpoint, 0, model.weightPlan,
                        model.weightKernels, model.weights.get(), progress, error))
    return false;
  model.weightsBound = true;
  model.stats.weightsMs = millisecondsSince(start);
  model.stats.checkpointBytes = model.weightPlan.checkpointBytes;
  return true;
}

bool Model::bindRandomWeights(uint64_t seed, std::string &error) {
  Impl &model = *impl_;
  if (model.weightsBound) {
    error = "weights are already bound";
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  if (!model.device->makeCurrent(error) ||
      !model.weights.allocate(model.artifact->get().weights_arena_bytes(), "the weights", error) ||
      !runWeightProgram(*model.device, *model.artifact, nullptr, seed, model.weightPlan,
                        model.weightKernels, model.weights.get(), nullptr, error))
    return false;
  model.weightsBound = true;
  model.stats.weightsMs = millisecondsSince(start);
  return true;
}

const Artifact &Model::artifact() const { return *impl_->artifact; }
const std::string &Model::deviceDescription() const { return impl_->device->description(); }
std::string Model::deviceArch() const { return impl_->device->arch(); }
const LoadStats &Model::stats() const { return impl_->stats; }
