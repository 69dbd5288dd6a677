func.func @attention(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>,
                     %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  %q3 = tfm.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = tfm.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = tfm.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %k3, %v3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %k4 = tfm.repeat_kv %kc axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  %v4 = tfm.repeat_kv %vc axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  %qt = tfm.transpose %q3 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %kt = tfm.transpose %k4 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %vt = tfm.transpose %v4 [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %s = tfm.matmul %qt, %kt transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %ss = tfm.scale %s by 0.25 : tensor<4x?x?xf32>
  %b = tfm.alibi_bias %ss, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %m = tfm.causal_mask %b, %pos window = 4096 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %p = tfm.softmax %m axis = 2 : tensor<4x?x?xf32>
  %o = tfm.matmul %p, %vt : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = tfm.transpose %o [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
  %r = tfm.reshape %ot : tensor<?x4x16xf32> -> tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}
