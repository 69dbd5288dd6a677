#!/usr/bin/env python3
"""The runtime's own GPU test, independent of codegen: runs the hand-written
toy artifacts of make_toy_artifact.py through kiln-run and checks

- logits against the same toy model computed in float64 (f32 and bf16, batch 1
  and a batch of prompts of different lengths, prompts prefilled in chunks,
  a sharded checkpoint);
- CUDA Graph replay against eager decode (same tokens, same logits);
- sampling: a seed reproduces its tokens, another seed changes them; stop ids;
- the kernel cache: a second load compiles nothing;
- clear errors: missing or mis-shaped tensor, prompt past max-seq-len, token id
  outside the vocabulary, an NVRTC failure, not enough GPU memory.

Usage: toy_check.py --kiln-run BIN --artifacts DIR --work DIR
Prints a table and exits non-zero if any check fails.
"""

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_toy_artifact import HIDDEN, MAX_SEQ_LEN, VOCAB  # noqa: E402

H, V = HIDDEN, VOCAB
rows = []
failures = []


def record(case, ok, detail=""):
    rows.append((case, "ok" if ok else "FAIL", detail))
    if not ok:
        failures.append(case)


def make_weights(seed):
    g = np.random.default_rng(seed)
    return {
        "embed": g.standard_normal((V, H)).astype(np.float32),
        "w1_a_t": (g.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32),
        "w1_b_t": (g.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32),
        "b1": (0.1 * g.standard_normal((2, H))).astype(np.float32),
        "lm": (2 * g.standard_normal((V + 8, H)) / np.sqrt(H)).astype(np.float32),
    }


def save_sharded(weights, directory):
    os.makedirs(directory, exist_ok=True)
    names = sorted(weights)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    index = {"metadata": {}, "weight_map": {}}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: weights[n] for n in shard}, os.path.join(directory, file))
        index["weight_map"].update({n: file for n in shard})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)


def reference_logits(weights, prompt, generated, bf16):
    """Logits rows kiln-run dumps: row i predicts generated[i]."""
    w = {k: torch.from_numpy(v) for k, v in weights.items()}
    if bf16:
        w = {k: v.bfloat16().double() for k, v in w.items()}
    else:
        w = {k: v.double() for k, v in w.items()}
    w1 = torch.cat([w["w1_a_t"], w["w1_b_t"]], dim=1).T
    b1 = w["b1"].reshape(-1)
    lm = w["lm"][:V]
    tokens = torch.tensor(list(prompt) + list(generated[:-1]))
    x = w["embed"][tokens]
    y = x @ w1.T + b1
    count = torch.arange(1, len(tokens) + 1, dtype=torch.float64)[:, None]
    h = torch.tanh(y[:, :H]) * y[:, H:] + torch.cumsum(x, 0) / count
    logits = h @ lm.T
    return logits[len(prompt) - 1:].numpy()


def run(args, artifact, weights, prompts, extra=(), expect_ok=True, cache=True):
    command = [args.kiln_run, os.path.join(args.artifacts, artifact), "--weights", weights]
    if len(prompts) == 1:
        command += ["--prompt-ids", " ".join(map(str, prompts[0]))]
    else:
        batch = os.path.join(args.work, "batch.txt")
        with open(batch, "w") as f:
            f.write("# toy prompts\n" + "\n".join(" ".join(map(str, p)) for p in prompts) + "\n")
        command += ["--batch-file", batch]
    command += list(extra)
    env = dict(os.environ, KILN_CACHE_DIR=os.path.join(args.work, "cache"))
    if not cache:
        command.append("--no-cache")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    if (result.returncode == 0) != expect_ok:
        print(f"$ {' '.join(command)}\n{output}", file=sys.stderr)
    return result.returncode, output


def generated_ids(output):
    return [list(map(int, m.group(1).split())) for m in re.finditer(r"^ids\[\d+\]:((?: \d+)*)$",
                                                                      output, re.M)]


