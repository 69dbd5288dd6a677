#!/usr/bin/env python3
"""Variants of the persistent decode kernel, for timing where its step goes.

Writes one folder per variant holding the kernel's source with one change,
for the runtime's KILN_SUBSTITUTE_KERNELS, each compiled with NVRTC first.
Ablations (their results are wrong; only the time means something):

  noattention  attention tasks are skipped, and the o product reads no
               attention output (which no task would write)
  nocompute    the compute warps wait for and release every chunk, without
               the products
  streamonly   both: what is left is the weight stream, the norms and the
               hand-offs
  nowait       no reader waits for another block's tagged words: each
               block's own work and loads, without the hand-offs' waits

Alternatives (results unchanged):

  inflightN    the copy warp keeps at most N chunks arriving at once, not
               the kernel's 2 (N = 8: no limit, as before the limit)
  twoacc       two MMA accumulators a warp (alternate steps), not one chain
  pollsleep    a reader of tagged words not yet written sleeps 200 ns before
               polling again
  trace        the kernel as it is, with a timeline: for one decode step (at
               position 160, its first three runs) thread 0 of every block
               records when each phase of each layer ends, with the ring's
               chunk counts; every 33rd block prints all layers, every block
               the middle one (bench/persistent_trace.py reads it)
  trace-attention  trace, and the middle layer's task 0 marked warp by warp
               (start, cached rows asked for, this step's rows, q, scores,
               p . V, merged, output; "W" lines)

  bench/persistent_variants.py --kiln-compile build/bin/kiln-compile \
      --config examples/llama-3.2-1b/config.json --out build-variants/1b -- --dtype bf16 ...
"""
import argparse
import os
import subprocess
import sys

from nvrtc import compile_cuda

EDITS = {
    # The o product would wait for attention output that no task writes.
    "noattention": [("task += gridDim.x) {\n      ", "task += gridDim.x) {\n      if (false) "),
                    ("      load_rows<kAttention>(xs, tokens, attention_in(l));\n", "")],
    "nocompute": [("      product.add(", "      if (false) product.add(")],
}
EDITS["streamonly"] = EDITS["noattention"] + EDITS["nocompute"]

# A reader that finds a tagged word not yet written sleeps 200 ns before it
# polls again, so that up to 132 x 256 polling threads leave L2 to the weight
# stream (at the cost of up to that much latency a hand-off). The residual
# stream, MLP activations and attention output; not q or the warps' waits for
# K/V rows.
EDITS["pollsleep"] = [
    ("      if (!missing)\n        return;\n    }\n",
     "      if (!missing)\n        return;\n      __nanosleep(200);\n    }\n"),
]

# Two accumulators a warp, alternate 16-column steps, so that consecutive
# MMAs do not wait for each other.
EDITS["twoacc"] = [
    ("  float acc[kTensorCores ? 1 : kGroupRows]", "  float acc[kTensorCores ? 2 : kGroupRows]"),
    ("      for (int step = warp; step < columns / 16; step += kComputeWarps) {",
     "      for (int i = 0, step = warp; step < columns / 16; ++i, step += kComputeWarps) {"),
    ("        kiln::mma_16x8x16<T>(acc[0], a, b0, b1);", "        kiln::mma_16x8x16<T>(acc[i & 1], a, b0, b1);"),
    ("          partial[row + 8 * (c >> 1)][token] = acc[0][c];",
     "          partial[row + 8 * (c >> 1)][token] = acc[0][c] + acc[1][c];"),
]


def in_flight(chunks):
    return [("constexpr int kChunksInFlight = 2;", f"constexpr int kChunksInFlight = {chunks};")]


for chunks in (1, 3, 4, 8):
    EDITS[f"inflight{chunks}"] = in_flight(chunks)

