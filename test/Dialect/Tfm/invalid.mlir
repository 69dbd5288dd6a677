// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// One case per error the tfm verifiers (dialects/tfm/TfmOps.cpp) and the
// #tfm.rope attribute (TfmDialect.cpp) can emit, in the order the source
// emits them, plus type-constraint failures from ODS, parse errors of the
// enum words and the rope config, and regressions (marked "Regression").

//===----------------------------------------------------------------------===//
// tfm.weight
//===----------------------------------------------------------------------===//

func.func @weight_empty_name() {
  // expected-error @+1 {{'tfm.weight' op needs a non-empty checkpoint tensor name}}
  %w = tfm.weight "" : tensor<4xf32>
  return
}

// -----

func.func @weight_dynamic_shape() {
  // expected-error @+1 {{'tfm.weight' op weight 'w' must have a static shape}}
  %w = tfm.weight "w" : tensor<?x4xf32>
  return
}

// -----

func.func @weight_unranked() {
  // expected-error @+1 {{'tfm.weight' op result #0 must be ranked tensor of any type values, but got 'tensor<*xf32>'}}
  %w = "tfm.weight"() <{name = "w"}> : () -> tensor<*xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.weight_concat
//===----------------------------------------------------------------------===//

func.func @weight_concat_of_activation(%x: tensor<32x64xf32>) {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op operand #1 is not a weight or a load-time transform of weights}}
  %c = tfm.weight_concat %wq, %x axis = 0
      : (tensor<64x64xf32>, tensor<32x64xf32>) -> tensor<96x64xf32>
  return
}

// -----

func.func @weight_concat_element_types() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %wk = tfm.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'tfm.weight_concat' op element types differ: 'f32' and 'bf16'}}
  %c = tfm.weight_concat %wq, %wk axis = 0
      : (tensor<64x64xf32>, tensor<32x64xbf16>) -> tensor<96x64xf32>
  return
}

// -----

func.func @weight_concat_result_element_type() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op element types differ: 'f32' and 'f16'}}
  %c = tfm.weight_concat %wq axis = 0 : (tensor<64x64xf32>) -> tensor<64x64xf16>
  return
}

// -----

func.func @weight_concat_axis_out_of_range() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op axis 2 is out of range for rank 2}}
  %c = tfm.weight_concat %wq axis = 2 : (tensor<64x64xf32>) -> tensor<64x64xf32>
  return
}

// -----

func.func @weight_concat_negative_axis() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op axis -1 is out of range for rank 2}}
  %c = tfm.weight_concat %wq axis = -1 : (tensor<64x64xf32>) -> tensor<64x64xf32>
  return
}

// -----

func.func @weight_concat_no_inputs() {
  // expected-error @+1 {{'tfm.weight_concat' op needs at least one input}}
  %c = tfm.weight_concat axis = 0 : () -> tensor<4xf32>
  return
}

// -----

func.func @weight_concat_other_dimension_differs() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %wk = tfm.weight "k" : tensor<32x32xf32>
  // expected-error @+1 {{'tfm.weight_concat' op input #1 has shape [32, 32], expected [32, 64]}}
  %c = tfm.weight_concat %wq, %wk axis = 0
      : (tensor<64x64xf32>, tensor<32x32xf32>) -> tensor<96x64xf32>
  return
}

// -----

func.func @weight_concat_rank_differs() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %b = tfm.weight "b" : tensor<64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op input #1 has shape [64], expected [?, 64]}}
  %c = tfm.weight_concat %wq, %b axis = 0
      : (tensor<64x64xf32>, tensor<64xf32>) -> tensor<128x64xf32>
  return
}

// -----

func.func @weight_concat_sizes_do_not_add_up() {
  %wq = tfm.weight "q" : tensor<64x64xf32>
  %wk = tfm.weight "k" : tensor<32x64xf32>
  // expected-error @+1 {{'tfm.weight_concat' op sizes along axis 0 add up to 96 but the whole has 128}}
  %c = tfm.weight_concat %wq, %wk axis = 0
      : (tensor<64x64xf32>, tensor<32x64xf32>) -> tensor<128x64xf32>
  return
}

// -----

