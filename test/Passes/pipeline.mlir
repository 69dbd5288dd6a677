// RUN: kiln-opt %s -kiln-fusion-pipeline | FileCheck %s
// RUN: kiln-opt %s -kiln-fusion-pipeline | FileCheck %s --check-prefix=UNFUSED

// One Llama-style layer (GQA, RoPE, SwiGLU, tied LM head) written at graph level
// becomes packed QKV, one attention with RoPE, fused residual norms and a gated MLP.
// CHECK-LABEL: func.func @forward
// CHECK: %[[EMB:.+]] = tfm.weight "model.embed_tokens.weight"
// CHECK: %[[H:.+]] = tfm.embedding %[[EMB]][%arg0]
// CHECK: %[[X:.+]] = tfm.rms_norm %[[H]]
// CHECK: %[[WQKV:.+]] = tfm.weight_concat
// CHECK: %[[QKV:.+]] = tfm.packed_qkv_linear %[[X]], %[[WQKV]] heads = 4 kv_heads = 2 head_dim = 16
// CHECK: %[[ATT:.+]] = tfm.attention %[[QKV]], %arg1 layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = neox, rotary_dim = 16>
// CHECK: %[[O:.+]] = tfm.linear %[[ATT]]
// CHECK: %[[SUM:.+]], %[[X2:.+]] = tfm.add_rms_norm %[[H]], %[[O]]
// CHECK: %[[WGU:.+]] = tfm.weight_concat
// CHECK: %[[MLP:.+]] = tfm.gated_mlp silu %[[X2]], %[[WGU]]
// CHECK: %[[D:.+]] = tfm.linear %[[MLP]]
// CHECK: %{{.+}}, %[[XF:.+]] = tfm.add_rms_norm %[[SUM]], %[[D]]
// CHECK: tfm.linear %[[XF]], %[[EMB]]

// Nothing of the unfused patterns is left anywhere.
// UNFUSED-NOT: tfm.rope
// UNFUSED-NOT: tfm.softmax
// UNFUSED-NOT: tfm.kv_cache
// UNFUSED-NOT: tfm.mul
// UNFUSED-NOT: tfm.silu
// UNFUSED-NOT: tfm.add %
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x256xf32> {
  %emb = tfm.weight "model.embed_tokens.weight" : tensor<256x64xf32>
  %h = tfm.embedding %emb[%ids] : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %ln1 = tfm.weight "ln1" : tensor<64xf32>
  %x = tfm.rms_norm %h, %ln1 eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %wk = tfm.weight "k" : tensor<32x64xf32>
  %wv = tfm.weight "v" : tensor<32x64xf32>
  %q = tfm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %k = tfm.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v = tfm.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %qr = tfm.rope %q3, %pos config = <style = neox, rotary_dim = 16, theta = 10000.0> : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16, theta = 10000.0> : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %kr, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kg = tfm.repeat_kv %kc axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  %vg = tfm.repeat_kv %vc axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  %qt = tfm.transpose %qr [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kg [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vg [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %sm = tfm.causal_mask %ss, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %sm axis = 2 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %o2 = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  %wo = tfm.weight "o" : tensor<64x64xf32>
  %a = tfm.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %h2 = tfm.add %h, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %ln2 = tfm.weight "ln2" : tensor<64xf32>
  %x2 = tfm.rms_norm %h2, %ln2 eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %wg = tfm.weight "gate" : tensor<160x64xf32>
  %wu = tfm.weight "up" : tensor<160x64xf32>
  %g = tfm.linear %x2, %wg : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %u = tfm.linear %x2, %wu : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %ga = tfm.silu %g : tensor<?x160xf32>
  %m = tfm.mul %ga, %u : (tensor<?x160xf32>, tensor<?x160xf32>) -> tensor<?x160xf32>
  %wd = tfm.weight "down" : tensor<64x160xf32>
  %d = tfm.linear %m, %wd : (tensor<?x160xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>
  %h3 = tfm.add %h2, %d : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %lnf = tfm.weight "norm" : tensor<64xf32>
  %xf = tfm.rms_norm %h3, %lnf eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %logits = tfm.linear %xf, %emb : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
  return %logits : tensor<?x256xf32>
}
