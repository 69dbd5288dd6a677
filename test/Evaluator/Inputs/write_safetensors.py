#!/usr/bin/env python3
"""Writes a small .safetensors file for evaluator tests (standard library only).

Usage: write_safetensors.py OUT NAME:DTYPE:SHAPE:VALUES ...
  DTYPE  F32, F16, BF16 or I32
  SHAPE  dimensions joined by 'x' (e.g. 3x2), or 'scalar'
  VALUES comma-separated numbers, row-major (BF16 values must be exact in bf16)
Example: write_safetensors.py w.safetensors 'w:F32:2x2:1,2,3,4' 'ids:I32:3:0,1,2'
"""
import json
import struct
import sys

FORMATS = {"F32": ("<f", 4), "F16": ("<e", 2), "I32": ("<i", 4)}


def encode(dtype, values):
    if dtype == "BF16":
        return b"".join(struct.pack("<f", float(v))[2:] for v in values)
    fmt, _ = FORMATS[dtype]
    cast = int if dtype == "I32" else float
    return b"".join(struct.pack(fmt, cast(v)) for v in values)


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    header, data = {}, b""
    for spec in specs:
        name, dtype, shape, values = spec.split(":")
        dims = [] if shape == "scalar" else [int(d) for d in shape.split("x")]
        numbers = [v for v in values.split(",") if v]
        blob = encode(dtype, numbers)
        header[name] = {"dtype": dtype, "shape": dims,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
