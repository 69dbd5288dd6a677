// RUN: kiln-opt %s -split-input-file -kiln-pack-qkv | FileCheck %s

// q, k and v projections of one input become one packed projection; the
// weights are concatenated at load time.
// CHECK-LABEL: func.func @gqa
// CHECK: %[[W:.+]] = tfm.weight_concat %{{.+}}, %{{.+}}, %{{.+}} axis = 0 : (tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<128x64xf32>
// CHECK: %[[QKV:.+]] = tfm.packed_qkv_linear %arg0, %[[W]] heads = 4 kv_heads = 2 head_dim = 16
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 0 size = 64
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 64 size = 32
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 96 size = 32
// CHECK-NOT: tfm.linear
func.func @gqa(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %pos: tensor<?xi32>) -> (tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>) {
  %wq = tfm.weight "q.weight" : tensor<64x64xf32>
  %wk = tfm.weight "k.weight" : tensor<32x64xf32>
  %wv = tfm.weight "v.weight" : tensor<32x64xf32>
  %q = tfm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k = tfm.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v = tfm.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %kr, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return %q3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>
}

// -----

// With biases (Qwen2), the biases are packed too.
// CHECK-LABEL: func.func @with_bias
// CHECK: %[[W:.+]] = tfm.weight_concat
// CHECK: %[[B:.+]] = tfm.weight_concat %{{.+}}, %{{.+}}, %{{.+}} axis = 0 : (tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<128xf32>
// CHECK: tfm.packed_qkv_linear %arg0, %[[W]], %[[B]] heads = 4 kv_heads = 2 head_dim = 16
func.func @with_bias(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %pos: tensor<?xi32>) -> (tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>) {
  %wq = tfm.weight "q.weight" : tensor<64x64xf32>
  %wk = tfm.weight "k.weight" : tensor<32x64xf32>
  %wv = tfm.weight "v.weight" : tensor<32x64xf32>
  %bq = tfm.weight "q.bias" : tensor<64xf32>
  %bk = tfm.weight "k.bias" : tensor<32xf32>
  %bv = tfm.weight "v.bias" : tensor<32xf32>
  %q = tfm.linear %x, %wq, %bq : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k = tfm.linear %x, %wk, %bk : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %v = tfm.linear %x, %wv, %bv : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %kr, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return %q3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>
}

// -----

// Near miss: q reads another input than k and v.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: tfm.packed_qkv_linear
// CHECK-COUNT-3: tfm.linear
func.func @different_inputs(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %pos: tensor<?xi32>) -> (tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>) {
  %wq = tfm.weight "q.weight" : tensor<64x64xf32>
  %wk = tfm.weight "k.weight" : tensor<32x64xf32>
  %wv = tfm.weight "v.weight" : tensor<32x64xf32>
  %q = tfm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k = tfm.linear %y, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v = tfm.linear %y, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %kr, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return %q3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>
}

// -----

// A fused checkpoint projection viewed per kv head as [q heads of the group,
// k, v] (Falcon's grouped layout; Bloom/GPT-NeoX are the case G = 1): the rows
// are regrouped at load time and the projection becomes packed.
// CHECK-LABEL: func.func @fused_grouped
// CHECK: %[[G:.+]] = tfm.reshape %{{.+}} : tensor<192x128xf32> -> tensor<2x96x128xf32>
// CHECK-DAG: %[[WQ:.+]] = tfm.slice %[[G]] axis = 1 start = 0 size = 64
// CHECK-DAG: %[[WK:.+]] = tfm.slice %[[G]] axis = 1 start = 64 size = 16
// CHECK-DAG: %[[WV:.+]] = tfm.slice %[[G]] axis = 1 start = 80 size = 16
// CHECK: %[[W:.+]] = tfm.weight_concat {{.+}} axis = 0 : (tensor<128x128xf32>, tensor<32x128xf32>, tensor<32x128xf32>) -> tensor<192x128xf32>
// CHECK: %[[QKV:.+]] = tfm.packed_qkv_linear %arg0, %[[W]] heads = 8 kv_heads = 2 head_dim = 16
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 0 size = 128
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 128 size = 32
// CHECK-DAG: tfm.slice %[[QKV]] axis = 1 start = 160 size = 32
// CHECK-NOT: tfm.linear
func.func @fused_grouped(%x: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x8x16xf32> {
  %w = tfm.weight "query_key_value.weight" : tensor<192x128xf32>
  %qkv = tfm.linear %x, %w : (tensor<?x128xf32>, tensor<192x128xf32>) -> tensor<?x192xf32>
  %g = tfm.reshape %qkv : tensor<?x192xf32> -> tensor<?x2x96xf32>
  %q = tfm.slice %g axis = 2 start = 0 size = 64 : tensor<?x2x96xf32> -> tensor<?x2x64xf32>
  %q3 = tfm.reshape %q : tensor<?x2x64xf32> -> tensor<?x8x16xf32>
  %k = tfm.slice %g axis = 2 start = 64 size = 16 : tensor<?x2x96xf32> -> tensor<?x2x16xf32>
  %v = tfm.slice %g axis = 2 start = 80 size = 16 : tensor<?x2x96xf32> -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return %q3 : tensor<?x8x16xf32>
}

// -----

// Near miss: the fused projection's per-head view has another user, so it
// cannot be regrouped.
// CHECK-LABEL: func.func @fused_other_user
// CHECK-NOT: tfm.packed_qkv_linear
func.func @fused_other_user(%x: tensor<?x72xf32>) -> tensor<?x6x36xf32> {
  %w = tfm.weight "query_key_value.weight" : tensor<216x72xf32>
  %qkv = tfm.linear %x, %w : (tensor<?x72xf32>, tensor<216x72xf32>) -> tensor<?x216xf32>
  %g = tfm.reshape %qkv : tensor<?x216xf32> -> tensor<?x6x36xf32>
  %q = tfm.slice %g axis = 2 start = 0 size = 12 : tensor<?x6x36xf32> -> tensor<?x6x12xf32>
  %k = tfm.slice %g axis = 2 start = 12 size = 12 : tensor<?x6x36xf32> -> tensor<?x6x12xf32>
  %v = tfm.slice %g axis = 2 start = 24 size = 12 : tensor<?x6x36xf32> -> tensor<?x6x12xf32>
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x6x12xf32>, tensor<?x6x12xf32>
  return %g : tensor<?x6x36xf32>
}
