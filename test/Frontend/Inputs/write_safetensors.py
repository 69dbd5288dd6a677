"""Writes a safetensors file of zero-filled tensors for tests.

Usage: write_safetensors.py OUT NAME:DTYPE:SHAPE...   (SHAPE like 2x2, or 1)
"""
import json
import struct
import sys

ELEMENT_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4}

header, offset = {}, 0
for spec in sys.argv[2:]:
    name, dtype, dims = spec.split(":")
    shape = [int(dim) for dim in dims.split("x")]
    size = ELEMENT_SIZE[dtype]
    for dim in shape:
        size *= dim
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
    offset += size
text = json.dumps(header).encode()
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text + bytes(offset))
