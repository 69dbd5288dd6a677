//===- PackQkv.cpp - q/k/v projections into one packed_qkv_linear ---------===//

#include "PatternUtils.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_PACKQKV
#include "kiln/Passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::tfm;

namespace {

/// The linear producing `value` through an optional rope and a reshape to
/// [T, heads, head_dim] (how k and v reach the KV cache).
LinearOp projectionOf(Value value) {
  if (auto rope = definingOp<RopeOp>(value))
    value = rope.getInput();
  auto reshape = definingOp<ReshapeOp>(value);
  if (!reshape || reshape.getType().getRank() != 3)
    return {};
  return definingOp<LinearOp>(reshape.getInput());
}

/// True when `linear`'s only use is a reshape to [T, heads, headDim].
bool reshapedToHeads(LinearOp linear, int64_t headDim, int64_t &heads) {
  if (!linear->hasOneUse())
    return false;
  auto reshape = dyn_cast<ReshapeOp>(*linear->user_begin());
  if (!reshape || reshape.getType().getRank() != 3 || staticDim(reshape, 2) != headDim)
    return false;
  heads = staticDim(reshape, 1);
  return heads > 0;
}

/// Anchored on the KV-cache append: k and v come from two projections of one
/// input; q is the one other projection of that input that is cut into heads
/// of the same size.
struct PackQkvPattern : OpRewritePattern<KVCacheAppendOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(KVCacheAppendOp append,
                                PatternRewriter &rewriter) const override {
    LinearOp k = projectionOf(append.getKeys());
    LinearOp v = projectionOf(append.getValues());
    if (!k || !v || k == v || k.getInput() != v.getInput())
      return rewriter.notifyMatchFailure(append, "k and v are not projections of one input");
    Value input = k.getInput();
    int64_t kvHeads = staticDim(append.getKeys(), 1), headDim = staticDim(append.getKeys(), 2);
    if (kvHeads <= 0 || headDim <= 0)
      return rewriter.notifyMatchFailure(append, "dynamic head shape");

    LinearOp q;
    int64_t heads = 0;
    for (Operation *user : input.getUsers()) {
      auto candidate = dyn_cast<LinearOp>(user);
      int64_t candidateHeads = 0;
      if (!candidate || candidate == k || candidate == v || candidate.getInput() != input ||
          !reshapedToHeads(candidate, headDim, candidateHeads) || candidateHeads % kvHeads)
        continue;
      if (q)
        return rewriter.notifyMatchFailure(append, "more than one candidate q projection");
      q = candidate;
      heads = candidateHeads;
    }
    if (!q)
      return rewriter.notifyMatchFailure(append, "no q projection of the same input");
    std::array<LinearOp, 3> projections = {q, k, v};
    bool withBias = q.getBias() && k.getBias() && v.getBias();
    if (!withBias && (q.getBias() || k.getBias() || v.getBias()))
      return rewriter.notifyMatchFailure(append, "only some projections have a bias");
    for (LinearOp proj : projections)
      if (!isLoadTimeValue(proj.getWeight()) || (withBias && !isLoadTimeValue(proj.getBias())))
        return rewriter.notifyMatchFailure(append, "projection weights are not load-time values");

    // Build at the first projection so every user of q, k and v sees the result.
    LinearOp first = q;
    for (LinearOp proj : projections)
      if (proj->isBeforeInBlock(first))
        first = proj;
    for (LinearOp proj : projections) {
      hoistLoadTimeValue(proj.getWeight(), first);
      if (withBias)
        hoistLoadTimeValue(proj.getBias(), first);
    }
    rewriter.setInsertionPoint(first);
    Location loc = rewriter.getFusedLoc({q.getLoc(), k.getLoc(), v.getLoc()});
    Value weight = concatWeights(rewriter, loc, {q.getWeight(), k.getWeight(), v.getWeight()});
    Value bias = withBias ? concatWeights(rewriter, loc, {q.getBias(), k.getBias(), v.getBias()})
                          : Value();
    auto inputType = cast<RankedTensorType>(input.getType());
    SmallVector<int64_t> shape(inputType.getShape());
    int64_t axis = inputType.getRank() - 1;
    shape[axis] = (heads + 2 * kvHeads) * headDim;
    Value packed = PackedQkvLinearOp::create(rewriter, loc, q.getType().clone(shape), input,
                                             weight, bias, heads, kvHeads, headDim);
    int64_t start = 0;
    for (LinearOp proj : projections) {
      int64_t size = staticDim(proj, -1);
      rewriter.replaceOpWithNewOp<SliceOp>(proj, proj.getType(), packed, axis, start, size);
      start += size;
    }
    return success();
  }
};

struct PackQkvPass : kiln::impl::PackQkvBase<PackQkvPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<PackQkvPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
