//===- KernelCache.h - on-disk cache of compiled kernels --------*- C++ -*-===//
//
// NVRTC output is cached on disk so that a second load of an artifact skips
// compilation. A cubin is stored under a key that hashes everything that
// determines it: the full source (prelude included), the compile options, the
// NVRTC version and the device architecture. Host code only: no CUDA.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_KERNELCACHE_H
#define KILN_RUNTIME_KERNELCACHE_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256Hex(const std::string &data);

/// The cache key of one kernel: SHA-256 over the fields, each length-prefixed
/// so that no two different inputs hash the same text.
std::string kernelCacheKey(const std::string &source, const std::vector<std::string> &options,
                           int nvrtcMajor, int nvrtcMinor, const std::string &arch);

/// $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln; empty
/// when none of these is set (the cache is then off).
std::string defaultKernelCacheDir();

/// Cubins by key, one file each (<dir>/<key>.cubin). Writes go to a temporary
/// file renamed into place, so concurrent loads never see half a cubin.
class KernelCache {
public:
  /// An empty `dir` disables the cache.
  explicit KernelCache(std::string dir) : dir_(std::move(dir)) {}
  bool enabled() const { return !dir_.empty(); }
  const std::string &dir() const { return dir_; }
  std::string pathFor(const std::string &key) const;
  /// The cached cubin, or false when there is none.
  bool load(const std::string &key, std::vector<char> &cubin) const;
  /// Stores a cubin, creating the directory as needed.
  bool store(const std::string &key, const std::vector<char> &cubin, std::string &error) const;
  /// Drops an entry that turned out to be unusable.
  void remove(const std::string &key) const;

private:
  std::string dir_;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_KERNELCACHE_H
