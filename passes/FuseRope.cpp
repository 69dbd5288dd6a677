//===- FuseRope.cpp - RoPE of q and k into tfm.attention ------------------===//

#include "PatternUtils.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEROPE
#include "kiln/Passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::tfm;

namespace {

/// `flat` = reshape(rope(x)) to [T, heads·D]: returns the rope.
RopeOp flattenedRope(Value flat) {
  auto reshape = definingOp<ReshapeOp>(flat);
  return reshape ? definingOp<RopeOp>(reshape.getInput()) : RopeOp();
}

struct FuseRopePattern : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp attention, PatternRewriter &rewriter) const override {
    if (attention.getRopeAttr())
      return rewriter.notifyMatchFailure(attention, "already has RoPE");
    auto concat = definingOp<ConcatOp>(attention.getQkv());
    if (!concat || concat.getInputs().size() != 3 || !concat->hasOneUse())
      return rewriter.notifyMatchFailure(attention, "qkv is not a concatenation of q, k, v");
    RopeOp q = flattenedRope(concat.getInputs()[0]);
    RopeOp k = flattenedRope(concat.getInputs()[1]);
    if (!q || !k)
      return rewriter.notifyMatchFailure(attention, "RoPE is not applied to both q and k");
    if (q.getConfig() != k.getConfig() || q.getPositions() != k.getPositions() ||
        q.getPositions() != attention.getPositions())
      return rewriter.notifyMatchFailure(attention, "q and k are rotated differently");

    rewriter.setInsertionPoint(attention);
    Location loc = attention.getLoc();
    Value flatQ = reshapeTo(rewriter, loc, q.getInput(),
                            cast<RankedTensorType>(concat.getInputs()[0].getType()).getShape());
    Value flatK = reshapeTo(rewriter, loc, k.getInput(),
                            cast<RankedTensorType>(concat.getInputs()[1].getType()).getShape());
    Value qkv = ConcatOp::create(rewriter, loc, concat.getType(),
                                 ValueRange{flatQ, flatK, concat.getInputs()[2]},
                                 concat.getAxis());
    rewriter.modifyOpInPlace(attention, [&] {
      attention.getQkvMutable().assign(qkv);
      attention.setRopeAttr(q.getConfig());
    });
    return success();
  }
};

struct FuseRopePass : kiln::impl::FuseRopeBase<FuseRopePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseRopePattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
