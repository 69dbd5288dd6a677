//===- Safetensors.cpp - safetensors checkpoint reader ----------*- C++ -*-===//
//
// File format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON object: {"__metadata__": {str: str}?,
//                           NAME: {"dtype": "F32", "shape": [..],
//                                  "data_offsets": [BEGIN, END]}, ...}
//             starting with '{', possibly padded with trailing spaces
//   rest      tensor data; data_offsets are relative to its start
//
// This file may use exceptions internally (nlohmann::json throws), but every
// public function catches them: callers include compiler code built with
// -fno-exceptions.
//
//===----------------------------------------------------------------------===//

#include "kiln/Support/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; big-endian hosts would need byte swaps");

namespace kiln {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

struct DTypeEntry {
  DType dtype;
  const char *name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},         {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},         {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},           {DType::U8, "U8", 1},           {DType::Bool, "BOOL", 1},
};

std::string knownDTypes() {
  std::string s;
  for (const DTypeEntry &e : kDTypes) {
    if (!s.empty())
      s += ", ";
    s += e.name;
  }
  return s;
}

/// Thrown (and caught in this file only) to report a problem; the message does
/// not include the file name, which the catcher prepends.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string &message) { throw Failure(message); }

std::string inQuotes(const std::string &s) { return "'" + s + "'"; }

/// A JSON value in an error message, shortened if long.
std::string brief(const json &value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 64)
    s = s.substr(0, 61) + "...";
  return s;
}

/// The JSON type of `value`, with an article: "an array", "a negative number".
std::string typeOf(const json &value) {
  switch (value.type()) {
  case json::value_t::object:
    return "an object";
  case json::value_t::array:
    return "an array";
  case json::value_t::string:
    return "a string";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::null:
    return "null";
  case json::value_t::number_float:
    return "a non-integer number";
  case json::value_t::number_integer:
    return value.get<int64_t>() < 0 ? "a negative number" : "a number";
  case json::value_t::number_unsigned:
    return "a number";
  default:
    return std::string("a ") + value.type_name();
  }
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string errnoText() { return std::strerror(errno); }

/// Closes a file descriptor on scope exit.
struct FdGuard {
  int fd;
  explicit FdGuard(int fd) : fd(fd) {}
  ~FdGuard() {
    if (fd >= 0)
      ::close(fd);
  }
  FdGuard(const FdGuard &) = delete;
  FdGuard &operator=(const FdGuard &) = delete;
};

/// Reads exactly `length` bytes at `offset`; fails on a short file.
void preadAll(int fd, uint8_t *buffer, uint64_t length, uint64_t offset) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t got = ::pread(fd, buffer + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      fail("read error: " + errnoText());
    }
    if (got == 0)
      fail("file ended after " + std::to_string(offset + done) + " bytes while reading its header " +
           "(was it truncated while being read?)");
    done += static_cast<uint64_t>(got);
  }
}

/// Opens `file` as a regular file and returns its descriptor and size.
int openRegular(const std::string &file, uint64_t &size) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail("cannot open: " + errnoText());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::string why = errnoText();
    ::close(fd);
    fail("cannot stat: " + why);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("is not a regular file");
  }
  size = static_cast<uint64_t>(st.st_size);
  return fd;
}