// Regression: the sum of the pieces overflowed int64.
func.func @weight_concat_sizes_overflow() {
  %a = tfm.weight "a" : tensor<9223372036854775807x1xf32>
  %b = tfm.weight "b" : tensor<2x1xf32>
  // expected-error @+1 {{'tfm.weight_concat' op sizes along axis 0 add up to more than 64 bits hold}}
  %c = tfm.weight_concat %a, %b axis = 0
      : (tensor<9223372036854775807x1xf32>, tensor<2x1xf32>) -> tensor<?x1xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.weight_cast
//===----------------------------------------------------------------------===//

func.func @weight_cast_of_activation(%x: tensor<64x64xbf16>) {
  // expected-error @+1 {{'tfm.weight_cast' op operand is not a weight or a load-time transform of weights}}
  %c = tfm.weight_cast %x : tensor<64x64xbf16> to tensor<64x64xf32>
  return
}

// -----

func.func @weight_cast_shape() {
  %w = tfm.weight "w" : tensor<64x64xbf16>
  // expected-error @+1 {{'tfm.weight_cast' op result has shape [64, 32], expected [64, 64]}}
  %c = tfm.weight_cast %w : tensor<64x64xbf16> to tensor<64x32xf32>
  return
}

// -----

func.func @weight_cast_integer() {
  %w = tfm.weight "w" : tensor<64x64xi8>
  // expected-error @+1 {{'tfm.weight_cast' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type values, but got 'tensor<64x64xi8>'}}
  %c = tfm.weight_cast %w : tensor<64x64xi8> to tensor<64x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.embedding
//===----------------------------------------------------------------------===//

func.func @embedding_table_rank(%table: tensor<256xf32>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.embedding' op table must be [vocab, hidden], got rank 1}}
  %h = tfm.embedding %table[%ids] : (tensor<256xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @embedding_element_types(%table: tensor<256x64xf32>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.embedding' op element types differ: 'f32' and 'bf16'}}
  %h = tfm.embedding %table[%ids] : (tensor<256x64xf32>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @embedding_result_shape(%table: tensor<256x64xf32>, %ids: tensor<3xi32>) {
  // expected-error @+1 {{'tfm.embedding' op result has shape [4, 64], expected [3, 64]}}
  %h = tfm.embedding %table[%ids] : (tensor<256x64xf32>, tensor<3xi32>) -> tensor<4x64xf32>
  return
}

// -----

func.func @embedding_ids_rank(%table: tensor<256x64xf32>, %ids: tensor<2x3xi32>) {
  // expected-error @+1 {{'tfm.embedding' op operand #1 must be 1D tensor of 32-bit signless integer values, but got 'tensor<2x3xi32>'}}
  %h = tfm.embedding %table[%ids] : (tensor<256x64xf32>, tensor<2x3xi32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @embedding_ids_i64(%table: tensor<256x64xf32>, %ids: tensor<?xi64>) {
  // expected-error @+1 {{'tfm.embedding' op operand #1 must be 1D tensor of 32-bit signless integer values, but got 'tensor<?xi64>'}}
  %h = tfm.embedding %table[%ids] : (tensor<256x64xf32>, tensor<?xi64>) -> tensor<?x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.linear
//===----------------------------------------------------------------------===//

func.func @linear_integer_input(%x: tensor<?x64xi32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type values, but got 'tensor<?x64xi32>'}}
  %y = tfm.linear %x, %w : (tensor<?x64xi32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_unranked_input(%x: tensor<*xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type values, but got 'tensor<*xf32>'}}
  %y = tfm.linear %x, %w : (tensor<*xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_weight_element_type(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{'tfm.linear' op element types differ: 'f32' and 'bf16'}}
  %y = tfm.linear %x, %w : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_bias_element_type(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>,
                                    %b: tensor<128xf16>) {
  // expected-error @+1 {{'tfm.linear' op element types differ: 'f32' and 'f16'}}
  %y = tfm.linear %x, %w, %b
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf16>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_result_element_type(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op element types differ: 'f32' and 'bf16'}}
  %y = tfm.linear %x, %w : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xbf16>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.linear' op weight must be [out, in], got rank 1}}
  %y = tfm.linear %x, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @linear_scalar_input(%x: tensor<f32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op input must have at least one dimension}}
  %y = tfm.linear %x, %w : (tensor<f32>, tensor<128x64xf32>) -> tensor<128xf32>
  return
}

// -----

func.func @linear_input_features(%x: tensor<?x32xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op input features (32) do not match weight [out, in] [128, 64]}}
  %y = tfm.linear %x, %w : (tensor<?x32xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_bias_shape(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.linear' op bias has shape [64], expected [128]}}
  %y = tfm.linear %x, %w, %b
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_result_shape(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op result has shape [?, 64], expected [?, 128]}}
  %y = tfm.linear %x, %w : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @linear_result_rank(%x: tensor<2x?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.linear' op result has shape [?, 128], expected [2, ?, 128]}}
  %y = tfm.linear %x, %w : (tensor<2x?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.matmul
//===----------------------------------------------------------------------===//

func.func @matmul_element_types(%a: tensor<8x16xf32>, %b: tensor<16x4xf16>) {
  // expected-error @+1 {{'tfm.matmul' op element types differ: 'f32' and 'f16'}}
  %c = tfm.matmul %a, %b : (tensor<8x16xf32>, tensor<16x4xf16>) -> tensor<8x4xf32>
  return
}

// -----

func.func @matmul_rank_one(%a: tensor<16xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{'tfm.matmul' op operands must have equal rank of at least 2, got 1 and 1}}
  %c = tfm.matmul %a, %b : (tensor<16xf32>, tensor<16xf32>) -> tensor<f32>
  return
}

// -----

func.func @matmul_ranks_differ(%a: tensor<4x8x16xf32>, %b: tensor<16x4xf32>) {
  // expected-error @+1 {{'tfm.matmul' op operands must have equal rank of at least 2, got 3 and 2}}
  %c = tfm.matmul %a, %b : (tensor<4x8x16xf32>, tensor<16x4xf32>) -> tensor<4x8x4xf32>
  return
}

// -----

func.func @matmul_contraction(%a: tensor<8x16xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+1 {{'tfm.matmul' op contraction sizes differ: [8, 16] and [8, 4]}}
  %c = tfm.matmul %a, %b : (tensor<8x16xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @matmul_contraction_transposed(%q: tensor<4x?x16xf32>, %k: tensor<4x?x8xf32>) {
  // expected-error @+1 {{'tfm.matmul' op contraction sizes differ: [4, ?, 16] and [4, ?, 8] (transposed)}}
  %s = tfm.matmul %q, %k transpose_b
      : (tensor<4x?x16xf32>, tensor<4x?x8xf32>) -> tensor<4x?x?xf32>
  return
}

// -----

func.func @matmul_batch(%q: tensor<4x?x16xf32>, %k: tensor<2x?x16xf32>) {
  // expected-error @+1 {{'tfm.matmul' op batch dimension 0 differs: [4, ?, 16] and [2, ?, 16]}}
  %s = tfm.matmul %q, %k transpose_b
      : (tensor<4x?x16xf32>, tensor<2x?x16xf32>) -> tensor<4x?x?xf32>
  return
}

// -----

func.func @matmul_result_shape(%a: tensor<8x16xf32>, %b: tensor<16x4xf32>) {
  // expected-error @+1 {{'tfm.matmul' op result has shape [8, 16], expected [8, 4]}}
  %c = tfm.matmul %a, %b : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.rms_norm, tfm.layer_norm
//===----------------------------------------------------------------------===//

func.func @rms_norm_weight_element_type(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{'tfm.rms_norm' op element types differ: 'f32' and 'bf16'}}
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_scalar_input(%x: tensor<f32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op input must have at least one dimension}}
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<f32>, tensor<64xf32>) -> tensor<f32>
  return
}

// -----

func.func @rms_norm_weight_shape(%x: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op weight has shape [32], expected [64]}}
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_eps_zero(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op eps must be positive, got 0.000000e+00}}
  %n = tfm.rms_norm %x, %w eps = 0.0 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_eps_nan(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op eps must be positive, got nan}}
  %n = tfm.rms_norm %x, %w eps = 0x7FF8000000000000 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_result_element_type(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op element types differ: 'f32' and 'f16'}}
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf16>
  return
}

// -----

func.func @rms_norm_result_shape(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op result has shape [?, 32], expected [?, 64]}}
  %n = tfm.rms_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @rms_norm_eps_f32(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.rms_norm' op attribute 'epsilon' failed to satisfy constraint: 64-bit float attribute}}
  %n = "tfm.rms_norm"(%x, %w) <{epsilon = 1.0e-05 : f32}> : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_bias_shape(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'tfm.layer_norm' op bias has shape [32], expected [64]}}
  %n = tfm.layer_norm %x, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_bias_element_type(%x: tensor<?x64xf32>, %w: tensor<64xf32>,
                                        %b: tensor<64xbf16>) {
  // expected-error @+1 {{'tfm.layer_norm' op element types differ: 'f32' and 'bf16'}}
  %n = tfm.layer_norm %x, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_weight_shape(%x: tensor<?x64xf32>, %w: tensor<1x64xf32>) {
  // expected-error @+1 {{'tfm.layer_norm' op weight has shape [1, 64], expected [64]}}
  %n = tfm.layer_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<1x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_eps_negative(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.layer_norm' op eps must be positive, got -1.000000e-05}}
  %n = tfm.layer_norm %x, %w eps = -1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_result_shape(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.layer_norm' op result has shape [?], expected [?, 64]}}
  %n = tfm.layer_norm %x, %w eps = 1.0e-05 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.rope and #tfm.rope
//===----------------------------------------------------------------------===//

func.func @rope_input_rank(%q: tensor<?x64xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.rope' op input must be [tokens, heads, head_dim], got rank 2}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16>
      : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rope_positions_count(%q: tensor<4x4x16xf32>, %pos: tensor<3xi32>) {
  // expected-error @+1 {{'tfm.rope' op positions has 3 entries but input has 4 tokens}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16>
      : (tensor<4x4x16xf32>, tensor<3xi32>) -> tensor<4x4x16xf32>
  return
}

// -----

func.func @rope_rotary_dim_exceeds_head_dim(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.rope' op rope rotary_dim (32) exceeds head_dim (16)}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 32>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_result_shape(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.rope' op result has shape [?, 2, 16], expected [?, 4, 16]}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  return
}

// -----

func.func @rope_result_element_type(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.rope' op element types differ: 'f32' and 'bf16'}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xbf16>
  return
}

// -----

func.func @rope_positions_rank(%q: tensor<?x4x16xf32>, %pos: tensor<?x1xi32>) {
  // expected-error @+1 {{'tfm.rope' op operand #1 must be 1D tensor of 32-bit signless integer values, but got 'tensor<?x1xi32>'}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16>
      : (tensor<?x4x16xf32>, tensor<?x1xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_config_not_a_rope(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{invalid properties {config = 16 : i64} for op tfm.rope: Invalid attribute `config` in property conversion: 16 : i64}}
  %r = "tfm.rope"(%q, %pos) <{config = 16 : i64}>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_odd_rotary_dim(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope rotary_dim must be positive and even, got 15}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 15>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_zero_rotary_dim(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope rotary_dim must be positive and even, got 0}}
  %r = tfm.rope %q, %pos config = <style = gptj, rotary_dim = 0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_theta(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope theta must be positive, got 0.000000e+00}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, theta = 0.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_linear_factor(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope scaling factor must be positive, got -2.000000e+00}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, scaling = linear, factor = -2.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_llama3_original_max_position(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{llama3 rope scaling needs a positive original_max_position}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, scaling = llama3, factor = 8.0>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_llama3_frequency_factors(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got 4.000000e+00 and 1.000000e+00}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, scaling = llama3, factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 1.0, original_max_position = 8192>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_llama3_low_freq_factor_zero(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got 0.000000e+00 and 4.000000e+00}}
  %r = tfm.rope %q, %pos config = <style = neox, rotary_dim = 16, scaling = llama3, factor = 8.0, low_freq_factor = 0.0, original_max_position = 8192>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

// The verifier also runs on the long form in an attribute dictionary.
// expected-error @+1 {{rope rotary_dim must be positive and even, got 7}}
func.func @rope_attr_in_dictionary() attributes {tfm.rope = #tfm.rope<style = neox, rotary_dim = 7>} {
  return
}

// -----

func.func @rope_attr_unknown_style(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+2 {{expected ::kiln::tfm::RopeStyle to be one of: neox, gptj}}
  // expected-error @+1 {{failed to parse Tfm_RopeAttr parameter 'style'}}
  %r = tfm.rope %q, %pos config = <style = llama, rotary_dim = 16>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_attr_missing_rotary_dim(%q: tensor<?x4x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{struct is missing required parameter: rotary_dim}}
  %r = tfm.rope %q, %pos config = <style = neox>
      : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.softmax
//===----------------------------------------------------------------------===//

func.func @softmax_axis(%s: tensor<4x?x?xf32>) {
  // expected-error @+1 {{'tfm.softmax' op axis 3 is out of range for rank 3}}
  %p = tfm.softmax %s axis = 3 : tensor<4x?x?xf32>
  return
}

// -----

func.func @softmax_negative_axis(%s: tensor<4x?x?xf32>) {
  // expected-error @+1 {{'tfm.softmax' op axis -1 is out of range for rank 3}}
  %p = tfm.softmax %s axis = -1 : tensor<4x?x?xf32>
  return
}

// -----

func.func @softmax_result_type(%s: tensor<4x?x?xf32>) {
  // expected-error @+1 {{'tfm.softmax' op requires the same type for all operands and results}}
  %p = "tfm.softmax"(%s) <{axis = 2 : i64}> : (tensor<4x?x?xf32>) -> tensor<4x?x?xf16>
  return
}

// -----

func.func @softmax_axis_i32(%s: tensor<4x?x?xf32>) {
  // expected-error @+1 {{'tfm.softmax' op attribute 'axis' failed to satisfy constraint: 64-bit integer attribute}}
  %p = "tfm.softmax"(%s) <{axis = 2 : i32}> : (tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

func.func @add_not_broadcastable(%a: tensor<4x8xf32>, %b: tensor<3x8xf32>) {
  // expected-error @+1 {{'tfm.add' op shapes [4, 8] and [3, 8] do not broadcast}}
  %r = tfm.add %a, %b : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @add_result_shape(%a: tensor<?x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add' op result has shape [64], expected [?, 64]}}
  %r = tfm.add %a, %b : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return
}

// -----

func.func @add_element_types(%a: tensor<?x64xf32>, %b: tensor<64xbf16>) {
  // expected-error @+1 {{'tfm.add' op requires the same element type for all operands and results}}
  %r = tfm.add %a, %b : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @mul_not_broadcastable(%a: tensor<?x64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'tfm.mul' op shapes [?, 64] and [32] do not broadcast}}
  %r = tfm.mul %a, %b : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @mul_result_shape(%a: tensor<4x1xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{'tfm.mul' op result has shape [4, 1], expected [4, 3]}}
  %r = tfm.mul %a, %b : (tensor<4x1xf32>, tensor<3xf32>) -> tensor<4x1xf32>
  return
}

// -----

func.func @silu_result_type(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.silu' op requires the same type for all operands and results}}
  %a = "tfm.silu"(%x) : (tensor<?x64xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @silu_integer(%x: tensor<?x64xi32>) {
  // expected-error @+1 {{'tfm.silu' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type values, but got 'tensor<?x64xi32>'}}
  %a = tfm.silu %x : tensor<?x64xi32>
  return
}

// -----

func.func @gelu_unknown_approximation(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{expected ::kiln::tfm::GeluApproximation to be one of: none, tanh}}
  // expected-error @+1 {{failed to parse Tfm_GeluApproximationAttr parameter 'value'}}
  %a = tfm.gelu %x fast : tensor<?x64xf32>
  return
}

// -----

func.func @gelu_result_type(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.gelu' op requires the same type for all operands and results}}
  %a = "tfm.gelu"(%x) <{approximation = #tfm<gelu_approximation tanh>}> : (tensor<?x64xf32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @scale_result_type(%x: tensor<?x64xf32>) {
  // The op infers its result type from the operand, so the mismatch is
  // reported as an inference failure.
  // expected-error @+2 {{'tfm.scale' op inferred type(s) 'tensor<?x64xf32>' are incompatible with return type(s) of operation 'tensor<4x64xf32>'}}
  // expected-error @+1 {{'tfm.scale' op failed to infer returned types}}
  %a = "tfm.scale"(%x) <{factor = 2.0 : f64}> : (tensor<?x64xf32>) -> tensor<4x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

func.func @reshape_two_dynamic_dims(%x: tensor<?x?xf32>) {
  // expected-error @+1 {{'tfm.reshape' op needs the same number (0 or 1) of dynamic dimensions on both sides, got [?, ?] and [?]}}
  %r = tfm.reshape %x : tensor<?x?xf32> -> tensor<?xf32>
  return
}

// -----

func.func @reshape_dynamic_to_static(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.reshape' op needs the same number (0 or 1) of dynamic dimensions on both sides, got [?, 64] and [4, 64]}}
  %r = tfm.reshape %x : tensor<?x64xf32> -> tensor<4x64xf32>
  return
}

// -----

func.func @reshape_element_count(%x: tensor<4x6xf32>) {
  // expected-error @+1 {{'tfm.reshape' op cannot reshape [4, 6] to [5, 5]}}
  %r = tfm.reshape %x : tensor<4x6xf32> -> tensor<5x5xf32>
  return
}

// -----

func.func @reshape_static_parts(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.reshape' op cannot reshape [?, 64] to [?, 4, 15]}}
  %r = tfm.reshape %x : tensor<?x64xf32> -> tensor<?x4x15xf32>
  return
}

// -----

// Regression: the element count overflowed int64.
func.func @reshape_element_count_overflow(%x: tensor<9223372036854775807x2xf32>) {
  // expected-error @+1 {{'tfm.reshape' op element count of [9223372036854775807, 2] or [2, 9223372036854775807] does not fit in 64 bits}}
  %r = tfm.reshape %x : tensor<9223372036854775807x2xf32> -> tensor<2x9223372036854775807xf32>
  return
}

// -----

func.func @reshape_element_type(%x: tensor<4x6xf32>) {
  // expected-error @+1 {{'tfm.reshape' op requires the same element type for all operands and results}}
  %r = tfm.reshape %x : tensor<4x6xf32> -> tensor<24xi32>
  return
}

// -----

func.func @transpose_permutation_length(%x: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'tfm.transpose' op permutation has 2 entries for rank 3}}
  %t = tfm.transpose %x [1, 0] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  return
}

// -----

func.func @transpose_permutation_repeats(%x: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'tfm.transpose' op permutation must name every dimension exactly once}}
  %t = tfm.transpose %x [1, 1, 2] : tensor<?x4x16xf32> -> tensor<4x4x16xf32>
  return
}

// -----

func.func @transpose_permutation_out_of_range(%x: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'tfm.transpose' op permutation must name every dimension exactly once}}
  %t = tfm.transpose %x [3, 0, 1] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  return
}

// -----

func.func @transpose_permutation_negative(%x: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'tfm.transpose' op permutation must name every dimension exactly once}}
  %t = tfm.transpose %x [-1, 0, 1] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
  return
}

// -----

func.func @transpose_result_shape(%x: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'tfm.transpose' op result has shape [2, 4, 16], expected [4, 2, 16]}}
  %t = tfm.transpose %x [1, 0, 2] : tensor<2x4x16xf32> -> tensor<2x4x16xf32>
  return
}

// -----

func.func @concat_no_inputs() {
  // expected-error @+1 {{'tfm.concat' op expected 1 or more operands, but found 0}}
  %c = tfm.concat axis = 0 : () -> tensor<4xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>) {
  // expected-error @+1 {{'tfm.concat' op axis 2 is out of range for rank 2}}
  %c = tfm.concat %a, %b axis = 2 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x96xf32>
  return
}

// -----

func.func @concat_other_dimension(%a: tensor<4x64xf32>, %b: tensor<3x32xf32>) {
  // expected-error @+1 {{'tfm.concat' op input #1 has shape [3, 32], expected [4, 32]}}
  %c = tfm.concat %a, %b axis = 1 : (tensor<4x64xf32>, tensor<3x32xf32>) -> tensor<4x96xf32>
  return
}

// -----

func.func @concat_sizes(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>) {
  // expected-error @+1 {{'tfm.concat' op sizes along axis 1 add up to 96 but the whole has 128}}
  %c = tfm.concat %a, %b axis = 1 : (tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @concat_element_types(%a: tensor<?x64xf32>, %b: tensor<?x32xf16>) {
  // expected-error @+1 {{'tfm.concat' op requires the same element type for all operands and results}}
  %c = tfm.concat %a, %b axis = 1 : (tensor<?x64xf32>, tensor<?x32xf16>) -> tensor<?x96xf32>
  return
}

// -----

func.func @split_no_results(%x: tensor<?x96xf32>) {
  // expected-error @+1 {{'tfm.split' op needs at least one result}}
  "tfm.split"(%x) <{axis = 1 : i64}> : (tensor<?x96xf32>) -> ()
  return
}

// -----

func.func @split_element_types(%x: tensor<?x96xf32>) {
  // expected-error @+1 {{'tfm.split' op element types differ: 'f32' and 'bf16'}}
  %a, %b = tfm.split %x axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xbf16>
  return
}

// -----

func.func @split_axis(%x: tensor<?x96xf32>) {
  // expected-error @+1 {{'tfm.split' op axis -2 is out of range for rank 2}}
  %a, %b = tfm.split %x axis = -2 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  return
}

// -----

func.func @split_sizes(%x: tensor<?x96xf32>) {
  // expected-error @+1 {{'tfm.split' op sizes along axis 1 add up to 80 but the whole has 96}}
  %a, %b = tfm.split %x axis = 1 : tensor<?x96xf32> -> tensor<?x64xf32>, tensor<?x16xf32>
  return
}

// -----

func.func @split_result_shape(%x: tensor<3x96xf32>) {
  // expected-error @+1 {{'tfm.split' op result #0 has shape [4, 64], expected [3, 64]}}
  %a, %b = tfm.split %x axis = 1 : tensor<3x96xf32> -> tensor<4x64xf32>, tensor<3x32xf32>
  return
}

// -----

func.func @slice_axis(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op axis 2 is out of range for rank 2}}
  %s = tfm.slice %x axis = 2 start = 0 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @slice_negative_start(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op needs start >= 0 and size > 0, got start -1 and size 64}}
  %s = tfm.slice %x axis = 1 start = -1 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @slice_empty(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op needs start >= 0 and size > 0, got start 0 and size 0}}
  %s = tfm.slice %x axis = 1 start = 0 size = 0 : tensor<?x128xf32> -> tensor<?x0xf32>
  return
}

// -----

func.func @slice_past_the_end(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op start 96 + size 64 exceeds dimension 1 of size 128}}
  %s = tfm.slice %x axis = 1 start = 96 size = 64 : tensor<?x128xf32> -> tensor<?x64xf32>
  return
}

