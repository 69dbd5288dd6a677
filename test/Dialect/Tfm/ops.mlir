// RUN: kiln-opt %s | FileCheck %s
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s -emit-bytecode | kiln-opt | FileCheck %s
// RUN: kiln-opt %s -mlir-print-op-generic | kiln-opt | FileCheck %s

// Every tfm op, with each optional operand and attribute present and absent
// and every enum word, printed and parsed back (as text, as bytecode and in
// the generic form).
// Each op's description example from TfmOps.td comes first in its function.

//===----------------------------------------------------------------------===//
// Weights and their load-time transforms
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @weights
func.func @weights() -> (tensor<64x176xbf16>, tensor<128x64xf32>, tensor<64x64xf32>) {
  // CHECK: %[[DOWN:.+]] = tfm.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x176xbf16>
  %w = tfm.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x176xbf16>
  // CHECK: %[[WQ:.+]] = tfm.weight "q" : tensor<64x64xf32>
  // CHECK: %[[WK:.+]] = tfm.weight "k" : tensor<32x64xf32>
  // CHECK: %[[WV:.+]] = tfm.weight "v" : tensor<32x64xf32>
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %wk = tfm.weight "k" : tensor<32x64xf32>
  %wv = tfm.weight "v" : tensor<32x64xf32>
  // CHECK: %[[QKV:.+]] = tfm.weight_concat %[[WQ]], %[[WK]], %[[WV]] axis = 0
  // CHECK-SAME: : (tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<128x64xf32>
  %qkv = tfm.weight_concat %wq, %wk, %wv axis = 0
      : (tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<128x64xf32>
  // CHECK: %[[BF:.+]] = tfm.weight "o" : tensor<64x64xbf16>
  // CHECK: %[[CAST:.+]] = tfm.weight_cast %[[BF]] : tensor<64x64xbf16> to tensor<64x64xf32>
  %bf = tfm.weight "o" : tensor<64x64xbf16>
  %c = tfm.weight_cast %bf : tensor<64x64xbf16> to tensor<64x64xf32>
  // CHECK: return %[[DOWN]], %[[QKV]], %[[CAST]]
  return %w, %qkv, %c : tensor<64x176xbf16>, tensor<128x64xf32>, tensor<64x64xf32>
}

// Load-time transforms chain, along any axis, onto any element type.
// CHECK-LABEL: func.func @weight_transform_chain
func.func @weight_transform_chain() -> tensor<64x352xf16> {
  // CHECK: %[[GATE:.+]] = tfm.weight "gate" : tensor<64x176xbf16>
  // CHECK: %[[UP:.+]] = tfm.weight "up" : tensor<64x176xbf16>
  // CHECK: %[[CAT:.+]] = tfm.weight_concat %[[GATE]], %[[UP]] axis = 1 : (tensor<64x176xbf16>, tensor<64x176xbf16>) -> tensor<64x352xbf16>
  // CHECK: tfm.weight_cast %[[CAT]] : tensor<64x352xbf16> to tensor<64x352xf16>
  %gate = tfm.weight "gate" : tensor<64x176xbf16>
  %up = tfm.weight "up" : tensor<64x176xbf16>
  %cat = tfm.weight_concat %gate, %up axis = 1
      : (tensor<64x176xbf16>, tensor<64x176xbf16>) -> tensor<64x352xbf16>
  %cast = tfm.weight_cast %cat : tensor<64x352xbf16> to tensor<64x352xf16>
  return %cast : tensor<64x352xf16>
}

// Weights of any element type: quantized checkpoints store integers.
// CHECK-LABEL: func.func @weight_element_types
func.func @weight_element_types() {
  // CHECK: tfm.weight "packed" : tensor<128x32xi8>
  // CHECK: tfm.weight "scalar" : tensor<f32>
  %a = tfm.weight "packed" : tensor<128x32xi8>
  %b = tfm.weight "scalar" : tensor<f32>
  return
}

//===----------------------------------------------------------------------===//
// Graph level: embeddings, linear algebra, normalisation
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[TABLE:[a-z0-9]+]]: tensor<256x64xf32>, %[[IDS:[a-z0-9]+]]: tensor<?xi32>, %[[TABLE16:[a-z0-9]+]]: tensor<256x64xbf16>, %[[IDS4:[a-z0-9]+]]: tensor<4xi32>)
func.func @embedding(%table: tensor<256x64xf32>, %ids: tensor<?xi32>,
                     %table16: tensor<256x64xbf16>, %ids4: tensor<4xi32>) {
  // CHECK: tfm.embedding %[[TABLE]][%[[IDS]]] : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %h = tfm.embedding %table[%ids]
      : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // CHECK: tfm.embedding %[[TABLE16]][%[[IDS4]]] : (tensor<256x64xbf16>, tensor<4xi32>) -> tensor<4x64xbf16>
  %h4 = tfm.embedding %table16[%ids4]
      : (tensor<256x64xbf16>, tensor<4xi32>) -> tensor<4x64xbf16>
  return
}

// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<128x64xf32>, %[[B:[a-z0-9]+]]: tensor<128xf32>, %[[X3:[a-z0-9]+]]: tensor<2x?x64xf32>)
func.func @linear(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>,
                  %x3: tensor<2x?x64xf32>) {
  // CHECK: tfm.linear %[[X]], %[[W]], %[[B]] : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %y = tfm.linear %x, %w, %b
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // CHECK: tfm.linear %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %n = tfm.linear %x, %w : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  // Leading dimensions pass through.
  // CHECK: tfm.linear %[[X3]], %[[W]] : (tensor<2x?x64xf32>, tensor<128x64xf32>) -> tensor<2x?x128xf32>
  %y3 = tfm.linear %x3, %w : (tensor<2x?x64xf32>, tensor<128x64xf32>) -> tensor<2x?x128xf32>
  return
}

// CHECK-LABEL: func.func @linear_weight_from_checkpoint
func.func @linear_weight_from_checkpoint(%x: tensor<?x64xf16>) -> tensor<?x32xf16> {
  // CHECK: %[[W:.+]] = tfm.weight "proj" : tensor<32x64xf16>
  // CHECK: tfm.linear %{{.+}}, %[[W]] : (tensor<?x64xf16>, tensor<32x64xf16>) -> tensor<?x32xf16>
  %w = tfm.weight "proj" : tensor<32x64xf16>
  %y = tfm.linear %x, %w : (tensor<?x64xf16>, tensor<32x64xf16>) -> tensor<?x32xf16>
  return %y : tensor<?x32xf16>
}

// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: tensor<4x?x16xf32>, %[[K:[a-z0-9]+]]: tensor<4x?x16xf32>, %[[P:[a-z0-9]+]]: tensor<4x?x?xf32>)
func.func @matmul(%q: tensor<4x?x16xf32>, %k: tensor<4x?x16xf32>, %p: tensor<4x?x?xf32>) {
  // CHECK: tfm.matmul %[[Q]], %[[K]] transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  %s = tfm.matmul %q, %k transpose_b
      : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
  // CHECK: tfm.matmul %[[P]], %[[K]] : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o = tfm.matmul %p, %k : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  return
}

// CHECK-LABEL: func.func @matmul_2d
func.func @matmul_2d(%a: tensor<8x16xbf16>, %b: tensor<16x4xbf16>) -> tensor<8x4xbf16> {
  // CHECK: tfm.matmul %{{.+}}, %{{.+}} : (tensor<8x16xbf16>, tensor<16x4xbf16>) -> tensor<8x4xbf16>
  // CHECK-NOT: transpose_b
  %c = tfm.matmul %a, %b : (tensor<8x16xbf16>, tensor<16x4xbf16>) -> tensor<8x4xbf16>
  return %c : tensor<8x4xbf16>
}

// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<64xf32>)
func.func @rms_norm(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // CHECK: tfm.rms_norm %[[X]], %[[W]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK: tfm.rms_norm %[[X]], %[[W]] eps = 9.9999999999999995E-7 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %m = tfm.rms_norm %x, %w eps = 1.0e-06 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// CHECK-LABEL: func.func @layer_norm
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<64xf32>, %[[B:[a-z0-9]+]]: tensor<64xf32>)
func.func @layer_norm(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) {
  // CHECK: tfm.layer_norm %[[X]], %[[W]], %[[B]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %n = tfm.layer_norm %x, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK: tfm.layer_norm %[[X]], %[[W]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %m = tfm.layer_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// CHECK-LABEL: func.func @rope
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: tensor<?x4x16xf32>, %[[POS:[a-z0-9]+]]: tensor<?xi32>)
func.func @rope(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // Parameters equal to their defaults (theta 10000) are not printed.
  // CHECK: tfm.rope %[[Q]], %[[POS]] config = <style = neox, rotary_dim = 16> : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q2 = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 10000.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  // Partial rotary dimension, GPT-J pairing, linear scaling.
  // CHECK: tfm.rope %[[Q]], %[[POS]] config = <style = gptj, rotary_dim = 8, theta = 5.000000e+05, scaling = linear, factor = 2.000000e+00>
  %g = tfm.rope %q, %pos config = <style = gptj, rotary_dim = 8, theta = 500000.0,
                                   scaling = linear, factor = 2.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  // Llama 3.1 scaling with every parameter spelled out; 1.0 and 4.0 are the
  // defaults of low_freq_factor and high_freq_factor.
  // CHECK: tfm.rope %[[Q]], %[[POS]] config = <style = neox, rotary_dim = 16, theta = 5.000000e+05, scaling = llama3, factor = 3.200000e+01, original_max_position = 8192>
  %l = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 500000.0,
                                   scaling = llama3, factor = 32.0, low_freq_factor = 1.0,
                                   high_freq_factor = 4.0, original_max_position = 8192>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  // CHECK: tfm.rope %[[Q]], %[[POS]] config = <style = neox, rotary_dim = 16, scaling = llama3, factor = 8.000000e+00, low_freq_factor = 2.000000e+00, high_freq_factor = 8.000000e+00, original_max_position = 4096>
  %l2 = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, scaling = llama3,
                                    factor = 8.0, low_freq_factor = 2.0, high_freq_factor = 8.0,
                                    original_max_position = 4096>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  // `scaling = none` is the default and is not printed.
  // CHECK: tfm.rope %[[Q]], %[[POS]] config = <style = gptj, rotary_dim = 16, theta = 1.000000e+06> :
  %n = tfm.rope %q, %pos config = <style = gptj, rotary_dim = 16, theta = 1.0e+06, scaling = none>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// The attribute's own long form, as its description in TfmBase.td writes it,
// wherever an attribute dictionary holds it.
// CHECK-LABEL: func.func @rope_attribute_long_form
// CHECK-SAME: attributes {tfm.rope = #tfm.rope<style = neox, rotary_dim = 64, theta = 5.000000e+05, scaling = llama3, factor = 3.200000e+01, original_max_position = 8192>}
func.func @rope_attribute_long_form() attributes {
    tfm.rope = #tfm.rope<style = neox, rotary_dim = 64, theta = 500000.0, scaling = llama3,
                         factor = 32.0, low_freq_factor = 1.0, high_freq_factor = 4.0,
                         original_max_position = 8192>} {
  return
}

// CHECK-LABEL: func.func @rope_static_bf16
func.func @rope_static_bf16(%k: tensor<3x2x64xbf16>, %pos: tensor<3xi32>) -> tensor<3x2x64xbf16> {
  // CHECK: tfm.rope %{{.+}}, %{{.+}} config = <style = neox, rotary_dim = 64, theta = 5.000000e+05> : (tensor<3x2x64xbf16>, tensor<3xi32>) -> tensor<3x2x64xbf16>
  %r = tfm.rope %k, %pos config = <style = neox, rotary_dim = 64, theta = 500000.0>
      : (tensor<3x2x64xbf16>, tensor<3xi32>) -> tensor<3x2x64xbf16>
  return %r : tensor<3x2x64xbf16>
}

// CHECK-LABEL: func.func @softmax
// CHECK-SAME: (%[[S:[a-z0-9]+]]: tensor<4x?x?xf32>)
func.func @softmax(%s: tensor<4x?x?xf32>) {
  // CHECK: tfm.softmax %[[S]] axis = 2 : tensor<4x?x?xf32>
  %p = tfm.softmax %s axis = 2 : tensor<4x?x?xf32>
  // CHECK: tfm.softmax %[[S]] axis = 0 : tensor<4x?x?xf32>
  %q = tfm.softmax %s axis = 0 : tensor<4x?x?xf32>
  return
}

//===----------------------------------------------------------------------===//
// Graph level: elementwise
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @add_mul
// CHECK-SAME: (%[[A:[a-z0-9]+]]: tensor<4x?x?xf32>, %[[B:[a-z0-9]+]]: tensor<?x?xf32>, %[[ROW:[a-z0-9]+]]: tensor<64xf32>, %[[X:[a-z0-9]+]]: tensor<?x64xf32>)
func.func @add_mul(%a: tensor<4x?x?xf32>, %b: tensor<?x?xf32>, %row: tensor<64xf32>,
                   %x: tensor<?x64xf32>) {
  // CHECK: tfm.add %[[A]], %[[B]] : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  %r = tfm.add %a, %b : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  // CHECK: tfm.mul %[[A]], %[[B]] : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  %m = tfm.mul %a, %b : (tensor<4x?x?xf32>, tensor<?x?xf32>) -> tensor<4x?x?xf32>
  // A row broadcast over tokens, and the same with the operands swapped.
  // CHECK: tfm.add %[[X]], %[[ROW]] : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  // CHECK: tfm.mul %[[ROW]], %[[X]] : (tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %xr = tfm.add %x, %row : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %rx = tfm.mul %row, %x : (tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return
}

// CHECK-LABEL: func.func @add_size_one_broadcast
func.func @add_size_one_broadcast(%a: tensor<4x1x16xf16>, %b: tensor<3x1xf16>) -> tensor<4x3x16xf16> {
  // CHECK: tfm.add %{{.+}}, %{{.+}} : (tensor<4x1x16xf16>, tensor<3x1xf16>) -> tensor<4x3x16xf16>
  %r = tfm.add %a, %b : (tensor<4x1x16xf16>, tensor<3x1xf16>) -> tensor<4x3x16xf16>
  return %r : tensor<4x3x16xf16>
}

// CHECK-LABEL: func.func @activations
// CHECK-SAME: (%[[G:[a-z0-9]+]]: tensor<?x176xf32>, %[[H:[a-z0-9]+]]: tensor<?x256xf32>)
func.func @activations(%g: tensor<?x176xf32>, %h: tensor<?x256xf32>) {
  // CHECK: tfm.silu %[[G]] : tensor<?x176xf32>
  %a = tfm.silu %g : tensor<?x176xf32>
  // CHECK: tfm.gelu %[[H]] tanh : tensor<?x256xf32>
  %t = tfm.gelu %h tanh : tensor<?x256xf32>
  // CHECK: tfm.gelu %[[H]] none : tensor<?x256xf32>
  %e = tfm.gelu %h none : tensor<?x256xf32>
  return
}

// CHECK-LABEL: func.func @scale
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<4x?x?xf32>)
func.func @scale(%x: tensor<4x?x?xf32>) {
  // CHECK: tfm.scale %[[X]] by 2.500000e-01 : tensor<4x?x?xf32>
  %s = tfm.scale %x by 0.25 : tensor<4x?x?xf32>
  // CHECK: tfm.scale %[[X]] by -1.000000e+00 : tensor<4x?x?xf32>
  %n = tfm.scale %x by -1.0 : tensor<4x?x?xf32>
  return
}

