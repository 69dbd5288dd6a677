"""Side-by-side decode/prefill timings on one GPU, in one run.

For each shape (Llama-3-8B, Llama-3.2-1B; random bf16 weights made here), runs
  1. Hugging Face transformers, eager;
  2. transformers with a static cache and torch.compile;
  3. gpt-fast style PyTorch (bench/gptfast_llama.py), decode step compiled with
     mode="reduce-overhead";
  4. kiln (kiln-bench on an artifact compiled on the CPU machine, with random
     weights it makes on the GPU): its persistent decode kernel, and for
     comparison its kernel-by-kernel decode (KILN_NO_PERSISTENT=1),
and prints one table with ratios. Batch 1, greedy, CUDA-event timings after
warm-up, medians.

  python3 bench/compare.py --shape 1b --shape 8b --kiln-bench build-rt/bin/kiln-bench \
      --artifacts bench-artifacts --json $OUT/compare.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptfast_llama import GptFastLlama, decode_one_token  # noqa: E402

SHAPES = {
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, tie_word_embeddings=False,
               rope_scaling=None),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, tie_word_embeddings=True,
               rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
}


def hf_config(shape):
    from transformers import LlamaConfig
    cfg = dict(SHAPES[shape], max_position_embeddings=131072 if shape == "1b" else 8192,
               rms_norm_eps=1e-5, head_dim=None,
               torch_dtype="bfloat16", architectures=["LlamaForCausalLM"])
    cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    return LlamaConfig(**cfg)


def cuda_time(fn, warmup, reps):
    """Median milliseconds of fn() over reps, after warmup calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def make_hf_model(shape):
    from transformers import LlamaForCausalLM
    torch.manual_seed(0)
    config = hf_config(shape)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    return model


@torch.no_grad()
def bench_hf_eager(model, prompt, steps):
    out = model(prompt, use_cache=True)
    past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = model(token, past_key_values=past, use_cache=True)
        end.record()
        end.synchronize()
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        times.append(start.elapsed_time(end))
    return statistics.median(times[3:])


@torch.no_grad()
def bench_prefill(model_fn, tokens, seq):
    ids = torch.randint(0, 128256, (1, seq), device="cuda")
    return cuda_time(lambda: model_fn(ids), warmup=2, reps=5)


