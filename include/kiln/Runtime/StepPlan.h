//===- StepPlan.h - what one step computes, on the host ---------*- C++ -*-===//
//
// The bookkeeping of steps: which tokens of which sequences a step packs, and
// the kiln::StepState arrays (runtime/kernels/prelude.cuh) that describe them
// to the kernels. Host code only: the session copies the arrays written here
// to the device before each step.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_STEPPLAN_H
#define KILN_RUNTIME_STEPPLAN_H

#include <cstdint>
#include <utility>
#include <vector>

namespace kiln::runtime {

/// How a sequence picks its next token, on the GPU.
struct SamplingParams {
  float temperature = 0.f;  ///< 0: greedy
  int32_t topK = 0;         ///< 0: off
  float topP = 1.f;         ///< 1: off
  uint64_t seed = 0;
};

/// Where each array that kiln::StepState points to lives in one device block.
/// The per-sequence arrays come first so that one copy uploads them all; the
/// per-token arrays are uploaded only as far as a step uses them.
struct StepStateLayout {
  static StepStateLayout make(int maxTokens, int maxBatch);

  int maxTokens = 0, maxBatch = 0;
  // Byte offsets. Per sequence: [maxBatch] (query_start: [maxBatch + 1]).
  uint64_t queryStart = 0, kvLen = 0, slot = 0, lastToken = 0, temperature = 0, topK = 0,
           topP = 0, stepCounter = 0, seed = 0;
  // The LM head's greedy choice (kiln::StepState::best_logit): zeroed with
  // the rest of this section by every step's upload.
  uint64_t bestLogit = 0;
  // The step's number (kiln::StepState::epoch), written by the session.
  uint64_t epoch = 0;
  uint64_t perSequenceBytes = 0;  ///< [0, perSequenceBytes) holds all of the above
  // Per token: [maxTokens].
  uint64_t tokenIds = 0, positions = 0, tokenSeq = 0;
  // Written by the sampling kernel: [maxBatch].
  uint64_t sampled = 0;
  uint64_t totalBytes = 0;
};

/// One sequence's share of a step: `length` tokens from `position` on.
struct StepRow {
  int sequence = 0;         ///< the caller's id
  int slot = 0;             ///< KV-cache slot
  int position = 0;         ///< position of the row's first token
  int length = 0;           ///< tokens in this step
  bool endsPrompt = true;   ///< the token sampled after this row is generated output
  SamplingParams sampling;
  int32_t counter = 0;      ///< random stream offset: tokens sampled so far
};

/// A step's rows and their packed token ids.
struct StepBatch {
  std::vector<StepRow> rows;
  std::vector<int32_t> tokens;

  int numTokens() const { return int(tokens.size()); }
  int numSequences() const { return int(rows.size()); }
  int longestQuery() const;
  void clear() {
    rows.clear();
    tokens.clear();
  }

  /// Writes the step's arrays into `block` (a host copy of the device block,
  /// layout.totalBytes long) and appends the [begin, end) byte ranges that must
  /// be uploaded to `uploads`.
  void write(const StepStateLayout &layout, uint8_t *block,
             std::vector<std::pair<uint64_t, uint64_t>> &uploads) const;
};

/// A prompt that still has to go through prefill: its tokens from `cached` on
/// are not in the KV cache yet.
struct PendingPrompt {
  int sequence = 0;
  int slot = 0;
  const std::vector<int32_t> *prompt = nullptr;
  int cached = 0;
  SamplingParams sampling;
};

/// Packs prompts, in order, into prefill steps of at most `maxTokens` tokens
/// and `maxBatch` sequences. A prompt that does not fit in the room left is
/// split: its first chunk fills the step, the rest goes to the next step(s),
/// which reach the earlier chunks through the KV cache.
std::vector<StepBatch> planPrefill(const std::vector<PendingPrompt> &prompts, int maxTokens,
                                   int maxBatch);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_STEPPLAN_H