//===----------------------------------------------------------------------===//
// Graph level: shape ops
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @reshape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[S:[a-z0-9]+]]: tensor<2x3x4xi32>)
func.func @reshape(%x: tensor<?x64xf32>, %s: tensor<2x3x4xi32>) {
  // CHECK: tfm.reshape %[[X]] : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %r = tfm.reshape %x : tensor<?x64xf32> -> tensor<?x4x16xf32>
  // CHECK: tfm.reshape %[[S]] : tensor<2x3x4xi32> -> tensor<24xi32>
  %f = tfm.reshape %s : tensor<2x3x4xi32> -> tensor<24xi32>
  return
}

// CHECK-LABEL: func.func @transpose
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4x16xf32>, %[[M:[a-z0-9]+]]: tensor<8x2xbf16>)
func.func @transpose(%x: tensor<?x4x16xf32>, %m: tensor<8x2xbf16>) {
  // CHECK: tfm.transpose %[[X]] [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  %t = tfm.transpose %x [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  // CHECK: tfm.transpose %[[M]] [1, 0] : tensor<8x2xbf16> -> tensor<2x8xbf16>
  %u = tfm.transpose %m [1, 0] : tensor<8x2xbf16> -> tensor<2x8xbf16>
  return
}

// CHECK-LABEL: func.func @concat_split
// CHECK-SAME: (%[[A:[a-z0-9]+]]: tensor<?x64xf32>, %[[B:[a-z0-9]+]]: tensor<?x32xf32>, %[[X:[a-z0-9]+]]: tensor<?x96xf32>)
func.func @concat_split(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>, %x: tensor<?x96xf32>) {
  // CHECK: tfm.concat %[[A]], %[[B]] axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x96xf32>
  %c = tfm.concat %a, %b axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x96xf32>
  // CHECK: %{{.+}}:2 = tfm.split %[[X]] axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  %s:2 = tfm.split %x axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  // A single piece is allowed for both.
  // CHECK: tfm.concat %[[X]] axis = 0 : (tensor<?x96xf32>) -> tensor<?x96xf32>
  // CHECK: tfm.split %[[X]] axis = 0 : tensor<?x96xf32> -> tensor<?x96xf32>
  %c1 = tfm.concat %x axis = 0 : (tensor<?x96xf32>) -> tensor<?x96xf32>
  %s1 = tfm.split %x axis = 0 : tensor<?x96xf32> -> tensor<?x96xf32>
  return
}

