#!/usr/bin/env python3
"""Ablations of the persistent decode kernel, for timing where its step goes.

Writes one folder per variant holding the kernel's source with one part
disabled, for the runtime's KILN_SUBSTITUTE_KERNELS (the results are wrong;
only the time means something):

  nobarrier    blocks do not wait for each other at the grid barriers
  noattention  attention tasks are skipped
  nocompute    the compute warps wait for and release every chunk, without
               the products
  streamonly   all three: what is left is the weight stream and the norms

  bench/persistent_variants.py --kiln-compile build/bin/kiln-compile \
      --config examples/llama-3.2-1b/config.json --out build-variants/1b -- --dtype bf16 ...
"""
import argparse
import os
import subprocess
import sys

EDITS = {
    "nobarrier": [("      kiln::grid_wait(step.grid_barrier, barrier_target);\n", "")],
    "noattention": [("for (int task = blockIdx.x; task <", "for (int task = blockIdx.x; false && task <")],
    "nocompute": [("      product.add(", "      if (false) product.add(")],
}
EDITS["streamonly"] = EDITS["nobarrier"] + EDITS["noattention"] + EDITS["nocompute"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("compile_args", nargs="*")
    args = parser.parse_args()
    cuda = subprocess.run([args.kiln_compile, args.config, "--emit=cuda"] + args.compile_args,
                          check=True, capture_output=True, text=True).stdout
    start = cuda.index("\n// decode_step_persistent") + 1
    name = cuda[start + 3:cuda.index(":", start)]
    source = cuda[start:]
    if "\n// " in source[source.index("namespace"):].split("} // namespace")[-1]:
        sys.exit("the persistent kernel is not the artifact's last kernel")
    for variant, edits in EDITS.items():
        text = source
        for old, new in edits:
            if old not in text:
                sys.exit(f"{variant}: '{old.strip()}' not found in {name}")
            text = text.replace(old, new)
        os.makedirs(os.path.join(args.out, variant), exist_ok=True)
        with open(os.path.join(args.out, variant, name + ".cu"), "w") as f:
            f.write(text)
    print(f"{name}: {', '.join(EDITS)} in {args.out}")


if __name__ == "__main__":
    main()
