//===- Architectures.h - Hugging Face classes kiln can import ---*- C++ -*-===//
#ifndef KILN_LIB_FRONTEND_ARCHITECTURES_H
#define KILN_LIB_FRONTEND_ARCHITECTURES_H

#include "ConfigFile.h"
#include "ModelDescription.h"

#include <string>
#include <vector>

namespace kiln {

/// Fills `model` from a config by its `architectures` entry. Reports unknown
/// architectures, missing or mistyped fields and inconsistent sizes at the
/// field in config.json.
mlir::LogicalResult describeModel(const ConfigReader &config, ModelDescription &model);

/// Names of the supported Hugging Face classes, in table order.
std::vector<std::string> architectureNames();

} // namespace kiln

#endif // KILN_LIB_FRONTEND_ARCHITECTURES_H
