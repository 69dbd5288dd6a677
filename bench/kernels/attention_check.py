#!/usr/bin/env python3
"""Checks and times kiln's prefill-attention kernels on the GPU, against a
float32 reference computed with torch (SDPA for the plain causal case, an
explicit masked softmax otherwise).

Inputs come from attention_cases.py (kernel sources and launch shapes). Each
kernel is compiled with NVRTC after runtime/kernels/prelude.cuh, as the
runtime does, and launched through the driver API on torch's tensors with a
StepState built here, so the packed varlen layout is exercised exactly: several
sequences per step, positions that start after a cached prefix (chunked
prefill), KV-cache slots out of order.

Usage: attention_check.py build-gpu/attention [--out DIR]
"""

import argparse
import ctypes
import glob
import json
import math
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRELUDE = os.path.join(ROOT, "runtime", "kernels", "prelude.cuh")


def load_library(names):
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    sys.exit(f"cannot load any of {names}")


def cuda_include_dir():
    for candidate in [os.environ.get("KILN_CUDA_INCLUDE_DIR", ""), "/usr/local/cuda/include"]:
        if candidate and os.path.exists(os.path.join(candidate, "cuda_bf16.h")):
            return candidate
    sys.exit("cannot find the CUDA headers (cuda_bf16.h)")


nvrtc = load_library(["libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13",
                      "/usr/local/cuda/lib/libnvrtc.so.13", "libnvrtc.so"]
                     + glob.glob("/usr/local/cuda*/lib*/libnvrtc.so*"))
cuda = load_library(["libcuda.so.1", "libcuda.so"])


def check(result, what):
    if result != 0:
        sys.exit(f"{what} failed with {result}")


class StepState(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "token_ids", "positions", "token_seq", "query_start", "kv_len", "slot", "last_token",
        "temperature", "top_k", "top_p", "seed", "sampled", "step_counter")]


def compile_kernel(source, name, arch):
    text = open(PRELUDE).read() + "\n" + source
    program = ctypes.c_void_p()
    check(nvrtc.nvrtcCreateProgram(ctypes.byref(program), text.encode(), f"{name}.cu".encode(), 0,
                                   None, None), "nvrtcCreateProgram")
    options = [f"--gpu-architecture={arch}".encode(), b"-std=c++17",
               f"--include-path={cuda_include_dir()}".encode()]
    result = nvrtc.nvrtcCompileProgram(program, len(options),
                                       (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    if result != 0:
        sys.exit(f"NVRTC failed on {name}:\n{log.value.decode()}")
    nvrtc.nvrtcGetCUBINSize(program, ctypes.byref(size))
    cubin = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetCUBIN(program, cubin)
    module, function = ctypes.c_void_p(), ctypes.c_void_p()
    check(cuda.cuModuleLoadData(ctypes.byref(module), cubin), "cuModuleLoadData")
    check(cuda.cuModuleGetFunction(ctypes.byref(function), module, name.encode()),
          "cuModuleGetFunction")
    return function, cubin.raw


def alibi_slopes(heads):
    """transformers' build_alibi_tensor slopes."""
    closest = 2 ** math.floor(math.log2(heads))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(closest) - 3))), dtype=torch.float32)
    slopes = torch.pow(base, torch.arange(1, 1 + closest, dtype=torch.int32))
    if closest != heads:
        extra = torch.tensor(2 ** (-(2 ** -(math.log2(2 * closest) - 3))), dtype=torch.float32)
        remaining = min(closest, heads - closest)
        slopes = torch.cat([slopes, torch.pow(extra, torch.arange(1, 1 + 2 * remaining, 2,
                                                                  dtype=torch.int32))])
    return slopes