// -----

// Regression: start + size overflowed int64.
func.func @slice_end_overflow(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op start 9223372036854775807 + size 2 exceeds dimension 1 of size 128}}
  %s = tfm.slice %x axis = 1 start = 9223372036854775807 size = 2 : tensor<?x128xf32> -> tensor<?x2xf32>
  return
}

// -----

func.func @slice_result_shape(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.slice' op result has shape [?, 32], expected [?, 64]}}
  %s = tfm.slice %x axis = 1 start = 0 size = 64 : tensor<?x128xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @repeat_kv_times(%k: tensor<?x2x16xf32>) {
  // expected-error @+1 {{'tfm.repeat_kv' op times must be positive, got 0}}
  %r = tfm.repeat_kv %k axis = 1 times = 0 : tensor<?x2x16xf32> -> tensor<?x2x16xf32>
  return
}

// -----

func.func @repeat_kv_axis(%k: tensor<?x2x16xf32>) {
  // expected-error @+1 {{'tfm.repeat_kv' op axis 3 is out of range for rank 3}}
  %r = tfm.repeat_kv %k axis = 3 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @repeat_kv_result_shape(%k: tensor<?x2x16xf32>) {
  // expected-error @+1 {{'tfm.repeat_kv' op result has shape [?, 2, 16], expected [?, 4, 16]}}
  %r = tfm.repeat_kv %k axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x2x16xf32>
  return
}

// -----

// Regression: the repeated dimension overflowed int64.
func.func @repeat_kv_overflow(%k: tensor<?x4611686018427387904x16xf32>) {
  // expected-error @+1 {{'tfm.repeat_kv' op dimension 1 of size 4611686018427387904 multiplied by times = 2 does not fit in 64 bits}}
  %r = tfm.repeat_kv %k axis = 1 times = 2 : tensor<?x4611686018427387904x16xf32> -> tensor<?x?x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// KV cache, masks, biases
//===----------------------------------------------------------------------===//

func.func @kv_cache_append_layer(%k: tensor<?x2x16xf32>, %v: tensor<?x2x16xf32>) {
  // expected-error @+1 {{'tfm.kv_cache_append' op layer must be non-negative, got -1}}
  tfm.kv_cache_append layer -1, %k, %v : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return
}

// -----

func.func @kv_cache_append_rank(%k: tensor<?x32xf32>, %v: tensor<?x32xf32>) {
  // expected-error @+1 {{'tfm.kv_cache_append' op keys must be [tokens, kv_heads, head_dim], got rank 2}}
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x32xf32>, tensor<?x32xf32>
  return
}

// -----

func.func @kv_cache_append_dynamic_heads(%k: tensor<?x?x16xf32>, %v: tensor<?x?x16xf32>) {
  // expected-error @+1 {{'tfm.kv_cache_append' op keys must have static kv_heads and head_dim, got [?, ?, 16]}}
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x?x16xf32>, tensor<?x?x16xf32>
  return
}

// -----

func.func @kv_cache_append_types_differ(%k: tensor<?x2x16xf32>, %v: tensor<?x2x8xf32>) {
  // expected-error @+1 {{'tfm.kv_cache_append' op keys and values must have the same type, got 'tensor<?x2x16xf32>' and 'tensor<?x2x8xf32>'}}
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x2x16xf32>, tensor<?x2x8xf32>
  return
}

// -----

func.func @kv_cache_append_integer(%k: tensor<?x2x16xi8>, %v: tensor<?x2x16xi8>) {
  // expected-error @+1 {{'tfm.kv_cache_append' op operand #0 must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type values, but got 'tensor<?x2x16xi8>'}}
  tfm.kv_cache_append layer 0, %k, %v : tensor<?x2x16xi8>, tensor<?x2x16xi8>
  return
}

// -----

func.func @kv_cache_read_layer() {
  // expected-error @+1 {{'tfm.kv_cache_read' op layer must be non-negative, got -3}}
  %k, %v = tfm.kv_cache_read layer -3 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
  return
}

// -----

func.func @kv_cache_read_rank() {
  // expected-error @+1 {{'tfm.kv_cache_read' op keys must be [tokens, kv_heads, head_dim], got rank 4}}
  %k, %v = tfm.kv_cache_read layer 0 : tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>
  return
}

// -----

func.func @kv_cache_read_dynamic_head_dim() {
  // expected-error @+1 {{'tfm.kv_cache_read' op keys must have static kv_heads and head_dim, got [?, 2, ?]}}
  %k, %v = tfm.kv_cache_read layer 0 : tensor<?x2x?xf32>, tensor<?x2x?xf32>
  return
}

// -----

func.func @kv_cache_read_types_differ() {
  // expected-error @+1 {{'tfm.kv_cache_read' op keys and values must have the same type, got 'tensor<?x2x16xf32>' and 'tensor<?x2x16xbf16>'}}
  %k, %v = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xbf16>
  return
}

// -----

func.func @causal_mask_rank(%s: tensor<?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.causal_mask' op scores must be [..., queries, keys], got rank 1}}
  %m = tfm.causal_mask %s, %pos : (tensor<?xf32>, tensor<?xi32>) -> tensor<?xf32>
  return
}

// -----

func.func @causal_mask_positions(%s: tensor<4x4x?xf32>, %pos: tensor<3xi32>) {
  // expected-error @+1 {{'tfm.causal_mask' op positions has 3 entries but scores have 4 queries}}
  %m = tfm.causal_mask %s, %pos : (tensor<4x4x?xf32>, tensor<3xi32>) -> tensor<4x4x?xf32>
  return
}

// -----

func.func @causal_mask_window(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.causal_mask' op window must be positive, got 0}}
  %m = tfm.causal_mask %s, %pos window = 0 : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
  return
}

// -----

func.func @causal_mask_result_shape(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.causal_mask' op result has shape [?, ?], expected [4, ?, ?]}}
  %m = tfm.causal_mask %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<?x?xf32>
  return
}

// -----

func.func @causal_mask_result_element_type(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.causal_mask' op element types differ: 'f32' and 'f16'}}
  %m = tfm.causal_mask %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf16>
  return
}

// -----

func.func @alibi_bias_rank(%s: tensor<?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.alibi_bias' op scores must be [heads, queries, keys], got rank 2}}
  %b = tfm.alibi_bias %s, %pos : (tensor<?x?xf32>, tensor<?xi32>) -> tensor<?x?xf32>
  return
}

// -----

func.func @alibi_bias_dynamic_heads(%s: tensor<?x?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.alibi_bias' op the number of heads (scores dimension 0) must be static}}
  %b = tfm.alibi_bias %s, %pos : (tensor<?x?x?xf32>, tensor<?xi32>) -> tensor<?x?x?xf32>
  return
}

// -----

func.func @alibi_bias_positions(%s: tensor<4x2x?xf32>, %pos: tensor<5xi32>) {
  // expected-error @+1 {{'tfm.alibi_bias' op positions has 5 entries but scores have 2 queries}}
  %b = tfm.alibi_bias %s, %pos : (tensor<4x2x?xf32>, tensor<5xi32>) -> tensor<4x2x?xf32>
  return
}

// -----

func.func @alibi_bias_result_shape(%s: tensor<4x?x?xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.alibi_bias' op result has shape [8, ?, ?], expected [4, ?, ?]}}
  %b = tfm.alibi_bias %s, %pos : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<8x?x?xf32>
  return
}

// -----

func.func @alibi_bias_result_element_type(%s: tensor<4x?x?xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.alibi_bias' op element types differ: 'bf16' and 'f32'}}
  %b = tfm.alibi_bias %s, %pos : (tensor<4x?x?xbf16>, tensor<?xi32>) -> tensor<4x?x?xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

func.func @quantize_values_shape(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op values has shape [128, 32], expected [128, 64]}}
  %q, %s = tfm.quantize %w group_size = 32 : tensor<128x64xf32> -> tensor<128x32xi8>, tensor<128x2xf32>
  return
}

// -----

func.func @quantize_group_size(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op group_size must be positive, got 0}}
  %q, %s = tfm.quantize %w group_size = 0 : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x2xf32>
  return
}

