// GPT-J: interleaved (gptj-style) rotary on the first rotary_dim = 8 of 16
// dimensions, attention and MLP in parallel off one LayerNorm, gelu_new
// (tanh), q/k/v/out without biases, LM head with a bias.
// RUN: kiln-compile %fixtures/gptj --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "GPTJForCausalLM", {{.*}}tfm.max_position_embeddings = 128 : i64
// CHECK: %[[H0:.+]] = tfm.embedding
// CHECK: %[[X:.+]] = tfm.layer_norm %[[H0]], %{{.+}}, %{{.+}} eps = 1.000000e-05
// CHECK: %[[WQ:.+]] = tfm.weight "transformer.h.0.attn.q_proj.weight" : tensor<64x64xf32>
// CHECK-NEXT: tfm.linear %[[X]], %[[WQ]] : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
// CHECK: tfm.rope {{.*}} config = <style = gptj, rotary_dim = 8> : (tensor<?x4x16xf32>
// CHECK: tfm.rope {{.*}} config = <style = gptj, rotary_dim = 8>
// CHECK: %[[WO:.+]] = tfm.weight "transformer.h.0.attn.out_proj.weight"
// CHECK-NEXT: %[[A:.+]] = tfm.linear %{{[^ ]+}}, %[[WO]] :
// The MLP reads the same LayerNorm output as the attention.
// CHECK: tfm.weight "transformer.h.0.mlp.fc_in.bias"
// CHECK-NEXT: %[[U:.+]] = tfm.linear %[[X]],
// CHECK-NEXT: %[[G:.+]] = tfm.gelu %[[U]] tanh
// CHECK: %[[M:.+]] = tfm.linear %[[G]],
// CHECK-NEXT: %[[AM:.+]] = tfm.add %[[A]], %[[M]]
// CHECK-NEXT: tfm.add %[[AM]], %[[H0]]
// CHECK: %[[HW:.+]] = tfm.weight "lm_head.weight" : tensor<256x64xf32>
// CHECK-NEXT: %[[HB:.+]] = tfm.weight "lm_head.bias" : tensor<256xf32>
// CHECK-NEXT: tfm.linear %{{.+}}, %[[HW]], %[[HB]] : (tensor<?x64xf32>, tensor<256x64xf32>, tensor<256xf32>) -> tensor<?x256xf32>
