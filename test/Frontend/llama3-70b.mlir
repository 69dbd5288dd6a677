// A Llama-3.1-70B config (80 layers, 64 query heads over 8 kv heads, legacy
// rope_scaling llama3, bfloat16) compiles from config.json alone; the importer
// never needs the 140 GB of weights.
// RUN: kiln-compile %S/Inputs/llama3-70b --emit=tfm | FileCheck %s

// CHECK: module attributes {tfm.architecture = "LlamaForCausalLM", tfm.dtype = f32, tfm.head_dim = 128 : i64, tfm.hidden_size = 8192 : i64, tfm.max_position_embeddings = 131072 : i64, tfm.num_heads = 64 : i64, tfm.num_kv_heads = 8 : i64, tfm.num_layers = 80 : i64, tfm.vocab_size = 128256 : i64}
// CHECK: -> tensor<?x128256xf32>
// CHECK: tfm.weight "model.embed_tokens.weight" : tensor<128256x8192xbf16>
// CHECK-NEXT: tfm.weight_cast %{{.+}} : tensor<128256x8192xbf16> to tensor<128256x8192xf32>
// CHECK: tfm.weight "model.layers.0.self_attn.k_proj.weight" : tensor<1024x8192xbf16>
// CHECK: tfm.rope {{.*}} config = <style = neox, rotary_dim = 128, theta = 5.000000e+05, scaling = llama3, factor = 8.000000e+00, original_max_position = 8192> : (tensor<?x64x128xf32>
// CHECK: tfm.repeat_kv %{{.+}} axis = 1 times = 8 : tensor<?x8x128xf32> -> tensor<?x64x128xf32>
// CHECK: tfm.weight "model.layers.0.mlp.down_proj.weight" : tensor<8192x28672xbf16>
// CHECK-COUNT-79: tfm.kv_cache_append layer {{[1-9][0-9]?}},
// CHECK-NOT: tfm.kv_cache_append
// CHECK: tfm.weight "model.layers.79.mlp.down_proj.weight"
// CHECK: tfm.weight "lm_head.weight" : tensor<128256x8192xbf16>
