//===- ConfigFile.cpp - config.json with positions and typed fields -------===//

#include "ConfigFile.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

using namespace mlir;
using namespace kiln;

namespace {

/// Splits llvm::json's "[LINE:COL, byte=OFFSET]: MESSAGE" into the byte
/// offset and the message; nullopt if the text has another form.
std::optional<std::pair<size_t, StringRef>> splitJsonError(StringRef text) {
  size_t byteAt = text.find("byte=");
  size_t end = text.find("]: ");
  if (!text.starts_with("[") || byteAt == StringRef::npos || end == StringRef::npos || byteAt > end)
    return std::nullopt;
  size_t offset;
  if (text.slice(byteAt + 5, end).getAsInteger(10, offset))
    return std::nullopt;
  return std::make_pair(offset, text.drop_front(end + 3));
}

/// The index of the quote that closes the JSON string opening at `quote`
/// (the end of `text` if the string is unterminated).
size_t closingQuote(StringRef text, size_t quote) {
  size_t i = quote + 1;
  for (; i < text.size() && text[i] != '"'; ++i)
    if (text[i] == '\\')
      ++i;
  return std::min(i, text.size());
}

/// llvm::json parses nested lists and objects recursively; deeper nesting
/// than any config has would overflow the stack.
constexpr int kMaxJsonNesting = 256;

/// The byte offset where `text` nests lists and objects more than
/// kMaxJsonNesting deep, if it does.
std::optional<size_t> tooDeepAt(StringRef text) {
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      i = closingQuote(text, i);
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting)
        return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::nullopt;
}

/// 1-based line and column of byte `offset` of `text`.
std::pair<unsigned, unsigned> lineAndColumn(StringRef text, size_t offset) {
  offset = std::min(offset, text.size());
  StringRef before = text.take_front(offset);
  size_t lineStart = before.rfind('\n');
  lineStart = lineStart == StringRef::npos ? 0 : lineStart + 1;
  return {static_cast<unsigned>(before.count('\n') + 1),
          static_cast<unsigned>(offset - lineStart + 1)};
}

std::string describeValue(const llvm::json::Value &value) {
  switch (value.kind()) {
  case llvm::json::Value::Null:
    return "null";
  case llvm::json::Value::Boolean:
    return *value.getAsBoolean() ? "true" : "false";
  case llvm::json::Value::Number:
    return llvm::formatv("the number {0}", value).str();
  case llvm::json::Value::String:
    return llvm::formatv("the string {0}", value).str();
  case llvm::json::Value::Array:
    return "a list";
  case llvm::json::Value::Object:
    return "an object";
  }
  return "a value";
}

} // namespace

std::unique_ptr<ConfigFile> ConfigFile::load(StringRef path, MLIRContext *context) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    emitError(UnknownLoc::get(context)) << path << ": " << buffer.getError().message();
    return nullptr;
  }
  StringRef text = (*buffer)->getBuffer();
  if (std::optional<size_t> offset = tooDeepAt(text)) {
    auto [line, column] = lineAndColumn(text, *offset);
    emitError(FileLineColLoc::get(context, path, line, column))
        << "malformed JSON: lists and objects nested more than " << kMaxJsonNesting
        << " levels deep";
    return nullptr;
  }
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  if (!parsed) {
    std::string message = llvm::toString(parsed.takeError());
    unsigned line = 1, column = 1;
    StringRef what = message;
    if (auto split = splitJsonError(message)) {
      std::tie(line, column) = lineAndColumn(text, split->first);
      what = split->second;
    }
    emitError(FileLineColLoc::get(context, path, line, column)) << "malformed JSON: " << what;
    return nullptr;
  }
  std::unique_ptr<ConfigFile> file(new ConfigFile(path.str(), context, std::move(*parsed)));
  file->indexKeys(text);
  return file;
}

/// Records the position of every object key under its dotted path. The text
/// is valid JSON (llvm::json accepted it), so a flat scan suffices.
void ConfigFile::indexKeys(StringRef text) {
  struct Scope {
    bool isObject;
    std::string prefix; ///< dotted path of the object, "" or "rope_scaling."
  };
  SmallVector<Scope> scopes;
  std::string lastKey;    // the key whose value comes next
  bool expectKey = false; // inside an object, before a key
  unsigned line = 1, column = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      size_t end = closingQuote(text, i);
      if (expectKey && !scopes.empty() && scopes.back().isObject) {
        lastKey = scopes.back().prefix + text.slice(i + 1, end).str();
        keyPositions_.try_emplace(lastKey, line, column);
        expectKey = false;
      }
      column += end - i + 1;
      i = end;
      continue;
    }
    if (c == '{') {
      // Objects in lists get a prefix no lookup uses: errors point at the list.
      bool inObject = !scopes.empty() && scopes.back().isObject;
      scopes.push_back({true, scopes.empty() ? "" : inObject ? lastKey + "." : "[]."});
      expectKey = true;
    } else if (c == '[') {
      scopes.push_back({false, ""});
    } else if ((c == '}' || c == ']') && !scopes.empty()) {
      scopes.pop_back();
    } else if (c == ',') {
      expectKey = !scopes.empty() && scopes.back().isObject;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
}

