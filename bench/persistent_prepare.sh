#!/usr/bin/env bash
# Everything bench/persistent_run.sh needs, built here (the GPU machine has no
# MLIR): the runtime tools, the benchmark artifacts of both shapes
# (bench-artifacts/1b.kiln, 8b.kiln, and 8b-on.kiln with the persistent
# program), the GPU test's artifacts (build-gpu), and the persistent kernel's
# variants of each shape (build-variants/1b, 8b). Needs build/bin/kiln-compile.
# Then carry build-bench/bin, bench-artifacts, build-gpu and build-variants to
# the GPU machine.
set -euo pipefail
compile=build/bin/kiln-compile
common=(--dtype bf16 --max-batch 1 --max-seq-len 4224 --max-tokens 2048)
cmake -S . -B build-bench -G Ninja -DKILN_RUNTIME_ONLY=ON -DKILN_BUILD_TESTS=OFF > /dev/null
ninja -C build-bench kiln-bench kiln-run
mkdir -p bench-artifacts
rm -rf build-variants # variants that the script no longer writes would be stale
for shape in 8b:llama-3-8b 1b:llama-3.2-1b; do
  name=${shape%%:*} config=examples/${shape#*:}/config.json persistent=${shape%%:*} on=
  if [ "$name" = 8b ]; then
    # The 8B shape has the persistent program only when asked for (bench/NOTES.md §6).
    "$compile" "$config" "${common[@]}" -o bench-artifacts/8b.kiln > /dev/null
    persistent=8b-on on=--persistent-decode=on
  fi
  "$compile" "$config" "${common[@]}" $on -o "bench-artifacts/$persistent.kiln" > /dev/null
  python3 bench/persistent_variants.py --kiln-compile "$compile" --config "$config" \
    --out "build-variants/$name" -- "${common[@]}" $on
done
python3 test/gpu/prepare_artifacts.py --kiln-compile "$compile" --out build-gpu
ls bench-artifacts
