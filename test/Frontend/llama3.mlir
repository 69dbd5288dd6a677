// Llama 3: explicit head_dim (32, not hidden/heads = 16), llama3 RoPE
// scaling, attention_bias on q/k/v and o, mlp_bias, tied embeddings.
// RUN: kiln-compile %fixtures/llama3 --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "LlamaForCausalLM", {{.*}}tfm.head_dim = 32 : i64, tfm.hidden_size = 64 : i64, {{.*}}tfm.num_heads = 4 : i64, tfm.num_kv_heads = 2 : i64
// CHECK: %[[TABLE:.+]] = tfm.weight "model.embed_tokens.weight" : tensor<256x64xf32>
// CHECK: %[[WQ:.+]] = tfm.weight "model.layers.0.self_attn.q_proj.weight" : tensor<128x64xf32>
// CHECK: %[[BQ:.+]] = tfm.weight "model.layers.0.self_attn.q_proj.bias" : tensor<128xf32>
// CHECK: %[[Q:.+]] = tfm.linear %{{.+}}, %[[WQ]], %[[BQ]] : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
// CHECK: tfm.weight "model.layers.0.self_attn.k_proj.bias" : tensor<64xf32>
// CHECK: tfm.weight "model.layers.0.self_attn.v_proj.bias" : tensor<64xf32>
// CHECK: tfm.reshape %[[Q]] : tensor<?x128xf32> -> tensor<?x4x32xf32>
// CHECK: tfm.rope {{.*}} config = <style = neox, rotary_dim = 32, theta = 5.000000e+05, scaling = llama3, factor = 8.000000e+00, original_max_position = 32> : (tensor<?x4x32xf32>
// CHECK: tfm.rope {{.*}} scaling = llama3
// CHECK: tfm.repeat_kv %{{.+}} axis = 1 times = 2 : tensor<?x2x32xf32> -> tensor<?x4x32xf32>
// CHECK: tfm.scale %{{.+}} by 0.17677669529663687
// CHECK: tfm.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x128xf32>
// CHECK: tfm.weight "model.layers.0.self_attn.o_proj.bias" : tensor<64xf32>
// CHECK: tfm.weight "model.layers.0.mlp.gate_proj.bias" : tensor<128xf32>
// CHECK: tfm.weight "model.layers.0.mlp.up_proj.bias" : tensor<128xf32>
// CHECK: tfm.weight "model.layers.0.mlp.down_proj.bias" : tensor<64xf32>
// The LM head is the embedding table.
// CHECK-NOT: lm_head
// CHECK: %[[WN:.+]] = tfm.weight "model.norm.weight"
// CHECK-NEXT: %[[F:.+]] = tfm.rms_norm %{{.+}}, %[[WN]]
// CHECK-NEXT: %[[LOGITS:.+]] = tfm.linear %[[F]], %[[TABLE]] : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
// CHECK-NEXT: return %[[LOGITS]]
