// RUN: kiln-opt %s -split-input-file -kiln-fuse-gated-mlp | FileCheck %s

// SwiGLU: silu(gate) * up with a load-time packed gate/up weight.
// CHECK-LABEL: func.func @swiglu
// CHECK: %[[W:.+]] = tfm.weight_concat %{{.+}}, %{{.+}} axis = 0 : (tensor<160x64xf32>, tensor<160x64xf32>) -> tensor<320x64xf32>
// CHECK: %[[H:.+]] = tfm.gated_mlp silu %arg0, %[[W]] :
// CHECK-NOT: tfm.mul
// CHECK: return %[[H]]
func.func @swiglu(%x: tensor<?x64xf32>) -> tensor<?x160xf32> {
  %wg = tfm.weight "gate_proj.weight" : tensor<160x64xf32>
  %wu = tfm.weight "up_proj.weight" : tensor<160x64xf32>
  %g = tfm.linear %x, %wg : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %u = tfm.linear %x, %wu : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %a = tfm.silu %g : tensor<?x160xf32>
  %m = tfm.mul %a, %u : (tensor<?x160xf32>, tensor<?x160xf32>) -> tensor<?x160xf32>
  return %m : tensor<?x160xf32>
}

// -----

// GeGLU (tanh) with biases, the gated factor on the right.
// CHECK-LABEL: func.func @geglu_bias
// CHECK: %[[W:.+]] = tfm.weight_concat
// CHECK: %[[B:.+]] = tfm.weight_concat %{{.+}}, %{{.+}} axis = 0 : (tensor<160xf32>, tensor<160xf32>) -> tensor<320xf32>
// CHECK: tfm.gated_mlp gelu_tanh %arg0, %[[W]], %[[B]] :
func.func @geglu_bias(%x: tensor<?x64xf32>) -> tensor<?x160xf32> {
  %wg = tfm.weight "gate_proj.weight" : tensor<160x64xf32>
  %bg = tfm.weight "gate_proj.bias" : tensor<160xf32>
  %wu = tfm.weight "up_proj.weight" : tensor<160x64xf32>
  %bu = tfm.weight "up_proj.bias" : tensor<160xf32>
  %g = tfm.linear %x, %wg, %bg : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<160xf32>) -> tensor<?x160xf32>
  %u = tfm.linear %x, %wu, %bu : (tensor<?x64xf32>, tensor<160x64xf32>, tensor<160xf32>) -> tensor<?x160xf32>
  %a = tfm.gelu %g tanh : tensor<?x160xf32>
  %m = tfm.mul %u, %a : (tensor<?x160xf32>, tensor<?x160xf32>) -> tensor<?x160xf32>
  return %m : tensor<?x160xf32>
}

// -----

// Near miss: a bilinear product without an activation is not a gated MLP
// the op supports.
// CHECK-LABEL: func.func @no_activation
// CHECK-NOT: tfm.gated_mlp
// CHECK: tfm.mul
func.func @no_activation(%x: tensor<?x64xf32>) -> tensor<?x160xf32> {
  %wg = tfm.weight "gate_proj.weight" : tensor<160x64xf32>
  %wu = tfm.weight "up_proj.weight" : tensor<160x64xf32>
  %g = tfm.linear %x, %wg : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %u = tfm.linear %x, %wu : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %m = tfm.mul %g, %u : (tensor<?x160xf32>, tensor<?x160xf32>) -> tensor<?x160xf32>
  return %m : tensor<?x160xf32>
}

// -----

// Near miss: gate and up projections of different inputs.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: tfm.gated_mlp
func.func @different_inputs(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>) -> tensor<?x160xf32> {
  %wg = tfm.weight "gate_proj.weight" : tensor<160x64xf32>
  %wu = tfm.weight "up_proj.weight" : tensor<160x64xf32>
  %g = tfm.linear %x, %wg : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %u = tfm.linear %y, %wu : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  %a = tfm.silu %g : tensor<?x160xf32>
  %m = tfm.mul %a, %u : (tensor<?x160xf32>, tensor<?x160xf32>) -> tensor<?x160xf32>
  return %m : tensor<?x160xf32>
}
