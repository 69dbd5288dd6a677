//===- Safetensors.h - safetensors checkpoint reader ------------*- C++ -*-===//
//
// Reads safetensors checkpoints: a single file, or a sharded checkpoint with
// model.safetensors.index.json. Headers are read without touching tensor data;
// data is memory-mapped on demand. Shared by the compiler (importer, reference
// evaluator) and the runtime, so it depends on neither MLIR nor LLVM. Errors
// are returned as text that names the file and the tensor or field at fault.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_SUPPORT_SAFETENSORS_H
#define KILN_SUPPORT_SAFETENSORS_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

/// Element types that can appear in a safetensors file.
enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, Bool };

/// "F32", "BF16", ... as spelled in safetensors headers.
const char *dtypeName(DType dtype);
std::optional<DType> parseDType(const std::string &name);
/// Size of one element in bytes.
size_t dtypeSize(DType dtype);

/// One tensor of a checkpoint, as its header describes it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string file;        ///< the .safetensors file that holds it
  uint64_t dataBegin = 0;  ///< byte offset in that file (header included)
  uint64_t dataEnd = 0;    ///< one past the last byte
  /// Product of `shape` (1 for a 0-d tensor); -1 if a dimension is negative or
  /// the product overflows (never the case for a validated header).
  int64_t numElements() const;
  uint64_t numBytes() const { return dataEnd - dataBegin; }
};

/// The tensors of a checkpoint: one file or all shards of a sharded one.
struct Checkpoint {
  std::string location;  ///< what the user named: a file or a directory
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  ///< __metadata__ of the (first) file
  const TensorInfo *find(const std::string &name) const;
};

/// Reads the header of one .safetensors file. Validates the 8-byte length, the
/// JSON, every entry's dtype/shape/data_offsets, that offsets agree with
/// shape × dtype size, lie inside the file and do not overlap.
/// Returns false and sets `error` ("FILE: ...") on any problem.
/// On success `out` is replaced (location = file); on failure it is unchanged.
bool readSafetensorsHeader(const std::string &file, Checkpoint &out, std::string &error);

/// The in-memory core of readSafetensorsHeader: `bytes` holds the start of a
/// file (at least the 8-byte length and the header; possibly the whole file)
/// whose total size is `fileSize`. `file` is only used to name it in errors
/// and as TensorInfo::file. Never reads past `bytes + size`.
bool parseSafetensorsHeader(const std::string &file, const uint8_t *bytes, size_t size,
                            uint64_t fileSize, Checkpoint &out, std::string &error);

/// Largest header that readSafetensorsHeader accepts (as the reference
/// implementation does): a longer one means a corrupt or hostile file.
constexpr uint64_t kMaxSafetensorsHeaderSize = 100000000;

/// Opens a checkpoint from a .safetensors file, a model.safetensors.index.json,
/// or a directory holding either (or exactly one *.safetensors file). Reads
/// headers only. Every tensor of a sharded checkpoint must be in the shard the
/// index names, and every tensor of a shard must be in the index.
bool openCheckpoint(const std::string &path, Checkpoint &out, std::string &error);

/// A read-only memory mapping of a whole file.
class MappedFile {
public:
  static std::unique_ptr<MappedFile> open(const std::string &file, std::string &error);
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }

private:
  MappedFile(const uint8_t *data, uint64_t size) : data_(data), size_(size) {}
  const uint8_t *data_;
  uint64_t size_;
};

/// Gives the bytes of checkpoint tensors, mapping each shard once.
class TensorReader {
public:
  explicit TensorReader(const Checkpoint &checkpoint) : checkpoint_(checkpoint) {}
  /// Raw bytes of `info` (numBytes() long), or nullptr with `error` set.
  const uint8_t *bytes(const TensorInfo &info, std::string &error);
  /// The tensor converted to float32 (F64/F32/F16/BF16/F8/int types).
  bool readAsFloat32(const std::string &name, std::vector<float> &out, std::string &error);
  /// The tensor converted to int64 (integer types only).
  bool readAsInt64(const std::string &name, std::vector<int64_t> &out, std::string &error);

private:
  const Checkpoint &checkpoint_;
  std::map<std::string, std::unique_ptr<MappedFile>> files_;
};

/// Scalar conversions used by readers and writers of half-precision data.
float bf16ToFloat(uint16_t bits);
float f16ToFloat(uint16_t bits);
uint16_t floatToBf16(float value);  ///< round to nearest even
uint16_t floatToF16(float value);   ///< round to nearest even

/// Writes a safetensors file (used by tests and tools that make checkpoints).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
bool writeSafetensors(const std::string &file, const std::vector<TensorToWrite> &tensors,
                      const std::map<std::string, std::string> &metadata, std::string &error);

}  // namespace kiln

#endif  // KILN_SUPPORT_SAFETENSORS_H