/// A value of JSON type `value` as a non-negative 64-bit integer.
bool asUnsigned(const json &value, uint64_t &out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

/// Product of `dims` with overflow detection; a zero dimension makes the
/// product zero whatever the others are.
bool checkedProduct(const std::vector<int64_t> &dims, uint64_t &out) {
  for (int64_t d : dims)
    if (d == 0) {
      out = 0;
      return true;
    }
  uint64_t n = 1;
  for (int64_t d : dims)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      return false;
  out = n;
  return true;
}

/// Headers and indexes need 3 levels; deeper nesting only costs memory.
constexpr int kMaxJsonDepth = 32;

/// Parses JSON text and reports the first key that appears twice in one object
/// (nlohmann::json would silently keep one of them). `duplicateDepth` is 1 for
/// keys of the top-level object. Throws json::parse_error on syntax errors.
json parseJsonNoDuplicates(const uint8_t *begin, const uint8_t *end, std::string &duplicateKey,
                           int &duplicateDepth, std::string &duplicateParent) {
  std::vector<std::set<std::string>> keysOfOpenObjects;
  std::vector<std::string> keyAtDepth;  // the last key seen at each depth
  duplicateKey.clear();
  duplicateDepth = 0;
  json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json &parsed) {
    switch (event) {
    case json::parse_event_t::object_start:
      if (depth >= kMaxJsonDepth)
        fail("JSON nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
      keysOfOpenObjects.emplace_back();
      break;
    case json::parse_event_t::array_start:
      if (depth >= kMaxJsonDepth)
        fail("JSON nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
      break;
    case json::parse_event_t::object_end:
      if (!keysOfOpenObjects.empty())
        keysOfOpenObjects.pop_back();
      break;
    case json::parse_event_t::key: {
      const std::string &key = parsed.get_ref<const std::string &>();
      if (static_cast<size_t>(depth) >= keyAtDepth.size())
        keyAtDepth.resize(static_cast<size_t>(depth) + 1);
      keyAtDepth[static_cast<size_t>(depth)] = key;
      if (!keysOfOpenObjects.empty() && !keysOfOpenObjects.back().insert(key).second &&
          duplicateKey.empty()) {
        duplicateKey = key;
        duplicateDepth = depth;
        duplicateParent = depth >= 2 ? keyAtDepth[1] : std::string();
      }
      break;
    }
    default:
      break;
    }
    return true;
  };
  return json::parse(begin, end, callback);
}

/// nlohmann's lexer takes a NUL byte for the end of the input and would accept
/// anything after it; valid JSON text never contains one (not even in strings).
void rejectNul(const uint8_t *begin, const uint8_t *end, const char *what) {
  const void *nul = std::memchr(begin, 0, static_cast<size_t>(end - begin));
  if (nul)
    fail(std::string(what) + " is not valid JSON (at byte " +
         std::to_string(static_cast<const uint8_t *>(nul) - begin + 1) + "): NUL byte");
}

/// nlohmann's what() without its "[json.exception.parse_error.101] " prefix.
std::string jsonMessage(const json::exception &e) {
  std::string s = e.what();
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find("] ");
    if (close != std::string::npos)
      s = s.substr(close + 2);
  }
  return s;
}

void parseHeaderImpl(const std::string &file, const uint8_t *bytes, size_t size, uint64_t fileSize,
                     Checkpoint &out) {
  if (fileSize < 8)
    fail("file is too short (" + std::to_string(fileSize) +
         " bytes) to be a safetensors file, which starts with an 8-byte header length");
  if (size < 8)
    fail("only " + std::to_string(size) + " bytes of the file were read, fewer than the 8-byte header length");
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i)
    headerLength = (headerLength << 8) | bytes[i];
  if (headerLength > kMaxSafetensorsHeaderSize)
    fail("header length " + std::to_string(headerLength) + " exceeds the limit of " +
         std::to_string(kMaxSafetensorsHeaderSize) + " bytes (corrupt, or not a safetensors file)");
  if (headerLength > fileSize - 8)
    fail("header length " + std::to_string(headerLength) + " is larger than the rest of the file (" +
         std::to_string(fileSize - 8) + " bytes after the 8-byte length; truncated, or not a safetensors file?)");
  if (headerLength > size - 8)
    fail("header length " + std::to_string(headerLength) + " but only " + std::to_string(size - 8) +
         " header bytes were read");
  if (headerLength == 0)
    fail("header is empty (header length 0)");
  const uint8_t *header = bytes + 8;
  if (header[0] != '{')
    fail("header does not start with '{' (not a safetensors file?)");

  rejectNul(header, header + headerLength, "header");
  json root;
  std::string duplicate, duplicateParent;
  int duplicateDepth = 0;
  try {
    root = parseJsonNoDuplicates(header, header + headerLength, duplicate, duplicateDepth, duplicateParent);
  } catch (const json::parse_error &e) {
    fail("header is not valid JSON (at byte " + std::to_string(e.byte) + " of the " +
         std::to_string(headerLength) + "-byte header): " + jsonMessage(e));
  }
  if (!duplicate.empty()) {
    if (duplicateDepth == 1)
      fail("tensor " + inQuotes(duplicate) + " is listed twice in the header");
    fail("header entry " + inQuotes(duplicateParent) + ": key " + inQuotes(duplicate) + " appears twice");
  }
  if (!root.is_object())
    fail("header must be a JSON object, not " + typeOf(root));

  const uint64_t dataStart = 8 + headerLength;
  const uint64_t dataSize = fileSize - dataStart;
  Checkpoint result;
  result.location = file;
  for (const auto &item : root.items()) {
    const std::string &name = item.key();
    const json &entry = item.value();
    if (name == "__metadata__") {
      if (!entry.is_object())
        fail("__metadata__ must be an object mapping strings to strings, not " + typeOf(entry));
      for (const auto &m : entry.items()) {
        if (!m.value().is_string())
          fail("__metadata__ must map strings to strings, but " + inQuotes(m.key()) + " is " +
               typeOf(m.value()) + " (" + brief(m.value()) + ")");
        result.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor " + inQuotes(name) + ": ";
    if (!entry.is_object())
      fail(where + "entry must be an object with \"dtype\", \"shape\" and \"data_offsets\", not " +
           typeOf(entry));

    TensorInfo info;
    info.name = name;
    info.file = file;

    auto dtypeIt = entry.find("dtype");
    if (dtypeIt == entry.end())
      fail(where + "missing \"dtype\"");
    if (!dtypeIt->is_string())
      fail(where + "\"dtype\" must be a string, not " + typeOf(*dtypeIt));
    const std::string &dtypeText = dtypeIt->get_ref<const std::string &>();
    std::optional<DType> dtype = parseDType(dtypeText);
    if (!dtype)
      fail(where + "unknown dtype " + inQuotes(dtypeText) + " (known: " + knownDTypes() + ")");
    info.dtype = *dtype;

    auto shapeIt = entry.find("shape");
    if (shapeIt == entry.end())
      fail(where + "missing \"shape\"");
    if (!shapeIt->is_array())
      fail(where + "\"shape\" must be a list of non-negative integers, not " + typeOf(*shapeIt));
    for (size_t i = 0; i < shapeIt->size(); ++i) {
      const json &dim = (*shapeIt)[i];
      uint64_t value = 0;
      if (!asUnsigned(dim, value))
        fail(where + "\"shape\" must be a list of non-negative integers, but element " + std::to_string(i) +
             " is " + brief(dim) + " (" + typeOf(dim) + ")");
      if (value > kInt64Max)
        fail(where + "\"shape\" element " + std::to_string(i) + " (" + std::to_string(value) +
             ") is too large");
      info.shape.push_back(static_cast<int64_t>(value));
    }
    uint64_t numElements = 0, numBytes = 0;
    if (!checkedProduct(info.shape, numElements) || numElements > kInt64Max ||
        __builtin_mul_overflow(numElements, dtypeSize(info.dtype), &numBytes))
      fail(where + "shape " + shapeString(info.shape) + " of dtype " + dtypeText +
           " is too large (its byte size overflows 64 bits)");

    auto offsetsIt = entry.find("data_offsets");
    if (offsetsIt == entry.end())
      fail(where + "missing \"data_offsets\"");
    uint64_t begin = 0, end = 0;
    if (!offsetsIt->is_array() || offsetsIt->size() != 2)
      fail(where + "\"data_offsets\" must be [begin, end], not " + brief(*offsetsIt));
    if (!asUnsigned((*offsetsIt)[0], begin) || !asUnsigned((*offsetsIt)[1], end))
      fail(where + "\"data_offsets\" must be two non-negative integers [begin, end], not " + brief(*offsetsIt));
    const std::string offsetsText = "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (end < begin)
      fail(where + "data_offsets " + offsetsText + " end before they begin");
    if (end - begin != numBytes)
      fail(where + "data_offsets " + offsetsText + " span " + std::to_string(end - begin) +
           " bytes, but shape " + shapeString(info.shape) + " of dtype " + dtypeText + " needs " +
           std::to_string(numBytes) + " (" + std::to_string(numElements) + " elements of " +
           std::to_string(dtypeSize(info.dtype)) + " bytes)");
    if (end > dataSize)
      fail(where + "data_offsets " + offsetsText + " extend past the end of the file (the data after the " +
           std::to_string(headerLength) + "-byte header holds " + std::to_string(dataSize) +
           " bytes; the file is " + std::to_string(fileSize) + " bytes)");
    info.dataBegin = dataStart + begin;
    info.dataEnd = dataStart + end;
    result.tensors.emplace(name, std::move(info));
  }

  // Tensors must not share bytes. Empty tensors occupy none, so they are exempt.
  std::vector<const TensorInfo *> byOffset;
  for (const auto &entry : result.tensors)
    if (entry.second.numBytes() > 0)
      byOffset.push_back(&entry.second);
  std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo *a, const TensorInfo *b) {
    return a->dataBegin != b->dataBegin ? a->dataBegin < b->dataBegin : a->name < b->name;
  });
  for (size_t i = 1; i < byOffset.size(); ++i) {
    const TensorInfo &a = *byOffset[i - 1], &b = *byOffset[i];
    if (b.dataBegin < a.dataEnd) {
      auto rel = [&](const TensorInfo &t) {
        return "[" + std::to_string(t.dataBegin - dataStart) + ", " + std::to_string(t.dataEnd - dataStart) + "]";
      };
      fail("tensors " + inQuotes(a.name) + " (data_offsets " + rel(a) + ") and " + inQuotes(b.name) +
           " (data_offsets " + rel(b) + ") overlap");
    }
  }
  out = std::move(result);
}

