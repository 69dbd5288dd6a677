#!/usr/bin/env python3
"""Registers, spills and stack of an artifact's kernels, as ptxas reports them
when NVRTC compiles them for the GPU (no GPU needed): a kernel at its register
cap that spills in a hot loop loses more than any change to it gains (the
persistent kernel runs 9 warps a block at 168 registers, bench/NOTES.md §6),
and a register array that code indexes at run time lives on the stack, in
local memory, where every use is a load (§12).

  bench/kernel_resources.py --kiln-compile build/bin/kiln-compile \\
      --config examples/llama-3.2-1b/config.json [--kernel decode_step] [--where] \\
      -- --dtype bf16

prints a line a kernel: name, registers, bytes of spill stores and loads, and
bytes of stack frame (spills and arrays in local memory). --where also prints
the source line of each local-memory instruction (spill, or array), from the cubin
disassembled by nvdisasm (in the CUDA toolkit, or from PyPI's
nvidia-cuda-nvdisasm: --nvdisasm PATH).
"""
import argparse
import re
import sys

from nvrtc import (compile_cuda, default_nvdisasm, disassemble, emit_cuda, prelude_lines,
                   require_nvdisasm)

ENTRY = re.compile(r"Compiling entry function '([^']+)'")
SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
REGISTERS = re.compile(r"Used (\d+) registers")


def resources(log):
    """(kernel, registers, spill store bytes, spill load bytes, stack frame bytes)
    from ptxas's log."""
    rows, kernel, spills = [], None, (0, 0, 0)
    for line in log.splitlines():
        if m := ENTRY.search(line):
            kernel = m.group(1)
        elif m := SPILLS.search(line):
            spills = (int(m.group(2)), int(m.group(3)), int(m.group(1)))
        elif (m := REGISTERS.search(line)) and kernel:
            rows.append((kernel, int(m.group(1))) + spills)
            kernel, spills = None, (0, 0, 0)
    return rows


def spill_lines(cubin, nvdisasm, source):
    """(kernel, instruction, source line) of every local-memory store or load:
    a spill's (ptxas marks it SpillRefill) or an array's."""
    sass = disassemble(cubin, nvdisasm, "-g")
    lines, found, kernel, line = source.splitlines(), [], None, None
    for text in sass.splitlines():
        if m := re.match(r"\s*\.text\.(\S+):", text):
            kernel = m.group(1)
        elif m := re.search(r'//## File ".*", line (\d+)', text):
            line = int(m.group(1)) - prelude_lines() - 1  # the prelude and a newline come first
        elif re.search(r"\b(STL|LDL)(\.\S+)? ", text) and line is not None:
            instruction = re.sub(r"\s+", " ", text.split("*/", 1)[-1].split("(*")[0]).strip(" ;")
            if "SpillRefill" not in text:
                instruction += " (array)"
            found.append((kernel, instruction, lines[line - 1].strip() if 0 < line <= len(lines) else "?"))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--kernel", default="", help="only kernels whose name contains this")
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--where", action="store_true",
                        help="where each local-memory access is (needs nvdisasm)")
    parser.add_argument("--nvdisasm", default=default_nvdisasm())
    parser.add_argument("--cuda-home", default="/usr/local/cuda")
    parser.add_argument("compile_args", nargs="*")
    args = parser.parse_args()
    if args.where:
        require_nvdisasm(args.nvdisasm)
    source = emit_cuda(args.kiln_compile, args.config, args.compile_args)
    ok, log, cubin = compile_cuda(source, "kernels", args.cuda_home, args.arch,
                                  ["--ptxas-options=-v"] + (["-lineinfo"] if args.where else []))
    if not ok:
        sys.exit(f"NVRTC failed:\n{log}")
    rows = [row for row in resources(log) if args.kernel in row[0]]
    if not rows:
        sys.exit(f"no kernel named like '{args.kernel}'")
    print(f"{'kernel':<56} {'registers':>9} {'spill stores':>12} {'spill loads':>11} {'stack':>6}")
    for kernel, registers, stores, loads, stack in rows:
        print(f"{kernel:<56} {registers:>9} {stores:>12} {loads:>11} {stack:>6}")
    if args.where:
        for kernel, instruction, line in spill_lines(cubin, args.nvdisasm, source):
            if args.kernel in kernel:
                print(f"{kernel}: {instruction}: {line}")


if __name__ == "__main__":
    main()
