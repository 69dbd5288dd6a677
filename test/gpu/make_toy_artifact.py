#!/usr/bin/env python3
"""Write hand-made kiln artifacts of a toy model, to test the runtime on a GPU
independently of codegen (its kernels are written here; flatc turns the JSON
form of runtime/schema/artifact.fbs into the binary artifact).

The toy model, per sequence, with x_p the embedding of the token at position p:
    y_p      = W1 x_p + b1                                  (cuBLASLt gemm, bias)
    h_p      = tanh(y_p[:H]) * y_p[H:] + mean_{q<=p} x_q    (reads the KV cache)
    logits_p = LM h_p                                       (gemm on last tokens)
and the next token is sampled from logits (greedy, or Gumbel-max with a seed).
Its checkpoint stores the weights so that loading exercises every weight op:
    embed  [V, H]               -> cast
    w1_a_t, w1_b_t [H, H] each  -> concat(axis 1) -> transpose -> cast  = W1 [2H, H]
    b1     [2, H]               -> reshape [2H] -> cast
    lm     [V + 8, H]           -> slice(axis 0, 0, V) -> cast           = LM [V, H]
toy_check.py computes the same model in float64 and compares.

Usage: make_toy_artifact.py OUT_DIR   (writes toy_<dtype>[_<variant>].kiln)
"""

import json
import os
import subprocess
import sys
import tempfile

HIDDEN = 256
VOCAB = 512
MAX_BATCH = 4
MAX_SEQ_LEN = 160
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "runtime", "schema", "artifact.fbs")

KERNELS = r"""
#define H HIDDEN_SIZE
#define V VOCAB_SIZE
#define MAX_SEQ MAX_SEQ_LEN
typedef ELEMENT T;

extern "C" __global__ void toy_embed(kiln::StepState step, const T *embed, T *x, T *k_cache,
                                     int num_tokens) {
  const int t = blockIdx.x, b = step.token_seq[t], position = step.positions[t];
  T *row = k_cache + ((long long)step.slot[b] * MAX_SEQ + position) * H;
  for (int j = threadIdx.x; j < H; j += blockDim.x) {
    const T value = embed[(long long)step.token_ids[t] * H + j];
    x[(long long)t * H + j] = value;
    row[j] = value;
  }
}

extern "C" __global__ void toy_mix(kiln::StepState step, const T *y, const T *k_cache, T *h,
                                   int num_tokens) {
  const int t = blockIdx.x, b = step.token_seq[t], position = step.positions[t];
  const T *cache = k_cache + (long long)step.slot[b] * MAX_SEQ * H;
  for (int j = threadIdx.x; j < H; j += blockDim.x) {
    float sum = 0.f;
    for (int q = 0; q <= position; ++q) sum += kiln::to_float(cache[(long long)q * H + j]);
    const float a = kiln::to_float(y[(long long)t * 2 * H + j]);
    const float g = kiln::to_float(y[(long long)t * 2 * H + H + j]);
    h[(long long)t * H + j] = kiln::from_float<T>(tanhf(a) * g + sum / (position + 1));
  }
}

extern "C" __global__ void toy_gather(kiln::StepState step, const T *h, T *last) {
  const int b = blockIdx.x;
  for (int j = threadIdx.x; j < H; j += blockDim.x)
    last[b * H + j] = h[(long long)step.last_token[b] * H + j];
}

extern "C" __global__ void toy_logits(kiln::StepState step, const T *in, float *out) {
  const int b = blockIdx.x;
  for (int j = threadIdx.x; j < V; j += blockDim.x) out[b * V + j] = kiln::to_float(in[b * V + j]);
}

__device__ unsigned int toy_hash(unsigned long long seed, int counter, int j) {
  unsigned long long x = seed * 0x9E3779B97F4A7C15ull ^ ((unsigned long long)counter << 32 | (unsigned)j);
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
  return (unsigned int)x;
}

// Greedy (lowest index on ties) or, with a temperature, Gumbel-max sampling.
extern "C" __global__ void toy_sample(kiln::StepState step, const float *logits) {
  __shared__ float best_value[256];
  __shared__ int best_index[256];
  const int b = blockIdx.x;
  const float temperature = step.temperature[b];
  float value = -__int_as_float(0x7f800000);
  int index = 0;
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float v = logits[b * V + j];
    if (temperature > 0.f) {
      const float u = (toy_hash(step.seed[b], step.step_counter[b], j) + 0.5f) * 2.3283064e-10f;
      v = v / temperature - logf(-logf(u));
    }
    if (v > value) { value = v; index = j; }
  }
  best_value[threadIdx.x] = value;
  best_index[threadIdx.x] = index;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const float other = best_value[threadIdx.x + stride];
      const int other_index = best_index[threadIdx.x + stride];
      if (other > best_value[threadIdx.x] ||
          (other == best_value[threadIdx.x] && other_index < best_index[threadIdx.x])) {
        best_value[threadIdx.x] = other;
        best_index[threadIdx.x] = other_index;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    step.sampled[b] = best_index[0];
    step.step_counter[b] += 1;
  }
}
"""

ENTRY_POINTS = ["toy_embed", "toy_mix", "toy_gather", "toy_logits", "toy_sample"]


def element(dtype):
    return {"f32": ("float", 4), "bf16": ("__nv_bfloat16", 2)}[dtype]


