//===- Passes.td - kiln rewrite passes ------------------------------------===//
//
// Each pass moves part of a graph-level tfm program to the fused level. Every
// one must preserve meaning: test/Passes checks each against the reference
// evaluator, before and after.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES
#define KILN_PASSES

include "mlir/Pass/PassBase.td"

def PackQkv : Pass<"kiln-pack-qkv", "mlir::func::FuncOp"> {
  let summary = "packs the q, k and v projections into one packed_qkv_linear";
  let description = [{
    Three `tfm.linear`s that read the same input and feed one attention
    (q with `H·D` outputs, k and v with `KVH·D` each; all with a bias or none)
    become one `tfm.packed_qkv_linear` whose weight is the load-time
    `tfm.weight_concat` of the three weights; q, k and v are `tfm.slice`s of
    its result.

    Before:
      %q = tfm.linear %x, %wq ; %k = tfm.linear %x, %wk ; %v = tfm.linear %x, %wv
    After:
      %w = tfm.weight_concat %wq, %wk, %wv axis = 0
      %qkv = tfm.packed_qkv_linear %x, %w heads = H kv_heads = KVH head_dim = D
      %q = tfm.slice %qkv axis = 1 start = 0 size = H·D ; ...

    A fused checkpoint projection (Bloom, GPT-NeoX, Falcon) whose result is
    reshaped per head and sliced into q, k and v is packed the same way, with
    the row permutation done on the weight at load time.
  }];
  let dependentDialects = ["::kiln::tfm::TfmDialect"];
}

def FuseAttention : Pass<"kiln-fuse-attention", "mlir::func::FuncOp"> {
  let summary = "fuses the unfused attention pattern into tfm.attention";
  let description = [{
    Matches, per layer: `kv_cache_append` of k and v, `kv_cache_read`,
    optional `repeat_kv`, `matmul(q, kᵀ)`, `scale`, optional `alibi_bias`,
    `causal_mask` (optionally windowed), `softmax` over the keys, `matmul` with
    v, and the transposes/reshapes around them; replaces it by one
    `tfm.attention` on the packed `[T, (H + 2·KVH)·D]` concatenation of q, k
    and v, which also writes the KV cache. RoPE applied to q and k stays
    outside (see kiln-fuse-rope). Anything else — a mask that is not the
    causal one, softmax over another axis, a scale that is not applied once —
    is left alone.
  }];
  let dependentDialects = ["::kiln::tfm::TfmDialect"];
}

def FuseRope : Pass<"kiln-fuse-rope", "mlir::func::FuncOp"> {
  let summary = "folds RoPE of q and k into tfm.attention";
  let description = [{
    A `tfm.attention` without `rope` whose packed q and k come from two
    `tfm.rope` ops with the same configuration and positions takes that
    configuration and reads the unrotated q and k. RoPE on only one of them
    is left alone.
  }];
  let dependentDialects = ["::kiln::tfm::TfmDialect"];
}

def FuseResidualNorm : Pass<"kiln-fuse-residual-norm", "mlir::func::FuncOp"> {
  let summary = "fuses a residual add into the norm that reads it";
  let description = [{
    `tfm.rms_norm(tfm.add(a, b))` becomes `tfm.add_rms_norm(a, b)` (and
    layer_norm likewise); the add's other users read the fused op's `sum`.
    Adds that broadcast are left alone.
  }];
  let dependentDialects = ["::kiln::tfm::TfmDialect"];
}

def FuseGatedMlp : Pass<"kiln-fuse-gated-mlp", "mlir::func::FuncOp"> {
  let summary = "fuses gate/up projections and the gating into tfm.gated_mlp";
  let description = [{
    `tfm.mul(act(tfm.linear(x, Wg)), tfm.linear(x, Wu))` with `act` silu or
    gelu (exact or tanh) becomes `tfm.gated_mlp(x, weight_concat(Wg, Wu))`.
    A product without a supported activation on exactly one side is left alone.
  }];
  let dependentDialects = ["::kiln::tfm::TfmDialect"];
}

#endif // KILN_PASSES
