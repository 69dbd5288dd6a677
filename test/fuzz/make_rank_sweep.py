#!/usr/bin/env python3
"""Writes structured variants of the tfm lit tests for tfm-parse-fuzzer.

Byte-level mutation rarely changes a value's type consistently in the
function signature and in the ops that use it, so verifiers seldom see
operands of unexpected rank. This script does that on purpose: for every
function of test/Dialect/Tfm/{ops,invalid}.mlir, each tensor type is replaced
everywhere by each of a few odd ones, and every integer attribute by each of
a few extreme values. Run the results once, then use them as seeds:

    python3 test/fuzz/make_rank_sweep.py /tmp/tfm-fuzz/sweep
    build-fuzz/bin/tfm-parse-fuzzer -runs=1 /tmp/tfm-fuzz/sweep
"""
import pathlib
import re
import sys

ODD_TYPES = [
    "tensor<f32>", "tensor<4xf32>", "tensor<?xf32>", "tensor<2x3x4x5xf32>", "tensor<?x?xf32>",
    "tensor<0x64xf32>", "tensor<9223372036854775807xf32>", "tensor<4x9223372036854775807xf32>",
    "tensor<?x4x16xi32>", "tensor<?xi64>", "tensor<1x1xbf16>",
]
EXTREME_INTEGERS = ["-1", "0", "4611686018427387904", "9223372036854775807", "-9223372036854775808"]
INTEGER_ATTRIBUTE = re.compile(
    r"\b((?:axis|layer|heads|kv_heads|head_dim|times|start|size|ranks|group_size|window|"
    r"rotary_dim|original_max_position) = )-?\d+")


def functions(path):
    text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)
    return re.findall(r"func\.func @\w+\(.*?\n\}", text, re.S)


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tests = pathlib.Path(__file__).resolve().parents[1] / "Dialect" / "Tfm"
    count = 0
    for name in ("ops.mlir", "invalid.mlir"):
        for f, function in enumerate(functions(tests / name)):
            variants = [function.replace(old, new)
                        for old in sorted(set(re.findall(r"tensor<[^<>]*>", function)))
                        for new in ODD_TYPES if new != old]
            variants += [INTEGER_ATTRIBUTE.sub(lambda m: m.group(1) + value, function)
                         for value in EXTREME_INTEGERS]
            for v, variant in enumerate(dict.fromkeys(variants)):
                if variant != function:
                    (out / f"{name[:-5]}-{f:03d}-{v:03d}.mlir").write_text(variant)
                    count += 1
    print(f"{count} variants in {out}")


if __name__ == "__main__":
    main()
