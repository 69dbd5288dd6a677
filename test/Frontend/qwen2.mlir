// Qwen2: q/k/v biases but no o_proj bias, rope theta 1e6, rms eps 1e-6, tied
// embeddings, use_sliding_window = false (no window).
// RUN: kiln-compile %fixtures/qwen2 --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "Qwen2ForCausalLM"
// CHECK: %[[TABLE:.+]] = tfm.weight "model.embed_tokens.weight"
// CHECK: tfm.rms_norm %{{.+}}, %{{.+}} eps = 9.9999999999999995E-7
// CHECK: %[[BQ:.+]] = tfm.weight "model.layers.0.self_attn.q_proj.bias" : tensor<64xf32>
// CHECK-NEXT: tfm.linear %{{.+}}, %{{.+}}, %[[BQ]]
// CHECK: %[[BK:.+]] = tfm.weight "model.layers.0.self_attn.k_proj.bias" : tensor<32xf32>
// CHECK-NEXT: tfm.linear %{{.+}}, %{{.+}}, %[[BK]]
// CHECK: %[[BV:.+]] = tfm.weight "model.layers.0.self_attn.v_proj.bias" : tensor<32xf32>
// CHECK-NEXT: tfm.linear %{{.+}}, %{{.+}}, %[[BV]]
// CHECK: tfm.rope {{.*}} config = <style = neox, rotary_dim = 16, theta = 1.000000e+06>
// CHECK: tfm.causal_mask %{{[^ ]+}}, %{{[^ ]+}} :
// CHECK: %[[WO:.+]] = tfm.weight "model.layers.0.self_attn.o_proj.weight"
// CHECK-NEXT: tfm.linear %{{[^ ]+}}, %[[WO]] :
// CHECK-NOT: window
// CHECK-NOT: lm_head
// CHECK: tfm.linear %{{.+}}, %[[TABLE]] : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