Location ConfigFile::location(StringRef keyPath) const {
  // An absent key is reported at the object that lacks it.
  for (StringRef path = keyPath; !path.empty(); path = path.rsplit('.').first) {
    auto it = keyPositions_.find(path);
    if (it != keyPositions_.end())
      return FileLineColLoc::get(context_, path_, it->second.first, it->second.second);
    if (!path.contains('.'))
      break;
  }
  return FileLineColLoc::get(context_, path_, 1, 1);
}

//===----------------------------------------------------------------------===//
// ConfigReader
//===----------------------------------------------------------------------===//

ConfigReader::ConfigReader(const ConfigFile &file)
    : file_(&file), object_(file.root().getAsObject()), failed_(std::make_shared<bool>(false)) {
  if (!object_) {
    *failed_ = true;
    emitError(file.location("")) << "the config must be a JSON object, got "
                                 << describeValue(file.root());
  }
}

InFlightDiagnostic ConfigReader::error(StringRef key) const {
  *failed_ = true;
  return emitError(location(key));
}

bool ConfigReader::contains(StringRef key) const { return object_ && object_->get(key); }

bool ConfigReader::has(StringRef key) const {
  const llvm::json::Value *value = object_ ? object_->get(key) : nullptr;
  return value && value->kind() != llvm::json::Value::Null;
}

const llvm::json::Value *ConfigReader::lookup(StringRef key, bool required) const {
  if (!object_)
    return nullptr;
  if (has(key))
    return object_->get(key);
  if (required) {
    if (contains(key))
      error(key) << "field '" << fieldName(key) << "' must not be null";
    else
      error(key) << "missing required field '" << fieldName(key) << "'";
  }
  return nullptr;
}

void ConfigReader::typeError(StringRef key, StringRef expected,
                             const llvm::json::Value &value) const {
  error(key) << "field '" << fieldName(key) << "' must be " << expected << ", got "
             << describeValue(value);
}

std::optional<int64_t> ConfigReader::integer(StringRef key, bool required, int64_t minimum) const {
  const llvm::json::Value *value = lookup(key, required);
  if (!value)
    return std::nullopt;
  std::optional<int64_t> number = value->getAsInteger();
  if (!number || *number < minimum) {
    typeError(key, minimum > 0 ? "a positive integer" : "a non-negative integer", *value);
    return std::nullopt;
  }
  if (*number > kMaxConfigDimension) {
    error(key) << "field '" << fieldName(key) << "' is " << *number << ", more than kiln supports ("
               << kMaxConfigDimension << ")";
    return std::nullopt;
  }
  return number;
}

int64_t ConfigReader::requiredSize(StringRef key) const {
  return integer(key, true, 1).value_or(1);
}

std::optional<int64_t> ConfigReader::optionalSize(StringRef key) const {
  return integer(key, false, 1);
}

int64_t ConfigReader::sizeOr(StringRef key, int64_t fallback) const {
  return integer(key, false, 1).value_or(fallback);
}

int64_t ConfigReader::countOr(StringRef key, int64_t fallback) const {
  return integer(key, false, 0).value_or(fallback);
}

std::optional<double> ConfigReader::positive(StringRef key, bool required) const {
  const llvm::json::Value *value = lookup(key, required);
  if (!value)
    return std::nullopt;
  std::optional<double> number = value->getAsNumber();
  if (!number || !(*number > 0.0) || !std::isfinite(*number)) {
    typeError(key, "a positive number", *value);
    return std::nullopt;
  }
  return number;
}

double ConfigReader::requiredPositive(StringRef key) const {
  return positive(key, true).value_or(1.0);
}

std::optional<double> ConfigReader::optionalPositive(StringRef key) const {
  return positive(key, false);
}

double ConfigReader::positiveOr(StringRef key, double fallback) const {
  return positive(key, false).value_or(fallback);
}

bool ConfigReader::boolOr(StringRef key, bool fallback) const {
  const llvm::json::Value *value = lookup(key, false);
  if (!value)
    return fallback;
  if (std::optional<bool> flag = value->getAsBoolean())
    return *flag;
  typeError(key, "true or false", *value);
  return fallback;
}

std::optional<std::string> ConfigReader::optionalString(StringRef key) const {
  const llvm::json::Value *value = lookup(key, false);
  if (!value)
    return std::nullopt;
  if (std::optional<StringRef> text = value->getAsString())
    return text->str();
  typeError(key, "a string", *value);
  return std::nullopt;
}

std::optional<std::vector<std::string>> ConfigReader::optionalStringList(StringRef key) const {
  const llvm::json::Value *value = lookup(key, false);
  if (!value)
    return std::nullopt;
  const llvm::json::Array *array = value->getAsArray();
  if (!array) {
    typeError(key, "a list of strings", *value);
    return std::nullopt;
  }
  std::vector<std::string> strings;
  for (const llvm::json::Value &element : *array) {
    std::optional<StringRef> text = element.getAsString();
    if (!text) {
      error(key) << "field '" << fieldName(key) << "' must be a list of strings, but holds "
                 << describeValue(element);
      return std::nullopt;
    }
    strings.push_back(text->str());
  }
  return strings;
}

std::optional<ConfigReader> ConfigReader::optionalObject(StringRef key) const {
  const llvm::json::Value *value = lookup(key, false);
  if (!value)
    return std::nullopt;
  const llvm::json::Object *object = value->getAsObject();
  if (!object) {
    typeError(key, "an object", *value);
    return std::nullopt;
  }
  return ConfigReader(*file_, object, fieldName(key) + ".", failed_);
}
