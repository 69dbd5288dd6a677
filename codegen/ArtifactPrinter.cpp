//===- ArtifactPrinter.cpp - reading an artifact back as text -------------===//
//
// --emit=plan, --emit=cuda and kiln-compile's summary print the artifact
// bytes, not codegen's in-memory plan, so they show what the runtime reads.
//
//===----------------------------------------------------------------------===//

#include "kiln/Codegen/Codegen.h"

#include "kiln/Artifact/artifact_generated.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

using namespace kiln;
namespace fa = kiln::artifact;

namespace {

const fa::Artifact &root(llvm::StringRef bytes) { return *fa::GetArtifact(bytes.data()); }

template <typename T> std::string join(const flatbuffers::Vector<T> *values) {
  std::vector<std::string> parts;
  if (values)
    for (T value : *values)
      parts.push_back(std::to_string(value));
  return "[" + llvm::join(parts, ", ") + "]";
}

std::string bytesText(uint64_t bytes) {
  const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0)
    return std::to_string(bytes) + " bytes";
  return llvm::formatv("{0:F1} {1}", value, units[unit]);
}

std::string argText(const fa::Artifact &artifact, const fa::Arg *arg) {
  switch (arg->kind()) {
  case fa::ArgKind::buffer:
    return "b" + std::to_string(arg->index());
  case fa::ArgKind::weight:
    return "w" + std::to_string(arg->index());
  case fa::ArgKind::k_cache:
    return "k_cache[" + std::to_string(arg->index()) + "]";
  case fa::ArgKind::v_cache:
    return "v_cache[" + std::to_string(arg->index()) + "]";
  case fa::ArgKind::step:
    return "step";
  case fa::ArgKind::num_tokens:
    return "num_tokens";
  case fa::ArgKind::weight_tensor_map: {
    // e.g. "map(w3: dims [64, 2048, 32] strides [2048, 64] box [64, 16, 16] swizzle 128)"
    const fa::TensorMapView *view = arg->view();
    if (!view)
      return "map(w" + std::to_string(arg->index()) + ")";
    auto list = [](const auto *values) {
      std::string text = "[";
      if (values)
        for (auto [i, value] : llvm::enumerate(*values))
          text += (i ? ", " : "") + std::to_string(value);
      return text + "]";
    };
    return "map(w" + std::to_string(arg->index()) + ": dims " + list(view->dims()) + " strides " +
           list(view->strides()) + " box " + list(view->box()) + " swizzle " +
           std::to_string(view->swizzle_bytes()) + ")";
  }
  }
  return "?";
}

void printStep(const fa::Artifact &artifact, const fa::Step *step, llvm::raw_ostream &os) {
  os << step->name()->str() << ": " << step->commands()->size() << " commands";
  if (step->max_tokens())
    os << ", up to " << step->max_tokens() << " tokens";
  if (step->min_compute_capability())
    os << ", sm_" << step->min_compute_capability() << "+";
  os << "\n";
  for (auto [i, entry] : llvm::enumerate(*step->commands())) {
    os << llvm::formatv("  {0,3} ", i);
    if (const fa::Launch *launch = entry->command_as_Launch()) {
      const fa::Kernel *kernel = artifact.kernels()->Get(launch->kernel());
      std::vector<std::string> args;
      for (const fa::Arg *arg : *launch->args())
        args.push_back(argText(artifact, arg));
      os << "launch " << kernel->name()->str() << "(" << llvm::join(args, ", ") << ") grid "
         << launch->grid()->Get(0);
      if (launch->scale() != fa::GridScale::fixed)
        os << " x " << fa::EnumNameGridScale(launch->scale());
      if (launch->scale() == fa::GridScale::query_tiles)
        os << "(" << launch->tile() << ")";
      os << ", block " << launch->block()->Get(0);
      if (launch->shared_bytes())
        os << ", shared " << launch->shared_bytes();
      os << "\n";
    } else if (const fa::Gemm *gemm = entry->command_as_Gemm()) {
      os << "gemm " << argText(artifact, gemm->c()) << "[" << fa::EnumNameGridScale(gemm->rows())
         << ", " << gemm->n() << "] = " << argText(artifact, gemm->a()) << "[.., " << gemm->k()
         << "] * " << argText(artifact, gemm->b()) << "^T";
      if (gemm->bias())
        os << " + " << argText(artifact, gemm->bias());
      os << " " << fa::EnumNameDType(gemm->dtype()) << " (" << gemm->name()->str() << ")\n";
    } else {
      os << "collective\n";
    }
  }
}

} // namespace

void kiln::emitCudaSource(llvm::StringRef bytes, llvm::raw_ostream &os) {
  const fa::Artifact &artifact = root(bytes);
  os << "// " << artifact.kernels()->size()
     << " kernels; each is compiled after runtime/kernels/prelude.cuh\n";
  for (const fa::Kernel *kernel : *artifact.kernels())
    os << "\n" << kernel->source()->str();
}

