//===- Device.h - one GPU, its context and memory ---------------*- C++ -*-===//
#ifndef KILN_RUNTIME_DEVICE_H
#define KILN_RUNTIME_DEVICE_H

#include "Driver.h"

#include "kiln/Runtime/Runtime.h"

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::runtime {

/// A GPU with its primary context current on the calling thread.
class Device {
public:
  /// Loads the driver and opens GPU `ordinal`.
  static std::unique_ptr<Device> open(int ordinal, std::string &error);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// Makes this device's context current on the calling thread.
  bool makeCurrent(std::string &error) const;
  /// Free and total device memory in bytes.
  bool memoryInfo(uint64_t &free, uint64_t &total, std::string &error) const;

  int ordinal() const { return ordinal_; }
  /// "GPU 0 (NVIDIA H100 80GB HBM3)".
  const std::string &description() const { return description_; }
  const std::string &name() const { return name_; }
  int major() const { return major_; }
  int minor() const { return minor_; }
  /// "sm_90".
  std::string arch() const;
  int multiprocessors() const { return multiprocessors_; }
  /// The most shared memory one block can use (after opting in).
  int maxSharedBytesPerBlock() const { return maxSharedBytesPerBlock_; }

private:
  Device() = default;
  int ordinal_ = 0;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  std::string name_, description_;
  int major_ = 0, minor_ = 0, multiprocessors_ = 0, maxSharedBytesPerBlock_ = 0;
};

/// Device memory, freed when the owner goes away.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer &&other) noexcept { *this = std::move(other); }
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;

  /// Allocates `bytes` (at least 1); `what` names the allocation in errors,
  /// which also say how much memory is free.
  bool allocate(uint64_t bytes, const char *what, std::string &error);
  void reset();
  CUdeviceptr get() const { return ptr_; }
  uint64_t size() const { return bytes_; }

private:
  CUdeviceptr ptr_ = 0;
  uint64_t bytes_ = 0;
};

/// Page-locked host memory, for asynchronous copies.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(PinnedBuffer &&other) noexcept { *this = std::move(other); }
  PinnedBuffer &operator=(PinnedBuffer &&other) noexcept;

  bool allocate(uint64_t bytes, std::string &error);
  void reset();
  uint8_t *get() const { return static_cast<uint8_t *>(ptr_); }
  uint64_t size() const { return bytes_; }

private:
  void *ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_DEVICE_H
