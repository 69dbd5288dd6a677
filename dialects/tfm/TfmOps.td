//===- TfmOps.td - tfm dialect operations ---------------------------------===//
//
// Graph-level ops first (what the frontend emits and a person writes), then
// the fused/kernel-level ops that the rewrite passes produce and codegen
// consumes. Shapes follow the packed token layout: `T` tokens of one step,
// `S` cached positions, `H` query heads, `KVH` key/value heads, `D` head_dim.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TFM_OPS
#define KILN_TFM_OPS

include "TfmBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Weights and their load-time transforms
//===----------------------------------------------------------------------===//

// Ops whose value is computed once when the runtime binds the checkpoint,
// never from activations. The layout ops (reshape, transpose, slice, concat)
// applied to such values are load-time too; codegen turns those chains into
// the artifact's weight-binding program.
def Tfm_LoadTime : NativeOpTrait<"LoadTimeTrait"> {
  let cppNamespace = "::kiln::tfm";
}

def Tfm_WeightOp : Tfm_Op<"weight", [Pure, Tfm_LoadTime]> {
  let summary = "a named checkpoint tensor";
  let description = [{
    Binds a tensor of the checkpoint by its name. The result type is the
    tensor's shape and dtype as stored; kiln never reads the values at compile
    time.

    Example:

    ```mlir
    %w = tfm.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x176xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Tfm_WeightConcatOp : Tfm_Op<"weight_concat", [Pure, Tfm_LoadTime]> {
  let summary = "load-time concatenation of weights";
  let description = [{
    Concatenates weights along `axis` when the checkpoint is bound (packed QKV,
    packed gate/up). Every operand must itself be a weight or a load-time
    transform of weights.

    Example:

    ```mlir
    %qkv = tfm.weight_concat %wq, %wk, %wv axis = 0
        : (tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Variadic<Tfm_AnyTensor>:$inputs, Tfm_I64Attr:$axis);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = [{
    $inputs `axis` `=` $axis attr-dict `:` functional-type($inputs, $result)
  }];
  let hasVerifier = 1;
}

def Tfm_WeightCastOp : Tfm_Op<"weight_cast", [Pure, Tfm_LoadTime]> {
  let summary = "load-time element type conversion of a weight";
  let description = [{
    Converts a weight to another float type when the checkpoint is bound, e.g.
    a bf16 checkpoint compiled for float32.

    Example:

    ```mlir
    %c = tfm.weight_cast %w : tensor<64x64xbf16> to tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Graph level: embeddings, linear algebra, normalisation
//===----------------------------------------------------------------------===//

def Tfm_EmbeddingOp : Tfm_Op<"embedding", [Pure]> {
  let summary = "gathers rows of an embedding table";
  let description = [{
    `result[t, :] = table[ids[t], :]` for a table of shape [V, hidden].

    Example:

    ```mlir
    %h = tfm.embedding %table[%ids]
        : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$table, Tfm_IdTensor:$ids);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_LinearOp : Tfm_Op<"linear", [Pure]> {
  let summary = "x · Wᵀ (+ b) with a Hugging Face [out, in] weight";
  let description = [{
    `result[..., o] = sum_i input[..., i] * weight[o, i] (+ bias[o])`.

    Example:

    ```mlir
    %y = tfm.linear %x, %w, %b
        : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$weight,
                       Optional<Tfm_FloatTensor>:$bias);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_MatmulOp : Tfm_Op<"matmul", [Pure]> {
  let summary = "batched matrix product of activations";
  let description = [{
    `[..., M, K] x [..., K, N] -> [..., M, N]`; with `transpose_b` the second
    operand is `[..., N, K]`. Batch dimensions must be equal (no broadcasting;
    use `tfm.repeat_kv` for grouped heads).

    Example:

    ```mlir
    %s = tfm.matmul %q, %k transpose_b
        : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$lhs, Tfm_FloatTensor:$rhs,
                       UnitAttr:$transpose_b);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_b` $transpose_b^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_RmsNormOp : Tfm_Op<"rms_norm", [Pure]> {
  let summary = "RMS normalisation over the last dimension";
  let description = [{
    `x / sqrt(mean(x^2) + epsilon) * weight`, reduced over the last dimension.

    Example:

    ```mlir
    %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $epsilon attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_LayerNormOp : Tfm_Op<"layer_norm", [Pure]> {
  let summary = "layer normalisation over the last dimension";
  let description = [{
    `(x - mean) / sqrt(var + epsilon) * weight (+ bias)` over the last dimension.

    Example:

    ```mlir
    %n = tfm.layer_norm %x, %w, %b eps = 1.0e-05
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$weight,
                       Optional<Tfm_FloatTensor>:$bias, F64Attr:$epsilon);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? `eps` `=` $epsilon attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_RopeOp : Tfm_Op<"rope", [Pure]> {
  let summary = "rotary position embedding of q or k";
  let description = [{
    Rotates the first `rotary_dim` dimensions of every head of `input`
    ([T, heads, D]) by angles `positions[t] * inv_freq`, paired as `config`'s
    style says; the remaining dimensions pass through.

    Example:

    ```mlir
    %q2 = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 10000.0>
        : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_IdTensor:$positions, Tfm_RopeAttr:$config);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions `config` `=` $config attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_SoftmaxOp : Tfm_Op<"softmax", [Pure, SameOperandsAndResultType]> {
  let summary = "softmax along one axis";
  let description = [{
    Example:

    ```mlir
    %p = tfm.softmax %s axis = 2 : tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_I64Attr:$axis);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input `axis` `=` $axis attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Graph level: elementwise
//===----------------------------------------------------------------------===//

class Tfm_BroadcastBinaryOp<string mnemonic, string what>
    : Tfm_Op<mnemonic, [Pure, Commutative, SameOperandsAndResultElementType]> {
  let summary = "elementwise " # what # " with trailing-dimension broadcasting";
  let description = [{
    Shapes broadcast as in NumPy: dimensions are matched from the last one;
    a missing or size-1 dimension stretches.

    Example:

    ```mlir
    %r = tfm.}] # mnemonic # [{ %a, %b : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$lhs, Tfm_FloatTensor:$rhs);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Tfm_AddOp : Tfm_BroadcastBinaryOp<"add", "sum">;
def Tfm_MulOp : Tfm_BroadcastBinaryOp<"mul", "product">;

def Tfm_SiluOp : Tfm_Op<"silu", [Pure, SameOperandsAndResultType]> {
  let summary = "x · sigmoid(x)";
  let description = [{
    Example:

    ```mlir
    %a = tfm.silu %g : tensor<?x176xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Tfm_GeluOp : Tfm_Op<"gelu", [Pure, SameOperandsAndResultType]> {
  let summary = "GELU, exact or tanh-approximated";
  let description = [{
    `none`: `0.5·x·(1 + erf(x/√2))`; `tanh`: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.

    Example:

    ```mlir
    %a = tfm.gelu %h tanh : tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_GeluApproximationAttr:$approximation);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input `` $approximation attr-dict `:` type($result)";
}

def Tfm_ScaleOp : Tfm_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplication by a constant";
  let description = [{
    Example:

    ```mlir
    %s = tfm.scale %x by 0.25 : tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input `by` $factor attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Graph level: shape ops
//===----------------------------------------------------------------------===//

def Tfm_ReshapeOp : Tfm_Op<"reshape", [Pure, SameOperandsAndResultElementType]> {
  let summary = "row-major reshape";
  let description = [{
    Reinterprets the elements in row-major order. Both shapes may hold at most
    one dynamic dimension, and the static parts must agree.

    Example:

    ```mlir
    %r = tfm.reshape %x : tensor<?x64xf32> -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins Tfm_AnyTensor:$input);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Tfm_TransposeOp : Tfm_Op<"transpose", [Pure, SameOperandsAndResultElementType]> {
  let summary = "permutes dimensions";
  let description = [{
    `result` dimension `i` is `input` dimension `permutation[i]`.

    Example:

    ```mlir
    %t = tfm.transpose %x [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
    ```
  }];
  let arguments = (ins Tfm_AnyTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = "$input $permutation attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Tfm_ConcatOp : Tfm_Op<"concat", [Pure, SameOperandsAndResultElementType]> {
  let summary = "concatenates activations along an axis";
  let description = [{
    Example:

    ```mlir
    %c = tfm.concat %a, %b axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x96xf32>
    ```
  }];
  let arguments = (ins Variadic<Tfm_AnyTensor>:$inputs, Tfm_I64Attr:$axis);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = "$inputs `axis` `=` $axis attr-dict `:` functional-type($inputs, $result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Tfm_SplitOp : Tfm_Op<"split", [Pure]> {
  let summary = "splits a tensor into consecutive pieces along an axis";
  let description = [{
    Example:

    ```mlir
    %a, %b = tfm.split %x axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
    ```
  }];
  let arguments = (ins Tfm_AnyTensor:$input, Tfm_I64Attr:$axis);
  let results = (outs Variadic<Tfm_AnyTensor>:$results);
  let assemblyFormat = "$input `axis` `=` $axis attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def Tfm_SliceOp : Tfm_Op<"slice", [Pure, SameOperandsAndResultElementType]> {
  let summary = "a contiguous range of one axis";
  let description = [{
    Keeps indices `[start, start + size)` of `axis`.

    Example:

    ```mlir
    %q = tfm.slice %qkv axis = 1 start = 0 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Tfm_AnyTensor:$input, Tfm_I64Attr:$axis, Tfm_I64Attr:$start, Tfm_I64Attr:$size);
  let results = (outs Tfm_AnyTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `start` `=` $start `size` `=` $size attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tfm_RepeatKvOp : Tfm_Op<"repeat_kv", [Pure, SameOperandsAndResultElementType]> {
  let summary = "repeats each key/value head for its group of query heads";
  let description = [{
    Along `axis`, each index `i` becomes `times` consecutive copies, so head
    `h` of the result is head `h / times` of the input (GQA/MQA).

    Example:

    ```mlir
    %k4 = tfm.repeat_kv %k axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_I64Attr:$axis, Tfm_I64Attr:$times);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `times` `=` $times attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Graph level: KV cache, masks and biases
//===----------------------------------------------------------------------===//

def Tfm_KVCacheResource : Resource<"::kiln::tfm::KVCacheResource">;

def Tfm_KVCacheAppendOp : Tfm_Op<"kv_cache_append",
                                 [MemoryEffects<[MemWrite<Tfm_KVCacheResource>]>]> {
  let summary = "appends this step's keys and values to one layer's cache";
  let description = [{
    Writes `keys` and `values` ([T, KVH, D]) at the sequence's next `T`
    positions of layer `layer`'s cache. `KVH` and `D` are static: the runtime
    sizes each layer's cache from them.

    Example:

    ```mlir
    tfm.kv_cache_append layer 0, %k, %v : tensor<?x2x16xf32>, tensor<?x2x16xf32>
    ```
  }];
  let arguments = (ins Tfm_I64Attr:$layer, Tfm_FloatTensor:$keys, Tfm_FloatTensor:$values);
  let assemblyFormat = [{
    `layer` $layer `,` $keys `,` $values attr-dict `:` type($keys) `,` type($values)
  }];
  let hasVerifier = 1;
}

def Tfm_KVCacheReadOp : Tfm_Op<"kv_cache_read",
                               [MemoryEffects<[MemRead<Tfm_KVCacheResource>]>]> {
  let summary = "reads all cached keys and values of one layer";
  let description = [{
    Returns the keys and values of every cached position of the sequence,
    `[S, KVH, D]` each (`KVH` and `D` static), position `s` at row `s`.

    Example:

    ```mlir
    %k, %v = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
    ```
  }];
  let arguments = (ins Tfm_I64Attr:$layer);
  let results = (outs Tfm_FloatTensor:$keys, Tfm_FloatTensor:$values);
  let assemblyFormat = "`layer` $layer attr-dict `:` type($keys) `,` type($values)";
  let hasVerifier = 1;
}

def Tfm_CausalMaskOp : Tfm_Op<"causal_mask", [Pure]> {
  let summary = "masks attention scores of future (and too distant) keys";
  let description = [{
    `scores` is `[..., T, S]` with key `s` at position `s`. Entry `(t, s)`
    becomes -inf when `s > positions[t]`, or, with a `window`, when
    `s <= positions[t] - window` (sliding-window attention).

    Example:

    ```mlir
    %m = tfm.causal_mask %s, %pos window = 4096
        : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$scores, Tfm_IdTensor:$positions,
                       OptionalAttr<Tfm_I64Attr>:$window);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $scores `,` $positions (`window` `=` $window^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_AlibiBiasOp : Tfm_Op<"alibi_bias", [Pure]> {
  let summary = "adds the ALiBi linear position bias to attention scores";
  let description = [{
    `scores` is `[H, T, S]`; adds `slope[h] · (s - positions[t])`, with the
    slopes of Press et al. for `H` heads (geometric, interleaved when `H` is
    not a power of two).

    Example:

    ```mlir
    %b = tfm.alibi_bias %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$scores, Tfm_IdTensor:$positions);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$scores `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Graph level: quantization
//===----------------------------------------------------------------------===//

def Tfm_QuantizeOp : Tfm_Op<"quantize", [Pure]> {
  let summary = "symmetric per-group quantization of a [rows, cols] tensor";
  let description = [{
    Each row is cut into groups of `group_size` columns; each group gets
    `scale = max|x| / qmax` and `q = round(x / scale)` in the result element
    type (i8: qmax 127; i4: qmax 7; f8E4M3FN: qmax 448).

    Example:

    ```mlir
    %q, %s = tfm.quantize %w group_size = 32
        : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x2xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_I64Attr:$group_size);
  let results = (outs Tfm_QuantTensor:$values, Tfm_FloatTensor:$scales);
  let assemblyFormat = [{
    $input `group_size` `=` $group_size attr-dict `:` type($input) `->` type($values) `,` type($scales)
  }];
  let hasVerifier = 1;
}

def Tfm_DequantizeOp : Tfm_Op<"dequantize", [Pure]> {
  let summary = "inverse of tfm.quantize: values · scale per group";
  let description = [{
    Example:

    ```mlir
    %w = tfm.dequantize %q, %s group_size = 32
        : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Tfm_QuantTensor:$values, Tfm_FloatTensor:$scales, Tfm_I64Attr:$group_size);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $values `,` $scales `group_size` `=` $group_size attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused / kernel level
//===----------------------------------------------------------------------===//

def Tfm_PackedQkvLinearOp : Tfm_Op<"packed_qkv_linear", [Pure]> {
  let summary = "one projection producing packed q, k and v";
  let description = [{
    A linear whose weight rows are q's `H·D` rows, then k's `KVH·D`, then
    v's `KVH·D`; the result `[T, (H + 2·KVH)·D]` packs q, k and v per token.

    Example:

    ```mlir
    %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
        : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$weight,
                       Optional<Tfm_FloatTensor>:$bias,
                       Tfm_I64Attr:$num_heads, Tfm_I64Attr:$num_kv_heads, Tfm_I64Attr:$head_dim);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? `heads` `=` $num_heads `kv_heads` `=` $num_kv_heads
    `head_dim` `=` $head_dim attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_AttentionOp : Tfm_Op<"attention", [
    MemoryEffects<[MemRead<Tfm_KVCacheResource>, MemWrite<Tfm_KVCacheResource>]>]> {
  let summary = "causal attention on packed QKV with RoPE and KV-cache write";
  let description = [{
    Splits `qkv` (`[T, (H + 2·KVH)·D]`) into q, k, v; rotates q and k by
    `rope` if present; appends k and v to layer `layer`'s cache; then for each
    query head `h` attends over every cached position with key/value head
    `h / (H / KVH)` (MHA, GQA, MQA): `softmax(scale · q·kᵀ [+ ALiBi] + causal
    mask [within window]) · v`. The result is `[T, H·D]`.

    Example:

    ```mlir
    %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16
        scale = 0.25 rope = <style = neox, rotary_dim = 16, theta = 10000.0>
        : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```

    Inside the op, `rope` is written without the `#tfm.rope` prefix: a
    dialect attribute directly followed by `:` would take the op's types as
    its own.
  }];
  let arguments = (ins Tfm_FloatTensor:$qkv, Tfm_IdTensor:$positions,
                       Tfm_I64Attr:$layer, Tfm_I64Attr:$num_heads, Tfm_I64Attr:$num_kv_heads,
                       Tfm_I64Attr:$head_dim, F64Attr:$scale,
                       OptionalAttr<Tfm_RopeAttr>:$rope,
                       OptionalAttr<Tfm_I64Attr>:$window, UnitAttr:$alibi);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $qkv `,` $positions `layer` `=` $layer `heads` `=` $num_heads `kv_heads` `=` $num_kv_heads
    `head_dim` `=` $head_dim `scale` `=` $scale (`rope` `=` $rope^)? (`window` `=` $window^)?
    (`alibi` $alibi^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_AddRmsNormOp : Tfm_Op<"add_rms_norm", [Pure]> {
  let summary = "residual add followed by RMS normalisation";
  let description = [{
    `sum = input + residual; result = rms_norm(sum, weight)`. Both are kept:
    `sum` is the next residual.

    Example:

    ```mlir
    %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
        : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$residual,
                       Tfm_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs Tfm_FloatTensor:$sum, Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $residual `,` $weight `eps` `=` $epsilon attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_AddLayerNormOp : Tfm_Op<"add_layer_norm", [Pure]> {
  let summary = "residual add followed by layer normalisation";
  let description = [{
    `sum = input + residual; result = layer_norm(sum, weight, bias)`.

    Example:

    ```mlir
    %sum, %n = tfm.add_layer_norm %x, %res, %w, %b eps = 1.0e-05
        : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
        -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$residual,
                       Tfm_FloatTensor:$weight, Optional<Tfm_FloatTensor>:$bias,
                       F64Attr:$epsilon);
  let results = (outs Tfm_FloatTensor:$sum, Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $residual `,` $weight (`,` $bias^)? `eps` `=` $epsilon attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_GatedMlpOp : Tfm_Op<"gated_mlp", [Pure]> {
  let summary = "act(x · Wgateᵀ) · (x · Wupᵀ) with a packed gate/up weight";
  let description = [{
    `weight` is `[2·I, hidden]`: the gate rows, then the up rows (and the
    optional `bias`, `[2·I]`, likewise). The result
    `[T, I]` is `activation(gate) * up` (SwiGLU with `silu`, GeGLU with
    `gelu`/`gelu_tanh`).

    Example:

    ```mlir
    %h = tfm.gated_mlp silu %x, %w_gate_up
        : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_FloatTensor:$weight,
                       Optional<Tfm_FloatTensor>:$bias, Tfm_ActivationAttr:$activation);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    `` $activation $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_QuantizedLinearOp : Tfm_Op<"quantized_linear", [Pure]> {
  let summary = "linear with a per-group quantized weight";
  let description = [{
    `linear(input, dequantize(weight, scales, group_size), bias)` without
    materialising the float weight: weight-only int8/int4, or fp8 (E4M3).

    Example:

    ```mlir
    %y = tfm.quantized_linear %x, %q, %s group_size = 32
        : (tensor<?x64xf32>, tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_QuantTensor:$weight,
                       Tfm_FloatTensor:$scales, Optional<Tfm_FloatTensor>:$bias,
                       Tfm_I64Attr:$group_size);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $scales (`,` $bias^)? `group_size` `=` $group_size attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Tfm_AllReduceOp : Tfm_Op<"all_reduce", [SameOperandsAndResultType]> {
  let summary = "reduces a tensor across tensor-parallel ranks";
  let description = [{
    Every rank of the `ranks`-way tensor-parallel group gets the elementwise
    reduction of all ranks' inputs.

    Example:

    ```mlir
    %r = tfm.all_reduce %x sum ranks = 2 : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_ReductionAttr:$reduction, Tfm_I64Attr:$ranks);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = "$input `` $reduction `ranks` `=` $ranks attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Tfm_AllGatherOp : Tfm_Op<"all_gather", [SameOperandsAndResultElementType]> {
  let summary = "concatenates every rank's tensor along an axis";
  let description = [{
    Example:

    ```mlir
    %g = tfm.all_gather %x axis = 1 ranks = 2 : tensor<?x128xf32> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Tfm_FloatTensor:$input, Tfm_I64Attr:$axis, Tfm_I64Attr:$ranks);
  let results = (outs Tfm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `ranks` `=` $ranks attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // KILN_TFM_OPS