def artifact(dtype, max_tokens, kernel_source=None, max_seq_len=MAX_SEQ_LEN):
    ctype, es = element(dtype)
    source = (kernel_source or KERNELS).replace("HIDDEN_SIZE", str(HIDDEN)).replace(
        "VOCAB_SIZE", str(VOCAB)).replace("MAX_SEQ_LEN", str(max_seq_len)).replace("ELEMENT", ctype)
    H, V = HIDDEN, VOCAB

    weights = []
    arena = [0]

    def value(op, shape, dtype_, inputs=(), in_arena=False, **fields):
        entry = dict(op=op, shape=list(shape), dtype=dtype_, inputs=list(inputs), **fields)
        if in_arena:
            entry["weight_offset"] = arena[0]
            size = es
            for d in shape:
                size *= d
            arena[0] += (size + 255) // 256 * 256
        weights.append(entry)
        return len(weights) - 1

    embed = value("checkpoint", [V, H], "f32", name="embed")
    embed = value("cast", [V, H], dtype, [embed], True)
    a = value("checkpoint", [H, H], "f32", name="w1_a_t")
    b = value("checkpoint", [H, H], "f32", name="w1_b_t")
    w1 = value("concat", [H, 2 * H], "f32", [a, b], axis=1)
    w1 = value("transpose", [2 * H, H], "f32", [w1], permutation=[1, 0])
    w1 = value("cast", [2 * H, H], dtype, [w1], True)
    b1 = value("checkpoint", [2, H], "f32", name="b1")
    b1 = value("reshape", [2 * H], "f32", [b1])
    b1 = value("cast", [2 * H], dtype, [b1], True)
    lm = value("checkpoint", [V + 8, H], "f32", name="lm")
    lm = value("slice", [V, H], "f32", [lm], axis=0, start=0, size=V)
    lm = value("cast", [V, H], dtype, [lm], True)

    buffers, per_token, fixed = [], [0], [0]
    # Per-token buffers first, then fixed ones, each 256-byte aligned.
    layout = [("x", H * es, 0, dtype), ("y", 2 * H * es, 0, dtype), ("h", H * es, 0, dtype),
              ("last", 0, MAX_BATCH * H * es, dtype), ("logits_d", 0, MAX_BATCH * V * es, dtype),
              ("logits", 0, MAX_BATCH * V * 4, "f32")]
    for name, bpt, fix, dt in layout:
        per_token[0] += bpt
    offset = 0
    for name, bpt, fix, dt in layout:
        size = bpt * max_tokens + fix
        buffers.append(dict(name=name, offset=offset, bytes_per_token=bpt, fixed_bytes=fix, dtype=dt))
        offset += (size + 255) // 256 * 256
    fixed[0] = offset - per_token[0] * max_tokens
    X, Y, Hb, LAST, LOGD, LOG = range(6)

    def arg(kind, index=0):
        return dict(kind=kind, index=index)

    def launch(kernel, scale, args, block=256):
        return dict(command_type="Launch", command=dict(
            kernel=kernel, grid=[1, 1, 1], scale=scale, block=[block, 1, 1], args=args))

    def gemm(a_, b_, c_, bias, n, k, rows):
        g = dict(a=arg("buffer", a_), b=arg("weight", b_), c=arg("buffer", c_), n=n, k=k,
                 dtype=dtype, name="toy", rows=rows)
        if bias is not None:
            g["bias"] = arg("weight", bias)
        return dict(command_type="Gemm", command=g)

    step = [
        launch(0, "tokens", [arg("step"), arg("weight", embed), arg("buffer", X), arg("k_cache", 0),
                             arg("num_tokens")]),
        gemm(X, w1, Y, b1, 2 * H, H, "tokens"),
        launch(1, "tokens", [arg("step"), arg("buffer", Y), arg("k_cache", 0), arg("buffer", Hb),
                             arg("num_tokens")]),
        launch(2, "sequences", [arg("step"), arg("buffer", Hb), arg("buffer", LAST)]),
        gemm(LAST, lm, LOGD, None, V, H, "sequences"),
        launch(3, "sequences", [arg("step"), arg("buffer", LOGD), arg("buffer", LOG)]),
        launch(4, "sequences", [arg("step"), arg("buffer", LOG)]),
    ]
    return dict(
        version=1, compiler="toy", model=dict(
            architecture="ToyForCausalLM", num_layers=1, hidden_size=H, num_heads=1,
            num_kv_heads=1, head_dim=H, vocab_size=V, intermediate_size=2 * H, dtype=dtype,
            max_batch=MAX_BATCH, max_seq_len=max_seq_len, max_tokens=max_tokens,
            target_archs=["sm_80", "sm_90"]),
        weights=weights, weights_arena_bytes=arena[0], buffers=buffers,
        activation_arena_bytes_per_token=per_token[0], activation_arena_fixed_bytes=fixed[0],
        kernels=[dict(name=name, source=source, location="test/gpu/make_toy_artifact.py")
                 for name in ENTRY_POINTS],
        prefill=dict(name="prefill", commands=step), decode=dict(name="decode", commands=step),
        logits=LOG)


def write(out_dir, name, tree):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(tree, f)
        # The schema's file_extension makes this <name>.kiln.
        subprocess.run(["flatc", "-b", "-o", out_dir, SCHEMA, path], check=True)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for dtype in ("f32", "bf16"):
        write(out_dir, f"toy_{dtype}", artifact(dtype, max_tokens=64))
    # Small steps: prompts longer than 16 tokens are prefilled in chunks.
    write(out_dir, "toy_f32_chunked", artifact("f32", max_tokens=16))
    # A kernel that does not compile: kiln-run must print NVRTC's log and the name.
    write(out_dir, "toy_f32_broken", artifact(
        "f32", 64, KERNELS.replace("tanhf(a) * g", "tanhf(a) * undeclared_g")))
    # A KV cache far larger than any GPU: kiln-run must say how much is missing.
    write(out_dir, "toy_f32_huge", artifact("f32", 64, max_seq_len=1 << 28))


if __name__ == "__main__":
    main()