// -----

func.func @quantize_rank(%w: tensor<2x128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op quantized tensor must be [rows, cols], got rank 3}}
  %q, %s = tfm.quantize %w group_size = 32 : tensor<2x128x64xf32> -> tensor<2x128x64xi8>, tensor<2x128x2xf32>
  return
}

// -----

func.func @quantize_group_size_divides(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op group_size 48 does not divide 64 columns}}
  %q, %s = tfm.quantize %w group_size = 48 : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x1xf32>
  return
}

// -----

func.func @quantize_scales_shape(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op scales has shape [128, 4], expected [128, 2]}}
  %q, %s = tfm.quantize %w group_size = 32 : tensor<128x64xf32> -> tensor<128x64xi8>, tensor<128x4xf32>
  return
}

// -----

func.func @quantize_to_float(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op result #0 must be ranked tensor of 8-bit signless integer or 4-bit signless integer or f8E4M3FN type values, but got 'tensor<128x64xf16>'}}
  %q, %s = tfm.quantize %w group_size = 32 : tensor<128x64xf32> -> tensor<128x64xf16>, tensor<128x2xf32>
  return
}

// -----

func.func @quantize_to_f8e5m2(%w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.quantize' op result #0 must be ranked tensor of 8-bit signless integer or 4-bit signless integer or f8E4M3FN type values, but got 'tensor<128x64xf8E5M2>'}}
  %q, %s = tfm.quantize %w group_size = 32 : tensor<128x64xf32> -> tensor<128x64xf8E5M2>, tensor<128x2xf32>
  return
}

