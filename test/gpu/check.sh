#!/usr/bin/env bash
# CTest's entry to the GPU tests: skips (exit 77) on machines without a GPU,
# such as CI; otherwise compiles the test artifacts and runs them.
#   check.sh KILN_COMPILE KILN_RUN WORK_DIR
set -uo pipefail
if ! nvidia-smi >/dev/null 2>&1; then
  echo "no GPU here: skipping kiln's GPU tests"
  exit 77
fi
here=$(dirname "$0")
python3 "$here/prepare_artifacts.py" --kiln-compile "$1" --out "$3" || exit 1
KILN_RUN=$2 KILN_GPU_ARTIFACTS=$3 exec "$here/run_on_device.sh" all
