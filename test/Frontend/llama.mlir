// Llama: RMSNorm, separate q/k/v without biases, neox RoPE, GQA (4 query heads
// over 2 kv heads), SwiGLU, untied LM head.
// RUN: kiln-compile %fixtures/llama --emit=tfm | FileCheck %s
// RUN: kiln-compile %fixtures/llama --emit=tfm --mlir-print-debuginfo | FileCheck %s --check-prefix=LOC
// Without a checkpoint the weights come from the config (dtype float32): same IR.
// RUN: kiln-compile %fixtures/llama --emit=tfm > %t.checkpoint.mlir
// RUN: kiln-compile %fixtures/llama/config.json --emit=tfm > %t.config.mlir
// RUN: diff %t.checkpoint.mlir %t.config.mlir
// The output is valid tfm IR.
// RUN: kiln-opt %t.config.mlir > /dev/null

// CHECK: module attributes {tfm.architecture = "LlamaForCausalLM", tfm.dtype = f32, tfm.head_dim = 16 : i64, tfm.hidden_size = 64 : i64, tfm.max_position_embeddings = 128 : i64, tfm.num_heads = 4 : i64, tfm.num_kv_heads = 2 : i64, tfm.num_layers = 2 : i64, tfm.vocab_size = 256 : i64}
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi32>, %[[POS:[^:]+]]: tensor<?xi32>) -> tensor<?x256xf32>
// CHECK: %[[TABLE:.+]] = tfm.weight "model.embed_tokens.weight" : tensor<256x64xf32>
// CHECK: %[[H0:.+]] = tfm.embedding %[[TABLE]][%[[IDS]]]

// Layer 0, attention.
// CHECK: %[[LN1:.+]] = tfm.weight "model.layers.0.input_layernorm.weight" : tensor<64xf32>
// CHECK: %[[X:.+]] = tfm.rms_norm %[[H0]], %[[LN1]] eps = 1.000000e-05
// CHECK: %[[WQ:.+]] = tfm.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
// CHECK: %[[Q:.+]] = tfm.linear %[[X]], %[[WQ]] : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
// CHECK: %[[WK:.+]] = tfm.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x64xf32>
// CHECK: %[[K:.+]] = tfm.linear %[[X]], %[[WK]] :
// CHECK: %[[WV:.+]] = tfm.weight "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
// CHECK: %[[V:.+]] = tfm.linear %[[X]], %[[WV]] :
// CHECK: %[[Q3:.+]] = tfm.reshape %[[Q]] : tensor<?x64xf32> -> tensor<?x4x16xf32>
// CHECK: %[[K3:.+]] = tfm.reshape %[[K]] : tensor<?x32xf32> -> tensor<?x2x16xf32>
// CHECK: %[[V3:.+]] = tfm.reshape %[[V]] : tensor<?x32xf32> -> tensor<?x2x16xf32>
// CHECK: %[[QR:.+]] = tfm.rope %[[Q3]], %[[POS]] config = <style = neox, rotary_dim = 16>
// CHECK: %[[KR:.+]] = tfm.rope %[[K3]], %[[POS]] config = <style = neox, rotary_dim = 16>
// CHECK: tfm.kv_cache_append layer 0, %[[KR]], %[[V3]] : tensor<?x2x16xf32>, tensor<?x2x16xf32>
// CHECK: %[[KC:.+]], %[[VC:.+]] = tfm.kv_cache_read layer 0 : tensor<?x2x16xf32>, tensor<?x2x16xf32>
// CHECK: %[[KH:.+]] = tfm.repeat_kv %[[KC]] axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
// CHECK: %[[VH:.+]] = tfm.repeat_kv %[[VC]] axis = 1 times = 2 : tensor<?x2x16xf32> -> tensor<?x4x16xf32>
// CHECK: %[[QT:.+]] = tfm.transpose %[[QR]] [1, 0, 2] : tensor<?x4x16xf32> -> tensor<4x?x16xf32>
// CHECK: %[[KT:.+]] = tfm.transpose %[[KH]] [1, 0, 2]
// CHECK: %[[VT:.+]] = tfm.transpose %[[VH]] [1, 0, 2]
// CHECK: %[[S:.+]] = tfm.matmul %[[QT]], %[[KT]] transpose_b : (tensor<4x?x16xf32>, tensor<4x?x16xf32>) -> tensor<4x?x?xf32>
// CHECK: %[[SS:.+]] = tfm.scale %[[S]] by 2.500000e-01
// CHECK: %[[M:.+]] = tfm.causal_mask %[[SS]], %[[POS]] : (tensor<4x?x?xf32>, tensor<?xi32>) -> tensor<4x?x?xf32>
// CHECK: %[[P:.+]] = tfm.softmax %[[M]] axis = 2
// CHECK: %[[O:.+]] = tfm.matmul %[[P]], %[[VT]] : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
// CHECK: %[[OT:.+]] = tfm.transpose %[[O]] [1, 0, 2] : tensor<4x?x16xf32> -> tensor<?x4x16xf32>
// CHECK: %[[O2:.+]] = tfm.reshape %[[OT]] : tensor<?x4x16xf32> -> tensor<?x64xf32>
// CHECK: %[[WO:.+]] = tfm.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
// CHECK: %[[A:.+]] = tfm.linear %[[O2]], %[[WO]] :
// CHECK: %[[H1:.+]] = tfm.add %[[H0]], %[[A]]

