//===- FuseAttention.cpp - the attention pattern into tfm.attention -------===//

#include "PatternUtils.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEATTENTION
#include "kiln/Passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::tfm;

namespace {

/// `value` = transpose(x, [1, 0, 2]): heads and tokens swapped.
Value untransposeHeads(Value value) {
  auto transpose = definingOp<TransposeOp>(value);
  if (!transpose || transpose.getPermutation() != ArrayRef<int64_t>{1, 0, 2})
    return {};
  return transpose.getInput();
}

/// Cached keys or values as attention reads them: result `index` of a
/// kv_cache_read, possibly repeated per query group. Sets `read`.
bool cachedOperand(Value value, unsigned index, KVCacheReadOp &read) {
  Value heads = untransposeHeads(value);
  if (auto repeat = definingOp<RepeatKvOp>(heads)) {
    if (repeat.getAxis() != 1)
      return false;
    heads = repeat.getInput();
  }
  auto candidate = definingOp<KVCacheReadOp>(heads);
  if (!candidate || heads != candidate->getResult(index))
    return false;
  if (read && read != candidate)
    return false;
  read = candidate;
  return true;
}

/// The append of `read`'s layer that precedes it in the block, if unique.
KVCacheAppendOp appendFor(KVCacheReadOp read) {
  KVCacheAppendOp found;
  for (Operation *op = read->getPrevNode(); op; op = op->getPrevNode())
    if (auto append = dyn_cast<KVCacheAppendOp>(op); append && append.getLayer() == read.getLayer()) {
      if (found)
        return {};
      found = append;
    }
  return found;
}

/// Anchored on the softmax of the scores; see Passes.td for the pattern.
struct FuseAttentionPattern : OpRewritePattern<SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SoftmaxOp softmax, PatternRewriter &rewriter) const override {
    auto scoresType = softmax.getType();
    if (scoresType.getRank() != 3 || softmax.getAxis() != 2)
      return rewriter.notifyMatchFailure(softmax, "not a softmax over the keys of [H, T, S]");
    auto mask = definingOp<CausalMaskOp>(softmax.getInput());
    if (!mask)
      return rewriter.notifyMatchFailure(softmax, "scores are not causally masked");
    Value positions = mask.getPositions();
    Value scores = mask.getScores();
    auto alibi = definingOp<AlibiBiasOp>(scores);
    if (alibi) {
      if (alibi.getPositions() != positions)
        return rewriter.notifyMatchFailure(softmax, "ALiBi and mask use different positions");
      scores = alibi.getScores();
    }
    auto scale = definingOp<ScaleOp>(scores);
    auto qk = scale ? definingOp<MatmulOp>(scale.getInput()) : MatmulOp();
    if (!qk || !qk.getTransposeB())
      return rewriter.notifyMatchFailure(softmax, "scores are not scale * q·kᵀ");

    KVCacheReadOp read;
    Value q = untransposeHeads(qk.getLhs());
    if (!q || !cachedOperand(qk.getRhs(), 0, read))
      return rewriter.notifyMatchFailure(softmax, "q·kᵀ does not read q and the cached keys");
    if (!softmax->hasOneUse())
      return rewriter.notifyMatchFailure(softmax, "probabilities have other users");
    auto pv = dyn_cast<MatmulOp>(*softmax->user_begin());
    if (!pv || pv.getTransposeB() || pv.getLhs() != softmax || !cachedOperand(pv.getRhs(), 1, read))
      return rewriter.notifyMatchFailure(softmax, "probabilities do not multiply cached values");
    if (!pv->hasOneUse())
      return rewriter.notifyMatchFailure(softmax, "attention output has other users");
    auto outTranspose = dyn_cast<TransposeOp>(*pv->user_begin());
    if (!outTranspose || outTranspose.getPermutation() != ArrayRef<int64_t>{1, 0, 2} ||
        !outTranspose->hasOneUse())
      return rewriter.notifyMatchFailure(softmax, "output is not transposed back to tokens");
    auto outReshape = dyn_cast<ReshapeOp>(*outTranspose->user_begin());
    if (!outReshape || outReshape.getType().getRank() != 2)
      return rewriter.notifyMatchFailure(softmax, "output is not flattened to [T, H·D]");
    KVCacheAppendOp append = appendFor(read);
    if (!append)
      return rewriter.notifyMatchFailure(softmax, "no unique KV-cache append for the layer");

    Value keys = append.getKeys(), values = append.getValues();
    int64_t heads = staticDim(q, 1), kvHeads = staticDim(keys, 1), headDim = staticDim(q, 2);
    if (heads <= 0 || kvHeads <= 0 || headDim <= 0 || staticDim(keys, 2) != headDim ||
        heads % kvHeads != 0 || scoresType.getDimSize(0) != heads)
      return rewriter.notifyMatchFailure(softmax, "head counts do not agree");
    // Every cached tensor must be used only by this attention.
    for (Value cached : read->getResults())
      for (Operation *user : cached.getUsers())
        if (!isa<RepeatKvOp, TransposeOp>(user) || !user->hasOneUse())
          return rewriter.notifyMatchFailure(softmax, "cached keys/values have other users");

    rewriter.setInsertionPoint(outReshape);
    Location loc = rewriter.getFusedLoc({append.getLoc(), qk.getLoc(), softmax.getLoc(),
                                         pv.getLoc()});
    int64_t tokens = ShapedType::kDynamic;
    if (!cast<RankedTensorType>(q.getType()).isDynamicDim(0))
      tokens = staticDim(q, 0);
    Value flatQ = reshapeTo(rewriter, loc, q, {tokens, heads * headDim});
    Value flatK = reshapeTo(rewriter, loc, keys, {tokens, kvHeads * headDim});
    Value flatV = reshapeTo(rewriter, loc, values, {tokens, kvHeads * headDim});
    auto flatType = cast<RankedTensorType>(flatQ.getType());
    Value qkv = ConcatOp::create(rewriter, loc,
                                 flatType.clone({tokens, (heads + 2 * kvHeads) * headDim}),
                                 ValueRange{flatQ, flatK, flatV}, 1);
    auto attention = AttentionOp::create(
        rewriter, loc, outReshape.getType(), qkv, positions, append.getLayerAttr(),
        rewriter.getI64IntegerAttr(heads), rewriter.getI64IntegerAttr(kvHeads),
        rewriter.getI64IntegerAttr(headDim), scale.getFactorAttr(), /*rope=*/RopeAttr(),
        mask.getWindowAttr(), alibi ? rewriter.getUnitAttr() : UnitAttr());
    rewriter.replaceOp(outReshape, attention.getResult());
    // The chain is dead now; the cache write moved into the attention op.
    rewriter.eraseOp(outTranspose);
    rewriter.eraseOp(pv);
    rewriter.eraseOp(softmax);
    rewriter.eraseOp(append);
    return success();
  }
};

struct FuseAttentionPass : kiln::impl::FuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAttentionPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
