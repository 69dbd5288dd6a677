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

/// A fused checkpoint projection (Bloom, GPT-NeoX, Falcon): one linear whose
/// result is viewed as [T, KVH, (G + 2)·D] — per kv head, its G query heads,
/// then its key and its value — and sliced into q, k and v. The rows are
/// regrouped at load time into the packed [q heads, k heads, v heads] order.
struct PackFusedQkvPattern : OpRewritePattern<KVCacheAppendOp> {
  using OpRewritePattern::OpRewritePattern;

  static SliceOp groupSlice(Value value) {
    if (auto rope = definingOp<RopeOp>(value))
      value = rope.getInput();
    auto slice = definingOp<SliceOp>(value);
    return slice && slice.getAxis() == 2 ? slice : SliceOp();
  }

  /// `weight` ([KVH·(G+2)·D, ...]) regrouped: rows of all q heads, then k, then v.
  static Value regroup(PatternRewriter &rewriter, Location loc, Value weight, int64_t kvHeads,
                       int64_t groups, int64_t headDim) {
    auto type = cast<RankedTensorType>(weight.getType());
    ArrayRef<int64_t> rest = type.getShape().drop_front();
    auto shaped = [&](int64_t lead, int64_t rows) {
      SmallVector<int64_t> shape = {lead, rows};
      shape.append(rest.begin(), rest.end());
      return shape;
    };
    Value grouped = reshapeTo(rewriter, loc, weight, shaped(kvHeads, (groups + 2) * headDim));
    SmallVector<Value> parts;
    int64_t start = 0;
    for (int64_t rows : {groups * headDim, headDim, headDim}) {
      SmallVector<int64_t> sliceShape = shaped(kvHeads, rows);
      Value part = SliceOp::create(rewriter, loc, type.clone(sliceShape), grouped, 1, start, rows);
      SmallVector<int64_t> flat = {kvHeads * rows};
      flat.append(rest.begin(), rest.end());
      parts.push_back(reshapeTo(rewriter, loc, part, flat));
      start += rows;
    }
    return concatWeights(rewriter, loc, parts);
  }

  LogicalResult matchAndRewrite(KVCacheAppendOp append,
                                PatternRewriter &rewriter) const override {
    SliceOp k = groupSlice(append.getKeys()), v = groupSlice(append.getValues());
    if (!k || !v || k.getInput() != v.getInput())
      return rewriter.notifyMatchFailure(append, "k and v are not slices of one tensor");
    auto grouped = definingOp<ReshapeOp>(k.getInput());
    auto linear = grouped ? definingOp<LinearOp>(grouped.getInput()) : LinearOp();
    if (!linear || !linear->hasOneUse() || grouped.getType().getRank() != 3)
      return rewriter.notifyMatchFailure(append, "not a fused projection viewed per kv head");
    int64_t kvHeads = staticDim(grouped, 1), width = staticDim(grouped, 2);
    int64_t headDim = staticDim(k, 2);
    if (kvHeads <= 0 || width <= 0 || headDim <= 0 || width % headDim || width / headDim < 3)
      return rewriter.notifyMatchFailure(append, "the per-kv-head width is not (G + 2)·D");
    int64_t groups = width / headDim - 2;
    SliceOp q;
    for (Operation *user : grouped->getUsers()) {
      auto slice = dyn_cast<SliceOp>(user);
      if (!slice || slice.getAxis() != 2)
        return rewriter.notifyMatchFailure(append, "the grouped projection has other users");
      if (slice.getStart() == 0 && slice.getSize() == groups * headDim)
        q = slice;
    }
    if (!q || k.getStart() != groups * headDim || k.getSize() != headDim ||
        v.getStart() != (groups + 1) * headDim || v.getSize() != headDim ||
        !llvm::hasNItems(grouped->getUsers(), 3))
      return rewriter.notifyMatchFailure(append, "slices are not q, k, v of each group");
    if (!isLoadTimeValue(linear.getWeight()) ||
        (linear.getBias() && !isLoadTimeValue(linear.getBias())))
      return rewriter.notifyMatchFailure(append, "projection weights are not load-time values");

    hoistLoadTimeValue(linear.getWeight(), linear);
    if (linear.getBias())
      hoistLoadTimeValue(linear.getBias(), linear);
    rewriter.setInsertionPoint(linear);
    Location loc = linear.getLoc();
    int64_t heads = kvHeads * groups;
    Value weight = regroup(rewriter, loc, linear.getWeight(), kvHeads, groups, headDim);
    Value bias = linear.getBias()
                     ? regroup(rewriter, loc, linear.getBias(), kvHeads, groups, headDim)
                     : Value();
    Value packed = PackedQkvLinearOp::create(rewriter, loc, linear.getType(), linear.getInput(),
                                             weight, bias, heads, kvHeads, headDim);
    int64_t axis = linear.getType().getRank() - 1;
    int64_t start = 0;
    for (SliceOp slice : {q, k, v}) {
      int64_t size = kvHeads * slice.getSize();
      SmallVector<int64_t> flat(linear.getType().getShape());
      flat[axis] = size;
      rewriter.setInsertionPoint(slice);
      Value part = SliceOp::create(rewriter, slice.getLoc(), linear.getType().clone(flat), packed,
                                   axis, start, size);
      rewriter.replaceOp(slice, reshapeTo(rewriter, slice.getLoc(), part,
                                          slice.getType().getShape()));
      start += size;
    }
    return success();
  }
};

struct PackQkvPass : kiln::impl::PackQkvBase<PackQkvPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<PackQkvPattern, PackFusedQkvPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
