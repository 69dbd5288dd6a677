// Falcon new_decoder_architecture: 8 query heads in 2 kv groups, the fused
// weight grouped as [KVH = 2, G + 2 = 6, D = 16]; ln_attn and ln_mlp both read
// the layer input, h + attn + mlp.
// RUN: kiln-compile %fixtures/falcon_gqa --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "FalconForCausalLM", {{.*}}tfm.num_heads = 8 : i64, tfm.num_kv_heads = 2 : i64
// CHECK: %[[H0:.+]] = tfm.embedding
// CHECK: tfm.weight "transformer.h.0.ln_attn.weight"
// CHECK: %[[X:.+]] = tfm.layer_norm %[[H0]],
// CHECK: %[[QKV:.+]] = tfm.linear %[[X]], %{{.+}} : (tensor<?x128xf32>, tensor<192x128xf32>) -> tensor<?x192xf32>
// CHECK-NEXT: %[[G:.+]] = tfm.reshape %[[QKV]] : tensor<?x192xf32> -> tensor<?x2x96xf32>
// CHECK-NEXT: %[[Q:.+]] = tfm.slice %[[G]] axis = 2 start = 0 size = 64 : tensor<?x2x96xf32> -> tensor<?x2x64xf32>
// CHECK-NEXT: tfm.reshape %[[Q]] : tensor<?x2x64xf32> -> tensor<?x8x16xf32>
// CHECK-NEXT: tfm.slice %[[G]] axis = 2 start = 64 size = 16 : tensor<?x2x96xf32> -> tensor<?x2x16xf32>
// CHECK-NEXT: tfm.slice %[[G]] axis = 2 start = 80 size = 16
// CHECK: tfm.repeat_kv %{{.+}} axis = 1 times = 4 : tensor<?x2x16xf32> -> tensor<?x8x16xf32>
// CHECK: %[[A:.+]] = tfm.linear
// CHECK: tfm.weight "transformer.h.0.ln_mlp.weight"
// CHECK: %[[Y:.+]] = tfm.layer_norm %[[H0]],
// CHECK: tfm.linear %[[Y]],
// CHECK: %[[M:.+]] = tfm.linear
// CHECK-NEXT: %[[AM:.+]] = tfm.add %[[A]], %[[M]]
// CHECK-NEXT: tfm.add %[[AM]], %[[H0]]
