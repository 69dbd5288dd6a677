//===- TfmDialect.h - the tfm dialect ---------------------------*- C++ -*-===//
#ifndef KILN_DIALECT_TFM_TFMDIALECT_H
#define KILN_DIALECT_TFM_TFMDIALECT_H

#include "mlir/IR/Dialect.h"

#include "kiln/Dialect/Tfm/TfmDialect.h.inc"

#endif // KILN_DIALECT_TFM_TFMDIALECT_H
