// A checkpoint in three shards with an index gives the same program as the
// single-file one.
// RUN: kiln-compile %fixtures/llama_sharded --emit=tfm > %t.sharded.mlir
// RUN: kiln-compile %fixtures/llama --emit=tfm > %t.single.mlir
// RUN: diff %t.single.mlir %t.sharded.mlir
// RUN: FileCheck %s < %t.sharded.mlir

// CHECK: tfm.weight "model.embed_tokens.weight" : tensor<256x64xf32>
// CHECK: tfm.weight "model.layers.1.mlp.down_proj.weight" : tensor<64x160xf32>
// CHECK: tfm.weight "lm_head.weight" : tensor<256x64xf32>
