//===- ConfigFile.h - config.json with positions and typed fields -*- C++ -*-===//
//
// A Hugging Face config.json parsed with llvm::json, plus the line and column
// of every object key, so that a diagnostic about a field points at it.
// ConfigReader reads typed fields of one JSON object of the file.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_FRONTEND_CONFIGFILE_H
#define KILN_LIB_FRONTEND_CONFIGFILE_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/JSON.h"

#include <memory>
#include <optional>
#include <string>

namespace kiln {

/// Largest size (hidden size, heads, vocabulary, ...) a config may give.
/// Products of a few such sizes then stay far from int64 overflow.
constexpr int64_t kMaxConfigDimension = int64_t(1) << 24;

class ConfigFile {
public:
  /// Reads and parses `path`; on failure reports through `context` (a JSON
  /// syntax error at its line and column) and returns null.
  static std::unique_ptr<ConfigFile> load(llvm::StringRef path, mlir::MLIRContext *context);

  const std::string &path() const { return path_; }
  mlir::MLIRContext *context() const { return context_; }
  const llvm::json::Value &root() const { return root_; }

  /// Where the key `keyPath` ("rope_scaling.factor" for a nested one) is
  /// written; for an absent key, where the enclosing object's key is, or the
  /// start of the file.
  mlir::Location location(llvm::StringRef keyPath) const;

private:
  ConfigFile(std::string path, mlir::MLIRContext *context, llvm::json::Value root)
      : path_(std::move(path)), context_(context), root_(std::move(root)) {}
  void indexKeys(llvm::StringRef text);

  std::string path_;
  mlir::MLIRContext *context_;
  llvm::json::Value root_;
  llvm::StringMap<std::pair<unsigned, unsigned>> keyPositions_; ///< line, column (1-based)
};

/// Typed fields of one JSON object of a config file. Errors are sticky: a
/// getter that finds a bad field reports it, marks the reader (and every
/// reader sharing its error flag) failed and returns a placeholder, so that
/// one pass over a config reports every bad field. Absent and null fields are
/// the same to the optional getters, as they are to Hugging Face.
class ConfigReader {
public:
  /// Reads the top-level object of `file`; reports if it is not an object.
  explicit ConfigReader(const ConfigFile &file);

  bool failed() const { return *failed_; }
  const ConfigFile &file() const { return *file_; }
  /// The key as messages name it: "rope_scaling.factor" for nested objects.
  std::string fieldName(llvm::StringRef key) const { return prefix_ + key.str(); }
  mlir::Location location(llvm::StringRef key) const { return file_->location(fieldName(key)); }
  /// Reports an error at `key` and marks the reader failed.
  mlir::InFlightDiagnostic error(llvm::StringRef key) const;

  /// The key is written, even if its value is null.
  bool contains(llvm::StringRef key) const;
  /// The key is written with a non-null value.
  bool has(llvm::StringRef key) const;

  /// A positive integer of at most kMaxConfigDimension.
  int64_t requiredSize(llvm::StringRef key) const;
  std::optional<int64_t> optionalSize(llvm::StringRef key) const;
  int64_t sizeOr(llvm::StringRef key, int64_t fallback) const;
  /// A non-negative integer of at most kMaxConfigDimension.
  int64_t countOr(llvm::StringRef key, int64_t fallback) const;
  /// A positive number.
  double requiredPositive(llvm::StringRef key) const;
  std::optional<double> optionalPositive(llvm::StringRef key) const;
  double positiveOr(llvm::StringRef key, double fallback) const;
  bool boolOr(llvm::StringRef key, bool fallback) const;
  std::optional<std::string> optionalString(llvm::StringRef key) const;
  /// The strings of a list; nullopt when absent or on error.
  std::optional<std::vector<std::string>> optionalStringList(llvm::StringRef key) const;
  /// A nested object; nullopt when absent, null, or not an object (reported).
  std::optional<ConfigReader> optionalObject(llvm::StringRef key) const;

private:
  ConfigReader(const ConfigFile &file, const llvm::json::Object *object, std::string prefix,
               std::shared_ptr<bool> failed)
      : file_(&file), object_(object), prefix_(std::move(prefix)), failed_(std::move(failed)) {}
  /// The value of a non-null field, or null (reporting it if `required`).
  const llvm::json::Value *lookup(llvm::StringRef key, bool required) const;
  void typeError(llvm::StringRef key, llvm::StringRef expected,
                 const llvm::json::Value &value) const;
  std::optional<int64_t> integer(llvm::StringRef key, bool required, int64_t minimum) const;
  std::optional<double> positive(llvm::StringRef key, bool required) const;

  const ConfigFile *file_;
  const llvm::json::Object *object_; ///< null when the top level is not an object
  std::string prefix_;
  std::shared_ptr<bool> failed_;
};

} // namespace kiln

#endif // KILN_LIB_FRONTEND_CONFIGFILE_H