// CHECK-LABEL: func.func @split_description_example
func.func @split_description_example(%x: tensor<?x96xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  // CHECK: %[[S:.+]]:2 = tfm.split
  // CHECK: return %[[S]]#0, %[[S]]#1
  %a, %b = tfm.split %x axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  return %a, %b : tensor<?x64xf32>, tensor<?x32xf32>
}

// CHECK-LABEL: func.func @slice
// CHECK-SAME: (%[[QKV:[a-z0-9]+]]: tensor<?x128xf32>)
func.func @slice(%qkv: tensor<?x128xf32>) {
  // CHECK: tfm.slice %[[QKV]] axis = 1 start = 0 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
  %q = tfm.slice %qkv axis = 1 start = 0 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
  // CHECK: tfm.slice %[[QKV]] axis = 1 start = 96 size = 32 : tensor<?x128xf32> -> tensor<?x32xf32>
  %v = tfm.slice %qkv axis = 1 start = 96 size = 32 : tensor<?x128xf32> -> tensor<?x32xf32>
  // Along the dynamic token axis.
  // CHECK: tfm.slice %[[QKV]] axis = 0 start = 3 size = 1 : tensor<?x128xf32> -> tensor<1x128xf32>
  %t = tfm.slice %qkv axis = 0 start = 3 size = 1 : tensor<?x128xf32> -> tensor<1x128xf32>
  return
}

// CHECK-LABEL: func.func @repeat_kv
// CHECK-SAME: (%[[K:[a-z0-9]+]]: tensor<?x2x16xf32>)
func.func @repeat_kv(%k: tensor<?x2x16xf32>) {
  // CHECK: tfm.repeat_kv %[[K]] axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  %k4 = tfm.repeat_kv %k axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  // CHECK: tfm.repeat_kv %[[K]] axis = 0 times = 3 : tensor<?x2x16xf32> -> tensor<?x2x16xf32>
  %t = tfm.repeat_kv %k axis = 0 times = 3 : tensor<?x2x16xf32> -> tensor<?x2x16xf32>
  return
}

//===----------------------------------------------------------------------===//
// Graph level: KV cache, masks and biases
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @kv_cache
// CHECK-SAME: (%[[K:[a-z0-9]+]]: tensor<?x2x16xf32>, %[[V:[a-z0-9]+]]: tensor<?x2x16xf32>)
func.func @kv_cache(%k: tensor<?x2x16xf32>, %v: tensor<?x2x16xf32>)
    -> (tensor<?x2x16xf32>, tensor<?x2x16xf32>) {
  // CHECK: tfm.kv_cache_append layer 0, %[[K]], %[[V]] : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  // CHECK: %[[KC:.+]], %[[VC:.+]] = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  %kc, %vc = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  // CHECK: return %[[KC]], %[[VC]]
  return %kc, %vc : tensor<?x2x16xf32>, tensor<?x2x16xf32>
}

// CHECK-LABEL: func.func @kv_cache_later_layer
func.func @kv_cache_later_layer(%k: tensor<1x8x128xbf16>, %v: tensor<1x8x128xbf16>) {
  // CHECK: tfm.kv_cache_append layer 31, %{{.+}}, %{{.+}} : tensor<1x8x128xbf16>, tensor<1x8x128xbf16>
  // CHECK: tfm.kv_cache_read layer 31 : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  tfm.kv_cache_append layer 31, %k, %v : tensor<1x8x128xbf16>, tensor<1x8x128xbf16>
  %kc, %vc = tfm.kv_cache_read layer 31 : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return
}