/// Reads a whole (small) file.
std::string readWholeFile(const std::string &file, uint64_t limit) {
  uint64_t size = 0;
  FdGuard fd(openRegular(file, size));
  if (size > limit)
    fail("file is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(limit));
  std::string text(size, '\0');
  preadAll(fd.fd, reinterpret_cast<uint8_t *>(&text[0]), size, 0);
  return text;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Opens a sharded checkpoint from its index. Errors are prefixed with the
/// index path by the caller, or name the shard themselves.
void openIndexImpl(const std::string &indexPath, Checkpoint &out) {
  std::string text = readWholeFile(indexPath, kMaxSafetensorsHeaderSize);
  json root;
  std::string duplicate, duplicateParent;
  int duplicateDepth = 0;
  try {
    const uint8_t *p = reinterpret_cast<const uint8_t *>(text.data());
    rejectNul(p, p + text.size(), "index");
    root = parseJsonNoDuplicates(p, p + text.size(), duplicate, duplicateDepth, duplicateParent);
  } catch (const json::parse_error &e) {
    fail("index is not valid JSON (at byte " + std::to_string(e.byte) + "): " + jsonMessage(e));
  }
  if (!root.is_object())
    fail("index must be a JSON object with a \"weight_map\", not " + typeOf(root));
  if (!duplicate.empty())
    fail(duplicateDepth == 2 && duplicateParent == "weight_map"
             ? "weight_map lists tensor " + inQuotes(duplicate) + " twice"
             : "key " + inQuotes(duplicate) + " appears twice in one object");
  auto mapIt = root.find("weight_map");
  if (mapIt == root.end())
    fail("no \"weight_map\" (is this a model.safetensors.index.json?)");
  if (!mapIt->is_object())
    fail("\"weight_map\" must be an object mapping tensor names to shard files, not " + typeOf(*mapIt));
  if (mapIt->empty())
    fail("\"weight_map\" is empty");

  const fs::path indexDir = fs::path(indexPath).parent_path();
  std::map<std::string, std::vector<std::string>> tensorsOfShard;  // shard path -> tensor names
  std::map<std::string, std::string> shardOfTensor;
  for (const auto &item : mapIt->items()) {
    const std::string &name = item.key();
    if (!item.value().is_string())
      fail("weight_map: tensor " + inQuotes(name) + " maps to " + typeOf(item.value()) +
           ", not a shard file name");
    const std::string &relative = item.value().get_ref<const std::string &>();
    fs::path rel(relative);
    bool escapes = relative.empty() || rel.is_absolute();
    for (const fs::path &part : rel)
      if (part == "..")
        escapes = true;
    if (escapes)
      fail("weight_map: tensor " + inQuotes(name) + " maps to " + inQuotes(relative) +
           ", which is not a file name relative to the index's directory");
    std::string shard = (indexDir / rel).lexically_normal().string();
    tensorsOfShard[shard].push_back(name);
    shardOfTensor[name] = shard;
  }

  std::map<std::string, Checkpoint> shards;
  for (const auto &entry : tensorsOfShard) {
    Checkpoint shard;
    std::string error;
    if (!readSafetensorsHeader(entry.first, shard, error))
      fail("shard of tensor " + inQuotes(entry.second.front()) + ": " + error);
    shards.emplace(entry.first, std::move(shard));
  }

  // Every tensor that the index names is in the shard it names.
  for (const auto &entry : tensorsOfShard) {
    const Checkpoint &shard = shards.at(entry.first);
    for (const std::string &name : entry.second)
      if (!shard.find(name))
        fail("tensor " + inQuotes(name) + " is mapped to " + entry.first + ", which has no such tensor");
  }
  // No tensor is in two shards.
  Checkpoint result;
  for (const auto &entry : shards)
    for (const auto &t : entry.second.tensors) {
      auto inserted = result.tensors.emplace(t.first, t.second);
      if (!inserted.second)
        fail("tensor " + inQuotes(t.first) + " is in two shards: " + inserted.first->second.file + " and " +
             entry.first);
    }
  // Every tensor of a shard is in the index.
  for (const auto &entry : shards) {
    size_t unlisted = 0;
    std::string first;
    for (const auto &t : entry.second.tensors)
      if (!shardOfTensor.count(t.first) && unlisted++ == 0)
        first = t.first;
    if (unlisted)
      fail("shard " + entry.first + " holds " + std::to_string(unlisted) +
           " tensor(s) that the index does not list (first: " + inQuotes(first) + ")");
  }
  result.metadata = shards.begin()->second.metadata;
  out = std::move(result);
}

template <typename T> T load(const uint8_t *p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

float f8e4m3ToFloat(uint8_t bits) {
  // E4M3FN: bias 7, no infinities, S.1111.111 is NaN.
  int exponent = (bits >> 3) & 0xF, mantissa = bits & 0x7;
  float magnitude;
  if (exponent == 0xF && mantissa == 0x7)
    magnitude = std::numeric_limits<float>::quiet_NaN();
  else if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  else
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
  return (bits & 0x80) ? -magnitude : magnitude;
}

float f8e5m2ToFloat(uint8_t bits) {
  // E5M2: IEEE-like, bias 15, with infinities and NaNs.
  int exponent = (bits >> 2) & 0x1F, mantissa = bits & 0x3;
  float magnitude;
  if (exponent == 0x1F)
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -16);
  else
    magnitude = std::ldexp(static_cast<float>(4 + mantissa), exponent - 17);
  return (bits & 0x80) ? -magnitude : magnitude;
}

struct F8Tables {
  float e4m3[256];
  float e5m2[256];
  F8Tables() {
    for (int i = 0; i < 256; ++i) {
      e4m3[i] = f8e4m3ToFloat(static_cast<uint8_t>(i));
      e5m2[i] = f8e5m2ToFloat(static_cast<uint8_t>(i));
    }
  }
};

const F8Tables &f8Tables() {
  static const F8Tables tables;
  return tables;
}

bool isIntegerType(DType dtype) {
  switch (dtype) {
  case DType::I64:
  case DType::I32:
  case DType::I16:
  case DType::I8:
  case DType::U8:
  case DType::Bool:
    return true;
  default:
    return false;
  }
}

}  // namespace

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

const char *dtypeName(DType dtype) {
  for (const DTypeEntry &e : kDTypes)
    if (e.dtype == dtype)
      return e.name;
  return "<invalid dtype>";
}

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeEntry &e : kDTypes)
    if (name == e.name)
      return e.dtype;
  return std::nullopt;
}

