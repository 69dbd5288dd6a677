//===- Device.cpp - one GPU, its context and memory -----------------------===//

#include "Device.h"

#include "kiln/Runtime/Artifact.h"

#include <cstdio>
#include <utility>

using namespace kiln::runtime;

std::unique_ptr<Device> Device::open(int ordinal, std::string &error) {
  const DriverApi *api = loadDriver(error);
  if (!api)
    return nullptr;
  int count = 0;
  if (!cuOk(api->cuDeviceGetCount(&count), "cuDeviceGetCount", error))
    return nullptr;
  if (count == 0) {
    error = "no CUDA GPU found";
    return nullptr;
  }
  if (ordinal < 0 || ordinal >= count) {
    error = "GPU " + std::to_string(ordinal) + " does not exist (this machine has " +
            std::to_string(count) + ")";
    return nullptr;
  }
  std::unique_ptr<Device> device(new Device);
  device->ordinal_ = ordinal;
  char name[256] = {};
  if (!cuOk(api->cuDeviceGet(&device->device_, ordinal), "cuDeviceGet", error) ||
      !cuOk(api->cuDeviceGetName(name, sizeof(name) - 1, device->device_), "cuDeviceGetName",
            error) ||
      !cuOk(api->cuDeviceGetAttribute(&device->major_,
                                      CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                      device->device_),
            "cuDeviceGetAttribute", error) ||
      !cuOk(api->cuDeviceGetAttribute(&device->minor_,
                                      CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                      device->device_),
            "cuDeviceGetAttribute", error) ||
      !cuOk(api->cuDeviceGetAttribute(&device->multiprocessors_,
                                      CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device->device_),
            "cuDeviceGetAttribute", error) ||
      !cuOk(api->cuDeviceGetAttribute(&device->maxSharedBytesPerBlock_,
                                      CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                      device->device_),
            "cuDeviceGetAttribute", error))
    return nullptr;
  device->name_ = name;
  device->description_ = "GPU " + std::to_string(ordinal) + " (" + device->name_ + ")";
  if (!cuOk(api->cuDevicePrimaryCtxRetain(&device->context_, device->device_),
            "cuDevicePrimaryCtxRetain", error))
    return nullptr;
  if (!device->makeCurrent(error))
    return nullptr;
  return device;
}

Device::~Device() {
  if (context_)
    driver().cuDevicePrimaryCtxRelease(device_);
}

bool Device::makeCurrent(std::string &error) const {
  return cuOk(driver().cuCtxSetCurrent(context_), "cuCtxSetCurrent", error);
}

bool Device::memoryInfo(uint64_t &free, uint64_t &total, std::string &error) const {
  size_t freeBytes = 0, totalBytes = 0;
  if (!cuOk(driver().cuMemGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo", error))
    return false;
  free = freeBytes;
  total = totalBytes;
  return true;
}

std::string Device::arch() const { return smName(major_, minor_); }

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  if (this != &other) {
    reset();
    ptr_ = std::exchange(other.ptr_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool DeviceBuffer::allocate(uint64_t bytes, const char *what, std::string &error) {
  reset();
  CUresult result = driver().cuMemAlloc(&ptr_, bytes ? bytes : 1);
  if (result == CUDA_SUCCESS) {
    bytes_ = bytes;
    return true;
  }
  ptr_ = 0;
  error = "cannot allocate " + formatBytes(bytes) + " of GPU memory for " + what + ": " +
          describe(result, "cuMemAlloc");
  size_t free = 0, total = 0;
  if (driver().cuMemGetInfo(&free, &total) == CUDA_SUCCESS)
    error += " (" + formatBytes(free) + " of " + formatBytes(total) + " free)";
  return false;
}

void DeviceBuffer::reset() {
  if (ptr_)
    driver().cuMemFree(ptr_);
  ptr_ = 0;
  bytes_ = 0;
}

PinnedBuffer &PinnedBuffer::operator=(PinnedBuffer &&other) noexcept {
  if (this != &other) {
    reset();
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool PinnedBuffer::allocate(uint64_t bytes, std::string &error) {
  reset();
  if (!cuOk(driver().cuMemAllocHost(&ptr_, bytes ? bytes : 1), "cuMemAllocHost", error)) {
    ptr_ = nullptr;
    return false;
  }
  bytes_ = bytes;
  return true;
}

void PinnedBuffer::reset() {
  if (ptr_)
    driver().cuMemFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

std::string kiln::runtime::formatBytes(uint64_t bytes) {
  char text[32];
  if (bytes >= (1ull << 30))
    std::snprintf(text, sizeof(text), "%.2f GiB", double(bytes) / double(1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(text, sizeof(text), "%.1f MiB", double(bytes) / double(1ull << 20));
  else
    std::snprintf(text, sizeof(text), "%.1f KiB", double(bytes) / 1024.0);
  return text;
}
