func.func @linear(%table: tensor<256x64xf32>, %ids: tensor<?xi32>, %w: tensor<128x64xf32>,
                  %b: tensor<128xf32>, %k: tensor<4x?x16xf32>) -> tensor<?x128xf32> {
  %h = tfm.embedding %table[%ids] : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %y = tfm.linear %h, %w, %b : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %z = tfm.linear %h, %w : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %s = tfm.matmul %k, %k transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %o = tfm.matmul %s, %k : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  return %y : tensor<?x128xf32>
}
