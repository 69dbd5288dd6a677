func.func @elementwise(%a: tensor<4x?x?xf32>, %b: tensor<?x?xf32>, %x: tensor<?x176xbf16>) {
  %r = tfm.add %a, %b : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  %m = tfm.mul %b, %a : (tensor<?x?xf32>, tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  %s = tfm.silu %x : tensor<?x176xbf16>
  %g = tfm.gelu %x tanh : tensor<?x176xbf16>
  %e = tfm.gelu %x none : tensor<?x176xbf16>
  %c = tfm.scale %x by -1.5 : tensor<?x176xbf16>
  return
}
