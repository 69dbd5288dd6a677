#!/usr/bin/env bash
# Installs what is missing, builds, and runs kiln's main job on the example
# model description shipped in examples/: compile it to tfm IR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

model="${1:-$KILN_ROOT/examples/llama-3.2-1b/config.json}"
"$KILN_BUILD_DIR/bin/kiln-compile" "$model" --emit=tfm -o "$KILN_BUILD_DIR/example.tfm.mlir"
echo "kiln: wrote $KILN_BUILD_DIR/example.tfm.mlir ($(grep -c 'tfm\.' "$KILN_BUILD_DIR/example.tfm.mlir") tfm ops)"
