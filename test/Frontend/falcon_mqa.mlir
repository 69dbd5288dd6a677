// Falcon, original layout with multi_query: one kv head (the fused weight is
// [1, H + 2, D]: all query heads, then the key, then the value), parallel
// attention and MLP off input_layernorm, no biases, rotary, tied LM head.
// RUN: kiln-compile %fixtures/falcon_mqa --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "FalconForCausalLM", {{.*}}tfm.num_heads = 4 : i64, tfm.num_kv_heads = 1 : i64
// CHECK: %[[TABLE:.+]] = tfm.weight "transformer.word_embeddings.weight"
// CHECK: %[[H0:.+]] = tfm.embedding %[[TABLE]]
// CHECK: %[[X:.+]] = tfm.layer_norm %[[H0]],
// CHECK: %[[W:.+]] = tfm.weight "transformer.h.0.self_attention.query_key_value.weight" : tensor<96x64xf32>
// CHECK-NEXT: %[[QKV:.+]] = tfm.linear %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
// CHECK-NEXT: %[[G:.+]] = tfm.reshape %[[QKV]] : tensor<?x96xf32> -> tensor<?x1x96xf32>
// CHECK-NEXT: %[[Q:.+]] = tfm.slice %[[G]] axis = 2 start = 0 size = 64 : tensor<?x1x96xf32> -> tensor<?x1x64xf32>
// CHECK-NEXT: %[[Q3:.+]] = tfm.reshape %[[Q]] : tensor<?x1x64xf32> -> tensor<?x4x16xf32>
// CHECK-NEXT: %[[K:.+]] = tfm.slice %[[G]] axis = 2 start = 64 size = 16 : tensor<?x1x96xf32> -> tensor<?x1x16xf32>
// CHECK-NEXT: %[[V:.+]] = tfm.slice %[[G]] axis = 2 start = 80 size = 16
// CHECK-NEXT: %[[QR:.+]] = tfm.rope %[[Q3]], %{{.+}} config = <style = neox, rotary_dim = 16>
// CHECK-NEXT: %[[KR:.+]] = tfm.rope %[[K]], %{{.+}} config = <style = neox, rotary_dim = 16>
// CHECK-NEXT: tfm.kv_cache_append layer 0, %[[KR]], %[[V]] : tensor<?x1x16xf32>, tensor<?x1x16xf32>
// CHECK-NEXT: %[[KC:.+]], %[[VC:.+]] = tfm.kv_cache_read layer 0 : tensor<?x1x16xf32>, tensor<?x1x16xf32>
// CHECK-NEXT: tfm.repeat_kv %[[KC]] axis = 1 times = 4 : tensor<?x1x16xf32> -> tensor<?x4x16xf32>
// CHECK-NEXT: tfm.repeat_kv %[[VC]] axis = 1 times = 4
// CHECK: %[[WD:.+]] = tfm.weight "transformer.h.0.self_attention.dense.weight"
// CHECK-NEXT: %[[A:.+]] = tfm.linear %{{[^ ]+}}, %[[WD]] :
// CHECK-NEXT: %[[W4:.+]] = tfm.weight "transformer.h.0.mlp.dense_h_to_4h.weight" : tensor<256x64xf32>
// CHECK-NEXT: %[[U:.+]] = tfm.linear %[[X]], %[[W4]] :
// CHECK-NEXT: tfm.gelu %[[U]] none
// CHECK: %[[M:.+]] = tfm.linear
// CHECK-NEXT: %[[AM:.+]] = tfm.add %[[A]], %[[M]]
// CHECK-NEXT: tfm.add %[[AM]], %[[H0]]
// CHECK-NOT: post_attention_layernorm
// CHECK-NOT: lm_head
// CHECK: tfm.linear %{{.+}}, %[[TABLE]] : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
