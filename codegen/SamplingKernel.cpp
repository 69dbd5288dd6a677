//===- SamplingKernel.cpp - choosing each sequence's next token -----------===//
//
// One block per sequence over its float logits row. Temperature 0 is greedy:
// the row the LM head found (the largest logit, the lowest index among equal
// maxima, as torch.argmax; StepState::best_logit), with no pass over the row.
// Otherwise, as transformers' logits processors in order: temperature, top-k, top-p;
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

extern "C" __global__ void __launch_bounds__(1024) ${NAME}(const float *__restrict__ logits,
                                                          kiln::StepState step) {
  constexpr int kVocab = ${VOCAB}, kThreads = 1024;
  constexpr int kChunk = (kVocab + kThreads - 1) / kThreads;
  __shared__ float scratch[32];
  __shared__ float prefix[kThreads];
  kiln::launch_dependents();
  kiln::wait_for_previous_grids();
  const int b = blockIdx.x;
  const float *row = logits + (size_t)b * kVocab;

  // The greedy choice and the maximum for the softmax, which the LM head
  // left (no key: every logit was NaN, token 0).
  const unsigned long long best_key = step.best_logit[b];
  const int argmax = best_key ? (int)~(unsigned)best_key : 0;
  const float best = best_key ? kiln::from_ordered_bits((unsigned)(best_key >> 32))
                              : -__int_as_float(0x7f800000);

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
    unsigned lo = 0, hi = kiln::ordered_bits(top);
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      float count = 0.f;
      for (int i = threadIdx.x; i < kVocab; i += kThreads)
        count += kiln::ordered_bits(row[i] * inv_temperature) >= mid ? 1.f : 0.f;
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
      total += kiln::ordered_bits(x) >= threshold ? expf(x - top) : 0.f;
    }
    const float target = top_p * kiln::block_sum(total, scratch);
    unsigned lo = threshold, hi = kiln::ordered_bits(top);
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      float mass = 0.f;
      for (int i = threadIdx.x; i < kVocab; i += kThreads) {
        const float x = row[i] * inv_temperature;
        mass += kiln::ordered_bits(x) >= mid ? expf(x - top) : 0.f;
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
    mass += kiln::ordered_bits(x) >= threshold ? expf(x - top) : 0.f;
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
      if (kiln::ordered_bits(x) < threshold)
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
