//===- StepPlan.cpp - what one step computes, on the host -----------------===//

#include "kiln/Runtime/StepPlan.h"

#include <algorithm>
#include <cstring>

using namespace kiln::runtime;

StepStateLayout StepStateLayout::make(int maxTokens, int maxBatch) {
  StepStateLayout layout;
  layout.maxTokens = maxTokens;
  layout.maxBatch = maxBatch;
  uint64_t end = 0;
  auto place = [&](uint64_t &field, uint64_t count, uint64_t elementBytes) {
    end = (end + 15) / 16 * 16;  // keeps every array 16-byte aligned
    field = end;
    end += count * elementBytes;
  };
  const uint64_t batch = uint64_t(maxBatch), tokens = uint64_t(maxTokens);
  place(layout.queryStart, batch + 1, 4);
  place(layout.kvLen, batch, 4);
  place(layout.slot, batch, 4);
  place(layout.lastToken, batch, 4);
  place(layout.temperature, batch, 4);
  place(layout.topK, batch, 4);
  place(layout.topP, batch, 4);
  place(layout.stepCounter, batch, 4);
  place(layout.seed, batch, 8);
  place(layout.bestLogit, batch, 8);
  place(layout.epoch, 1, 4);
  layout.perSequenceBytes = end;
  place(layout.tokenIds, tokens, 4);
  place(layout.positions, tokens, 4);
  place(layout.tokenSeq, tokens, 4);
  place(layout.sampled, batch, 4);
  layout.totalBytes = (end + 15) / 16 * 16;
  return layout;
}

int StepBatch::longestQuery() const {
  int longest = 0;
  for (const StepRow &row : rows)
    longest = std::max(longest, row.length);
  return longest;
}

namespace {
template <typename T> T *array(uint8_t *block, uint64_t offset) {
  return reinterpret_cast<T *>(block + offset);
}
} // namespace

void StepBatch::write(const StepStateLayout &layout, uint8_t *block,
                      std::vector<std::pair<uint64_t, uint64_t>> &uploads) const {
  int32_t *queryStart = array<int32_t>(block, layout.queryStart);
  int32_t *kvLen = array<int32_t>(block, layout.kvLen);
  int32_t *slot = array<int32_t>(block, layout.slot);
  int32_t *lastToken = array<int32_t>(block, layout.lastToken);
  float *temperature = array<float>(block, layout.temperature);
  int32_t *topK = array<int32_t>(block, layout.topK);
  float *topP = array<float>(block, layout.topP);
  int32_t *stepCounter = array<int32_t>(block, layout.stepCounter);
  uint64_t *seed = array<uint64_t>(block, layout.seed);
  int32_t *tokenIds = array<int32_t>(block, layout.tokenIds);
  int32_t *positions = array<int32_t>(block, layout.positions);
  int32_t *tokenSeq = array<int32_t>(block, layout.tokenSeq);

  // Rows past the step's sequences read as empty sequences at the end.
  std::memset(block, 0, layout.perSequenceBytes);
  int32_t token = 0;
  for (size_t b = 0; b < rows.size(); ++b) {
    const StepRow &row = rows[b];
    queryStart[b] = token;
    for (int i = 0; i < row.length; ++i, ++token) {
      tokenIds[token] = tokens[size_t(token)];
      positions[token] = row.position + i;
      tokenSeq[token] = int32_t(b);
    }
    kvLen[b] = row.position + row.length;
    slot[b] = row.slot;
    lastToken[b] = token - 1;
    temperature[b] = row.sampling.temperature;
    topK[b] = row.sampling.topK;
    topP[b] = row.sampling.topP;
    seed[b] = row.sampling.seed;
    stepCounter[b] = row.counter;
  }
  for (size_t b = rows.size(); b <= size_t(layout.maxBatch); ++b)
    queryStart[b] = token;

  const uint64_t used = uint64_t(token) * 4;
  uploads.emplace_back(0, layout.perSequenceBytes);
  if (used)
    for (uint64_t offset : {layout.tokenIds, layout.positions, layout.tokenSeq})
      uploads.emplace_back(offset, offset + used);
}

std::vector<StepBatch> kiln::runtime::planPrefill(const std::vector<PendingPrompt> &prompts,
                                                  int maxTokens, int maxBatch) {
  std::vector<StepBatch> steps;
  StepBatch step;
  for (const PendingPrompt &pending : prompts) {
    const int total = int(pending.prompt->size());
    for (int position = pending.cached; position < total;) {
      if (step.numSequences() == maxBatch || step.numTokens() == maxTokens) {
        steps.push_back(std::move(step));
        step.clear();
      }
      const int length = std::min(total - position, maxTokens - step.numTokens());
      StepRow row;
      row.sequence = pending.sequence;
      row.slot = pending.slot;
      row.position = position;
      row.length = length;
      row.endsPrompt = position + length == total;
      row.sampling = pending.sampling;
      step.rows.push_back(row);
      step.tokens.insert(step.tokens.end(), pending.prompt->begin() + position,
                         pending.prompt->begin() + position + length);
      position += length;
    }
  }
  if (!step.rows.empty())
    steps.push_back(std::move(step));
  return steps;
}
