func.func @quant(%w: tensor<128x64xf32>, %x: tensor<?x64xf32>, %b: tensor<128xf32>) {
  %q, %s = tfm.quantize %w group_size = 32 : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x2xf32>
  %q4, %s4 = tfm.quantize %w group_size = 64 : tensor<128x64xf32> -> tensor<128x64xi4>, tensor<128x1xf32>
  %q8, %s8 = tfm.quantize %w group_size = 16 : tensor<128x64xf32> -> tensor<128x64xf8E4M3FN>, tensor<128x4xf32>
  %d = tfm.dequantize %q, %s group_size = 32 : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<128x64xf32>
  %y = tfm.quantized_linear %x, %q4, %s4, %b group_size = 64
      : (tensor<?x64xf32>, tensor<128x64xi4>, tensor<128x1xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  return
}
