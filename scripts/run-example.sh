#!/usr/bin/env bash
# Installs what is missing, builds, and runs kiln's main job on the example
# model description shipped in examples/: compile it to tfm IR and to an
# artifact; when a GPU is present, run it (random weights made on the GPU,
# since the example ships no checkpoint) and generate from the tiny Llama
# checkpoint the tests use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

model="${1:-$KILN_ROOT/examples/llama-3.2-1b/config.json}"
bin="$KILN_BUILD_DIR/bin"
"$bin/kiln-compile" "$model" --emit=tfm -o "$KILN_BUILD_DIR/example.tfm.mlir"
echo "kiln: wrote $KILN_BUILD_DIR/example.tfm.mlir ($(grep -c 'tfm\.' "$KILN_BUILD_DIR/example.tfm.mlir") lines of tfm ops)"
"$bin/kiln-compile" "$model" --dtype bf16 --max-batch 1 --max-seq-len 4224 -o "$KILN_BUILD_DIR/example.kiln"

if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  "$bin/kiln-bench" "$KILN_BUILD_DIR/example.kiln" --contexts 128,4096
  fixture="$KILN_ROOT/test/fixtures/llama"
  "$bin/kiln-compile" "$fixture" --dtype fp32 -o "$KILN_BUILD_DIR/fixture-llama.kiln"
  "$bin/kiln-run" "$KILN_BUILD_DIR/fixture-llama.kiln" --weights "$fixture" \
    --prompt-ids "1 17 42 99 3" --max-new-tokens 8
else
  echo "kiln: no GPU here: compiled $KILN_BUILD_DIR/example.kiln; run it with kiln-bench/kiln-run on a GPU"
fi
