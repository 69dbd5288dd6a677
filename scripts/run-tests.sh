#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the lit
# suite (compiler output, diagnostics, reference-evaluator checks) and the
# unit tests. GPU tests are skipped when no GPU is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

status=0
"$LLVM_PREFIX/bin/lit" -sv "$KILN_BUILD_DIR/test" || status=1
# CTest runs the unit tests (and lit again only if asked: it is excluded here).
ctest --test-dir "$KILN_BUILD_DIR" --output-on-failure -E '^lit$' || status=1
exit $status
