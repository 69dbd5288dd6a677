// Unsupported IR is reported at the op that codegen cannot lower.
// RUN: kiln-compile %s --emit=plan --split-input-file --verify-diagnostics

module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    // expected-error @+1 {{codegen does not support 'tfm.softmax': attention must be fused into tfm.attention}}
    %p = tfm.softmax %h axis = 1 : tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %p, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}

// -----

module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %g = tfm.slice %h axis = 1 start = 0 size = 1 : tensor<?x8xf32> -> tensor<?x1xf32>
    // expected-error @+1 {{codegen does not support broadcasting between activations in elementwise ops}}
    %s = tfm.mul %h, %g : (tensor<?x8xf32>, tensor<?x1xf32>) -> tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %s, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}

// -----

module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %h, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    %scaled = tfm.scale %logits by 2.0 : tensor<?x16xf32>
    // expected-error @+1 {{codegen needs the returned logits to be computed by tfm.linear (the LM head)}}
    return %scaled : tensor<?x16xf32>
  }
}

// -----

// expected-error @+1 {{codegen needs the module attribute 'tfm.num_heads' as a positive integer}}
module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %h, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}

// -----

module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %q = tfm.weight "q" : tensor<16x8xi8>
    %s = tfm.weight "s" : tensor<16x1xf32>
    // expected-error @+1 {{codegen does not support 'tfm.quantized_linear'}}
    %y = tfm.quantized_linear %h, %q, %s group_size = 8 : (tensor<?x8xf32>, tensor<16x8xi8>, tensor<16x1xf32>) -> tensor<?x16xf32>
    %lm = tfm.weight "lm_head" : tensor<16x16xf32>
    %logits = tfm.linear %y, %lm : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}

// -----

module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %w = tfm.weight "qkv" : tensor<16x8xf32>
    %qkv = tfm.packed_qkv_linear %h, %w heads = 2 kv_heads = 1 head_dim = 4 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    // expected-error @+1 {{codegen sizes every layer's KV cache from the module's tfm.num_kv_heads (2) and tfm.head_dim (4); this attention has 1 kv heads of 4}}
    %o = tfm.attention %qkv, %pos layer = 0 heads = 2 kv_heads = 1 head_dim = 4 scale = 0.5 : (tensor<?x16xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %o, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}
