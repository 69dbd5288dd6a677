// Layout ops on activations are views: reshape never copies, slices and
// transposes only change strides, a concat gathers strided pieces in one
// kernel, and a strided view is copied once before a kernel that needs a
// contiguous row. Consecutive elementwise ops become one kernel.
// RUN: kiln-compile %s --emit=cuda | FileCheck %s
// RUN: kiln-compile %s --emit=plan | FileCheck %s --check-prefix=PLAN

// CHECK-LABEL: concat_n8_f32(const float *__restrict__ src0, float *__restrict__ out)
// CHECK: if (i < 4) {
// CHECK-NEXT: const int r = i - 0;
// CHECK-NEXT: out[row + i] = src0[(size_t)token * 8 + 2 + (r / 2) * 4 + r % 2];
// CHECK-NEXT: } else if (i < 8) {
// CHECK-NEXT: const int r = i - 4;
// CHECK-NEXT: out[row + i] = src0[(size_t)token * 8 + 0 + (r / 2) * 4 + r % 2];

// The transposed [4, 2] view of the [2, 4] heads: element (j, h) is at h * 4 + j.
// CHECK-LABEL: copy_n8_f32(const float *__restrict__ src0, float *__restrict__ out)
// CHECK: out[row + i] = src0[(size_t)token * 8 + 0 + r / 2 + (r % 2) * 4];

// The gain is a weight broadcast along the row.
// CHECK-LABEL: gelu_scale_mul_add_n8_f32(const float *__restrict__ in0, const float *__restrict__ in1, const float *__restrict__ in2, float *__restrict__ out0)
// CHECK: x1[e] = kiln::to_float(in1[(i + e) % 8]);
// CHECK: const float a0 = x0[e], a1 = x1[e], a2 = x2[e];
// CHECK-NEXT: const float v0 = kiln::gelu_tanh(a0);
// CHECK-NEXT: const float v1 = v0 * 0.5f;
// CHECK-NEXT: const float v2 = v1 * a1;
// CHECK-NEXT: const float v3 = v2 + a2;
// CHECK-NEXT: y0[e] = v3;

// PLAN-LABEL: prefill: 6 commands
// PLAN-NEXT: launch embedding_h8_f32(w0, [[H:b[0-9]+]], step)
// PLAN-NEXT: launch concat_n8_f32([[H]], [[C:b[0-9]+]])
// PLAN-NEXT: launch copy_n8_f32([[H]], [[T:b[0-9]+]])
// PLAN-NEXT: launch gelu_scale_mul_add_n8_f32([[C]], w1, [[T]], [[S:b[0-9]+]])
// PLAN-NEXT: launch lm_head_gemv_n16_k8_f32([[S]], w2, b0, step)
// PLAN-NEXT: launch sample_v16(b0, step)
module attributes {tfm.architecture = "TestForCausalLM", tfm.dtype = f32, tfm.num_layers = 1 : i64,
                   tfm.hidden_size = 8 : i64, tfm.num_heads = 2 : i64, tfm.num_kv_heads = 2 : i64,
                   tfm.head_dim = 4 : i64, tfm.vocab_size = 16 : i64} {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
    %emb = tfm.weight "embed" : tensor<16x8xf32>
    %h = tfm.embedding %emb[%ids] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
    %heads = tfm.reshape %h : tensor<?x8xf32> -> tensor<?x2x4xf32>
    %lo = tfm.slice %heads axis = 2 start = 0 size = 2 : tensor<?x2x4xf32> -> tensor<?x2x2xf32>
    %hi = tfm.slice %heads axis = 2 start = 2 size = 2 : tensor<?x2x4xf32> -> tensor<?x2x2xf32>
    %lo2 = tfm.reshape %lo : tensor<?x2x2xf32> -> tensor<?x4xf32>
    %hi2 = tfm.reshape %hi : tensor<?x2x2xf32> -> tensor<?x4xf32>
    %swapped = tfm.concat %hi2, %lo2 axis = 1 : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    %g = tfm.gelu %swapped tanh : tensor<?x8xf32>
    %s = tfm.scale %g by 0.5 : tensor<?x8xf32>
    %w = tfm.weight "gain" : tensor<8xf32>
    %m = tfm.mul %s, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %t = tfm.transpose %heads [0, 2, 1] : tensor<?x2x4xf32> -> tensor<?x4x2xf32>
    %t2 = tfm.reshape %t : tensor<?x4x2xf32> -> tensor<?x8xf32>
    %sum = tfm.add %m, %t2 : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %lm = tfm.weight "lm_head" : tensor<16x8xf32>
    %logits = tfm.linear %sum, %lm : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %logits : tensor<?x16xf32>
  }
}
