//===- FuseResidualNorm.cpp - residual add into the following norm --------===//

#include "PatternUtils.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_FUSERESIDUALNORM
#include "kiln/Passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::tfm;

namespace {

/// rms_norm / layer_norm of an add (without broadcasting) become the fused op,
/// built right after the add so that every user of the sum can read it.
template <typename NormOp, typename FusedOp>
struct FuseResidualNormPattern : OpRewritePattern<NormOp> {
  using OpRewritePattern<NormOp>::OpRewritePattern;

  LogicalResult matchAndRewrite(NormOp norm, PatternRewriter &rewriter) const override {
    auto add = definingOp<AddOp>(norm.getInput());
    if (!add || add.getLhs().getType() != add.getType() ||
        add.getRhs().getType() != add.getType())
      return rewriter.notifyMatchFailure(norm, "input is not a residual add of equal shapes");
    SmallVector<Value> params = {norm.getWeight()};
    if constexpr (std::is_same_v<NormOp, LayerNormOp>)
      if (norm.getBias())
        params.push_back(norm.getBias());
    for (Value param : params) {
      if (!isLoadTimeValue(param))
        return rewriter.notifyMatchFailure(norm, "norm parameters are not load-time values");
      hoistLoadTimeValue(param, add);
    }
    rewriter.setInsertionPointAfter(add);
    Location loc = rewriter.getFusedLoc({add.getLoc(), norm.getLoc()});
    FusedOp fused;
    if constexpr (std::is_same_v<NormOp, LayerNormOp>)
      fused = FusedOp::create(rewriter, loc, add.getType(), add.getType(), add.getLhs(),
                              add.getRhs(), norm.getWeight(), norm.getBias(),
                              norm.getEpsilonAttr());
    else
      fused = FusedOp::create(rewriter, loc, add.getType(), add.getType(), add.getLhs(),
                              add.getRhs(), norm.getWeight(), norm.getEpsilonAttr());
    rewriter.replaceOp(norm, fused.getResult());
    rewriter.replaceOp(add, fused.getSum());
    return success();
  }
};

struct FuseResidualNormPass : kiln::impl::FuseResidualNormBase<FuseResidualNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseResidualNormPattern<RmsNormOp, AddRmsNormOp>,
                 FuseResidualNormPattern<LayerNormOp, AddLayerNormOp>>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