# The timeline: the copy lane publishes how many chunks it has issued; thread 0
# of the compute warps records (global time; SM clock, chunks consumed, chunks
# issued; SM clock cycles spent waiting for chunks to arrive) at the end of
# each phase. Event e of layer l is record l * 13 + e.
TRACE_CLOCK = """__device__ __forceinline__ unsigned long long global_time() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
"""
TRACE_DEVICE = """
__device__ unsigned long long trace_records[1024][kLayers * 13 + 1][3];
__device__ int trace_runs;
"""
TRACE_SETUP = """
  const bool tracing = step.positions[0] == 160 && num_tokens == 1 &&
                       *(volatile int *)&trace_runs < 3 && threadIdx.x == 0;
  auto trace = [&](int layer, int event) {
    if (tracing) {
      unsigned long long *record = trace_records[blockIdx.x][layer * 13 + event];
      record[0] = global_time();
      record[1] = (unsigned long long)clock() << 32 | (unsigned)ring.chunk << 16 | (unsigned)copy_issued;
      record[2] = chunk_wait_cycles;
    }
  };
"""
# Printed: every event of the traced blocks ("T" lines), and every block's
# events of the middle layer ("A" lines).
TRACE_PRINT = """
  trace(kLayers, 0);
  auto print_records = [&](char kind, int first, int last) {
    const int run = *(volatile int *)&trace_runs;
    for (int i = first; i <= last; ++i)
      printf("%c %d %d %d %d %llu %llu %llu\\n", kind, run, blockIdx.x, i / 13, i % 13,
             trace_records[blockIdx.x][i][0], trace_records[blockIdx.x][i][1],
             trace_records[blockIdx.x][i][2]);
  };
  if (tracing && (blockIdx.x % 33 == 0 || blockIdx.x == gridDim.x - 1))
    print_records('T', 0, kLayers * 13);
  if (tracing)
    print_records('A', kLayers / 2 * 13, kLayers / 2 * 13 + 13);
  kiln::group_sync<kComputeThreads>();
  if (tracing && blockIdx.x == 0) {
    __threadfence();
    atomicAdd(&trace_runs, 1);
  }
"""
EDITS["trace"] = [
    ("_parts {\n", "_parts {\n" + TRACE_CLOCK),
    ("/// The ring: chunk c", "__shared__ volatile int copy_issued;\n"
     "__shared__ unsigned long long chunk_wait_cycles;\n/// The ring: chunk c"),
    ("// Launched cooperatively", TRACE_DEVICE + "// Launched cooperatively"),
    ("    groups[threadIdx.x].arrived = 0;\n", "    groups[threadIdx.x].arrived = 0;\n"
     "  if (threadIdx.x == 0) {\n    copy_issued = 0;\n    chunk_wait_cycles = 0;\n  }\n"),
    ("&ring.full[slot], policy);\n    }\n", "&ring.full[slot], policy);\n      copy_issued = ring.chunk + 1;\n    }\n"),
    ("      kiln::mbarrier_wait(&ring.full[slot], (ring.chunk / kStages) & 1);\n",
     "      const long long wait_start = clock64();\n"
     "      kiln::mbarrier_wait(&ring.full[slot], (ring.chunk / kStages) & 1);\n"
     "      if (threadIdx.x == 0)\n        chunk_wait_cycles += clock64() - wait_start;\n"),
    ("  const EmbeddingInput embedding_in", TRACE_SETUP + "  const EmbeddingInput embedding_in"),
    ("    const LayerTensors &L = layers[l];\n", "    const LayerTensors &L = layers[l];\n    trace(l, 0);\n"),
    ("    consume<QkvMatrix>(", "    trace(l, 1);\n    consume<QkvMatrix>("),
    ("    phase_end();\n\n    // Attention", "    trace(l, 2);\n    phase_end();\n    trace(l, 3);\n\n    // Attention"),
    ("    }\n\n    // o projection", "    }\n    trace(l, 4);\n\n    // o projection"),
    ("    consume<OMatrix>(", "    trace(l, 5);\n    consume<OMatrix>("),
    ("    phase_end();\n\n    // rms_norm of the residual", "    trace(l, 6);\n    phase_end();\n    trace(l, 7);\n\n    // rms_norm of the residual"),
    ("    consume<GateUpMatrix>(", "    trace(l, 8);\n    consume<GateUpMatrix>("),
    ("    phase_end();\n\n    // down projection", "    trace(l, 9);\n    phase_end();\n    trace(l, 10);\n\n    // down projection"),
    ("    phase_end();\n  }\n\n  // The final norm", "    trace(l, 11);\n    phase_end();\n    trace(l, 12);\n  }\n\n  // The final norm"),
    ("    atomicMax(&step.best_logit[threadIdx.x], block_best[threadIdx.x]);\n",
     "    atomicMax(&step.best_logit[threadIdx.x], block_best[threadIdx.x]);\n" + TRACE_PRINT),
]


# The attention task of the middle layer that serves task 0, warp by warp:
# lane 0 of each warp writes the global time at eight marks into shared
# memory (no global round trip of its own), and the traced block prints them
# with its records ("W" lines): 0 the task's start, 1 the tile's cached rows
# asked for, 2 this step's rows waited for and asked for, 3 q in shared
# memory, 4 the scores of the warp's last tile (its keys arrived), 5 p . V
# done (its values arrived), 6 the warps' states merged, 7 the output
# written. Event 5 of the layer (trace) is when the o product's input came.
TASK_MARKS = ["start", "cached asked", "fresh asked", "q", "scores", "p.V", "merged", "output"]


def task_mark(i):
    return f"  if (task_tracing)\n    task_marks[threadIdx.x >> 5][{i}] = global_time();\n"


