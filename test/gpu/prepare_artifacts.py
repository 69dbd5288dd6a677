#!/usr/bin/env python3
"""Compile everything kiln's GPU test runs, on a machine with the compiler
(the GPU machine has no MLIR): the toy artifacts (make_toy_artifact.py) and,
for every model of models.py, its fp32 and bf16 configs (<name>/<dtype>/config.json)
and artifacts (<name>/<dtype>.kiln).

Usage: prepare_artifacts.py --kiln-compile build/bin/kiln-compile --out build-gpu [-- OPTION...]
(options after -- go to every kiln-compile, e.g. --persistent-decode=off)
Then carry build-gpu (and build-rt) to the GPU machine and run
test/gpu/run_on_device.sh there.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_toy_artifact  # noqa: E402
import models  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("compile_args", nargs="*", help="more kiln-compile options")
    args = parser.parse_args()

    toy = os.path.join(args.out, "toy")
    os.makedirs(toy, exist_ok=True)
    sys.argv = ["make_toy_artifact.py", toy]
    make_toy_artifact.main()

    names = args.only.split(",") if args.only else list(models.MODELS)
    failed = []
    for name in names:
        jobs = [(dtype, None) for dtype in models.DTYPES]
        if name == models.CHUNKED[0]:
            jobs.append((models.CHUNKED[1], models.CHUNKED[2]))
        for dtype, max_tokens in jobs:
            directory = os.path.join(args.out, "models", models.checkpoint_dir(name, dtype))
            os.makedirs(directory, exist_ok=True)
            config_path = os.path.join(directory, "config.json")
            with open(config_path, "w") as f:
                json.dump(models.config(name, dtype), f, indent=2)
            output = os.path.join(args.out, "models", name, models.artifact_name(dtype, max_tokens))
            command = [args.kiln_compile, config_path, "-o", output, "--dtype", dtype,
                       "--max-batch", str(models.MAX_BATCH),
                       "--max-seq-len", str(models.MAX_SEQ_LEN)]
            if max_tokens:
                command += ["--max-tokens", str(max_tokens)]
            command += args.compile_args
            result = subprocess.run(command, capture_output=True, text=True)
            status = "ok" if result.returncode == 0 else "FAILED"
            print(f"{name:14} {os.path.basename(output):16} {status}")
            if result.returncode != 0:
                print(result.stdout + result.stderr)
                failed.append(f"{name}/{dtype}")
    if failed:
        print("kiln-compile failed for: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