size_t dtypeSize(DType dtype) {
  for (const DTypeEntry &e : kDTypes)
    if (e.dtype == dtype)
      return e.size;
  return 0;
}

int64_t TensorInfo::numElements() const {
  uint64_t n = 0;
  if (!checkedProduct(shape, n) || n > kInt64Max)
    return -1;
  return static_cast<int64_t>(n);
}

const TensorInfo *Checkpoint::find(const std::string &name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

//===----------------------------------------------------------------------===//
// Headers and checkpoints
//===----------------------------------------------------------------------===//

bool parseSafetensorsHeader(const std::string &file, const uint8_t *bytes, size_t size, uint64_t fileSize,
                            Checkpoint &out, std::string &error) {
  try {
    parseHeaderImpl(file, bytes, size, fileSize, out);
    return true;
  } catch (const std::exception &e) {
    error = file + ": " + e.what();
  } catch (...) {
    error = file + ": unexpected error while parsing the header";
  }
  return false;
}

bool readSafetensorsHeader(const std::string &file, Checkpoint &out, std::string &error) {
  try {
    uint64_t fileSize = 0;
    FdGuard fd(openRegular(file, fileSize));
    std::vector<uint8_t> buffer(std::min<uint64_t>(fileSize, 8));
    preadAll(fd.fd, buffer.data(), buffer.size(), 0);
    if (buffer.size() == 8) {
      uint64_t headerLength = 0;
      for (int i = 7; i >= 0; --i)
        headerLength = (headerLength << 8) | buffer[i];
      // Read the header only when it is plausible; otherwise the parser
      // reports the bad length from the 8 bytes alone.
      if (headerLength <= kMaxSafetensorsHeaderSize && headerLength <= fileSize - 8) {
        buffer.resize(8 + headerLength);
        preadAll(fd.fd, buffer.data() + 8, headerLength, 8);
      }
    }
    return parseSafetensorsHeader(file, buffer.data(), buffer.size(), fileSize, out, error);
  } catch (const std::exception &e) {
    error = file + ": " + e.what();
  } catch (...) {
    error = file + ": unexpected error while reading the header";
  }
  return false;
}

bool openCheckpoint(const std::string &path, Checkpoint &out, std::string &error) {
  std::string errorPrefix = path;
  try {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
      fail(errnoText());
    std::string target = path;
    if (S_ISDIR(st.st_mode)) {
      const fs::path dir(path);
      std::error_code ec;
      if (fs::is_regular_file(dir / "model.safetensors.index.json", ec)) {
        target = (dir / "model.safetensors.index.json").string();
      } else if (fs::is_regular_file(dir / "model.safetensors", ec)) {
        target = (dir / "model.safetensors").string();
      } else {
        std::vector<std::string> indexes, files;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
          std::error_code typeError;
          if (!fs::is_regular_file(it->path(), typeError))
            continue;
          std::string name = it->path().filename().string();
          if (endsWith(name, ".safetensors.index.json"))
            indexes.push_back(name);
          else if (endsWith(name, ".safetensors"))
            files.push_back(name);
        }
        if (ec)
          fail("cannot list directory: " + ec.message());
        std::sort(indexes.begin(), indexes.end());
        std::sort(files.begin(), files.end());
        auto list = [](const std::vector<std::string> &names) {
          std::string s;
          for (size_t i = 0; i < names.size() && i < 5; ++i)
            s += (i ? ", " : "") + names[i];
          return names.size() > 5 ? s + ", ..." : s;
        };
        if (indexes.size() == 1)
          target = (dir / indexes[0]).string();
        else if (indexes.size() > 1)
          fail("directory holds several checkpoint indexes (" + list(indexes) +
               ") and no model.safetensors.index.json; name the one to use");
        else if (files.size() == 1)
          target = (dir / files[0]).string();
        else if (files.size() > 1)
          fail("directory holds " + std::to_string(files.size()) + " .safetensors files (" + list(files) +
               ") but no model.safetensors.index.json that says how they form one checkpoint");
        else
          fail("no checkpoint in this directory: looked for model.safetensors.index.json, "
               "model.safetensors, a single *.safetensors.index.json or a single *.safetensors file");
      }
    }
    Checkpoint result;
    if (endsWith(target, ".json")) {
      errorPrefix = target;
      openIndexImpl(target, result);
    } else if (!readSafetensorsHeader(target, result, error)) {
      return false;
    }
    result.location = path;
    out = std::move(result);
    return true;
  } catch (const std::exception &e) {
    error = errorPrefix + ": " + e.what();
  } catch (...) {
    error = errorPrefix + ": unexpected error while opening the checkpoint";
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Tensor data
//===----------------------------------------------------------------------===//

std::unique_ptr<MappedFile> MappedFile::open(const std::string &file, std::string &error) {
  static const uint8_t kEmpty = 0;
  void *mapping = MAP_FAILED;
  uint64_t size = 0;
  try {
    FdGuard fd(openRegular(file, size));
    if (size == 0)
      return std::unique_ptr<MappedFile>(new MappedFile(&kEmpty, 0));
    if (size > std::numeric_limits<size_t>::max())
      fail("file is too large to map");
    mapping = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (mapping == MAP_FAILED)
      fail("cannot mmap " + std::to_string(size) + " bytes: " + errnoText());
    return std::unique_ptr<MappedFile>(new MappedFile(static_cast<const uint8_t *>(mapping), size));
  } catch (const std::exception &e) {
    error = file + ": " + e.what();
  } catch (...) {
    error = file + ": unexpected error while mapping the file";
  }
  if (mapping != MAP_FAILED)
    ::munmap(mapping, static_cast<size_t>(size));
  return nullptr;
}

MappedFile::~MappedFile() {
  if (size_ > 0)
    ::munmap(const_cast<uint8_t *>(data_), static_cast<size_t>(size_));
}

const uint8_t *TensorReader::bytes(const TensorInfo &info, std::string &error) {
  try {
    auto it = files_.find(info.file);
    if (it == files_.end()) {
      std::unique_ptr<MappedFile> mapped = MappedFile::open(info.file, error);
      if (!mapped)
        return nullptr;
      it = files_.emplace(info.file, std::move(mapped)).first;
    }
    const MappedFile &file = *it->second;
    if (info.dataEnd < info.dataBegin || info.dataEnd > file.size()) {
      error = info.file + ": tensor " + inQuotes(info.name) + ": bytes [" + std::to_string(info.dataBegin) + ", " +
              std::to_string(info.dataEnd) + ") lie outside the file (" + std::to_string(file.size()) +
              " bytes); did it change after its header was read?";
      return nullptr;
    }
    return file.data() + info.dataBegin;
  } catch (const std::exception &e) {
    error = info.file + ": tensor " + inQuotes(info.name) + ": " + e.what();
  }
  return nullptr;
}

namespace {

/// Finds `name`, checks that its byte size agrees with its shape, and maps it.
const uint8_t *tensorData(const Checkpoint &checkpoint, TensorReader &reader, const std::string &name,
                          const TensorInfo *&info, size_t &count, std::string &error) {
  info = checkpoint.find(name);
  if (!info) {
    error = checkpoint.location + ": no tensor named " + inQuotes(name) + " in this checkpoint";
    return nullptr;
  }
  int64_t n = info->numElements();
  uint64_t numBytes = 0;
  if (n < 0 || __builtin_mul_overflow(static_cast<uint64_t>(n), dtypeSize(info->dtype), &numBytes) ||
      numBytes != info->numBytes()) {
    error = info->file + ": tensor " + inQuotes(name) + ": " + std::to_string(info->numBytes()) +
            " bytes do not match shape " + shapeString(info->shape) + " of dtype " + dtypeName(info->dtype);
    return nullptr;
  }
  count = static_cast<size_t>(n);
  return reader.bytes(*info, error);
}

}  // namespace

bool TensorReader::readAsFloat32(const std::string &name, std::vector<float> &out, std::string &error) {
  try {
    const TensorInfo *info = nullptr;
    size_t n = 0;
    const uint8_t *p = tensorData(checkpoint_, *this, name, info, n, error);
    if (!p)
      return false;
    out.resize(n);
    float *o = out.data();
    switch (info->dtype) {
    case DType::F64:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(load<double>(p + 8 * i));
      break;
    case DType::F32:
      if (n)
        std::memcpy(o, p, n * sizeof(float));
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i)
        o[i] = f16ToFloat(load<uint16_t>(p + 2 * i));
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i)
        o[i] = bf16ToFloat(load<uint16_t>(p + 2 * i));
      break;
    case DType::F8_E4M3: {
      const float *table = f8Tables().e4m3;
      for (size_t i = 0; i < n; ++i)
        o[i] = table[p[i]];
      break;
    }
    case DType::F8_E5M2: {
      const float *table = f8Tables().e5m2;
      for (size_t i = 0; i < n; ++i)
        o[i] = table[p[i]];
      break;
    }
    case DType::I64:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(load<int64_t>(p + 8 * i));
      break;
    case DType::I32:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(load<int32_t>(p + 4 * i));
      break;
    case DType::I16:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(load<int16_t>(p + 2 * i));
      break;
    case DType::I8:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case DType::U8:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<float>(p[i]);
      break;
    case DType::Bool:
      for (size_t i = 0; i < n; ++i)
        o[i] = p[i] ? 1.0f : 0.0f;
      break;
    }
    return true;
  } catch (const std::exception &e) {
    error = checkpoint_.location + ": tensor " + inQuotes(name) + ": " + e.what();
  }
  return false;
}