void kiln::printPlan(llvm::StringRef bytes, llvm::raw_ostream &os) {
  const fa::Artifact &artifact = root(bytes);
  const fa::ModelInfo &model = *artifact.model();
  os << "model " << model.architecture()->str() << ": " << model.num_layers() << " layers, hidden "
     << model.hidden_size() << ", " << model.num_heads() << " heads (" << model.num_kv_heads()
     << " kv) of " << model.head_dim() << ", vocab " << model.vocab_size() << ", intermediate "
     << model.intermediate_size() << ", " << fa::EnumNameDType(model.dtype()) << "\n";
  std::vector<std::string> archs;
  if (model.target_archs())
    for (const flatbuffers::String *arch : *model.target_archs())
      archs.push_back(arch->str());
  os << "limits: max_batch " << model.max_batch() << ", max_seq_len " << model.max_seq_len()
     << ", max_tokens " << model.max_tokens() << "; checked for "
     << (archs.empty() ? std::string("no architecture") : llvm::join(archs, ", ")) << "\n";

  os << "weights: " << artifact.weights()->size() << " values, arena "
     << artifact.weights_arena_bytes() << " bytes\n";
  for (auto [i, value] : llvm::enumerate(*artifact.weights())) {
    os << "  w" << i << " = " << fa::EnumNameWeightOp(value->op());
    if (value->op() == fa::WeightOp::checkpoint) {
      os << " \"" << value->name()->str() << "\"";
    } else {
      std::vector<std::string> inputs;
      for (uint32_t input : *value->inputs())
        inputs.push_back("w" + std::to_string(input));
      os << "(" << llvm::join(inputs, ", ") << ")";
    }
    if (value->op() == fa::WeightOp::concat || value->op() == fa::WeightOp::slice)
      os << " axis " << value->axis();
    if (value->op() == fa::WeightOp::slice)
      os << " start " << value->start() << " size " << value->size();
    if (value->op() == fa::WeightOp::transpose)
      os << " " << join(value->permutation());
    os << " : " << join(value->shape()) << " " << fa::EnumNameDType(value->dtype());
    if (value->weight_offset() >= 0)
      os << " @ " << value->weight_offset();
    os << "\n";
  }

  uint64_t arena = artifact.activation_arena_bytes_per_token() * uint64_t(model.max_tokens()) +
                   artifact.activation_arena_fixed_bytes();
  os << "buffers: " << artifact.buffers()->size() << ", arena "
     << artifact.activation_arena_bytes_per_token() << " bytes/token x " << model.max_tokens()
     << " + " << artifact.activation_arena_fixed_bytes() << " = " << arena << " bytes\n";
  for (auto [i, buffer] : llvm::enumerate(*artifact.buffers())) {
    os << "  b" << i << " " << buffer->name()->str() << ": ";
    if (buffer->fixed_bytes())
      os << buffer->fixed_bytes() << " bytes";
    else
      os << buffer->bytes_per_token() << " bytes/token";
    os << " " << fa::EnumNameDType(buffer->dtype()) << " @ " << buffer->offset() << "\n";
  }
  os << "logits: b" << artifact.logits() << "\n";

  os << "kernels: " << artifact.kernels()->size() << "\n";
  for (auto [i, kernel] : llvm::enumerate(*artifact.kernels()))
    os << "  k" << i << " " << kernel->name()->str() << " (" << kernel->location()->str() << ")"
       << (kernel->programmatic() ? " programmatic" : "") << "\n";
  printStep(artifact, artifact.prefill(), os);
  printStep(artifact, artifact.decode(), os);
  if (artifact.decode_persistent())
    printStep(artifact, artifact.decode_persistent(), os);
}

CompileSummary kiln::summarizeArtifact(llvm::StringRef bytes) {
  const fa::Artifact &artifact = root(bytes);
  const fa::ModelInfo &model = *artifact.model();
  CompileSummary summary;
  summary.architecture = model.architecture()->str();
  summary.dtype = fa::EnumNameDType(model.dtype());
  summary.kernels = artifact.kernels()->size();
  auto count = [](const fa::Step *step, size_t &launches, size_t &gemms) {
    for (const fa::CommandEntry *entry : *step->commands()) {
      launches += entry->command_type() == fa::Command::Launch;
      gemms += entry->command_type() == fa::Command::Gemm;
    }
  };
  count(artifact.prefill(), summary.prefillLaunches, summary.prefillGemms);
  count(artifact.decode(), summary.decodeLaunches, summary.decodeGemms);
  if (const fa::Step *persistent = artifact.decode_persistent()) {
    size_t gemms = 0;
    count(persistent, summary.persistentDecodeLaunches, gemms);
    summary.persistentDecodeTokens = persistent->max_tokens();
  }
  summary.weightBytes = artifact.weights_arena_bytes();
  summary.maxTokens = model.max_tokens();
  summary.arenaBytes = artifact.activation_arena_bytes_per_token() * uint64_t(model.max_tokens()) +
                       artifact.activation_arena_fixed_bytes();
  uint64_t elementBytes = model.dtype() == fa::DType::f32 ? 4 : 2;
  summary.kvCacheBytesPerToken = 2 * uint64_t(model.num_layers()) * uint64_t(model.num_kv_heads()) *
                                 uint64_t(model.head_dim()) * elementBytes;
  summary.artifactBytes = bytes.size();
  return summary;
}

void kiln::printSummary(const CompileSummary &summary, llvm::raw_ostream &os) {
  os << summary.architecture << " (" << summary.dtype << "): " << summary.kernels
     << " kernels; prefill " << summary.prefillLaunches << " launches + " << summary.prefillGemms
     << " GEMM calls; decode " << summary.decodeLaunches << " launches + " << summary.decodeGemms
     << " GEMM calls\n";
  if (summary.persistentDecodeLaunches)
    os << "  persistent decode (sm_90+, up to " << summary.persistentDecodeTokens
       << " tokens): " << summary.persistentDecodeLaunches << " launches\n";
  os << "  weights " << bytesText(summary.weightBytes) << "; activation arena "
     << bytesText(summary.arenaBytes) << " at " << summary.maxTokens << " tokens; KV cache "
     << bytesText(summary.kvCacheBytesPerToken) << " per token (all layers)\n";
  os << "  artifact " << summary.artifactBytes << " bytes\n";
}
