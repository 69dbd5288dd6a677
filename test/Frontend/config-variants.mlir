// Config spellings and variants that the fixtures do not cover, compiled from
// config.json alone (weights typed by torch_dtype / dtype).

// transformers 4 GPT-NeoX: rotary_pct, rotary_emb_base, torch_dtype float16.
// RUN: kiln-compile %S/Inputs/neox-legacy.json --emit=tfm | FileCheck %s --check-prefix=NEOX
// NEOX: %[[W:.+]] = tfm.weight "gpt_neox.embed_in.weight" : tensor<256x64xf16>
// NEOX-NEXT: %[[C:.+]] = tfm.weight_cast %[[W]] : tensor<256x64xf16> to tensor<256x64xf32>
// NEOX-NEXT: tfm.embedding %[[C]]
// NEOX: tfm.rope {{.*}} config = <style = neox, rotary_dim = 8, theta = 2.000000e+04>
// NEOX: tfm.gelu %{{.+}} tanh
// NEOX: tfm.weight "embed_out.weight" : tensor<256x64xf16>

// The activation type follows --dtype; weights stored in another type are cast.
// RUN: kiln-compile %S/Inputs/neox-legacy.json --emit=tfm --dtype fp16 | FileCheck %s --check-prefix=FP16
// FP16: tfm.dtype = f16
// FP16: -> tensor<?x256xf16>
// FP16-NOT: tfm.weight_cast
// RUN: kiln-compile %S/Inputs/neox-legacy.json --emit=tfm --dtype bf16 | FileCheck %s --check-prefix=BF16
// BF16: tfm.weight_cast %{{.+}} : tensor<256x64xf16> to tensor<256x64xbf16>

// transformers 4 Llama: rope_theta plus rope_scaling {"type": "linear"}; tied.
// RUN: kiln-compile %S/Inputs/llama-linear.json --emit=tfm | FileCheck %s --check-prefix=LINEAR
// LINEAR: %[[TABLE:.+]] = tfm.weight_cast %{{.+}} : tensor<256x64xbf16> to tensor<256x64xf32>
// LINEAR: tfm.rope {{.*}} config = <style = neox, rotary_dim = 16, theta = 5.000000e+05, scaling = linear, factor = 2.000000e+00>
// LINEAR-NOT: lm_head
// LINEAR: tfm.linear %{{.+}}, %[[TABLE]] :

// Qwen2 windows the layers from max_window_layers = 1 on.
// RUN: kiln-compile %S/Inputs/qwen2-window.json --emit=tfm | FileCheck %s --check-prefix=QWEN
// QWEN: tfm.causal_mask %{{[^ ]+}}, %{{[^ ]+}} : (tensor<4x?x?xf32>
// QWEN: tfm.causal_mask {{.*}} window = 8
// QWEN: tfm.causal_mask {{.*}} window = 8
// QWEN-NOT: tfm.causal_mask

// MistralConfig's default sliding_window is 4096; null turns it off. MQA.
// RUN: kiln-compile %S/Inputs/mistral-default-window.json --emit=tfm | FileCheck %s --check-prefix=MISTRAL
// MISTRAL: tfm.repeat_kv %{{.+}} axis = 1 times = 4 : tensor<?x1x16xf32> -> tensor<?x4x16xf32>
// MISTRAL: tfm.causal_mask {{.*}} window = 4096
// RUN: kiln-compile %S/Inputs/mistral-no-window.json --emit=tfm | FileCheck %s --check-prefix=NO-WINDOW
// NO-WINDOW-NOT: window

