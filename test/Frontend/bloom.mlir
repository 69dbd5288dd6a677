// Bloom: ALiBi instead of RoPE (6 heads), LayerNorm on the embeddings, fused
// query_key_value laid out per head as [H, 3, D], gelu (tanh), LM head tied
// to word_embeddings. No max_position_embeddings.
// RUN: kiln-compile %fixtures/bloom --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "BloomForCausalLM", tfm.dtype = f32, tfm.head_dim = 12 : i64, tfm.hidden_size = 72 : i64, tfm.num_heads = 6 : i64, tfm.num_kv_heads = 6 : i64, tfm.num_layers = 2 : i64, tfm.vocab_size = 256 : i64}
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi32>, %[[POS:[^:]+]]: tensor<?xi32>)
// CHECK: %[[TABLE:.+]] = tfm.weight "transformer.word_embeddings.weight" : tensor<256x72xf32>
// CHECK: %[[E:.+]] = tfm.embedding %[[TABLE]][%[[IDS]]]
// CHECK: tfm.weight "transformer.word_embeddings_layernorm.weight" : tensor<72xf32>
// CHECK: tfm.weight "transformer.word_embeddings_layernorm.bias" : tensor<72xf32>
// CHECK: %[[H0:.+]] = tfm.layer_norm %[[E]],
// CHECK: %[[X:.+]] = tfm.layer_norm %[[H0]],
// CHECK: tfm.weight "transformer.h.0.self_attention.query_key_value.bias" : tensor<216xf32>
// CHECK: %[[QKV:.+]] = tfm.linear %[[X]],
// CHECK: %[[HEADS:.+]] = tfm.reshape %[[QKV]] : tensor<?x216xf32> -> tensor<?x6x36xf32>
// CHECK: %[[Q:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 0 size = 12
// CHECK: %[[K:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 12 size = 12
// CHECK: %[[V:.+]] = tfm.slice %[[HEADS]] axis = 2 start = 24 size = 12
// CHECK-NOT: tfm.rope
// CHECK: tfm.kv_cache_append layer 0, %[[K]], %[[V]]
// CHECK: %[[S:.+]] = tfm.scale %{{.+}} by 0.28867513459481292 : tensor<6x?x?xf32>
// CHECK: %[[B:.+]] = tfm.alibi_bias %[[S]], %[[POS]] : (tensor<6x?x?xf32>, tensor<?xi32>) -> tensor<6x?x?xf32>
// CHECK: tfm.causal_mask %[[B]], %[[POS]] :
// CHECK: tfm.gelu %{{.+}} tanh : tensor<?x288xf32>
// CHECK-NOT: tfm.rope
// CHECK-NOT: lm_head
// CHECK: tfm.weight "transformer.ln_f.bias"
// CHECK: tfm.linear %{{.+}}, %[[TABLE]] : (tensor<?x72xf32>, tensor<256x72xf32>) -> tensor<?x256xf32>