// CHECK-LABEL: func.func @causal_mask
// CHECK-SAME: (%[[S:[a-z0-9]+]]: tensor<4x?x?xf32>, %[[POS:[a-z0-9]+]]: tensor<?xi32>, %[[S2:[a-z0-9]+]]: tensor<3x5xf16>, %[[POS3:[a-z0-9]+]]: tensor<3xi32>)
func.func @causal_mask(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>,
                       %s2: tensor<3x5xf16>, %pos3: tensor<3xi32>) {
  // CHECK: tfm.causal_mask %[[S]], %[[POS]] window = 4096 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %m = tfm.causal_mask %s, %pos window = 4096
      : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  // CHECK: tfm.causal_mask %[[S]], %[[POS]] : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %n = tfm.causal_mask %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  // Rank 2 scores (no head dimension).
  // CHECK: tfm.causal_mask %[[S2]], %[[POS3]] window = 1 : (tensor<3x5xf16>, tensor<3xi32>) -> tensor<3x5xf16>
  %o = tfm.causal_mask %s2, %pos3 window = 1 : (tensor<3x5xf16>, tensor<3xi32>) -> tensor<3x5xf16>
  return
}

// CHECK-LABEL: func.func @alibi_bias
// CHECK-SAME: (%[[S:[a-z0-9]+]]: tensor<4x?x?xf32>, %[[POS:[a-z0-9]+]]: tensor<?xi32>)
func.func @alibi_bias(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>) {
  // CHECK: tfm.alibi_bias %[[S]], %[[POS]] : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  %b = tfm.alibi_bias %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  return
}

//===----------------------------------------------------------------------===//
// Graph level: quantization
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @quantize
// CHECK-SAME: (%[[W:[a-z0-9]+]]: tensor<128x64xf32>)
func.func @quantize(%w: tensor<128x64xf32>) {
  // CHECK: %{{.+}}, %{{.+}} = tfm.quantize %[[W]] group_size = 32 : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x2xf32>
  %q, %s = tfm.quantize %w group_size = 32
      : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x2xf32>
  // CHECK: tfm.quantize %[[W]] group_size = 64 : tensor<128x64xf32> -> tensor<128x64xi4>, tensor<128x1xf32>
  %q4, %s4 = tfm.quantize %w group_size = 64
      : tensor<128x64xf32> -> tensor<128x64xi4>, tensor<128x1xf32>
  // CHECK: tfm.quantize %[[W]] group_size = 16 : tensor<128x64xf32> -> tensor<128x64xf8E4M3FN>, tensor<128x4xf32>
  %q8, %s8 = tfm.quantize %w group_size = 16
      : tensor<128x64xf32> -> tensor<128x64xf8E4M3FN>, tensor<128x4xf32>
  return
}

// CHECK-LABEL: func.func @dequantize
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: tensor<128x64xi8>, %[[S:[a-z0-9]+]]: tensor<128x2xf32>, %[[Q4:[a-z0-9]+]]: tensor<128x64xi4>, %[[Q8:[a-z0-9]+]]: tensor<128x64xf8E4M3FN>, %[[S16:[a-z0-9]+]]: tensor<128x4xbf16>)
func.func @dequantize(%q: tensor<128x64xi8>, %s: tensor<128x2xf32>, %q4: tensor<128x64xi4>,
                      %q8: tensor<128x64xf8E4M3FN>, %s16: tensor<128x4xbf16>) {
  // CHECK: tfm.dequantize %[[Q]], %[[S]] group_size = 32 : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<128x64xf32>
  %w = tfm.dequantize %q, %s group_size = 32
      : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<128x64xf32>
  // CHECK: tfm.dequantize %[[Q4]], %[[S]] group_size = 32 : (tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<128x64xf32>
  %w4 = tfm.dequantize %q4, %s group_size = 32
      : (tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<128x64xf32>
  // CHECK: tfm.dequantize %[[Q8]], %[[S16]] group_size = 16 : (tensor<128x64xf8E4M3FN>, tensor<128x4xbf16>) -> tensor<128x64xbf16>
  %w8 = tfm.dequantize %q8, %s16 group_size = 16
      : (tensor<128x64xf8E4M3FN>, tensor<128x4xbf16>) -> tensor<128x64xbf16>
  return
}

//===----------------------------------------------------------------------===//
// Fused / kernel level
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @packed_qkv_linear
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<128x64xf32>, %[[B:[a-z0-9]+]]: tensor<128xf32>)
func.func @packed_qkv_linear(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>) {
  // CHECK: tfm.packed_qkv_linear %[[X]], %[[W]] heads = 4 kv_heads = 2 head_dim = 16 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  // CHECK: tfm.packed_qkv_linear %[[X]], %[[W]], %[[B]] heads = 6 kv_heads = 1 head_dim = 16 : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %mqa = tfm.packed_qkv_linear %x, %w, %b heads = 6 kv_heads = 1 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  return
}

// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[QKV:[a-z0-9]+]]: tensor<?x128xf32>, %[[POS:[a-z0-9]+]]: tensor<?xi32>, %[[MHA:[a-z0-9]+]]: tensor<?x192xf32>)
func.func @attention(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>, %mha: tensor<?x192xf32>) {
  // CHECK: tfm.attention %[[QKV]], %[[POS]] layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = neox, rotary_dim = 16> : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16
      scale = 0.25 rope = <style = neox, rotary_dim = 16, theta = 10000.0>
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // No RoPE, no window, no ALiBi (e.g. learned absolute positions).
  // CHECK: tfm.attention %[[QKV]], %[[POS]] layer = 1 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %plain = tfm.attention %qkv, %pos layer = 1 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // RoPE with a sliding window (Mistral).
  // CHECK: tfm.attention %[[QKV]], %[[POS]] layer = 2 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = gptj, rotary_dim = 8> window = 4096 : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %win = tfm.attention %qkv, %pos layer = 2 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = <style = gptj, rotary_dim = 8> window = 4096
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // ALiBi without RoPE (Bloom, MPT), MHA.
  // CHECK: tfm.attention %[[MHA]], %[[POS]] layer = 3 heads = 2 kv_heads = 2 head_dim = 32 scale = 1.250000e-01 alibi : (tensor<?x192xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %alibi = tfm.attention %mha, %pos layer = 3 heads = 2 kv_heads = 2 head_dim = 32 scale = 0.125
      alibi : (tensor<?x192xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  // ALiBi with a window, MQA.
  // CHECK: tfm.attention %[[QKV]], %[[POS]] layer = 4 heads = 6 kv_heads = 1 head_dim = 16 scale = 2.500000e-01 window = 128 alibi : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x96xf32>
  %wa = tfm.attention %qkv, %pos layer = 4 heads = 6 kv_heads = 1 head_dim = 16 scale = 0.25
      window = 128 alibi : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x96xf32>
  // Everything at once, with Llama 3.1 scaling.
  // CHECK: tfm.attention %[[QKV]], %[[POS]] layer = 5 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = neox, rotary_dim = 16, theta = 5.000000e+05, scaling = llama3, factor = 3.200000e+01, original_max_position = 8192> window = 16 alibi : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  %all = tfm.attention %qkv, %pos layer = 5 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = <style = neox, rotary_dim = 16, theta = 500000.0, scaling = llama3, factor = 32.0,
              original_max_position = 8192> window = 16 alibi
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// The long form `#tfm.rope<...>` is accepted where it is not followed by a
// colon (a colon after a dialect attribute would be read as its type).
// CHECK-LABEL: func.func @attention_rope_long_form
func.func @attention_rope_long_form(%qkv: tensor<3x128xbf16>, %pos: tensor<3xi32>) -> tensor<3x64xbf16> {
  // CHECK: tfm.attention %{{.+}}, %{{.+}} layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 2.500000e-01 rope = <style = neox, rotary_dim = 16> window = 8 : (tensor<3x128xbf16>, tensor<3xi32>) -> tensor<3x64xbf16>
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = #tfm.rope<style = neox, rotary_dim = 16> window = 8
      : (tensor<3x128xbf16>, tensor<3xi32>) -> tensor<3x64xbf16>
  return %o : tensor<3x64xbf16>
}

// CHECK-LABEL: func.func @add_rms_norm
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[RES:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<64xf32>)
func.func @add_rms_norm(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  // CHECK: %[[SUM:.+]], %[[N:.+]] = tfm.add_rms_norm %[[X]], %[[RES]], %[[W]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK: return %[[SUM]], %[[N]]
  return %sum, %n : tensor<?x64xf32>, tensor<?x64xf32>
}

// CHECK-LABEL: func.func @add_layer_norm
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[RES:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<64xf32>, %[[B:[a-z0-9]+]]: tensor<64xf32>)
func.func @add_layer_norm(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>,
                          %b: tensor<64xf32>) {
  // CHECK: tfm.add_layer_norm %[[X]], %[[RES]], %[[W]], %[[B]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %sum, %n = tfm.add_layer_norm %x, %res, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
      -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK: tfm.add_layer_norm %[[X]], %[[RES]], %[[W]] eps = 1.000000e-05 : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %sum2, %n2 = tfm.add_layer_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// CHECK-LABEL: func.func @gated_mlp
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[W:[a-z0-9]+]]: tensor<352x64xf32>, %[[B:[a-z0-9]+]]: tensor<352xf32>)
func.func @gated_mlp(%x: tensor<?x64xf32>, %w_gate_up: tensor<352x64xf32>, %b: tensor<352xf32>) {
  // CHECK: tfm.gated_mlp silu %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  %h = tfm.gated_mlp silu %x, %w_gate_up
      : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  // CHECK: tfm.gated_mlp gelu %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  %g = tfm.gated_mlp gelu %x, %w_gate_up
      : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  // CHECK: tfm.gated_mlp gelu_tanh %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  %t = tfm.gated_mlp gelu_tanh %x, %w_gate_up
      : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  // CHECK: tfm.gated_mlp silu %[[X]], %[[W]], %[[B]] : (tensor<?x64xf32>, tensor<352x64xf32>, tensor<352xf32>) -> tensor<?x176xf32>
  %bias = tfm.gated_mlp silu %x, %w_gate_up, %b
      : (tensor<?x64xf32>, tensor<352x64xf32>, tensor<352xf32>) -> tensor<?x176xf32>
  return
}

// CHECK-LABEL: func.func @quantized_linear
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>, %[[Q4:[a-z0-9]+]]: tensor<128x64xi4>, %[[Q8:[a-z0-9]+]]: tensor<128x64xi8>, %[[F8:[a-z0-9]+]]: tensor<128x64xf8E4M3FN>, %[[S:[a-z0-9]+]]: tensor<128x2xf32>, %[[B:[a-z0-9]+]]: tensor<128xf32>)
func.func @quantized_linear(%x: tensor<?x64xf32>, %q4: tensor<128x64xi4>, %q8: tensor<128x64xi8>,
                            %f8: tensor<128x64xf8E4M3FN>, %s: tensor<128x2xf32>,
                            %b: tensor<128xf32>) {
  // CHECK: tfm.quantized_linear %[[X]], %[[Q4]], %[[S]] group_size = 32 : (tensor<?x64xf32>, tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<?x128xf32>
  %y = tfm.quantized_linear %x, %q4, %s group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<?x128xf32>
  // CHECK: tfm.quantized_linear %[[X]], %[[Q8]], %[[S]], %[[B]] group_size = 32 : (tensor<?x64xf32>, tensor<128x64xi8>, tensor<128x2xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %y8 = tfm.quantized_linear %x, %q8, %s, %b group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xi8>, tensor<128x2xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // CHECK: tfm.quantized_linear %[[X]], %[[F8]], %[[S]] group_size = 32 : (tensor<?x64xf32>, tensor<128x64xf8E4M3FN>, tensor<128x2xf32>) -> tensor<?x128xf32>
  %yf = tfm.quantized_linear %x, %f8, %s group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xf8E4M3FN>, tensor<128x2xf32>) -> tensor<?x128xf32>
  return
}

