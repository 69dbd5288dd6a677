#!/usr/bin/env bash
# One device call: the side-by-side comparison for one shape (bench/compare.py).
# Here, first:
#   cmake -S . -B build-bench -G Ninja -DKILN_RUNTIME_ONLY=ON -DKILN_BUILD_TESTS=OFF && ninja -C build-bench kiln-bench
#   for s in 8b:llama-3-8b 1b:llama-3.2-1b; do build/bin/kiln-compile examples/${s#*:}/config.json --dtype bf16 \
#     --max-batch 1 --max-seq-len 4224 --max-tokens 2048 -o bench-artifacts/${s%%:*}.kiln; done
# Then on the GPU machine, carrying build-bench/bin and bench-artifacts:
#   bench/run_compare.sh 1b   (and 8b)
set -euo pipefail
shape="$1"
out="${OUT:-/tmp}"
export PYTHONUNBUFFERED=1 KILN_CACHE_DIR=/tmp/kiln-cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 bench/compare.py --shape "$shape" --kiln-bench build-bench/bin/kiln-bench \
  --artifacts bench-artifacts --json "$out/compare-$shape.json" 2>&1 | tee "$out/compare-$shape.txt"