// -----

func.func @dequantize_group_size(%q: tensor<128x64xi8>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.dequantize' op group_size must be positive, got -32}}
  %w = tfm.dequantize %q, %s group_size = -32 : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<128x64xf32>
  return
}

// -----

func.func @dequantize_scales_shape(%q: tensor<128x64xi4>, %s: tensor<64x2xf32>) {
  // expected-error @+1 {{'tfm.dequantize' op scales has shape [64, 2], expected [128, 2]}}
  %w = tfm.dequantize %q, %s group_size = 32 : (tensor<128x64xi4>, tensor<64x2xf32>) -> tensor<128x64xf32>
  return
}

// -----

func.func @dequantize_result_shape(%q: tensor<128x64xi8>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.dequantize' op result has shape [64, 128], expected [128, 64]}}
  %w = tfm.dequantize %q, %s group_size = 32 : (tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<64x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.packed_qkv_linear
//===----------------------------------------------------------------------===//

func.func @packed_qkv_heads(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op heads must be positive, got 0}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 0 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_kv_heads(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op kv_heads must be positive, got 0}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 0 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_head_dim(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op head_dim must be positive, got -16}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = -16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_heads_divisible(%x: tensor<?x64xf32>, %w: tensor<160x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op heads (4) must be divisible by kv_heads (3)}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 3 head_dim = 16
      : (tensor<?x64xf32>, tensor<160x64xf32>) -> tensor<?x160xf32>
  return
}

// -----

// Regression: (heads + 2 * kv_heads) * head_dim overflowed int64.
func.func @packed_qkv_width_overflow(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op (heads + 2 * kv_heads) * head_dim does not fit in 64 bits}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4611686018427387904 kv_heads = 1 head_dim = 2
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_element_types(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op element types differ: 'f32' and 'bf16'}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_weight_rows(%x: tensor<?x64xf32>, %w: tensor<96x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op weight has 96 rows, expected (heads + 2 * kv_heads) * head_dim = 128}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  return
}

