// kiln-eval on a program small enough to check by hand: embedding rows
// [1, 0], [0, 1], [1, 1]; lm_head x·Wᵀ + b with W = [[1, 2], [3, 4], [5, 6]],
// b = [0.5, -0.5, 0]. Token 0 gives logits [1.5, 2.5, 5], token 2 gives
// [3.5, 6.5, 11].

// RUN: %python %S/Inputs/write_safetensors.py %t.safetensors \
// RUN:   'embed:F32:3x2:1,0,0,1,1,1' 'w:F32:3x2:1,2,3,4,5,6' 'b:F32:3:0.5,-0.5,0'

// Greedy decoding: the prompt's last token (2) picks 2, and so on.
// RUN: kiln-eval %s --weights %t.safetensors --prompt-ids "0 2" --decode-steps 2 \
// RUN:   | FileCheck %s --check-prefix=GREEDY
// GREEDY:      step 0 (prefill, 2 tokens): next 2; top-5 2:11.0000 1:6.5000 0:3.5000
// GREEDY-NEXT: step 1 (decode id 2 at position 2): next 2; top-5 2:11.0000 1:6.5000 0:3.5000
// GREEDY-NEXT: step 2 (decode id 2 at position 3): next 2; top-5 2:11.0000 1:6.5000 0:3.5000
// GREEDY-NEXT: generated: 2 2 2

// Dumps: `#<result>` for multi-result ops, `~<n>` when a name repeats.
// RUN: kiln-eval %s --weights %t.safetensors --prompt-ids "0 2" --dump 'halves|lm_head' \
// RUN:   | FileCheck %s --check-prefix=DUMP
// DUMP:      step0/halves#0 (tfm.split) [2, 1] min 1 max 1 mean 1: 1 1
// DUMP-NEXT: step0/halves#1 (tfm.split) [2, 1] min 0 max 1 mean 0.5: 0 1
// DUMP-NEXT: step0/halves~1 (tfm.concat) [2, 2] min 0 max 1 mean 0.75: 1 0 1 1
// DUMP-NEXT: step0/lm_head (tfm.linear) [2, 3] min 1.5 max 11 mean 5: 1.5 2.5 5 3.5 6.5 11
// DUMP-NEXT: step 0

// RUN: kiln-eval %s --weights %t.safetensors --prompt-ids "0 2" --decode-steps 1 \
// RUN:   --dump lm_head --dump-file %t.dump.safetensors | FileCheck %s --check-prefix=DUMPFILE
// RUN: %python -c "import json, struct, sys; b = open(sys.argv[1], 'rb').read(); \
// RUN:   h = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]]); \
// RUN:   print(sorted((k, v['shape']) for k, v in h.items() if k != '__metadata__'), h['__metadata__'])" \
// RUN:   %t.dump.safetensors | FileCheck %s --check-prefix=DUMPED
// DUMPFILE-NOT: step0/lm_head
// DUMPFILE:     wrote 2 values to {{.*}}.dump.safetensors
// DUMPED: [('step0/lm_head', [2, 3]), ('step1/lm_head', [1, 3])] {'step0/lm_head': 'tfm.linear', 'step1/lm_head': 'tfm.linear'}

// A reference that matches passes; one off by 0.01 in decode step 0 fails.
// RUN: %python %S/Inputs/write_safetensors.py %t.good.safetensors 'prompt_ids:I32:2:0,2' \
// RUN:   'prefill_logits:F32:2x3:1.5,2.5,5,3.5,6.5,11' 'decode_ids:I32:1:2' 'decode_logits:F32:1x3:3.5,6.5,11'
// RUN: kiln-eval %s --weights %t.safetensors --check-reference %t.good.safetensors \
// RUN:   | FileCheck %s --check-prefix=PASS
// PASS:      step tokens max_abs_err max_abs_ref ratio
// PASS-NEXT: prefill 2 0.000e+00 1.100e+01 0.000e+00
// PASS-NEXT: decode 0 1 0.000e+00 1.100e+01 0.000e+00
// PASS-NEXT: PASS: 2 steps (prefill + 1 decode)

// RUN: %python %S/Inputs/write_safetensors.py %t.bad.safetensors 'prompt_ids:I32:2:0,2' \
// RUN:   'prefill_logits:F32:2x3:1.5,2.5,5,3.5,6.5,11' 'decode_ids:I32:1:2' 'decode_logits:F32:1x3:3.5,6.5,11.01'
// RUN: not kiln-eval %s --weights %t.safetensors --check-reference %t.bad.safetensors \
// RUN:   | FileCheck %s --check-prefix=FAIL
// FAIL:      prefill 2 0.000e+00
// FAIL-NEXT: decode 0 1 1.000e-02 1.101e+01 9.083e-04
// FAIL-NEXT: FAIL: 1 of 2 steps exceed max_abs_err <= 1e-4 * max|ref logit|: decode 0

// Errors name what is wrong: the tensor, the token id and the vocabulary size.
// RUN: %python %S/Inputs/write_safetensors.py %t.missing.safetensors \
// RUN:   'embed:F32:3x2:1,0,0,1,1,1' 'w:F32:3x2:1,2,3,4,5,6'
// RUN: not kiln-eval %s --weights %t.missing.safetensors --prompt-ids "0" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=MISSING
// MISSING: error: 'tfm.weight' op weight 'b' is not in the checkpoint {{.*}}missing.safetensors

// RUN: %python %S/Inputs/write_safetensors.py %t.shape.safetensors \
// RUN:   'embed:F32:3x2:1,0,0,1,1,1' 'w:F32:2x3:1,2,3,4,5,6' 'b:BF16:3:0.5,-0.5,0'
// RUN: not kiln-eval %s --weights %t.shape.safetensors --prompt-ids "0" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SHAPE
// SHAPE-DAG: error: 'tfm.weight' op weight 'w' is F32 [2, 3] in {{.*}}shape.safetensors, but the program declares 'tensor<3x2xf32>'
// SHAPE-DAG: error: 'tfm.weight' op weight 'b' is BF16 [3] in {{.*}}shape.safetensors, but the program declares 'tensor<3xf32>'

// RUN: not kiln-eval %s --weights %t.safetensors --prompt-ids "0 3" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=VOCAB
// VOCAB: error: loc("embed"): 'tfm.embedding' op token id 3 (token 1) is out of range for vocabulary size 3
// VOCAB: kiln-eval: step 0 failed

// RUN: not kiln-eval %s --weights %t.safetensors --prompt-ids "0" --dump '(' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=REGEX
// REGEX: error: invalid dump filter regex '(': parentheses not balanced

module {
  func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x3xf32> {
    %table = tfm.weight "embed" : tensor<3x2xf32>
    %w = tfm.weight "w" : tensor<3x2xf32>
    %b = tfm.weight "b" : tensor<3xf32>
    %h = tfm.embedding %table[%ids] : (tensor<3x2xf32>, tensor<?xi32>) -> tensor<?x2xf32> loc("embed")
    %h0, %h1 = tfm.split %h axis = 1 : tensor<?x2xf32> -> tensor<?x1xf32>, tensor<?x1xf32> loc("halves")
    %h2 = tfm.concat %h0, %h1 axis = 1 : (tensor<?x1xf32>, tensor<?x1xf32>) -> tensor<?x2xf32> loc("halves")
    %y = tfm.linear %h2, %w, %b : (tensor<?x2xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<?x3xf32> loc("lm_head")
    return %y : tensor<?x3xf32>
  }
}
