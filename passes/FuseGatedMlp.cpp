//===- FuseGatedMlp.cpp - gate/up projections and gating into gated_mlp ---===//

#include "PatternUtils.h"
#include "kiln/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEGATEDMLP
#include "kiln/Passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::tfm;

namespace {

/// `value` = act(linear(...)) with an activation gated_mlp supports.
std::optional<Activation> gateActivation(Value value, LinearOp &gate) {
  Operation *def = value.getDefiningOp();
  if (!def || !def->hasOneUse() || def->getNumOperands() != 1)
    return std::nullopt;
  gate = definingOp<LinearOp>(def->getOperand(0));
  if (!gate || !gate->hasOneUse())
    return std::nullopt;
  if (isa<SiluOp>(def))
    return Activation::silu;
  if (auto gelu = dyn_cast<GeluOp>(def))
    return gelu.getApproximation() == GeluApproximation::tanh ? Activation::gelu_tanh
                                                              : Activation::gelu;
  return std::nullopt;
}

struct FuseGatedMlpPattern : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    LinearOp gate;
    Value upValue = mul.getRhs();
    std::optional<Activation> activation = gateActivation(mul.getLhs(), gate);
    if (!activation) {
      upValue = mul.getLhs();
      activation = gateActivation(mul.getRhs(), gate);
    }
    if (!activation)
      return rewriter.notifyMatchFailure(mul, "no factor is a supported activation of a linear");
    auto up = definingOp<LinearOp>(upValue);
    if (!up || !up->hasOneUse() || up.getInput() != gate.getInput() ||
        up.getType() != gate.getType() || mul.getType() != up.getType())
      return rewriter.notifyMatchFailure(mul, "the other factor is not a projection of the input");
    if (static_cast<bool>(gate.getBias()) != static_cast<bool>(up.getBias()))
      return rewriter.notifyMatchFailure(mul, "only one projection has a bias");
    if (!isLoadTimeValue(gate.getWeight()) || !isLoadTimeValue(up.getWeight()))
      return rewriter.notifyMatchFailure(mul, "projection weights are not load-time values");

    rewriter.setInsertionPoint(mul);
    Location loc = rewriter.getFusedLoc({gate.getLoc(), up.getLoc(), mul.getLoc()});
    Value weight = concatWeights(rewriter, loc, {gate.getWeight(), up.getWeight()});
    Value bias = gate.getBias() ? concatWeights(rewriter, loc, {gate.getBias(), up.getBias()})
                                : Value();
    rewriter.replaceOpWithNewOp<GatedMlpOp>(
        mul, mul.getType(), gate.getInput(), weight, bias,
        ActivationAttr::get(rewriter.getContext(), *activation));
    return success();
  }
};

struct FuseGatedMlpPass : kiln::impl::FuseGatedMlpBase<FuseGatedMlpPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGatedMlpPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
