//===- TfmDialect.cpp - the tfm dialect -----------------------------------===//

#include "kiln/Dialect/Tfm/TfmDialect.h"
#include "kiln/Dialect/Tfm/TfmOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln::tfm;

#include "kiln/Dialect/Tfm/TfmDialect.cpp.inc"
#include "kiln/Dialect/Tfm/TfmEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "kiln/Dialect/Tfm/TfmAttrs.cpp.inc"

void TfmDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "kiln/Dialect/Tfm/TfmAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "kiln/Dialect/Tfm/TfmOps.cpp.inc"
      >();
}

LogicalResult RopeAttr::verify(function_ref<InFlightDiagnostic()> emitError, RopeStyle style,
                               int64_t rotaryDim, APFloat thetaValue, RopeScaling scaling,
                               APFloat factorValue, APFloat lowFreqValue,
                               APFloat highFreqValue, int64_t originalMaxPosition) {
  double theta = thetaValue.convertToDouble(), factor = factorValue.convertToDouble();
  double lowFreqFactor = lowFreqValue.convertToDouble();
  double highFreqFactor = highFreqValue.convertToDouble();
  if (rotaryDim <= 0 || rotaryDim % 2 != 0)
    return emitError() << "rope rotary_dim must be positive and even, got " << rotaryDim;
  if (!(theta > 0.0))
    return emitError() << "rope theta must be positive, got " << theta;
  if (scaling != RopeScaling::none && !(factor > 0.0))
    return emitError() << "rope scaling factor must be positive, got " << factor;
  if (scaling == RopeScaling::llama3) {
    if (originalMaxPosition <= 0)
      return emitError() << "llama3 rope scaling needs a positive original_max_position";
    if (!(lowFreqFactor > 0.0) || !(highFreqFactor > lowFreqFactor))
      return emitError() << "llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got "
                         << lowFreqFactor << " and " << highFreqFactor;
  }
  return success();
}