def compare(args, case, artifact, weights_dir, weights, prompts, extra=(), bf16=False, tol=1e-4):
    dump = os.path.join(args.work, case.replace(" ", "_") + ".safetensors")
    code, output = run(args, artifact, weights_dir, prompts,
                       ["--max-new-tokens", "24", "--dump-logits", dump] + list(extra))
    if code != 0:
        record(case, False, output.strip().splitlines()[-1])
        return None, None
    dumped = load_file(dump)
    worst, agree, total = 0.0, 0, 0
    for b, prompt in enumerate(prompts):
        got = dumped[f"logits.{b}"].astype(np.float64)
        tokens = dumped[f"tokens.{b}"]
        ref = reference_logits(weights, prompt, tokens, bf16)
        worst = max(worst, float(np.max(np.linalg.norm(got - ref, axis=1) /
                                        np.linalg.norm(ref, axis=1))))
        agree += int(np.sum(got.argmax(1) == ref.argmax(1)))
        total += len(tokens)
    ok = worst <= tol and (bf16 or agree == total)
    record(case, ok, f"max rel err {worst:.2e} (limit {tol:.0e}), top-1 {agree}/{total}")
    return generated_ids(output), dumped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-run", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)

    weights = make_weights(1234)
    single = os.path.join(args.work, "toy.safetensors")
    save_file(weights, single)
    sharded = os.path.join(args.work, "sharded")
    save_sharded(weights, sharded)
    g = np.random.default_rng(7)
    prompt = g.integers(0, V, 9).tolist()
    batch = [g.integers(0, V, n).tolist() for n in (5, 23, 40)]

    # First load compiles every kernel; the next finds them in the cache.
    code, output = run(args, "toy_f32.kiln", single, [prompt], ["--max-new-tokens", "2"])
    compiled = re.search(r"(\d+) kernel sources compiled, (\d+) from the cache", output)
    record("cold JIT compiles", code == 0 and compiled and compiled.group(2) == "0",
           compiled.group(0) if compiled else output.strip()[-200:])
    code, output = run(args, "toy_f32.kiln", single, [prompt], ["--max-new-tokens", "2"])
    compiled = re.search(r"(\d+) kernel sources compiled, (\d+) from the cache", output)
    record("warm JIT skips NVRTC", code == 0 and compiled and compiled.group(1) == "0",
           compiled.group(0) if compiled else output.strip()[-200:])

    graphs, _ = compare(args, "f32 batch 1 graphs", "toy_f32.kiln", single, weights, [prompt])
    eager, _ = compare(args, "f32 batch 1 eager", "toy_f32.kiln", single, weights, [prompt],
                       ["--no-graphs"])
    record("graphs == eager (batch 1)", graphs is not None and graphs == eager)
    graphs, _ = compare(args, "f32 batch 3 graphs", "toy_f32.kiln", single, weights, batch)
    eager, _ = compare(args, "f32 batch 3 eager", "toy_f32.kiln", single, weights, batch,
                       ["--no-graphs"])
    record("graphs == eager (batch 3)", graphs is not None and graphs == eager)
    chunked, _ = compare(args, "f32 chunked prefill", "toy_f32_chunked.kiln", single, weights,
                         batch)
    record("chunked == unchunked tokens", chunked is not None and chunked == graphs)
    compare(args, "bf16 batch 3 sharded", "toy_bf16.kiln", sharded, weights, batch, bf16=True,
            tol=2e-2)

    sampling = ["--max-new-tokens", "16", "--temperature", "0.8"]
    first = generated_ids(run(args, "toy_f32.kiln", single, batch, sampling + ["--seed", "5"])[1])
    again = generated_ids(run(args, "toy_f32.kiln", single, batch,
                              sampling + ["--seed", "5", "--no-graphs"])[1])
    other = generated_ids(run(args, "toy_f32.kiln", single, batch, sampling + ["--seed", "6"])[1])
    record("seeded sampling reproduces", bool(first) and first == again, str(first[:1]))
    record("another seed differs", bool(first) and first != other)
    stop = graphs[0][5] if graphs else 0
    stopped = generated_ids(run(args, "toy_f32.kiln", single, [batch[0]],
                                ["--max-new-tokens", "24", "--stop-ids", str(stop)])[1])
    record("stop id ends the sequence", bool(stopped) and stopped[0] == graphs[0][:6],
           f"stop {stop}: {stopped[0] if stopped else None}")

    def expect_error(case, artifact, weights_dir, prompts, *needles, cache=True):
        code, output = run(args, artifact, weights_dir, prompts, expect_ok=False, cache=cache)
        missing = [n for n in needles if n not in output]
        record(case, code != 0 and not missing and "Segmentation" not in output,
               output.strip().splitlines()[-1][:150] if output.strip() else "no output")

    broken = dict(weights)
    del broken["lm"]
    broken["w1_a_t"] = broken["w1_a_t"][:, :-1].copy()
    save_file(broken, os.path.join(args.work, "broken.safetensors"))
    expect_error("error: checkpoint mismatch", "toy_f32.kiln",
                 os.path.join(args.work, "broken.safetensors"), [prompt],
                 "missing tensor 'lm'", "tensor 'w1_a_t'", "[256, 255]")
    expect_error("error: prompt too long", "toy_f32.kiln", single, [[1] * (MAX_SEQ_LEN + 1)],
                 "longer than the model's max-seq-len 160")
    expect_error("error: token outside vocab", "toy_f32.kiln", single, [[1, V]],
                 f"token id {V} at prompt position 1 is outside the vocabulary")
    expect_error("error: NVRTC failure", "toy_f32_broken.kiln", single, [prompt],
                 "NVRTC failed to compile kernel 'toy_embed'", "undeclared_g", cache=False)
    expect_error("error: not enough memory", "toy_f32_huge.kiln", single, [prompt],
                 "not enough GPU memory", "free of")

    width = max(len(r[0]) for r in rows)
    print(f"\n{'toy check'.ljust(width)}  result  detail")
    for case, result, detail in rows:
        print(f"{case.ljust(width)}  {result.ljust(6)}  {detail}")
    print(f"\n{len(rows) - len(failures)}/{len(rows)} toy checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