// -----

// Regression: the weight's row count was read before its rank was
// known (out-of-range dimension of a rank-0 weight).
func.func @packed_qkv_scalar_weight(%x: tensor<?x64xf32>, %w: tensor<f32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op weight must be [out, in], got rank 0}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_bias_shape(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op bias has shape [64], expected [128]}}
  %qkv = tfm.packed_qkv_linear %x, %w, %b heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @packed_qkv_result_shape(%x: tensor<?x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{'tfm.packed_qkv_linear' op result has shape [?, 64], expected [?, 128]}}
  %qkv = tfm.packed_qkv_linear %x, %w heads = 4 kv_heads = 2 head_dim = 16
      : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.attention
//===----------------------------------------------------------------------===//

func.func @attention_heads(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op heads must be positive, got -4}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = -4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_heads_divisible(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op heads (3) must be divisible by kv_heads (2)}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 3 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x48xf32>
  return
}

// -----

// Regression: (heads + 2 * kv_heads) * head_dim overflowed int64.
func.func @attention_width_overflow(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op (heads + 2 * kv_heads) * head_dim does not fit in 64 bits}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 2 kv_heads = 2 head_dim = 1537228672809129302 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_element_types(%qkv: tensor<?x128xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op element types differ: 'bf16' and 'f32'}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xbf16>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_layer(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op layer must be non-negative, got -1}}
  %o = tfm.attention %qkv, %pos layer = -1 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_scale(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op scale must be positive}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.0
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_window(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op window must be positive, got -4096}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      window = -4096 : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_rotary_dim_exceeds_head_dim(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op rope rotary_dim (32) exceeds head_dim (16)}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = <style = neox, rotary_dim = 32> : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_rope_odd_rotary_dim(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+2 {{rope rotary_dim must be positive and even, got 9}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = <style = neox, rotary_dim = 9> : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_qkv_width(%qkv: tensor<?x96xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op qkv has shape [?, 96], expected [?, 128]}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x96xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_positions(%qkv: tensor<3x128xf32>, %pos: tensor<4xi32>) {
  // expected-error @+1 {{'tfm.attention' op qkv has shape [3, 128], expected [4, 128]}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<3x128xf32>, tensor<4xi32>) -> tensor<3x64xf32>
  return
}

// -----

func.func @attention_result_shape(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'tfm.attention' op result has shape [?, 32], expected [?, 64]}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @attention_rope_colon(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>) {
  // The long form right before the colon takes the op's types as its own
  // (see the op description); the stripped form is the one to write.
  // expected-error @+3 {{expected ':'}}
  %o = tfm.attention %qkv, %pos layer = 0 heads = 4 kv_heads = 2 head_dim = 16 scale = 0.25
      rope = #tfm.rope<style = neox, rotary_dim = 16>
      : (tensor<?x128xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.add_rms_norm, tfm.add_layer_norm
//===----------------------------------------------------------------------===//

func.func @add_rms_norm_residual_type(%x: tensor<?x64xf32>, %res: tensor<4x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op input and residual must have the same type, got 'tensor<?x64xf32>' and 'tensor<4x64xf32>'}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<4x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_rms_norm_weight_shape(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op weight has shape [32], expected [64]}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<32xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_rms_norm_weight_element_type(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf16>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op element types differ: 'f32' and 'f16'}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf16>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_rms_norm_eps(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op eps must be positive, got 0.000000e+00}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 0.0
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_rms_norm_scalar_input(%x: tensor<f32>, %res: tensor<f32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op input must have at least one dimension}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<f32>, tensor<f32>, tensor<64xf32>) -> (tensor<f32>, tensor<f32>)
  return
}

// -----

func.func @add_rms_norm_results(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add_rms_norm' op results must have the input's type}}
  %sum, %n = tfm.add_rms_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<4x64xf32>)
  return
}

