// An op the evaluator does not know is an error at its location, not a crash.

// RUN: %python %S/Inputs/write_safetensors.py %t.safetensors 'embed:F32:3x2:1,0,0,1,1,1'
// RUN: not kiln-eval %s --weights %t.safetensors --prompt-ids "0" 2>&1 | FileCheck %s

module {
  func.func private @helper(tensor<?x2xf32>) -> tensor<?x2xf32>

  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x2xf32> {
    %table = tfm.weight "embed" : tensor<3x2xf32>
    %h = tfm.embedding %table[%ids] : (tensor<3x2xf32>, tensor<?xi32>) -> tensor<?x2xf32>
    // CHECK: unsupported-op.mlir:[[@LINE+1]]:10: error: 'func.call' op is not supported by the reference evaluator
    %y = func.call @helper(%h) : (tensor<?x2xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
  }
}
