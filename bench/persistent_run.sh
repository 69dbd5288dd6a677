#!/usr/bin/env bash
# One device call: the persistent decode program (codegen/PersistentDecodeKernel.cpp)
# checked against transformers and timed side by side with kernel-by-kernel decode.
# Here, first: bench/persistent_prepare.sh (the tools, artifacts and variants it needs).
# Then on the GPU machine, carrying build-bench/bin, bench-artifacts, build-gpu and
# build-variants:
#   bench/persistent_run.sh [smoke] [check] [bench] [ab] [variants] [trace] [ncu]
# (variants, trace and ncu run bench-artifacts/SHAPE-on.kiln, compiled with
# --persistent-decode=on, where it exists; check takes its artifacts from
# $KILN_CHECK_ARTIFACTS, by default build-gpu/models)
set -uo pipefail
# Logs go to a folder of their own, packed into $OUT/persistent-run.tgz at the end.
out=$(mktemp -d /tmp/kiln-persistent.XXXX)
export PYTHONUNBUFFERED=1 KILN_CACHE_DIR=/tmp/kiln-cache
bench=build-bench/bin/kiln-bench
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
steps=${*:-smoke check bench}
# The artifact of a shape that has the persistent program.
persistent_artifact() {
  if [ -f "bench-artifacts/$1-on.kiln" ]; then echo "bench-artifacts/$1-on.kiln"; else echo "bench-artifacts/$1.kiln"; fi
}
status=0
for step in $steps; do
  case $step in
  smoke)  # a few persistent decode steps of each artifact, with a time limit (a hang shows here)
    for artifact in bench-artifacts/{1b,8b,8b-on}.kiln; do
      timeout 240 "$bench" "$artifact" --prefill-len 128 --contexts 128 --decode-steps 8 --repeats 1 \
        2>&1 | tee "$out/smoke-$(basename "$artifact" .kiln).txt" || status=1
    done ;;
  check)  # kiln vs transformers: the llama family runs persistent decode, the rest kernel by kernel
    # (another build's: $KILN_CHECK_BIN for its kiln-run, $KILN_CHECK_ARTIFACTS for its artifacts)
    artifacts=${KILN_CHECK_ARTIFACTS:-build-gpu/models} bin=${KILN_CHECK_BIN:-build-bench/bin}
    run=$bin/kiln-run
    timeout 900 python3 test/gpu/run_gpu_tests.py --kiln-run "$run" \
      --artifacts "$artifacts" --work /tmp/kiln-models \
      --only "${KILN_CHECK_MODELS:-llama,llama3,mistral,qwen2,gpt_neox}" 2>&1 | tee "$out/check-$(basename "$(dirname "$bin")").log" \
      || status=1
    # Which program ran: kiln-run reports the persistent decode steps.
    "$run" "$artifacts/llama/bf16.kiln" --weights /tmp/kiln-models/llama/bf16 \
      --prompt-ids "1 15043 29892 590" --max-new-tokens 8 2>&1 | grep -E "decode" ;;
  bench)  # persistent against kernel by kernel, interleaved, two rounds
    for round in ${KILN_BENCH_ROUNDS:-1 2}; do
      for shape in 1b 8b; do
        for mode in persistent kernels; do
          env $([ $mode = kernels ] && echo KILN_NO_PERSISTENT=1) timeout 300 "$bench" \
            "$(persistent_artifact $shape)" --prefill-len 128 --contexts 128,4096 --decode-steps 64 \
            --repeats 1 --json "$out/bench-$shape-$mode-$round.json" > "$out/bench-$shape-$mode-$round.txt" 2>&1 \
            || status=1
          echo "== $shape $mode round $round"; grep -E "decode:|^128 |^4096 |bandwidth|error" \
            "$out/bench-$shape-$mode-$round.txt"
        done
      done
    done ;;
  ab)  # other builds against this one, interleaved, two rounds: each folder of $KILN_AB holds
        # a bin/ (kiln-bench) and artifacts/ (bench/persistent_prepare.sh's, e.g. of a branch in a worktree)
    for round in 1 2; do
      for shape in 1b 8b; do
        for side in . ${KILN_AB:?KILN_AB: the other builds}; do
          if [ "$side" = . ]; then bin=$bench artifact=$(persistent_artifact $shape) name=here
          else bin=$side/bin/kiln-bench artifact=$side/artifacts/$(basename "$(persistent_artifact $shape)") name=$(basename "$side"); fi
          timeout 300 "$bin" "$artifact" --prefill-len 128 --contexts 128,4096 --decode-steps 48 --repeats 1 \
            > "$out/ab-$shape-$name-$round.txt" 2>&1 || status=1
          echo "== $shape $name round $round: $(grep -E '^(128|4096) |error' "$out/ab-$shape-$name-$round.txt" | tr -s ' ' | tr '\n' ';')"
        done
      done
    done ;;
  variants)  # ablations (bench/persistent_variants.py) at context 128, and the kernel as it is
    for shape in 1b 8b; do
      for variant in ${KILN_VARIANTS:-as-is noattention nocompute streamonly}; do
        env KILN_SUBSTITUTE_KERNELS="build-variants/$shape/$variant" timeout 300 "$bench" \
          "$(persistent_artifact $shape)" --prefill-len 128 --contexts ${KILN_VARIANT_CONTEXTS:-128} \
          --decode-steps 32 --repeats 1 > "$out/variant-$shape-$variant.txt" 2>&1 || status=1
        echo "== $shape $variant: $(grep -E '^(128|4096) ' "$out/variant-$shape-$variant.txt" | tr -s ' ' | tr '\n' ';')"
      done
    done ;;
  trace)  # the timeline of one persistent decode step at position 160 (bench/persistent_trace.py)
    for shape in 1b 8b; do
      env KILN_SUBSTITUTE_KERNELS="build-variants/$shape/${KILN_TRACE_VARIANT:-trace}" timeout 300 "$bench" \
        "$(persistent_artifact $shape)" --prefill-len 128 --contexts 128,130 --decode-steps 40 \
        --repeats 1 > "$out/trace-$shape.txt" 2>&1 || status=1
      echo "== $shape trace"; python3 bench/persistent_trace.py "$out/trace-$shape.txt" || status=1
    done ;;
  ncu)  # the persistent kernel's memory and issue counters, one 8B decode step
    timeout 300 ncu --clock-control none -k regex:decode_step_persistent -s 2 -c 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats "$bench" "$(persistent_artifact 8b)" --prefill-len 128 --contexts 128 \
      --decode-steps 8 --repeats 1 --no-graphs > "$out/ncu-8b.txt" 2>&1 || status=1
    grep -E "Duration|Throughput|DRAM|Memory \[|Stall|Issued|Eligible|Active Warps|L2" "$out/ncu-8b.txt" | head -40 ;;
  esac
done
tar czf "${OUT:-/tmp}/persistent-run.tgz" -C "$out" .
exit $status
