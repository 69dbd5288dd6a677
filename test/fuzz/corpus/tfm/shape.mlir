func.func @shape(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>, %qkv: tensor<3x128xf16>) {
  %c = tfm.concat %a, %b axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x96xf32>
  %x, %y = tfm.split %c axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  %q = tfm.slice %qkv axis = 1 start = 0 size = 64 : tensor<3x128xf16> -> tensor<3x64xf16>
  %r = tfm.reshape %qkv : tensor<3x128xf16> -> tensor<3x8x16xf16>
  %t = tfm.transpose %r [2, 0, 1] : tensor<3x8x16xf16> -> tensor<16x3x8xf16>
  return
}
