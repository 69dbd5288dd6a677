//===- TfmOps.h - tfm dialect ops, attributes and enums ---------*- C++ -*-===//
#ifndef KILN_DIALECT_TFM_TFMOPS_H
#define KILN_DIALECT_TFM_TFMOPS_H

#include "kiln/Dialect/Tfm/TfmDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/Dialect/Tfm/TfmEnums.h.inc"

namespace kiln::tfm {

/// The per-layer key/value cache that the runtime owns; KV-cache ops and the
/// fused attention read and write it.
struct KVCacheResource : mlir::SideEffects::Resource::Base<KVCacheResource> {
  llvm::StringRef getName() final { return "KVCache"; }
};

/// Marks ops evaluated once when the checkpoint is bound (weights and their
/// load-time transforms), never per step.
template <typename ConcreteType>
class LoadTimeTrait : public mlir::OpTrait::TraitBase<ConcreteType, LoadTimeTrait> {};

/// True when `value` is a weight, a load-time transform of weights, or a
/// layout op (reshape/transpose/slice/concat/split) of such values.
bool isLoadTimeValue(mlir::Value value);

} // namespace kiln::tfm

#define GET_ATTRDEF_CLASSES
#include "kiln/Dialect/Tfm/TfmAttrs.h.inc"

#define GET_OP_CLASSES
#include "kiln/Dialect/Tfm/TfmOps.h.inc"

#endif // KILN_DIALECT_TFM_TFMOPS_H