// Layer 0, MLP: down(silu(gate) * up).
// CHECK: %[[LN2:.+]] = tfm.weight "model.layers.0.post_attention_layernorm.weight"
// CHECK: %[[Y:.+]] = tfm.rms_norm %[[H1]], %[[LN2]]
// CHECK: %[[WG:.+]] = tfm.weight "model.layers.0.mlp.gate_proj.weight" : tensor<160x64xf32>
// CHECK: %[[G:.+]] = tfm.linear %[[Y]], %[[WG]]
// CHECK: %[[WU:.+]] = tfm.weight "model.layers.0.mlp.up_proj.weight" : tensor<160x64xf32>
// CHECK: %[[U:.+]] = tfm.linear %[[Y]], %[[WU]]
// CHECK: %[[GA:.+]] = tfm.silu %[[G]] : tensor<?x160xf32>
// CHECK: %[[GU:.+]] = tfm.mul %[[GA]], %[[U]]
// CHECK: %[[WD:.+]] = tfm.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x160xf32>
// CHECK: %[[D:.+]] = tfm.linear %[[GU]], %[[WD]] : (tensor<?x160xf32>, tensor<64x160xf32>) -> tensor<?x64xf32>
// CHECK: %[[H2:.+]] = tfm.add %[[H1]], %[[D]]

// Layer 1 reads its own cache; then the final norm and the LM head.
// CHECK: tfm.rms_norm %[[H2]]
// CHECK: tfm.kv_cache_append layer 1
// CHECK: tfm.kv_cache_read layer 1
// CHECK-NOT: kv_cache_append
// CHECK: %[[WN:.+]] = tfm.weight "model.norm.weight"
// CHECK: %[[F:.+]] = tfm.rms_norm %{{.+}}, %[[WN]]
// CHECK: %[[WH:.+]] = tfm.weight "lm_head.weight" : tensor<256x64xf32>
// CHECK: %[[LOGITS:.+]] = tfm.linear %[[F]], %[[WH]] : (tensor<?x64xf32>, tensor<256x64xf32>) -> tensor<?x256xf32>
// CHECK: return %[[LOGITS]] : tensor<?x256xf32>

// Ops are located at the checkpoint module they come from.
// LOC: func.func @forward(%arg0: tensor<?xi32> loc("input_ids"), %arg1: tensor<?xi32> loc("positions"))
// LOC: tfm.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} loc([[QPROJ:#loc[0-9]+]])
// LOC-NEXT: tfm.linear {{.*}} loc([[QPROJ]])
// LOC: tfm.rope {{.*}} loc([[ATTN:#loc[0-9]+]])
// LOC: tfm.kv_cache_append {{.*}} loc([[ATTN]])
// LOC: tfm.add {{.*}} loc([[LAYER:#loc[0-9]+]])
// LOC: tfm.silu {{.*}} loc([[MLP:#loc[0-9]+]])
// LOC-DAG: [[QPROJ]] = loc("model.layers.0.self_attn.q_proj")
// LOC-DAG: [[ATTN]] = loc("model.layers.0.self_attn")
// LOC-DAG: [[LAYER]] = loc("model.layers.0")
// LOC-DAG: [[MLP]] = loc("model.layers.0.mlp")