// Original Falcon without multi_query or parallel_attn: [H, 3, D], sequential
// residual with post_attention_layernorm, biases, untied head.
// RUN: kiln-compile %S/Inputs/falcon-sequential.json --emit=tfm | FileCheck %s --check-prefix=FALCON-SEQ
// FALCON-SEQ: %[[H0:.+]] = tfm.embedding
// FALCON-SEQ: tfm.weight "transformer.h.0.self_attention.query_key_value.bias" : tensor<192xf32>
// FALCON-SEQ: tfm.reshape %{{.+}} : tensor<?x192xf32> -> tensor<?x4x48xf32>
// FALCON-SEQ-NOT: tfm.repeat_kv
// FALCON-SEQ: tfm.weight "transformer.h.0.self_attention.dense.bias"
// FALCON-SEQ: %[[A:.+]] = tfm.linear
// FALCON-SEQ-NEXT: %[[H1:.+]] = tfm.add %[[H0]], %[[A]]
// FALCON-SEQ: tfm.weight "transformer.h.0.post_attention_layernorm.weight"
// FALCON-SEQ: tfm.layer_norm %[[H1]],
// FALCON-SEQ: tfm.weight "transformer.h.0.mlp.dense_4h_to_h.bias"
// FALCON-SEQ: %[[M:.+]] = tfm.linear
// FALCON-SEQ-NEXT: tfm.add %[[H1]], %[[M]]
// FALCON-SEQ: tfm.weight "lm_head.weight"

// Falcon new_decoder_architecture with num_ln_in_parallel_attn = 1: one norm
// feeds both branches.
// RUN: kiln-compile %S/Inputs/falcon-one-norm.json --emit=tfm | FileCheck %s --check-prefix=FALCON-ONE
// FALCON-ONE: tfm.weight "transformer.h.0.input_layernorm.weight"
// FALCON-ONE: %[[X:.+]] = tfm.layer_norm
// FALCON-ONE: tfm.reshape %{{.+}} : tensor<?x128xf32> -> tensor<?x2x64xf32>
// FALCON-ONE: tfm.weight "transformer.h.0.mlp.dense_h_to_4h.weight" : tensor<96x64xf32>
// FALCON-ONE-NEXT: tfm.linear %[[X]],
// FALCON-ONE-NOT: ln_mlp

// Bloom with apply_residual_connection_post_layernorm: the residual is the
// norm's output. n_embed is an old spelling of hidden_size.
// RUN: kiln-compile %S/Inputs/bloom-post-ln-residual.json --emit=tfm | FileCheck %s --check-prefix=BLOOM
// BLOOM: tfm.weight "transformer.h.0.input_layernorm.bias"
// BLOOM-NEXT: %[[X:.+]] = tfm.layer_norm
// BLOOM-NEXT: tfm.weight "transformer.h.0.self_attention.query_key_value.weight" : tensor<192x64xf32>
// BLOOM: tfm.weight "transformer.h.0.self_attention.dense.bias"
// BLOOM-NEXT: %[[A:.+]] = tfm.linear
// BLOOM-NEXT: %[[H1:.+]] = tfm.add %[[X]], %[[A]]
// BLOOM: %[[Y:.+]] = tfm.layer_norm %[[H1]],
// BLOOM: tfm.weight "transformer.h.0.mlp.dense_4h_to_h.bias"
// BLOOM-NEXT: %[[M:.+]] = tfm.linear
// BLOOM-NEXT: tfm.add %[[Y]], %[[M]]
// BLOOM: tfm.weight "lm_head.weight"

// GPT-J under attribute_map names, rotary_dim null (the whole head), tied
// embeddings with the LM head's own bias.
// RUN: kiln-compile %S/Inputs/gptj-aliases.json --emit=tfm | FileCheck %s --check-prefix=GPTJ
// GPTJ: %[[TABLE:.+]] = tfm.weight "transformer.wte.weight" : tensor<256x64xf32>
// GPTJ: tfm.rope {{.*}} config = <style = gptj, rotary_dim = 16>
// GPTJ: tfm.weight "transformer.h.0.mlp.fc_in.weight" : tensor<96x64xf32>
// GPTJ: %[[B:.+]] = tfm.weight "lm_head.bias" : tensor<256xf32>
// GPTJ-NEXT: tfm.linear %{{.+}}, %[[TABLE]], %[[B]]
