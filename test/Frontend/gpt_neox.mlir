// GPT-NeoX with use_parallel_residual: LayerNorm, fused query_key_value laid
// out per head as [H, 3, D], partial rotary (rotary_pct 0.25 of head_dim 16
// = 4), exact gelu, h + attn(ln1(h)) + mlp(ln2(h)), LM head "embed_out".
// RUN: kiln-compile %fixtures/gpt_neox --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "GPTNeoXForCausalLM", {{.*}}tfm.num_heads = 4 : i64, tfm.num_kv_heads = 4 : i64
// CHECK: %[[H0:.+]] = tfm.embedding
// CHECK: %[[X:.+]] = tfm.layer_norm %[[H0]], %{{.+}}, %{{.+}} eps = 1.000000e-05
// CHECK: %[[W:.+]] = tfm.weight "gpt_neox.layers.0.attention.query_key_value.weight" : tensor<192x64xf32>
// CHECK: %[[B:.+]] = tfm.weight "gpt_neox.layers.0.attention.query_key_value.bias" : tensor<192xf32>
// CHECK: %[[QKV:.+]] = tfm.linear %[[X]], %[[W]], %[[B]] : (tensor<?x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<?x192xf32>
// CHECK: %[[HEADS:.+]] = tfm.reshape %[[QKV]] : tensor<?x192xf32> -> tensor<?x4x48xf32>
// CHECK: %[[Q:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 0 size = 16 : tensor<?x4x48xf32> -> tensor<?x4x16xf32>
// CHECK: %[[K:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 16 size = 16
// CHECK: %[[V:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 32 size = 16
// CHECK: %[[QR:.+]] = tfm.rope %[[Q]], %{{.+}} config = <style = neox, rotary_dim = 4>
// CHECK: %[[KR:.+]] = tfm.rope %[[K]], %{{.+}} config = <style = neox, rotary_dim = 4>
// CHECK: tfm.kv_cache_append layer 0, %[[KR]], %[[V]]
// CHECK-NOT: tfm.repeat_kv
// CHECK: tfm.weight "gpt_neox.layers.0.attention.dense.bias"
// CHECK: %[[A:.+]] = tfm.linear
// Parallel residual: the MLP norm reads the layer input, not h + attn.
// CHECK: tfm.weight "gpt_neox.layers.0.post_attention_layernorm.weight"
// CHECK: %[[Y:.+]] = tfm.layer_norm %[[H0]],
// CHECK: %[[U:.+]] = tfm.linear %[[Y]],
// CHECK: %[[G:.+]] = tfm.gelu %[[U]] none : tensor<?x256xf32>
// CHECK: %[[M:.+]] = tfm.linear %[[G]],
// CHECK: %[[AM:.+]] = tfm.add %[[A]], %[[M]]
// CHECK: %[[H1:.+]] = tfm.add %[[AM]], %[[H0]]
// CHECK: tfm.layer_norm %[[H1]],
// CHECK: tfm.weight "gpt_neox.final_layer_norm.bias"
// CHECK: %[[HEAD:.+]] = tfm.weight "embed_out.weight" : tensor<256x64xf32>
// CHECK: tfm.linear %{{.+}}, %[[HEAD]] :
