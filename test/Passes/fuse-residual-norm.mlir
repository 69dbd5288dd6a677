// RUN: kiln-opt %s -split-input-file -kiln-fuse-residual-norm | FileCheck %s

// The residual add and the RMS norm fuse; the add's other user reads `sum`.
// CHECK-LABEL: func.func @rms
// CHECK: %[[SUM:.+]], %[[NORM:.+]] = tfm.add_rms_norm %arg0, %arg1, %{{.+}} eps = 1.000000e-05
// CHECK-NOT: tfm.add %
// CHECK: return %[[SUM]], %[[NORM]]
func.func @rms(%h: tensor<?x64xf32>, %a: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %s = tfm.add %h, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w = tfm.weight "norm.weight" : tensor<64xf32>
  %n = tfm.rms_norm %s, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %s, %n : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Parallel residual (GPT-NeoX): x + attn + mlp feeds both next norms; the first
// fuses with the add, the second reads the sum.
// CHECK-LABEL: func.func @layer_norm_two_users
// CHECK: %[[SUM:.+]], %{{.+}} = tfm.add_layer_norm %arg0, %arg1, %{{.+}}, %{{.+}} eps = 1.000000e-05
// CHECK: tfm.layer_norm %[[SUM]]
// CHECK-NOT: tfm.add %
func.func @layer_norm_two_users(%h: tensor<?x64xf32>, %a: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %s = tfm.add %h, %a : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w1 = tfm.weight "ln1.weight" : tensor<64xf32>
  %b1 = tfm.weight "ln1.bias" : tensor<64xf32>
  %w2 = tfm.weight "ln2.weight" : tensor<64xf32>
  %b2 = tfm.weight "ln2.bias" : tensor<64xf32>
  %n1 = tfm.layer_norm %s, %w1, %b1 eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %n2 = tfm.layer_norm %s, %w2, %b2 eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n1, %n2 : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Near miss: an add that broadcasts a bias is not a residual add.
// CHECK-LABEL: func.func @broadcast_add
// CHECK-NOT: tfm.add_rms_norm
// CHECK: tfm.rms_norm
func.func @broadcast_add(%h: tensor<?x64xf32>, %b: tensor<64xf32>) -> tensor<?x64xf32> {
  %s = tfm.add %h, %b : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %w = tfm.weight "norm.weight" : tensor<64xf32>
  %n = tfm.rms_norm %s, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n : tensor<?x64xf32>
}
