//===- SamplingKernel.cpp - choosing each sequence's next token -----------===//
//
// One block per sequence over its float logits row. Temperature 0 is greedy
// (argmax, the lowest index among equal maxima, as torch.argmax). Otherwise,
// as transformers' logits processors in order: temperature, top-k, top-p;
// then a draw from the kept tokens' softmax with a Philox4x32-10 counter RNG
// keyed by the sequence's seed at counter step_counter[b], which the kernel
// advances. Top-k and top-p thresholds are found by bisection on the float
// order (32 counting passes each), so nothing is sorted.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "llvm/Support/FormatVariadic.h"

using namespace kiln;
using namespace kiln::codegen;

KernelSpec codegen::samplingKernel(int64_t vocab) {
  KernelSpec spec;
  spec.programmatic = true;
  spec.name = llvm::formatv("sample_v{0}", vocab);
  spec.summary = llvm::formatv("argmax / temperature, top-k, top-p sampling over {0} logits",
                               vocab);
  spec.launch.block = 1024;
  spec.launch.scale = GridScale::sequences;
  spec.source = fillTemplate(R"cuda(
__device__ __forceinline__ uint4 ${NAME}_philox(uint4 counter, uint2 key) {
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const unsigned lo0 = 0xD2511F53u * counter.x, hi0 = __umulhi(0xD2511F53u, counter.x);
    const unsigned lo1 = 0xCD9E8D57u * counter.z, hi1 = __umulhi(0xCD9E8D57u, counter.z);
    counter = make_uint4(hi1 ^ counter.y ^ key.x, lo1, hi0 ^ counter.w ^ key.y, lo0);
    key.x += 0x9E3779B9u;
    key.y += 0xBB67AE85u;
  }
  return counter;
}

// Floats as unsigned integers in the same order.
__device__ __forceinline__ unsigned ${NAME}_key(float x) {
  const unsigned bits = __float_as_uint(x);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

extern "C" __global__ void __launch_bounds__(1024) ${NAME}(const float *__restrict__ logits,
                                                          kiln::StepState step) {
  constexpr int kVocab = ${VOCAB}, kThreads = 1024;
  constexpr int kChunk = (kVocab + kThreads - 1) / kThreads;
  __shared__ float scratch[32];
  __shared__ float best_value[32];
  __shared__ int best_index[32];
  __shared__ float prefix[kThreads];
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int b = blockIdx.x;
  const float *row = logits + (size_t)b * kVocab;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  // Argmax: the greedy choice, and the maximum for the softmax.
  float best = -__int_as_float(0x7f800000);
  int index = kVocab;
  for (int i = threadIdx.x; i < kVocab; i += kThreads)
    if (row[i] > best) {
      best = row[i];
      index = i;
    }
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, best, offset);
    const int other_index = __shfl_xor_sync(0xffffffffu, index, offset);
    if (other > best || (other == best && other_index < index)) {
      best = other;
      index = other_index;
    }
  }
  if (lane == 0) {
    best_value[warp] = best;
    best_index[warp] = index;
  }
  __syncthreads();
  best = best_value[0];
  index = best_index[0];
  for (int w = 1; w < kThreads / 32; ++w)
    if (best_value[w] > best || (best_value[w] == best && best_index[w] < index)) {
      best = best_value[w];
      index = best_index[w];
    }
  const int argmax = index < kVocab ? index : 0; // all NaN: token 0

  const float temperature = step.temperature[b];
  if (!(temperature > 0.f)) {
    if (threadIdx.x == 0)
      step.sampled[b] = argmax;
    return;
  }
  const float inv_temperature = 1.f / temperature;
  const float top = best * inv_temperature;

  // Top-k: the largest threshold with at least k logits at or above it.
  unsigned threshold = 0;
  const int top_k = step.top_k[b];
  if (top_k > 0 && top_k < kVocab) {
    unsigned lo = 0, hi = ${NAME}_key(top);
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      float count = 0.f;
      for (int i = threadIdx.x; i < kVocab; i += kThreads)
        count += ${NAME}_key(row[i] * inv_temperature) >= mid ? 1.f : 0.f;
      if (kiln::block_sum(count, scratch) >= (float)top_k)
        lo = mid;
      else
        hi = mid - 1;
    }
    threshold = lo;
  }

  // Top-p: the largest threshold whose kept tokens hold at least p of the
  // probability (renormalized over the top-k survivors).
  const float top_p = step.top_p[b];
  if (top_p < 1.f) {
    float total = 0.f;
    for (int i = threadIdx.x; i < kVocab; i += kThreads) {
      const float x = row[i] * inv_temperature;
      total += ${NAME}_key(x) >= threshold ? expf(x - top) : 0.f;
    }
    const float target = top_p * kiln::block_sum(total, scratch);
    unsigned lo = threshold, hi = ${NAME}_key(top);
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      float mass = 0.f;
      for (int i = threadIdx.x; i < kVocab; i += kThreads) {
        const float x = row[i] * inv_temperature;
        mass += ${NAME}_key(x) >= mid ? expf(x - top) : 0.f;
      }
      if (kiln::block_sum(mass, scratch) >= target)
        lo = mid;
      else
        hi = mid - 1;
    }
    threshold = lo;
  }

  // Draw: thread t owns logits [t * kChunk, (t + 1) * kChunk); an exclusive
  // scan of the chunks' masses finds the chunk holding u, then its owner walks it.
  const int chunk_begin = min(kVocab, (int)threadIdx.x * kChunk);
  const int chunk_end = min(kVocab, chunk_begin + kChunk);
  float mass = 0.f;
  for (int i = chunk_begin; i < chunk_end; ++i) {
    const float x = row[i] * inv_temperature;
    mass += ${NAME}_key(x) >= threshold ? expf(x - top) : 0.f;
  }
  prefix[threadIdx.x] = mass;
  __syncthreads();
  for (int offset = 1; offset < kThreads; offset <<= 1) { // inclusive Hillis-Steele scan
    const float add = threadIdx.x >= offset ? prefix[threadIdx.x - offset] : 0.f;
    __syncthreads();
    prefix[threadIdx.x] += add;
    __syncthreads();
  }
  const uint2 seed = make_uint2((unsigned)step.seed[b], (unsigned)(step.seed[b] >> 32));
  const uint4 random = ${NAME}_philox(make_uint4((unsigned)step.step_counter[b], 0u, 0u, 0u), seed);
  const float u = (float)(random.x >> 8) * (1.f / 16777216.f) * prefix[kThreads - 1];
  __syncthreads();
  if (threadIdx.x == 0) {
    step.sampled[b] = argmax; // if rounding leaves u past every chunk
    step.step_counter[b] += 1;
  }
  __syncthreads();
  const float before = threadIdx.x ? prefix[threadIdx.x - 1] : 0.f;
  if (mass > 0.f && u >= before && (u < prefix[threadIdx.x] || threadIdx.x == kThreads - 1)) {
    float running = before;
    int chosen = -1;
    for (int i = chunk_begin; i < chunk_end; ++i) {
      const float x = row[i] * inv_temperature;
      if (${NAME}_key(x) < threshold)
        continue;
      chosen = i;
      running += expf(x - top);
      if (u < running)
        break;
    }
    step.sampled[b] = chosen;
  }
}
)cuda",
                             {{"NAME", spec.name}, {"VOCAB", std::to_string(vocab)}});
  return spec;
}