// CHECK-LABEL: func.func @all_reduce
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32>)
func.func @all_reduce(%x: tensor<?x64xf32>) {
  // CHECK: tfm.all_reduce %[[X]] sum ranks = 2 : tensor<?x64xf32>
  %r = tfm.all_reduce %x sum ranks = 2 : tensor<?x64xf32>
  // CHECK: tfm.all_reduce %[[X]] max ranks = 8 : tensor<?x64xf32>
  %m = tfm.all_reduce %x max ranks = 8 : tensor<?x64xf32>
  return
}

// CHECK-LABEL: func.func @all_gather
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x128xf32>)
func.func @all_gather(%x: tensor<?x128xf32>) {
  // CHECK: tfm.all_gather %[[X]] axis = 1 ranks = 2 : tensor<?x128xf32> -> tensor<?x256xf32>
  %g = tfm.all_gather %x axis = 1 ranks = 2 : tensor<?x128xf32> -> tensor<?x256xf32>
  // CHECK: tfm.all_gather %[[X]] axis = 0 ranks = 4 : tensor<?x128xf32> -> tensor<?x128xf32>
  %t = tfm.all_gather %x axis = 0 ranks = 4 : tensor<?x128xf32> -> tensor<?x128xf32>
  return
}

// Extra attributes ride along in the attribute dictionary.
// CHECK-LABEL: func.func @discardable_attributes
func.func @discardable_attributes(%x: tensor<?x64xf32>) {
  // CHECK: tfm.silu %{{.+}} {kiln.note = "kept"} : tensor<?x64xf32>
  %a = tfm.silu %x {kiln.note = "kept"} : tensor<?x64xf32>
  return
}
