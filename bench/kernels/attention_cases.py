#!/usr/bin/env python3
"""Prefill-attention kernels for attention_check.py, generated here (the GPU
machine has no compiler): for each case, a config derived from a test fixture
is compiled with kiln-compile, and the prefill attention kernel's source and
launch shape are written to OUT/<case>.cu and OUT/cases.json.

Cases cover what the tensor-core kernel must get right: the Llama-3-8B shape
(timed), GQA, a sliding window, ALiBi, head dims 16/64/80/96/128, fp16 and
bf16; plus the CUDA-core kernel at the 8B shape (its f32 source retyped to
bf16), for the before/after timing.

Usage: attention_cases.py --kiln-compile build/bin/kiln-compile --out build-gpu/attention
"""

import argparse
import json
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures")

LLAMA_8B = dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, num_hidden_layers=1, vocab_size=128256,
                max_position_embeddings=8192, rope_theta=500000.0)

# name -> (fixture, config overrides, dtype, max batch, max seq len, max tokens)
CASES = {
    "llama8b": ("llama", LLAMA_8B, "bf16", 1, 4096, 2048),
    "gqa_d64": ("llama", dict(hidden_size=512, num_attention_heads=8, num_key_value_heads=2,
                              head_dim=64), "bf16", 4, 512, 512),
    "window_d64_f16": ("mistral", dict(hidden_size=512, num_attention_heads=8,
                                       num_key_value_heads=2, head_dim=64, sliding_window=48),
                       "fp16", 4, 512, 512),
    "alibi_d80": ("bloom", dict(hidden_size=1280, n_head=16), "bf16", 4, 512, 512),
    "gqa_d96": ("llama", dict(hidden_size=768, num_attention_heads=8, num_key_value_heads=4,
                              head_dim=96), "bf16", 4, 512, 512),
    "mqa_d128_window": ("mistral", dict(hidden_size=512, num_attention_heads=4,
                                        num_key_value_heads=1, head_dim=128, sliding_window=100),
                        "bf16", 4, 512, 512),
    "fixture_d16": ("llama", {}, "bf16", 4, 512, 512),
}


def compile_case(kiln_compile, out, name, fixture, overrides, dtype, batch, seq_len, tokens):
    with open(os.path.join(FIXTURES, fixture, "config.json")) as f:
        config = json.load(f)
    config.update(overrides)
    directory = os.path.join(out, "configs", name)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    common = [kiln_compile, directory, "--dtype", dtype, "--max-batch", str(batch),
              "--max-seq-len", str(seq_len), "--max-tokens", str(tokens)]
    cuda = subprocess.run(common + ["--emit=cuda"], check=True, capture_output=True,
                          text=True).stdout
    plan = subprocess.run(common + ["--emit=plan"], check=True, capture_output=True,
                          text=True).stdout
    launch = re.search(r"launch (attention_prefill_\w+)\(.*\) grid (\d+) x (\w+)(?:\((\d+)\))?, "
                       r"block (\d+)(?:, shared (\d+))?", plan)
    kernel = launch.group(1)
    start = cuda.index(f"// {kernel}:")
    following = re.search(r"\n// [a-z][a-z0-9_]*: .*\n// IR: ", cuda[start + 1:])
    source = cuda[start:start + 1 + following.start()] if following else cuda[start:]
    return kernel, source, dict(grid=int(launch.group(2)), scale=launch.group(3),
                                tile=int(launch.group(4) or 0), block=int(launch.group(5)),
                                shared=int(launch.group(6) or 0))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for name, (fixture, overrides, dtype, batch, seq_len, tokens) in CASES.items():
        kernel, source, launch = compile_case(args.kiln_compile, args.out, name, fixture,
                                              overrides, dtype, batch, seq_len, tokens)
        cases.append(dict(name=name, kernel=kernel, dtype=dtype, max_batch=batch,
                          max_seq_len=seq_len, max_tokens=tokens, **launch))
        with open(os.path.join(args.out, name + ".cu"), "w") as f:
            f.write(source)
        print(f"{name:18} {kernel} {launch}")

    # The CUDA-core kernel at the 8B shape: its f32 source, retyped to bf16.
    kernel, source, launch = compile_case(args.kiln_compile, args.out, "llama8b_cuda_cores",
                                          *CASES["llama8b"][:2], "fp32", *CASES["llama8b"][3:])
    renamed = kernel.replace("_f32", "_bf16")
    source = (source.replace(kernel, renamed).replace("using T = float;", "using T = __nv_bfloat16;")
              .replace("float *__restrict__", "__nv_bfloat16 *__restrict__"))
    cases.append(dict(name="llama8b_cuda_cores", kernel=renamed, dtype="bf16", max_batch=1,
                      max_seq_len=4096, max_tokens=2048, **launch))
    with open(os.path.join(args.out, "llama8b_cuda_cores.cu"), "w") as f:
        f.write(source)
    print(f"{'llama8b_cuda_cores':18} {renamed} {launch}")
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2)


if __name__ == "__main__":
    main()
