#!/usr/bin/env python3
"""Where a kernel waits for global memory one load at a time, from its SASS
(no GPU needed): for every global load (LDG), how many instructions later its
register is first read, and how many loads (itself too) are still unread then. A
load read a few instructions after it went out, alone, costs a whole memory
latency on that path; loads that go out together cost one between them
(bench/NOTES.md §11: the persistent attention task's K/V rows at head dim 128).

  bench/kernel_loads.py --kiln-compile build/bin/kiln-compile \\
      --config examples/llama-3-8b/config.json --kernel decode_step_persistent \\
      [--nvdisasm PATH] -- --dtype bf16 --persistent-decode=on

compiles the artifact's kernels with NVRTC (-lineinfo), disassembles them with
nvdisasm -gi, and prints a line per kernel source line that issues loads:
the loads read within 512 instructions, the median instructions to first
use, the median loads unread at that use, and the source text; the closest
uses first. --listing FILE --source FILE read a saved `nvdisasm -gi`
listing of the source instead.
"""
import argparse
import re
import statistics
import sys

from nvrtc import compile_cuda, default_nvdisasm, disassemble, emit_cuda, prelude_lines, require_nvdisasm

LINE = re.compile(r'line (\d+)')
LOAD = re.compile(r"(?:@!?P\w+\s+)?LDG\.E(?:\.(\d+))?\S*\s+R(\d+),")


def instructions(listing, kernel, first_line):
    """(source line, instruction) of every instruction of the kernels named
    like `kernel`; the source line is the innermost line of the inline chain
    at or after first_line (so a prelude helper counts at its caller)."""
    chain, in_chain, inside = [], False, False
    for text in listing.splitlines():
        if m := re.match(r"\.text\.(\S+):", text.strip()):
            inside = kernel in m.group(1)
            continue
        if text.strip().startswith("//##"):
            if not in_chain:
                chain, in_chain = [], True
            chain += [int(n) - first_line + 1 for n in LINE.findall(text)]
            continue
        if "/*" not in text or not inside:
            continue
        in_chain = False
        ours = [line for line in chain if line > 0]
        yield (ours[0] if ours else 0), re.sub(r"^\s*/\*[0-9a-f]+\*/\s*", "", text.strip()).split(";")[0]


# A load not read within this many instructions has its latency hidden (and
# the listing's straight order stops being the order it runs in).
WINDOW = 512


def load_uses(listing, kernel, first_line):
    """{source line: [(instructions to first use, loads unread then)]}."""
    unread, uses = {}, {}
    for index, (line, instruction) in enumerate(instructions(listing, kernel, first_line)):
        operands = instruction.split(",", 1)[1] if "," in instruction else ""
        for issued, (at, registers) in list(unread.items()):
            if index - issued > WINDOW:
                del unread[issued]
            elif any(re.search(rf"\b{register}\b", operands) for register in registers):
                uses.setdefault(at, []).append((index - issued, len(unread)))
                del unread[issued]
        if m := LOAD.match(instruction):
            words = max(int(m.group(1) or 32) // 32, 1)
            unread[index] = (line, [f"R{int(m.group(2)) + k}" for k in range(words)])
    return uses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile")
    parser.add_argument("--config")
    parser.add_argument("--kernel", required=True, help="kernels whose name contains this")
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--nvdisasm", default=default_nvdisasm())
    parser.add_argument("--cuda-home", default="/usr/local/cuda")
    parser.add_argument("--listing", help="a saved `nvdisasm -gi` listing (with --source)")
    parser.add_argument("--source", help="the kernel source the listing was compiled from")
    parser.add_argument("compile_args", nargs="*")
    args = parser.parse_args()
    if args.listing:
        if not args.source:
            sys.exit("--listing needs --source")
        with open(args.listing) as f:
            listing = f.read()
        with open(args.source) as f:
            source = f.read()
        first_line = 1
    else:
        if not (args.kiln_compile and args.config):
            sys.exit("pass --kiln-compile and --config (or --listing and --source)")
        require_nvdisasm(args.nvdisasm)
        source = emit_cuda(args.kiln_compile, args.config, args.compile_args)
        ok, log, cubin = compile_cuda(source, "kernels", args.cuda_home, args.arch, ["-lineinfo"])
        if not ok:
            sys.exit(f"NVRTC failed:\n{log}")
        listing = disassemble(cubin, args.nvdisasm, "-gi")
        first_line = prelude_lines() + 2  # the prelude and a newline come first
    uses = load_uses(listing, args.kernel, first_line)
    if not uses:
        sys.exit(f"no global loads in kernels named like '{args.kernel}'")
    lines = source.splitlines()
    rows = sorted((statistics.median(d for d, _ in u), line, len(u), statistics.median(n for _, n in u))
                  for line, u in uses.items())
    print(f"{'line':>6} {'loads':>5} {'to use':>6} {'unread':>6}  source")
    for distance, line, count, unread in rows:
        text = lines[line - 1].strip() if 0 < line <= len(lines) else "(prelude)"
        print(f"{line:>6} {count:>5} {distance:>6g} {unread:>6g}  {text[:100]}")


if __name__ == "__main__":
    main()
