//===- Generate.cpp - running prompts to completion -----------------------===//

#include "kiln/Runtime/Runtime.h"

#include <algorithm>

using namespace kiln::runtime;

bool kiln::runtime::generate(Session &session, const std::vector<std::vector<int32_t>> &prompts,
                             const SamplingParams &sampling, const GenerateOptions &options,
                             std::vector<Generation> &out, std::string &error) {
  if (options.maxNewTokens < 1) {
    error = "max-new-tokens must be at least 1";
    return false;
  }
  std::vector<int> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int id = session.add(prompts[i], sampling, error);
    if (id < 0) {
      error = "prompt " + std::to_string(i) + ": " + error;
      for (int added : ids)
        session.finish(added);
      return false;
    }
    ids.push_back(id);
  }
  out.assign(prompts.size(), Generation());
  std::vector<bool> done(prompts.size(), false);
  // Marks sequences that just reached an end; true while any still runs.
  auto settle = [&] {
    bool any = false;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (done[i])
        continue;
      const std::vector<int32_t> &tokens = session.generated(ids[i]);
      Generation &generation = out[i];
      if (std::find(options.stopIds.begin(), options.stopIds.end(), tokens.back()) !=
          options.stopIds.end())
        generation.stop = Generation::Stop::StopToken;
      else if (int(tokens.size()) >= options.maxNewTokens)
        generation.stop = Generation::Stop::MaxNewTokens;
      else if (!session.canDecode(ids[i]))
        generation.stop = Generation::Stop::MaxSeqLen;
      else {
        any = true;
        continue;
      }
      generation.tokens = tokens;
      done[i] = true;
      session.finish(ids[i]);
    }
    return any;
  };
  bool ok = session.prefill(error);
  while (ok && settle())
    ok = session.decode(error);
  if (!ok)
    for (int id : ids)
      session.finish(id);
  return ok;
}
