#!/usr/bin/env python3
"""torch (cuBLAS) time of the Llama-3-8B prefill GEMMs at 2048 tokens, bf16:
the floor kiln's cuBLASLt calls are measured against. Weights rotate over
copies so that none is served from L2.

Usage: gemm_shapes.py [--tokens 2048]
"""

import argparse

import torch

SHAPES = {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)}
LAYERS = 32


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2048)
    args = parser.parse_args()
    total_ms, total_flops = 0.0, 0.0
    for name, (n, k) in SHAPES.items():
        x = torch.randn(args.tokens, k, device="cuda", dtype=torch.bfloat16)
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
                   for _ in range(4)]
        times = []
        for i in range(40):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.nn.functional.linear(x, weights[i % 4])
            end.record()
            torch.cuda.synchronize()
            if i >= 8:
                times.append(start.elapsed_time(end))
        times.sort()
        ms = times[len(times) // 2]
        flops = 2 * args.tokens * n * k
        total_ms += LAYERS * ms
        total_flops += LAYERS * flops
        print(f"gemm {name:8} {args.tokens}x{n}x{k}: {ms:.3f} ms, {flops / ms / 1e9:.0f} TFLOP/s")
    print(f"gemms of {LAYERS} layers: {total_ms:.2f} ms, {total_flops / total_ms / 1e9:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