// -----

func.func @add_layer_norm_bias_shape(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>,
                                     %b: tensor<65xf32>) {
  // expected-error @+1 {{'tfm.add_layer_norm' op bias has shape [65], expected [64]}}
  %sum, %n = tfm.add_layer_norm %x, %res, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<65xf32>)
      -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_layer_norm_bias_element_type(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>,
                                            %w: tensor<64xf32>, %b: tensor<64xbf16>) {
  // expected-error @+1 {{'tfm.add_layer_norm' op element types differ: 'f32' and 'bf16'}}
  %sum, %n = tfm.add_layer_norm %x, %res, %w, %b eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xbf16>)
      -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_layer_norm_results(%x: tensor<?x64xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'tfm.add_layer_norm' op results must have the input's type}}
  %sum, %n = tfm.add_layer_norm %x, %res, %w eps = 1.0e-05
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xbf16>, tensor<?x64xf32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.gated_mlp
//===----------------------------------------------------------------------===//

func.func @gated_mlp_element_types(%x: tensor<?x64xf32>, %w: tensor<352x64xbf16>) {
  // expected-error @+1 {{'tfm.gated_mlp' op element types differ: 'f32' and 'bf16'}}
  %h = tfm.gated_mlp silu %x, %w : (tensor<?x64xf32>, tensor<352x64xbf16>) -> tensor<?x176xf32>
  return
}

// -----

func.func @gated_mlp_odd_rows(%x: tensor<?x64xf32>, %w: tensor<351x64xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op weight must be [2 * intermediate, hidden], got [351, 64]}}
  %h = tfm.gated_mlp silu %x, %w : (tensor<?x64xf32>, tensor<351x64xf32>) -> tensor<?x175xf32>
  return
}

// -----

func.func @gated_mlp_dynamic_rows(%x: tensor<?x64xf32>, %w: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op weight must be [2 * intermediate, hidden], got [?, 64]}}
  %h = tfm.gated_mlp silu %x, %w : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x?xf32>
  return
}

// -----

func.func @gated_mlp_weight_rank(%x: tensor<?x64xf32>, %w: tensor<352xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op weight must be [2 * intermediate, hidden], got [352]}}
  %h = tfm.gated_mlp silu %x, %w : (tensor<?x64xf32>, tensor<352xf32>) -> tensor<?x176xf32>
  return
}

// -----

func.func @gated_mlp_bias_shape(%x: tensor<?x64xf32>, %w: tensor<352x64xf32>, %b: tensor<176xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op bias has shape [176], expected [352]}}
  %h = tfm.gated_mlp silu %x, %w, %b
      : (tensor<?x64xf32>, tensor<352x64xf32>, tensor<176xf32>) -> tensor<?x176xf32>
  return
}

// -----

