func.func @fused(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %pos: tensor<?xi32>,
                 %wgu: tensor<352x64xf32>, %bgu: tensor<352xf32>) {
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = <style = neox, rotary_dim = 16, theta = 10000.0> window = 4096 alibi
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %h = tfm.gated_mlp silu %x, %wgu : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  %g = tfm.gated_mlp gelu_tanh %x, %wgu, %bgu
      : (tensor<?x64xf32>, tensor<352x64xf32>, tensor<352xf32>) -> tensor<?x176xf32>
  return
}