class Case:
    def __init__(self, spec, directory, arch):
        self.spec = spec
        self.source = open(os.path.join(directory, spec["name"] + ".cu")).read()
        self.function, self.cubin = compile_kernel(self.source, spec["kernel"], arch)
        shape = spec["kernel"].split("_")
        self.heads = int(next(p[1:] for p in shape if p.startswith("h") and p[1:].isdigit()))
        self.kv_heads = int(next(p[2:] for p in shape if p.startswith("kv")))
        self.head_dim = int(next(p[1:] for p in shape if p.startswith("d") and p[1:].isdigit()))
        self.dtype = torch.bfloat16 if spec["dtype"] == "bf16" else torch.float16
        scale = next(line for line in self.source.splitlines() if "kScale" in line and "=" in line)
        self.scale = float(scale.split("=")[1].split("*")[0].strip().rstrip(";").rstrip("f"))
        self.window = 0
        for line in self.source.splitlines():
            if "key > pos" in line:
                self.window = int(line.split("key > pos")[1].split("-")[1].split("?")[0].strip())
                break
        self.alibi = "_alibi_slopes[" in self.source
        if spec["shared"] > 48 * 1024:
            check(cuda.cuFuncSetAttribute(self.function, 8, spec["shared"]),  # max dynamic smem
                  "cuFuncSetAttribute")

    def make_inputs(self, rows, generator):
        """rows: (slot, cached, new) per sequence. Random qkv and a cache that
        holds every position < cached + new of each sequence."""
        spec, device = self.spec, "cuda"
        tokens = sum(new for _, _, new in rows)
        row_width = (self.heads + 2 * self.kv_heads) * self.head_dim
        qkv = torch.randn(tokens, row_width, generator=generator, device=device).to(self.dtype)
        cache_shape = (spec["max_batch"], spec["max_seq_len"], self.kv_heads, self.head_dim)
        k_cache = torch.randn(cache_shape, generator=generator, device=device).to(self.dtype)
        v_cache = torch.randn(cache_shape, generator=generator, device=device).to(self.dtype)
        ints = dict(positions=[], token_seq=[], query_start=[], kv_len=[], slot=[])
        for b, (slot, cached, new) in enumerate(rows):
            ints["query_start"].append(len(ints["positions"]))
            ints["positions"] += list(range(cached, cached + new))
            ints["token_seq"] += [b] * new
            ints["kv_len"].append(cached + new)
            ints["slot"].append(slot)
        ints["query_start"] += [tokens] * (spec["max_batch"] + 1 - len(rows))
        arrays = {k: torch.tensor(v, dtype=torch.int32, device=device) for k, v in ints.items()}
        return qkv, k_cache, v_cache, arrays

    def launch(self, qkv, k_cache, v_cache, out, arrays, rows):
        spec = self.spec
        state = StepState()
        for name, array in arrays.items():
            setattr(state, name, array.data_ptr())
        longest = max(new for _, _, new in rows)
        if spec["scale"] == "query_tiles":
            factor = len(rows) * ((longest + spec["tile"] - 1) // spec["tile"])
        else:
            factor = len(rows)
        pointers = [ctypes.c_uint64(t.data_ptr()) for t in (qkv, k_cache, v_cache, out)]
        params = (ctypes.c_void_p * 5)(*[ctypes.addressof(p) for p in pointers],
                                       ctypes.addressof(state))
        check(cuda.cuLaunchKernel(self.function, spec["grid"] * factor, 1, 1, spec["block"], 1, 1,
                                  spec["shared"], None, params, None), "cuLaunchKernel")

    def reference(self, qkv, k_cache, v_cache, rows):
        """float32 attention of every token, [tokens, heads * head_dim]."""
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        outputs, start = [], 0
        slopes = alibi_slopes(h).cuda() if self.alibi else None
        for slot, cached, new in rows:
            q = qkv[start:start + new, :h * d].float().view(new, h, d).transpose(0, 1)
            keys = k_cache[slot, :cached + new].float().permute(1, 0, 2)  # [kv, S, d]
            values = v_cache[slot, :cached + new].float().permute(1, 0, 2)
            keys = keys.repeat_interleave(h // kv, 0)
            values = values.repeat_interleave(h // kv, 0)
            if not self.window and not self.alibi and cached == 0:
                o = torch.nn.functional.scaled_dot_product_attention(
                    q[None], keys[None], values[None], is_causal=True, scale=self.scale)[0]
            else:
                pos = torch.arange(cached, cached + new, device="cuda")[:, None]
                key = torch.arange(cached + new, device="cuda")[None, :]
                visible = key <= pos
                if self.window:
                    visible &= key > pos - self.window
                scores = q @ keys.transpose(1, 2) * self.scale
                if self.alibi:
                    scores = scores + slopes[:, None, None] * (key - pos)[None].float()
                scores = scores.masked_fill(~visible[None], float("-inf"))
                o = torch.softmax(scores, -1) @ values
            outputs.append(o.transpose(0, 1).reshape(new, h * d))
            start += new
        return torch.cat(outputs)

    def flops(self, rows):
        """Multiply-adds of Q·Kᵀ and P·V over visible keys only, x2."""
        visible = 0
        for _, cached, new in rows:
            for p in range(cached, cached + new):
                visible += p + 1 - (max(0, p - self.window + 1) if self.window else 0)
        return 4 * self.head_dim * self.heads * visible


def run_case(case, rows, seed, time_it=False):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    qkv, k_cache, v_cache, arrays = case.make_inputs(rows, generator)
    tokens = qkv.shape[0]
    out = torch.full((tokens, case.heads * case.head_dim), float("nan"), dtype=case.dtype,
                     device="cuda")
    case.launch(qkv, k_cache, v_cache, out, arrays, rows)
    torch.cuda.synchronize()
    ref = case.reference(qkv, k_cache, v_cache, rows)
    got = out.float()
    finite = bool(torch.isfinite(got).all())
    error = float((got - ref).norm() / ref.norm()) if finite else float("nan")
    result = dict(rows=rows, rel_err=error, max_abs=float((got - ref).abs().max()),
                  all_written=finite)
    if time_it:
        times = []
        for i in range(25):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            case.launch(qkv, k_cache, v_cache, out, arrays, rows)
            end.record()
            torch.cuda.synchronize()
            if i >= 5:
                times.append(start.elapsed_time(end))
        times.sort()
        result["ms"] = times[len(times) // 2]
        result["tflops"] = case.flops(rows) / result["ms"] / 1e9
        # SDPA (flash) on the same bf16 data, for scale.
        if not case.window and not case.alibi and all(c == 0 for _, c, _ in rows):
            h, d = case.heads, case.head_dim
            q = qkv[:, :h * d].view(tokens, h, d).transpose(0, 1)[None]
            k = k_cache[rows[0][0], :tokens].permute(1, 0, 2)[None]
            v = v_cache[rows[0][0], :tokens].permute(1, 0, 2)[None]
            sdpa = []
            for i in range(25):
                start, end = (torch.cuda.Event(enable_timing=True),
                              torch.cuda.Event(enable_timing=True))
                start.record()
                torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                 enable_gqa=True)
                end.record()
                torch.cuda.synchronize()
                if i >= 5:
                    sdpa.append(start.elapsed_time(end))
            sdpa.sort()
            result["sdpa_ms"] = sdpa[len(sdpa) // 2]
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.zeros(1, device="cuda")  # makes the primary context current for the driver calls
    torch.backends.cuda.matmul.allow_tf32 = False
    major, minor = torch.cuda.get_device_capability()
    arch = f"sm_{major}{minor}"
    specs = json.load(open(os.path.join(args.cases, "cases.json")))
    results, failures = [], 0
    for spec in specs:
        case = Case(spec, args.cases, arch)
        if "llama8b" in spec["name"]:
            scenarios = [([(0, 0, 2048)], True), ([(0, 1024, 1024)], False)]
        else:
            b = spec["max_batch"]
            scenarios = [
                # four sequences, the first two after a cached prefix, slots permuted
                ([(2 % b, 0, 100), (3 % b, 37, 60), (0, 0, 1), (1 % b, 200, 130)][:b], False),
                ([(b - 1, 0, 300)], False),
                ([(0, 64, 64), (1 % b, 5, 3)][:b], False),
            ]
        limit = 2e-2 if spec["dtype"] == "bf16" else 5e-3
        for index, (rows, time_it) in enumerate(scenarios):
            result = run_case(case, rows, seed=index + 1, time_it=time_it)
            ok = result["all_written"] and result["rel_err"] <= limit
            failures += not ok
            result.update(case=spec["name"], kernel=spec["kernel"], ok=ok, limit=limit)
            results.append(result)
            timing = ""
            if "ms" in result:
                timing = f"  {result['ms']:.3f} ms  {result['tflops']:.0f} TFLOP/s"
                if "sdpa_ms" in result:
                    timing += f"  (torch SDPA {result['sdpa_ms']:.3f} ms)"
            print(f"{'ok  ' if ok else 'FAIL'} {spec['name']:20} rows {str(rows):48} "
                  f"rel err {result['rel_err']:.2e} max abs {result['max_abs']:.2e}{timing}",
                  flush=True)
        if spec["name"] == "llama8b":  # for cuobjdump; not under --out, which keeps few files
            with open("/tmp/kiln-attention.cubin", "wb") as f:
                f.write(case.cubin)
    with open(os.path.join(args.out, "attention_check.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"{len(results) - failures} of {len(results)} attention checks pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
