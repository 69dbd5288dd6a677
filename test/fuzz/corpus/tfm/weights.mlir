func.func @weights() -> tensor<128x64xf32> {
  %wq = tfm.weight "q" : tensor<64x64xbf16>
  %wk = tfm.weight "k" : tensor<32x64xbf16>
  %wv = tfm.weight "v" : tensor<32x64xbf16>
  %qkv = tfm.weight_concat %wq, %wk, %wv axis = 0
      : (tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>) -> tensor<128x64xbf16>
  %c = tfm.weight_cast %qkv : tensor<128x64xbf16> to tensor<128x64xf32>
  return %c : tensor<128x64xf32>
}
