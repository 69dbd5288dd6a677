#!/usr/bin/env bash
# Prefill checks and timings on the GPU machine, in one call (bench/NOTES.md §3):
# the attention kernels against float32 torch, the 8B GEMM shapes through torch,
# kiln-bench on the Llama-3-8B shape, then kiln vs transformers (test/gpu).
# Prepared here first (the GPU machine has no MLIR):
#   ninja -C build-rt; test/gpu/prepare_artifacts.py --kiln-compile build/bin/kiln-compile --out build-gpu
#   bench/kernels/attention_cases.py --kiln-compile build/bin/kiln-compile --out build-gpu/attention
#   build/bin/kiln-compile CONFIG_8B --dtype bf16 --max-batch 1 --max-seq-len 4096 --max-tokens 2048 \
#     -o build-gpu/llama8b.kiln
# Carry build-rt/bin and build-gpu. Results: $OUT/prefill.log (kiln-bench's JSON
# included), attention_check.json, and run_on_device.sh's logs.
set -uo pipefail
out=${OUT:-/tmp/kiln-prefill}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
  python3 bench/kernels/attention_check.py build-gpu/attention --out "$out" || status=1
  echo "SASS of the 8B prefill attention kernel:"
  cuobjdump -sass /tmp/kiln-attention.cubin | grep -oE "HMMA\.[A-Z0-9.]+|LDSM[A-Z0-9.]*|LDGSTS[A-Z0-9.]*|MUFU\.EX2|LDL|STL" | sort | uniq -c
  python3 bench/kernels/gemm_shapes.py
  for artifact in build-gpu/llama8b*.kiln; do  # variants: llama8b_<variant>.kiln
    echo "\$ kiln-bench $artifact"
    KILN_GEMM_LOG=1 build-rt/bin/kiln-bench "$artifact" --prefill-len 2048 --contexts 128 \
      --decode-steps 16 --repeats 10 --json - || status=1
  done
} 2>&1 | tee "$out/prefill.log"
test/gpu/run_on_device.sh models || status=1
exit $status
