// Mistral: sliding_window = 4 masks keys more than 3 positions back, in every
// layer.
// RUN: kiln-compile %fixtures/mistral --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "MistralForCausalLM", {{.*}}tfm.num_layers = 3 : i64
// CHECK-NOT: tfm.weight "{{.*}}.bias"
// CHECK-COUNT-3: tfm.causal_mask %{{.+}}, %{{.+}} window = 4 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
// CHECK-NOT: tfm.causal_mask
// CHECK: tfm.weight "lm_head.weight"
