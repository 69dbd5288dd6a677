#!/usr/bin/env bash
# Installs what kiln needs on Debian bookworm (idempotent), then configures and
# builds. Sourced by run-example.sh and run-tests.sh; usable on its own.
#   KILN_BUILD_DIR   build directory (default: build)
#   KILN_CMAKE_ARGS  extra cmake arguments
set -euo pipefail

KILN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KILN_BUILD_DIR="${KILN_BUILD_DIR:-$KILN_ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22
CUDA_PREFIX="${CUDA_PREFIX:-/usr/local/cuda}"

packages=(cmake ninja-build ccache g++ python3
          llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
          libflatbuffers-dev flatbuffers-compiler nlohmann-json3-dev libgtest-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kiln: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$CUDA_PREFIX/bin/nvcc" ]; then
  echo "kiln: error: the CUDA toolkit was not found at $CUDA_PREFIX (set CUDA_PREFIX)" >&2
  exit 1
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

if [ ! -f "$KILN_BUILD_DIR/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S "$KILN_ROOT" -B "$KILN_BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" \
    -DCUDAToolkit_ROOT="$CUDA_PREFIX" \
    ${KILN_CMAKE_ARGS:-}
fi
cmake --build "$KILN_BUILD_DIR"