func.func @gated_mlp_bias_element_type(%x: tensor<?x64xf32>, %w: tensor<352x64xf32>, %b: tensor<352xbf16>) {
  // expected-error @+1 {{'tfm.gated_mlp' op element types differ: 'f32' and 'bf16'}}
  %h = tfm.gated_mlp silu %x, %w, %b
      : (tensor<?x64xf32>, tensor<352x64xf32>, tensor<352xbf16>) -> tensor<?x176xf32>
  return
}

// -----

// Regression: with a bias, the weight's row count was read before its rank
// was checked (out-of-range dimension of a rank-0 weight; kiln-opt crashed).
func.func @gated_mlp_scalar_weight_with_bias(%x: tensor<?x64xf32>, %w: tensor<f32>, %b: tensor<352xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op weight must be [2 * intermediate, hidden], got []}}
  %h = tfm.gated_mlp silu %x, %w, %b
      : (tensor<?x64xf32>, tensor<f32>, tensor<352xf32>) -> tensor<?x176xf32>
  return
}

// -----

func.func @gated_mlp_input_features(%x: tensor<?x32xf32>, %w: tensor<352x64xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op input features do not match weight [352, 64]}}
  %h = tfm.gated_mlp gelu %x, %w : (tensor<?x32xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  return
}

// -----

func.func @gated_mlp_scalar_input(%x: tensor<f32>, %w: tensor<352x64xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op input features do not match weight [352, 64]}}
  %h = tfm.gated_mlp gelu %x, %w : (tensor<f32>, tensor<352x64xf32>) -> tensor<176xf32>
  return
}

// -----

func.func @gated_mlp_result_shape(%x: tensor<?x64xf32>, %w: tensor<352x64xf32>) {
  // expected-error @+1 {{'tfm.gated_mlp' op result has shape [?, 352], expected [?, 176]}}
  %h = tfm.gated_mlp gelu_tanh %x, %w : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x352xf32>
  return
}

// -----

func.func @gated_mlp_unknown_activation(%x: tensor<?x64xf32>, %w: tensor<352x64xf32>) {
  // expected-error @+2 {{expected ::kiln::tfm::Activation to be one of: silu, gelu, gelu_tanh}}
  // expected-error @+1 {{failed to parse Tfm_ActivationAttr parameter 'value'}}
  %h = tfm.gated_mlp relu %x, %w : (tensor<?x64xf32>, tensor<352x64xf32>) -> tensor<?x176xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tfm.quantized_linear
//===----------------------------------------------------------------------===//

func.func @quantized_linear_group_size(%x: tensor<?x64xf32>, %q: tensor<128x64xi4>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op group_size 40 does not divide 64 columns}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 40
      : (tensor<?x64xf32>, tensor<128x64xi4>, tensor<128x2xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @quantized_linear_weight_rank(%x: tensor<?x64xf32>, %q: tensor<64xi8>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op quantized tensor must be [rows, cols], got rank 1}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 32
      : (tensor<?x64xf32>, tensor<64xi8>, tensor<128x2xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @quantized_linear_scales(%x: tensor<?x64xf32>, %q: tensor<128x64xi8>, %s: tensor<128x4xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op scales has shape [128, 4], expected [128, 2]}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xi8>, tensor<128x4xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @quantized_linear_input_features(%x: tensor<?x32xf32>, %q: tensor<128x64xi8>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op input features (32) do not match weight [out, in] [128, 64]}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 32
      : (tensor<?x32xf32>, tensor<128x64xi8>, tensor<128x2xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @quantized_linear_bias_element_type(%x: tensor<?x64xf32>, %q: tensor<128x64xi8>,
                                              %s: tensor<128x2xf32>, %b: tensor<128xbf16>) {
  // expected-error @+1 {{'tfm.quantized_linear' op element types differ: 'f32' and 'bf16'}}
  %y = tfm.quantized_linear %x, %q, %s, %b group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xi8>, tensor<128x2xf32>, tensor<128xbf16>) -> tensor<?x128xf32>
  return
}

// -----

func.func @quantized_linear_result_shape(%x: tensor<?x64xf32>, %q: tensor<128x64xf8E4M3FN>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op result has shape [?, 64], expected [?, 128]}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xf8E4M3FN>, tensor<128x2xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @quantized_linear_float_weight(%x: tensor<?x64xf32>, %q: tensor<128x64xf32>, %s: tensor<128x2xf32>) {
  // expected-error @+1 {{'tfm.quantized_linear' op operand #1 must be ranked tensor of 8-bit signless integer or 4-bit signless integer or f8E4M3FN type values, but got 'tensor<128x64xf32>'}}
  %y = tfm.quantized_linear %x, %q, %s group_size = 32
      : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128x2xf32>) -> tensor<?x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

func.func @all_reduce_ranks(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.all_reduce' op ranks must be positive, got 0}}
  %r = tfm.all_reduce %x sum ranks = 0 : tensor<?x64xf32>
  return
}

// -----

func.func @all_reduce_result_type(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'tfm.all_reduce' op requires the same type for all operands and results}}
  %r = "tfm.all_reduce"(%x) <{reduction = #tfm<reduction sum>, ranks = 2 : i64}> : (tensor<?x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @all_reduce_unknown_reduction(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{expected ::kiln::tfm::Reduction to be one of: sum, max}}
  // expected-error @+1 {{failed to parse Tfm_ReductionAttr parameter 'value'}}
  %r = tfm.all_reduce %x min ranks = 2 : tensor<?x64xf32>
  return
}

// -----

func.func @all_gather_ranks(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.all_gather' op ranks must be positive, got -2}}
  %g = tfm.all_gather %x axis = 1 ranks = -2 : tensor<?x128xf32> -> tensor<?x256xf32>
  return
}

// -----

func.func @all_gather_axis(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.all_gather' op axis 2 is out of range for rank 2}}
  %g = tfm.all_gather %x axis = 2 ranks = 2 : tensor<?x128xf32> -> tensor<?x256xf32>
  return
}

// -----

func.func @all_gather_result_shape(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'tfm.all_gather' op result has shape [?, 128], expected [?, 256]}}
  %g = tfm.all_gather %x axis = 1 ranks = 2 : tensor<?x128xf32> -> tensor<?x128xf32>
  return
}

// -----

// Regression: the gathered dimension overflowed int64.
func.func @all_gather_overflow(%x: tensor<?x9223372036854775807xf32>) {
  // expected-error @+1 {{'tfm.all_gather' op dimension 1 of size 9223372036854775807 multiplied by ranks = 2 does not fit in 64 bits}}
  %g = tfm.all_gather %x axis = 1 ranks = 2 : tensor<?x9223372036854775807xf32> -> tensor<?x?xf32>
  return
}
