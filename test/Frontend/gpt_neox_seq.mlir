// GPT-NeoX with use_parallel_residual = false: h += attn(ln1(h)); h += mlp(ln2(h)).
// RUN: kiln-compile %fixtures/gpt_neox_seq --emit=tfm | FileCheck %s

// CHECK: %[[H0:.+]] = tfm.embedding
// CHECK: tfm.rope {{.*}} config = <style = neox, rotary_dim = 4>
// CHECK: tfm.weight "gpt_neox.layers.0.attention.dense.weight"
// CHECK: %[[A:.+]] = tfm.linear
// CHECK: %[[H1:.+]] = tfm.add %[[H0]], %[[A]]
// CHECK: tfm.weight "gpt_neox.layers.0.post_attention_layernorm.weight"
// CHECK: %[[Y:.+]] = tfm.layer_norm %[[H1]],
// CHECK: tfm.gelu %{{.+}} none
// CHECK: %[[M:.+]] = tfm.linear
// CHECK: %[[H2:.+]] = tfm.add %[[H1]], %[[M]]
// CHECK: tfm.layer_norm %[[H2]],