@torch.no_grad()
def bench_hf_static_compiled(model, prompt, steps):
    # transformers' own integration: with a static cache, generate() compiles
    # the decoding forward (its default CompileConfig).
    model.generation_config.cache_implementation = "static"
    kwargs = dict(do_sample=False, pad_token_id=0)
    t0 = time.time()
    model.generate(prompt, max_new_tokens=steps, min_new_tokens=steps, **kwargs)  # compiles
    warm = time.time() - t0

    def run(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(prompt, max_new_tokens=n, min_new_tokens=n, **kwargs)
        torch.cuda.synchronize()
        return (time.perf_counter() - t) * 1e3

    ms = statistics.median((run(steps) - run(1)) / (steps - 1) for _ in range(3))
    return ms, warm


@torch.no_grad()
def bench_gptfast(hf_model, cfg, prompt, steps, prefill_len):
    """Decode with a static cache sized for prompt + steps (as gpt-fast does: its
    attention reads the whole cache), then prefill on a model sized for it."""
    state = hf_model.state_dict()
    model = GptFastLlama(cfg, max_batch=1, max_seq=prompt.shape[1] + steps + 64)
    model.load_from_hf(state)
    step = torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True)
    pos = torch.arange(prompt.shape[1], device="cuda")
    token = model(prompt, pos)[:, -1].argmax(-1, keepdim=True).to(torch.int32)
    t0 = time.time()
    p = prompt.shape[1]
    for i in range(3):  # compile + capture; a graph's output is overwritten by its next replay
        token = step(model, token, torch.tensor([p + i], device="cuda")).clone()
    warm = time.time() - t0
    times = []
    for i in range(3, steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        ipos = torch.tensor([p + i], device="cuda")
        start.record()
        out = step(model, token, ipos)
        end.record()
        end.synchronize()
        token = out.clone()
        times.append(start.elapsed_time(end))
    model = step = None  # frees the GPU memory
    torch.cuda.empty_cache()
    model = GptFastLlama(cfg, max_batch=1, max_seq=prefill_len)
    model.load_from_hf(state)
    prefill_ms = bench_prefill(lambda ids: model(ids, torch.arange(ids.shape[1], device="cuda")),
                               None, prefill_len)
    model = None
    torch.cuda.empty_cache()
    return statistics.median(times), warm, prefill_ms


def run_kiln(bench, artifact, prompt_len, steps, prefill_len, env=None):
    """kiln-bench with random weights made on the GPU (like the PyTorch runs')."""
    cmd = [bench, artifact, "--contexts", f"{prompt_len},4096", "--decode-steps", str(steps),
           "--prefill-len", str(prefill_len), "--json", "-"]
    print("+", " ".join(f"{k}={v}" for k, v in (env or {}).items()), " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    sys.stderr.write(out.stderr)
    print(out.stdout, flush=True)
    if out.returncode != 0:
        print(f"kiln-bench failed ({out.returncode})")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", action="append", choices=sorted(SHAPES), required=True)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--prefill-len", type=int, default=2048)
    ap.add_argument("--kiln-bench", help="kiln-bench binary (runtime-only build)")
    ap.add_argument("--artifacts", help="folder with <shape>.kiln artifacts")
    ap.add_argument("--skip", action="append", default=[], help="hf_eager, hf_compiled, gptfast, kiln")
    ap.add_argument("--json")
    args = ap.parse_args()

    print(f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}", flush=True)
    results = {}
    for shape in args.shape:
        cfg = dict(SHAPES[shape], rms_norm_eps=1e-5)
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
        model = make_hf_model(shape)
        prompt = torch.randint(0, cfg["vocab_size"], (1, args.prompt_len), device="cuda")
        row = {}
        if "hf_eager" not in args.skip:
            row["hf_eager_ms"] = bench_hf_eager(model, prompt, 16)
            row["hf_eager_prefill_ms"] = bench_prefill(lambda ids: model(ids, use_cache=False), None, args.prefill_len)
            print(f"[{shape}] hf eager {row['hf_eager_ms']:.2f} ms/token", flush=True)
        if "gptfast" not in args.skip:
            ms, warm, prefill_ms = bench_gptfast(model, cfg, prompt, args.steps, args.prefill_len)
            row["gptfast_ms"], row["gptfast_warmup_s"], row["gptfast_prefill_ms"] = ms, warm, prefill_ms
            print(f"[{shape}] gpt-fast {ms:.3f} ms/token (warm-up {warm:.0f} s), "
                  f"prefill {prefill_ms:.1f} ms", flush=True)
        if "hf_compiled" not in args.skip:
            try:
                ms, warm = bench_hf_static_compiled(model, prompt, 32)
                row["hf_compiled_ms"], row["hf_compiled_warmup_s"] = ms, warm
                print(f"[{shape}] hf static+compile {ms:.2f} ms/token", flush=True)
            except Exception as error:  # report it and go on to kiln
                row["hf_compiled_error"] = str(error).splitlines()[0][:200]
                print(f"[{shape}] hf static+compile failed: {row['hf_compiled_error']}", flush=True)
        model = None
        torch.cuda.empty_cache()
        torch._dynamo.reset()
        if "kiln" not in args.skip and args.kiln_bench:
            k = run_kiln(args.kiln_bench, os.path.join(args.artifacts, f"{shape}.kiln"),
                         args.prompt_len, args.steps, args.prefill_len)
            if k:
                row["kiln"] = k
            k = run_kiln(args.kiln_bench, os.path.join(args.artifacts, f"{shape}.kiln"),
                         args.prompt_len, args.steps, args.prefill_len, {"KILN_NO_PERSISTENT": "1"})
            if k:
                row["kiln_kernels"] = k
        results[shape] = row

    print("\nDecode, batch 1, bf16, ms/token (ratio: the peer's time / kiln's)")
    print("| shape | HF eager | HF static+compile | gpt-fast style | kiln kernel by kernel | kiln (ctx 128) | "
          "kiln vs HF eager | kiln vs gpt-fast | kiln % of roofline | kiln ctx 4096 (growth) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape, row in results.items():
        k = row.get("kiln", {})
        kms = k.get("decode_ms_per_token")
        cell = lambda key: f"{row[key]:.2f}" if key in row else "-"
        ratio = lambda key: f"{row[key] / kms:.2f}x" if kms and key in row else "-"
        roof = f"{100 * k['roofline_fraction']:.1f}%" if "roofline_fraction" in k else "-"
        ctx = k.get("contexts", [])
        long = f"{ctx[-1]['ms_per_token']:.3f} (+{100 * k['context_growth']:.1f}%)" if len(ctx) > 1 else "-"
        kernels = row.get("kiln_kernels", {}).get("decode_ms_per_token")
        print(f"| {shape} | {cell('hf_eager_ms')} | {cell('hf_compiled_ms')} | {cell('gptfast_ms')} | "
              f"{f'{kernels:.3f}' if kernels else '-'} | "
              f"{f'{kms:.3f}' if kms else '-'} | {ratio('hf_eager_ms')} | {ratio('gptfast_ms')} | {roof} | {long} |")
    print(f"\nPrefill, {args.prefill_len} tokens, batch 1, bf16: ms (TFLOP/s = 2 x parameters x tokens / time)")
    print("| shape | HF eager | gpt-fast style (eager prefill) | kiln | kiln vs HF eager |")
    print("|---|---|---|---|---|")
    for shape, row in results.items():
        k = row.get("kiln", {})
        params = k.get("parameters")
        def pre(ms):
            return f"{ms:.1f} ({2 * params * args.prefill_len / ms / 1e9:.0f})" if params and ms else (
                f"{ms:.1f}" if ms else "-")
        kp = k.get("prefill_ms")
        hf = row.get("hf_eager_prefill_ms")
        print(f"| {shape} | {pre(hf)} | {pre(row.get('gptfast_prefill_ms'))} | {pre(kp)} | "
              f"{f'{hf / kp:.2f}x' if hf and kp else '-'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
