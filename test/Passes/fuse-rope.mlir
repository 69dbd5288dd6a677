// RUN: kiln-opt %s -split-input-file -kiln-fuse-attention -kiln-fuse-rope -canonicalize | FileCheck %s

// RoPE on q and k with one configuration folds into the attention op.
// CHECK-LABEL: func.func @rope_both
// CHECK: %[[QKV:.+]] = tfm.concat %arg0, %arg1, %arg2 axis = 1
// CHECK: tfm.attention %[[QKV]], %arg3 layer = 3 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = neox, rotary_dim = 16>
// CHECK-NOT: tfm.rope
func.func @rope_both(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %qr = tfm.rope %q3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 3, %kr, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
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
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}

// -----

// Near miss: RoPE on q only stays outside the attention op.
// CHECK-LABEL: func.func @rope_q_only
// CHECK: tfm.rope
// CHECK: tfm.attention
// CHECK-NOT: rope =
func.func @rope_q_only(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %qr = tfm.rope %q3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  tfm.kv_cache_append layer 3, %k3, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
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
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}