ATTENTION_TRACE = [
    ("_parts {\n", "_parts {\n__shared__ unsigned long long task_marks[8][8];\n"
     "__shared__ int task_layer_traced, task_marked;\n"),
    ("  const int pos = token_step.position;\n",
     "  const int pos = token_step.position;\n"
     "  const bool task_tracing = (threadIdx.x & 31) == 0 && task == 0 && pos == 160 && task_layer_traced;\n"
     "  if (task_tracing) {\n    for (int i = 1; i < 8; ++i)\n"
     "      task_marks[threadIdx.x >> 5][i] = 0;\n    task_marked = 1;\n  }\n" + task_mark(0)),
    ("    load_values(first_tile);\n    load_fresh(first_tile);\n  }\n",
     "    load_values(first_tile);\n" + task_mark(1) + "    load_fresh(first_tile);\n" + task_mark(2) + "  }\n"),
    ("  kiln::group_sync<256>();\n\n  float m[kGroupHeads]", "  kiln::group_sync<256>();\n" + task_mark(3) + "\n  float m[kGroupHeads]"),
    ("    if (next < end)\n      load_keys(next);\n", task_mark(4) + "    if (next < end)\n      load_keys(next);\n"),
    ("  // Sum the lanes that shared value rows", task_mark(5) + "  // Sum the lanes that shared value rows"),
    ("  // Each warp's weight in a head's merged state", task_mark(6) + "  // Each warp's weight in a head's merged state"),
    ("      store_out(g, d, v);\n    }\n", "      store_out(g, d, v);\n    }\n" + task_mark(7)),
    ("    // Attention over the cache, a task at a time", "    task_layer_traced = l == kLayers / 2;\n"
     "    // Attention over the cache, a task at a time"),
    ("  if (threadIdx.x < kTokens)\n    block_best[threadIdx.x] = 0;\n",
     "  if (threadIdx.x < kTokens)\n    block_best[threadIdx.x] = 0;\n  if (threadIdx.x == 0)\n    task_marked = 0;\n"),
    ("    print_records('A', kLayers / 2 * 13, kLayers / 2 * 13 + 13);\n",
     "    print_records('A', kLayers / 2 * 13, kLayers / 2 * 13 + 13);\n"
     "  if (tracing && task_marked)\n    for (int w = 0; w < 8; ++w)\n"
     "      printf(\"W %d %d %d %llu %llu %llu %llu %llu %llu %llu %llu\\n\", *(volatile int *)&trace_runs,\n"
     "             blockIdx.x, w, task_marks[w][0], task_marks[w][1], task_marks[w][2], task_marks[w][3],\n"
     "             task_marks[w][4], task_marks[w][5], task_marks[w][6], task_marks[w][7]);\n"),
]

EDITS["trace-attention"] = EDITS["trace"] + ATTENTION_TRACE


# No reader waits for another block: tagged words are taken as they are (the
# inputs, q, this step's K/V rows). What is left is each block's own work and
# the latency of its own loads, the bound that hand-offs could reach.
EDITS["nowait"] = [
    ("        const bool seen = ask & t.carry(epoch);\n", "        const bool seen = ask;\n"),
    ("    v.raw = kiln::poll_tagged4(qkv_words + i / kPerWord, epoch);\n",
     "    v.raw = kiln::load_tagged4(qkv_words + i / kPerWord).payload();\n"),
    ("    return kiln::tagged_warp_rows<kValues / kPerWord>(qkv_words + i / kPerWord,\n"
     "                                                      qkv_words + j / kPerWord, epoch);\n",
     "    kiln::WarpRows<kValues / kPerWord> rows;\n"
     "    for (int m = 0; m < rows.kSlots / 2; ++m)\n"
     "      for (int s = 0; s < 2; ++s) {\n"
     "        const int w = 2 * (threadIdx.x & 31) + 64 * m + s;\n"
     "        const bool in = w < kValues / kPerWord;\n"
     "        rows.first[2 * m + s] = in ? (uint32_t)qkv_words[i / kPerWord + w] : 0;\n"
     "      }\n"
     "    return rows;\n"),
]

def nvrtc_compile(source, name, cuda_home):
    """Compiles `source` with NVRTC for sm_90, as the runtime does at load;
    exits with NVRTC's log on failure."""
    ok, log, _ = compile_cuda(source, name, cuda_home)
    if not ok:
        sys.exit(f"{name}: NVRTC failed:\n{log}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-compile", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cuda-home", default="/usr/local/cuda",
                        help="compile each variant with this toolkit's NVRTC first")
    parser.add_argument("compile_args", nargs="*")
    args = parser.parse_args()
    cuda = subprocess.run([args.kiln_compile, args.config, "--emit=cuda"] + args.compile_args,
                          check=True, capture_output=True, text=True).stdout
    start = cuda.index("\n// decode_step_persistent") + 1
    name = cuda[start + 3:cuda.index(":", start)]
    source = cuda[start:]
    if "\n// " in source[source.index("namespace"):].split("} // namespace")[-1]:
        sys.exit("the persistent kernel is not the artifact's last kernel")
    variants = list(EDITS)
    for variant in variants:
        edits = EDITS[variant]
        text = source
        for old, new in edits:
            if text.count(old) != 1:
                sys.exit(f"{variant}: '{old.strip()}' is not in {name} exactly once")
            text = text.replace(old, new)
        nvrtc_compile(text, f"{name} ({variant})", args.cuda_home)
        os.makedirs(os.path.join(args.out, variant), exist_ok=True)
        with open(os.path.join(args.out, variant, name + ".cu"), "w") as f:
            f.write(text)
    print(f"{name}: {', '.join(variants)} in {args.out}")


if __name__ == "__main__":
    main()
