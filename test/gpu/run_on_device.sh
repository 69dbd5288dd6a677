#!/usr/bin/env bash
# Runs kiln's GPU tests on a machine with a GPU, from the repository root.
# What it needs travels with it: kiln-run from the runtime-only build
#   cmake -S . -B build-rt -G Ninja -DKILN_RUNTIME_ONLY=ON -DKILN_BUILD_TESTS=OFF && ninja -C build-rt
# and the artifacts compiled where the compiler is (the GPU machine has no MLIR):
#   test/gpu/prepare_artifacts.py --kiln-compile build/bin/kiln-compile --out build-gpu
# Logs and results go to $OUT (or /tmp/kiln-gpu). Without a GPU it skips (exit 77).
#
#   test/gpu/run_on_device.sh toy      the runtime's toy checks (test/gpu/toy_check.py)
#   test/gpu/run_on_device.sh models   kiln vs transformers (test/gpu/run_gpu_tests.py)
#   test/gpu/run_on_device.sh all      both
#
# KILN_RUN and KILN_GPU_ARTIFACTS override build-rt/bin/kiln-run and build-gpu.
set -uo pipefail
out=${OUT:-/tmp/kiln-gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
here=$(dirname "$0")
kiln_run=${KILN_RUN:-build-rt/bin/kiln-run}
artifacts=${KILN_GPU_ARTIFACTS:-build-gpu}

if ! nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1; then
  echo "no GPU here: skipping kiln's GPU tests"
  exit 77
fi
echo "GPU: $(cat "$out/gpu.txt")"
if ldd "$kiln_run" | grep -q "not found"; then
  ldd "$kiln_run"
  echo "kiln-run is missing libraries (above)"
  exit 1
fi

status=0
mode=${1:-all}
if [[ $mode == toy || $mode == all ]]; then
  python3 "$here/toy_check.py" --kiln-run "$kiln_run" --artifacts "$artifacts/toy" \
    --work /tmp/kiln-toy 2>&1 | tee "$out/toy.log" || status=1
fi
if [[ $mode == models || $mode == all ]]; then
  python3 "$here/run_gpu_tests.py" --kiln-run "$kiln_run" --artifacts "$artifacts/models" \
    --work /tmp/kiln-models 2>&1 | tee "$out/models.log" || status=1
  # What a user sees: a bf16 model loaded cold (empty kernel cache), then warm.
  example=(--weights /tmp/kiln-models/llama/bf16 --max-new-tokens 32
           --prompt-ids "1 15043 29892 590 1024 338 263 4086 1058")
  for load in cold warm; do
    echo "\$ kiln-run $artifacts/models/llama/bf16.kiln ${example[*]}   # $load kernel cache"
    KILN_CACHE_DIR=/tmp/kiln-example-cache "$kiln_run" "$artifacts/models/llama/bf16.kiln" \
      "${example[@]}" 2>&1 || status=1
  done | tee "$out/example.log"
fi
exit $status
