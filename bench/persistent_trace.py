#!/usr/bin/env python3
"""Reads the timeline printed by the `trace` variant of the persistent decode
kernel (bench/persistent_variants.py) and prints, for the last traced run:
- each phase's duration (median over layers, for each traced block), how long
  the compute warps waited in it for chunks to arrive, and how many chunks
  the block's ring held when the phase ended (the copy warp is stalled when
  that is the ring's slot count);
- the attention task 0 of the middle layer, warp by warp, where the
  trace-attention variant printed it;
- for the middle layer, when each phase ended over all blocks (earliest,
  median, latest) and which blocks were last.

  kiln-bench ... 2>&1 | bench/persistent_trace.py [--stages 6]
"""
import argparse
import statistics
import sys

from persistent_variants import TASK_MARKS

# Event e of a layer marks the end of PHASES[e - 1]; event 0 is the layer's
# start (the end of the previous layer's last block barrier). A block
# barrier ends each product; the o product's input is attention's output,
# polled as it comes.
PHASES = ["norm", "qkv", "qkv block barrier", "attention", "o's input (attention)", "o",
          "o block barrier", "norm", "gate_up", "gate_up block barrier", "down (with its input)",
          "down block barrier"]


def clock_ghz(r, layers):
    """The SM clock over the traced step, from the clock and the global timer."""
    cycles = (r[(layers, 0)][1] - r[(0, 0)][1]) % (1 << 32)
    return cycles / (r[(layers, 0)][0] - r[(0, 0)][0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log", nargs="?", type=argparse.FileType(), default=sys.stdin)
    args = parser.parse_args()
    records = {"T": {}, "A": {}}
    warps = {}
    for line in args.log:
        fields = line.split()
        if len(fields) == 12 and fields[0] == "W":
            run, block, warp = map(int, fields[1:4])
            warps.setdefault(run, {})[warp] = (block, list(map(int, fields[4:])))
        if len(fields) != 8 or fields[0] not in records:
            continue
        run, block, layer, event, time, packed, waited = map(int, fields[1:])
        records[fields[0]].setdefault(run, {}).setdefault(block, {})[(layer, event)] = (
            time, packed >> 32, (packed >> 16) & 0xFFFF, packed & 0xFFFF, waited)
    if not records["T"]:
        sys.exit("no trace records (T lines) in the input")
    run = max(records["T"])
    blocks = records["T"][run]
    layers = max(layer for block in blocks.values() for layer, _ in block)
    print(f"run {run}: blocks {sorted(blocks)}, {layers} layers; times in us, "
          f"median over layers 1..{layers - 1}: duration / waiting for chunks (ring chunks held "
          f"at the phase's end)")
    print(f"{'phase':24}" + "".join(f"{'block ' + str(b):>24}" for b in sorted(blocks)))
    for e, phase in enumerate(PHASES, start=1):
        cells = []
        for b in sorted(blocks):
            r = blocks[b]
            spans = [(r[(l, e)][0] - r[(l, e - 1)][0]) / 1000 for l in range(1, layers)]
            held = [r[(l, e)][3] - r[(l, e)][2] for l in range(1, layers)]
            waited = [(r[(l, e)][4] - r[(l, e - 1)][4]) / clock_ghz(r, layers) / 1000
                      for l in range(1, layers)]
            cells.append(f"{statistics.median(spans):7.2f} /{statistics.median(waited):6.2f} "
                         f"({statistics.median(held):3.1f})")
        print(f"{phase:24}" + "".join(f"{c:>24}" for c in cells))
    for b in sorted(blocks):
        r = blocks[b]
        start, end = r[(0, 0)][0], r[(layers, 0)][0]
        layer_times = [(r[(l + 1, 0)][0] - r[(l, 0)][0]) / 1000 for l in range(layers)]
        print(f"block {b}: layers {(r[(layers - 1, 12)][0] - start) / 1000:.1f} us "
              f"(median layer {statistics.median(layer_times):.2f}), LM head "
              f"{(end - r[(layers - 1, 12)][0]) / 1000:.1f} us; SM clock "
              f"{clock_ghz(r, layers):.2f} GHz")

    every = records["A"].get(run)
    if not every:
        return
    layer = min(layer for block in every.values() for layer, _ in block)
    start = min(r[(layer, 0)][0] for r in every.values())
    if warps.get(run):
        print(f"layer {layer}: the task of attention task 0, warp by warp, us after the layer's "
              f"first start (0: never reached)")
        print(f"{'warp':6}" + "".join(f"{name:>14}" for name in TASK_MARKS))
        for warp, (block, marks) in sorted(warps[run].items()):
            print(f"{warp:<6}" + "".join(
                f"{(m - start) / 1000 if m else 0:14.2f}" for m in marks))
        print(f"(block {block}; event 5 below is the o product's input come)")
    print(f"layer {layer}, {len(every)} blocks: when each phase ended, us after the layer's "
          f"first start (earliest / median / latest; the latest blocks)")
    for e, phase in enumerate(PHASES, start=1):
        ends = sorted(((r[(layer, e)][0] - start) / 1000, b) for b, r in every.items())
        times = [t for t, _ in ends]
        latest = " ".join(f"{b}:{t:.1f}" for t, b in ends[-5:])
        print(f"{phase:24} {times[0]:7.2f} {statistics.median(times):7.2f} {times[-1]:7.2f}"
              f"   {latest}")


if __name__ == "__main__":
    main()