bool TensorReader::readAsInt64(const std::string &name, std::vector<int64_t> &out, std::string &error) {
  try {
    const TensorInfo *info = checkpoint_.find(name);
    if (info && !isIntegerType(info->dtype)) {
      error = info->file + ": tensor " + inQuotes(name) + " has dtype " + dtypeName(info->dtype) +
              ", which is not an integer type (reading as int64 needs I64, I32, I16, I8, U8 or BOOL)";
      return false;
    }
    size_t n = 0;
    const uint8_t *p = tensorData(checkpoint_, *this, name, info, n, error);
    if (!p)
      return false;
    out.resize(n);
    int64_t *o = out.data();
    switch (info->dtype) {
    case DType::I64:
      if (n)
        std::memcpy(o, p, n * sizeof(int64_t));
      break;
    case DType::I32:
      for (size_t i = 0; i < n; ++i)
        o[i] = load<int32_t>(p + 4 * i);
      break;
    case DType::I16:
      for (size_t i = 0; i < n; ++i)
        o[i] = load<int16_t>(p + 2 * i);
      break;
    case DType::I8:
      for (size_t i = 0; i < n; ++i)
        o[i] = static_cast<int8_t>(p[i]);
      break;
    case DType::U8:
      for (size_t i = 0; i < n; ++i)
        o[i] = p[i];
      break;
    case DType::Bool:
      for (size_t i = 0; i < n; ++i)
        o[i] = p[i] ? 1 : 0;
      break;
    default:
      error = info->file + ": tensor " + inQuotes(name) + " is not an integer tensor";
      return false;
    }
    return true;
  } catch (const std::exception &e) {
    error = checkpoint_.location + ": tensor " + inQuotes(name) + ": " + e.what();
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Scalar conversions
//===----------------------------------------------------------------------===//

namespace {
uint32_t floatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}
float bitsFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
}  // namespace

float bf16ToFloat(uint16_t bits) { return bitsFloat(static_cast<uint32_t>(bits) << 16); }

float f16ToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1F, mantissa = bits & 0x3FF;
  if (exponent == 0) {
    // Zero or subnormal: mantissa × 2^-24, exactly representable in float.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return bitsFloat(floatBits(magnitude) | sign);
  }
  if (exponent == 0x1F)
    return bitsFloat(sign | 0x7F800000 | (mantissa << 13));
  return bitsFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t floatToBf16(float value) {
  uint32_t bits = floatBits(value);
  if ((bits & 0x7FFFFFFF) > 0x7F800000)  // NaN: keep sign and top payload, force quiet
    return static_cast<uint16_t>((bits >> 16) | 0x0040);
  // Round to nearest even; a carry into the exponent is correct (up to inf).
  uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

uint16_t floatToF16(float value) {
  uint32_t bits = floatBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  uint32_t magnitude = bits & 0x7FFFFFFF;
  if (magnitude > 0x7F800000)  // NaN: keep top payload, force quiet
    return static_cast<uint16_t>(sign | 0x7E00 | ((magnitude >> 13) & 0x3FF));
  if (magnitude == 0x7F800000)
    return static_cast<uint16_t>(sign | 0x7C00);
  int exponent = static_cast<int>(magnitude >> 23) - 127;
  uint32_t mantissa = magnitude & 0x7FFFFF;
  if (exponent > 15)
    return static_cast<uint16_t>(sign | 0x7C00);
  if (exponent >= -14) {
    // Normal range: keep 10 of the 23 mantissa bits, round the other 13.
    uint32_t h = (static_cast<uint32_t>(exponent + 15) << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
      ++h;  // may carry into the exponent, up to infinity (0x7C00)
    return static_cast<uint16_t>(sign | h);
  }
  if (exponent < -25)  // below half the smallest subnormal (2^-24): rounds to zero
    return sign;
  // Subnormal: value = (2^23 + mantissa) × 2^(exponent-23), in units of 2^-24.
  uint32_t full = mantissa | 0x800000;
  int shift = -exponent - 1;  // 14..24
  uint32_t h = full >> shift;
  uint32_t rest = full & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1)))
    ++h;  // may become 0x400, the smallest normal: still the right encoding
  return static_cast<uint16_t>(sign | h);
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

bool writeSafetensors(const std::string &file, const std::vector<TensorToWrite> &tensors,
                      const std::map<std::string, std::string> &metadata, std::string &error) {
  std::FILE *stream = nullptr;
  bool created = false;
  try {
    std::set<std::string> names;
    for (const TensorToWrite &t : tensors) {
      const std::string where = "tensor " + inQuotes(t.name) + ": ";
      if (t.name.empty())
        fail("a tensor has an empty name");
      if (t.name == "__metadata__")
        fail("a tensor cannot be named __metadata__");
      if (!names.insert(t.name).second)
        fail(where + "listed twice");
      if (dtypeSize(t.dtype) == 0)
        fail(where + "invalid dtype");
      uint64_t numElements = 0, numBytes = 0;
      if (!checkedProduct(t.shape, numElements) ||
          __builtin_mul_overflow(numElements, dtypeSize(t.dtype), &numBytes))
        fail(where + "shape " + shapeString(t.shape) + " has a negative dimension or is too large");
      if (numBytes != t.bytes.size())
        fail(where + "has " + std::to_string(t.bytes.size()) + " bytes, but shape " + shapeString(t.shape) +
             " of dtype " + dtypeName(t.dtype) + " needs " + std::to_string(numBytes));
    }
    // Larger elements first, so that every tensor starts at a multiple of its
    // element size (the header is padded to a multiple of 8).
    std::vector<const TensorToWrite *> order;
    for (const TensorToWrite &t : tensors)
      order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorToWrite *a, const TensorToWrite *b) {
      size_t sa = dtypeSize(a->dtype), sb = dtypeSize(b->dtype);
      return sa != sb ? sa > sb : a->name < b->name;
    });

    json header = json::object();  // std::map-backed: keys come out sorted
    if (!metadata.empty()) {
      json meta = json::object();
      for (const auto &m : metadata)
        meta[m.first] = m.second;
      header["__metadata__"] = std::move(meta);
    }
    uint64_t offset = 0;
    for (const TensorToWrite *t : order) {
      json entry = json::object();
      entry["dtype"] = dtypeName(t->dtype);
      entry["shape"] = t->shape;
      entry["data_offsets"] = {offset, offset + t->bytes.size()};
      offset += t->bytes.size();
      header[t->name] = std::move(entry);
    }
    std::string text;
    try {
      text = header.dump();
    } catch (const json::type_error &e) {
      fail("tensor names and metadata must be valid UTF-8: " + jsonMessage(e));
    }
    while (text.size() % 8)
      text += ' ';

    uint8_t length[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<uint8_t>(n >> (8 * i));
    stream = std::fopen(file.c_str(), "wb");
    if (!stream)
      fail("cannot create: " + errnoText());
    created = true;
    bool ok = std::fwrite(length, 1, 8, stream) == 8 &&
              std::fwrite(text.data(), 1, text.size(), stream) == text.size();
    for (const TensorToWrite *t : order)
      ok = ok && (t->bytes.empty() || std::fwrite(t->bytes.data(), 1, t->bytes.size(), stream) == t->bytes.size());
    if (!ok)
      fail("write error: " + errnoText());
    std::FILE *s = stream;
    stream = nullptr;
    if (std::fclose(s) != 0)
      fail("write error: " + errnoText());
    return true;
  } catch (const std::exception &e) {
    error = file + ": " + e.what();
  } catch (...) {
    error = file + ": unexpected error while writing";
  }
  if (stream)
    std::fclose(stream);
  if (created)  // do not leave a partial file behind
    std::remove(file.c_str());
  return false;
}

}  // namespace kiln
