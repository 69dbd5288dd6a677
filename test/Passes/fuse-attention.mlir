// RUN: kiln-opt %s -split-input-file -kiln-fuse-attention | FileCheck %s

// GQA: the repeat_kv'd cache becomes kv_heads = 2; RoPE stays outside until kiln-fuse-rope.
// CHECK-LABEL: func.func @gqa
// CHECK-DAG: %[[QF:.+]] = tfm.reshape %{{.+}} : tensor<?x4x16xf32> -> tensor<?x64xf32>
// CHECK-DAG: %[[KF:.+]] = tfm.reshape %{{.+}} : tensor<?x2x16xf32> -> tensor<?x32xf32>
// CHECK: %[[QKV:.+]] = tfm.concat %[[QF]], %[[KF]], %arg2 axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x128xf32>
// CHECK: %[[O:.+]] = tfm.attention %[[QKV]], %arg3 layer = 3 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 :
// CHECK-NOT: rope =
// CHECK: return %[[O]]
// CHECK-NOT: tfm.kv_cache
// CHECK-NOT: tfm.softmax
func.func @gqa(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
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

// MHA without RoPE: no repeat_kv.
// CHECK-LABEL: func.func @mha
// CHECK: tfm.attention %{{.+}}, %arg3 layer = 3 heads = 4 kv_heads = 4 head_dim = 16 scale = 2.500000e-01 :
// CHECK-NOT: tfm.matmul
func.func @mha(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %v3 = tfm.reshape %v : tensor<?x64xf32> -> tensor<?x4x16xf32>
  tfm.kv_cache_append layer 3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %qt = tfm.transpose %q3 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
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

// MQA with a sliding window.
// CHECK-LABEL: func.func @mqa_window
// CHECK: tfm.attention %{{.+}}, %arg3 layer = 3 heads = 4 kv_heads = 1 head_dim = 16 scale = 2.500000e-01 window = 4 :
// CHECK-NOT: tfm.causal_mask
func.func @mqa_window(%q: tensor<?x64xf32>, %k: tensor<?x16xf32>, %v: tensor<?x16xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %v3 = tfm.reshape %v : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %qr = tfm.rope %q3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %kr = tfm.rope %k3, %pos config = <style = neox, rotary_dim = 16> : (tensor<?x1x16xf32>, tensor<?xi32>) -> tensor<?x1x16xf32>
  tfm.kv_cache_append layer 3, %kr, %v3 : tensor<?x1x16xf32>, tensor<?x1x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x1x16xf32>, tensor<?x1x16xf32>
  %kg = tfm.repeat_kv %kc axis = 1 times = 4 : tensor<?x1x16xf32> -> tensor<?x4x16xf32>
  %vg = tfm.repeat_kv %vc axis = 1 times = 4 : tensor<?x1x16xf32> -> tensor<?x4x16xf32>
  %qt = tfm.transpose %qr [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kg [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vg [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %sm = tfm.causal_mask %ss, %pos window = 4 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %sm axis = 2 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}

// -----

// ALiBi bias before the mask.
// CHECK-LABEL: func.func @alibi
// CHECK: tfm.attention %{{.+}}, %arg3 layer = 3 heads = 4 kv_heads = 4 head_dim = 16 scale = 2.500000e-01 alibi :
// CHECK-NOT: tfm.alibi_bias
func.func @alibi(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %v3 = tfm.reshape %v : tensor<?x64xf32> -> tensor<?x4x16xf32>
  tfm.kv_cache_append layer 3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %qt = tfm.transpose %q3 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %sa = tfm.alibi_bias %ss, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %sm = tfm.causal_mask %sa, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %sm axis = 2 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}

// -----

// Near miss: an arbitrary additive mask is not the causal one.
// CHECK-LABEL: func.func @not_causal
// CHECK-NOT: tfm.attention
// CHECK: tfm.softmax
func.func @not_causal(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %v3 = tfm.reshape %v : tensor<?x64xf32> -> tensor<?x4x16xf32>
  tfm.kv_cache_append layer 3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %qt = tfm.transpose %q3 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %sm = tfm.add %ss, %mask : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %sm axis = 2 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}

// -----

// Near miss: softmax over the queries, not the keys.
// CHECK-LABEL: func.func @softmax_wrong_axis
// CHECK-NOT: tfm.attention
// CHECK: tfm.softmax %{{.+}} axis = 1
func.func @softmax_wrong_axis(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %pos: tensor<?xi32>, %mask: tensor<?x?xf32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %v3 = tfm.reshape %v : tensor<?x64xf32> -> tensor<?x4x16xf32>
  tfm.kv_cache_append layer 3, %k3, %v3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 3 : tensor<?x4x16xf32>, tensor<?x4x16xf32>
  %qt = tfm.transpose %q3 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %kc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %vc [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %sm = tfm.causal_mask %ss, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %sm axis = 1 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %out = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %out : tensor<?x64xf32>
}
