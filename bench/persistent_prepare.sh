#!/usr/bin/env bash
# Everything bench/persistent_run.sh needs, built here (the GPU machine has no
# MLIR): the runtime tools, the benchmark artifacts of both shapes in every
# --persistent-sync mode, the GPU test's artifacts (the Llama family also with
# flags and with tagged words, in build-gpu-sync/MODE), and the kernel variants
# of each. Needs build/bin/kiln-compile. Then carry build-bench/bin,
# bench-artifacts, build-gpu, build-gpu-sync and build-variants to the GPU
# machine.
set -euo pipefail
compile=build/bin/kiln-compile
common=(--dtype bf16 --max-batch 1 --max-seq-len 4224 --max-tokens 2048)
cmake -S . -B build-bench -G Ninja -DKILN_RUNTIME_ONLY=ON -DKILN_BUILD_TESTS=OFF > /dev/null
ninja -C build-bench kiln-bench kiln-run
mkdir -p bench-artifacts
for shape in 8b:llama-3-8b 1b:llama-3.2-1b; do
  name=${shape%%:*} config=examples/${shape#*:}/config.json persistent=${shape%%:*} on=
  if [ "$name" = 8b ]; then
    # The 8B shape has the persistent program only when asked for (bench/NOTES.md §6).
    "$compile" "$config" "${common[@]}" -o bench-artifacts/8b.kiln > /dev/null
    persistent=8b-on on=--persistent-decode=on
  fi
  for sync in barriers flags tagged; do
    suffix=$([ $sync = barriers ] || echo -$sync)
    "$compile" "$config" "${common[@]}" $on --persistent-sync=$sync \
      -o "bench-artifacts/$persistent$suffix.kiln" > /dev/null
    python3 bench/persistent_variants.py --kiln-compile "$compile" --config "$config" \
      --out "build-variants/$name$suffix" -- "${common[@]}" $on --persistent-sync=$sync
  done
done
python3 test/gpu/prepare_artifacts.py --kiln-compile "$compile" --out build-gpu
for sync in flags tagged; do
  python3 test/gpu/prepare_artifacts.py --kiln-compile "$compile" --out build-gpu-sync/$sync \
    --only llama,llama3,mistral,qwen2 -- --persistent-sync=$sync
done
ls bench-artifacts
