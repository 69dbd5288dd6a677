func.func @norms(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) {
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %l = tfm.layer_norm %x, %w, %b eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %s, %r = tfm.add_rms_norm %x, %res, %w eps = 1.0e-06
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %s2, %r2 = tfm.add_layer_norm %x, %res, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}
