//===- Jit.cpp - NVRTC compilation with an on-disk cubin cache ------------===//

#include "Jit.h"

#include "kiln/Runtime/Prelude.h"
#include "kiln/Support/CudaArch.h"

#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace kiln::runtime;

namespace {

/// Where cuda_bf16.h and friends live; NVRTC needs them for the prelude.
std::string findCudaIncludeDir() {
  std::vector<std::string> candidates;
  for (const char *variable : {"KILN_CUDA_INCLUDE_DIR", "CUDA_HOME", "CUDA_PATH"})
    if (const char *value = std::getenv(variable); value && *value)
      candidates.push_back(std::string(value) +
                           (std::string(variable) == "KILN_CUDA_INCLUDE_DIR" ? "" : "/include"));
  candidates.push_back(KILN_CUDA_INCLUDE_DIR);  // where the runtime was built
  candidates.push_back("/usr/local/cuda/include");
  std::error_code ignored;
  for (const std::string &dir : candidates)
    if (std::filesystem::exists(dir + "/cuda_bf16.h", ignored))
      return dir;
  return "";
}

struct Compilation {
  const KernelSource *source = nullptr;
  std::string fullSource, key;
  std::vector<char> cubin;
  bool fromCache = false;
  std::string error;
};

std::string nvrtcMessage(nvrtcResult result, const char *what) {
  return std::string(what) + ": " + nvrtcGetErrorString(result);
}

/// NVRTC output for one source, or `error` with the compiler's log.
void compile(Compilation &job, const std::vector<std::string> &options) {
  nvrtcProgram program;
  const std::string fileName = job.source->entryPoints.empty() ? "kernel.cu"
                                                               : job.source->entryPoints[0] + ".cu";
  nvrtcResult result = nvrtcCreateProgram(&program, job.fullSource.c_str(), fileName.c_str(), 0,
                                          nullptr, nullptr);
  if (result != NVRTC_SUCCESS) {
    job.error = nvrtcMessage(result, "nvrtcCreateProgram");
    return;
  }
  std::vector<const char *> optionPointers;
  for (const std::string &option : options)
    optionPointers.push_back(option.c_str());
  result = nvrtcCompileProgram(program, int(optionPointers.size()), optionPointers.data());
  if (result != NVRTC_SUCCESS) {
    size_t logSize = 0;
    std::string log;
    if (nvrtcGetProgramLogSize(program, &logSize) == NVRTC_SUCCESS && logSize > 1) {
      log.resize(logSize);
      nvrtcGetProgramLog(program, log.data());
      log.resize(logSize - 1);
    }
    // Keep the exact text NVRTC saw, so the line numbers in the log mean something.
    const std::string saved = (std::filesystem::temp_directory_path() / ("kiln-failed-" + fileName))
                                  .string();
    std::ofstream(saved) << job.fullSource;
    job.error = "NVRTC failed to compile kernel " + job.source->label + " (" +
                nvrtcGetErrorString(result) + "); source saved as " + saved + "\n" + log;
    nvrtcDestroyProgram(&program);
    return;
  }
  size_t size = 0;
  result = nvrtcGetCUBINSize(program, &size);
  if (result == NVRTC_SUCCESS) {
    job.cubin.resize(size);
    result = nvrtcGetCUBIN(program, job.cubin.data());
  }
  if (result != NVRTC_SUCCESS)
    job.error = nvrtcMessage(result, "nvrtcGetCUBIN") + " for kernel " + job.source->label;
  nvrtcDestroyProgram(&program);
}

} // namespace

ModuleSet::~ModuleSet() {
  for (LoadedModule &loaded : modules)
    if (loaded.module)
      driver().cuModuleUnload(loaded.module);
}

bool kiln::runtime::compileKernels(const Device &device, const std::vector<KernelSource> &sources,
                                   const KernelCache &cache, int threads, ModuleSet &out,
                                   JitStats &stats, std::string &error) {
  const std::string includeDir = findCudaIncludeDir();
  if (includeDir.empty()) {
    error = "cannot find the CUDA headers NVRTC needs (cuda_bf16.h); set KILN_CUDA_INCLUDE_DIR "
            "to the CUDA toolkit's include directory";
    return false;
  }
  const std::string arch = nvrtcArchitecture(device.arch());
  const std::vector<std::string> options = {"--gpu-architecture=" + arch, "-std=c++17",
                                            "--include-path=" + includeDir};
  int nvrtcMajor = 0, nvrtcMinor = 0;
  if (nvrtcResult result = nvrtcVersion(&nvrtcMajor, &nvrtcMinor); result != NVRTC_SUCCESS) {
    error = nvrtcMessage(result, "nvrtcVersion");
    return false;
  }

  std::vector<Compilation> jobs(sources.size());
  std::vector<size_t> misses;
  for (size_t i = 0; i < sources.size(); ++i) {
    Compilation &job = jobs[i];
    job.source = &sources[i];
    job.fullSource = std::string(kPreludeSource) + "\n" + sources[i].source;
    job.key = kernelCacheKey(job.fullSource, options, nvrtcMajor, nvrtcMinor, arch);
    job.fromCache = cache.load(job.key, job.cubin);
    if (!job.fromCache)
      misses.push_back(i);
  }

  auto compileMisses = [&](const std::vector<size_t> &indices) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t n; (n = next++) < indices.size();)
        compile(jobs[indices[n]], options);
    };
    const size_t count =
        std::min(indices.size(), size_t(threads > 0 ? threads
                                                    : std::max(1u, std::thread::hardware_concurrency())));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < count; ++t)
      pool.emplace_back(worker);
    worker();
    for (std::thread &thread : pool)
      thread.join();
  };
  compileMisses(misses);

  out.modules.assign(sources.size(), LoadedModule());
  for (size_t i = 0; i < jobs.size(); ++i) {
    Compilation &job = jobs[i];
    if (!job.error.empty()) {
      error = job.error;
      return false;
    }
    LoadedModule &loaded = out.modules[i];
    CUresult result = driver().cuModuleLoadData(&loaded.module, job.cubin.data());
    if (result != CUDA_SUCCESS && job.fromCache) {
      // A damaged cache entry: compile it again.
      cache.remove(job.key);
      job.fromCache = false;
      job.cubin.clear();
      compile(job, options);
      if (!job.error.empty()) {
        error = job.error;
        return false;
      }
      result = driver().cuModuleLoadData(&loaded.module, job.cubin.data());
    }
    if (result != CUDA_SUCCESS) {
      loaded.module = nullptr;
      error = describe(result, "cuModuleLoadData") + " for kernel " + job.source->label;
      return false;
    }
    if (!job.fromCache) {
      std::string cacheError;
      if (!cache.store(job.key, job.cubin, cacheError))
        std::fprintf(stderr, "kiln: warning: %s\n", cacheError.c_str());
    }
    (job.fromCache ? stats.cached : stats.compiled)++;
    for (const std::string &entry : job.source->entryPoints) {
      CUfunction function = nullptr;
      if (driver().cuModuleGetFunction(&function, loaded.module, entry.c_str()) != CUDA_SUCCESS) {
        error = "kernel " + job.source->label + " defines no extern \"C\" __global__ function '" +
                entry + "'";
        return false;
      }
      // Also loads the function now rather than lazily at its first launch,
      // which could fall inside a CUDA Graph capture.
      int maxThreads = 0;
      if (!cuOk(driver().cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                            function),
                "cuFuncGetAttribute", error))
        return false;
      loaded.functions.push_back(function);
      loaded.maxThreadsPerBlock.push_back(maxThreads);
    }
  }
  return true;
}
