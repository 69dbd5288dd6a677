//===- Artifact.cpp - reading and verifying kiln artifacts ----------------===//
//
// The checks here are everything later code relies on: after a successful
// verify, indices are in range, shapes agree with their weight ops, and every
// buffer fits its arena, so the loader and the session never check again.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Artifact.h"

#include "kernels/weight_ops.cuh"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

using namespace kiln;
using namespace kiln::runtime;
namespace fa = kiln::artifact;

uint64_t runtime::elementBytes(fa::DType dtype) {
  switch (dtype) {
  case fa::DType::f32:
  case fa::DType::i32:
    return 4;
  case fa::DType::f16:
  case fa::DType::bf16:
    return 2;
  case fa::DType::i64:
    return 8;
  case fa::DType::i8:
  case fa::DType::u8:
  case fa::DType::f8e4m3:
    return 1;
  case fa::DType::i4:
    return 0;
  }
  return 0;
}

const char *runtime::dtypeName(fa::DType dtype) {
  const char *name = fa::EnumNameDType(dtype);
  return name && *name ? name : "unknown";
}

std::string runtime::smName(int major, int minor) {
  return "sm_" + std::to_string(major) + std::to_string(minor);
}

namespace {

bool isFloat(fa::DType dtype) {
  return dtype == fa::DType::f32 || dtype == fa::DType::f16 || dtype == fa::DType::bf16;
}

template <typename Range> std::string join(const Range &values) {
  std::ostringstream out;
  out << '[';
  bool first = true;
  for (const auto &value : values) {
    out << (first ? "" : ", ") << value;
    first = false;
  }
  out << ']';
  return out.str();
}

template <typename T> std::string join(const flatbuffers::Vector<T> *values) {
  return values ? join(*values) : "[]";
}

template <typename T> bool aligned(const flatbuffers::Vector<T> *values) {
  return !values || reinterpret_cast<uintptr_t>(values->data()) % alignof(T) == 0;
}

/// a * b, or false on overflow.
bool multiply(uint64_t a, uint64_t b, uint64_t &out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a)
    return false;
  out = a * b;
  return true;
}

bool add(uint64_t a, uint64_t b, uint64_t &out) {
  if (b > std::numeric_limits<uint64_t>::max() - a)
    return false;
  out = a + b;
  return true;
}

/// Walks the artifact once; the first problem becomes `error`, naming the
/// artifact and the field (e.g. "decode.commands[3]: ...").
class Checker {
public:
  Checker(const fa::Artifact &artifact, const std::string &name, std::string &error)
      : artifact_(artifact), name_(name), error_(error) {}

  bool run() {
    return checkModel() && checkWeights() && checkBuffers() && checkKernels() && checkLogits() &&
           checkStep(artifact_.prefill(), "prefill") && checkStep(artifact_.decode(), "decode") &&
           checkPersistentDecode();
  }

private:
  bool fail(const std::string &where, const std::string &what) {
    error_ = name_ + ": " + where + ": " + what;
    return false;
  }

  bool checkModel() {
    const fa::ModelInfo *model = artifact_.model();
    if (!model)
      return fail("model", "missing");
    const std::pair<const char *, int> dims[] = {
        {"num_layers", model->num_layers()},   {"hidden_size", model->hidden_size()},
        {"num_heads", model->num_heads()},     {"num_kv_heads", model->num_kv_heads()},
        {"head_dim", model->head_dim()},       {"vocab_size", model->vocab_size()},
        {"max_batch", model->max_batch()},     {"max_seq_len", model->max_seq_len()},
        {"max_tokens", model->max_tokens()}};
    for (const auto &[field, value] : dims)
      if (value <= 0)
        return fail(std::string("model.") + field, "must be positive, not " + std::to_string(value));
    if (!isFloat(model->dtype()))
      return fail("model.dtype", std::string("activations must be f32, f16 or bf16, not ") +
                                     dtypeName(model->dtype()));
    if (model->max_tokens() < model->max_batch())
      return fail("model.max_tokens", "a step must hold one token per sequence: max_tokens " +
                                          std::to_string(model->max_tokens()) + " < max_batch " +
                                          std::to_string(model->max_batch()));
    if (const auto *archs = model->target_archs())
      for (flatbuffers::uoffset_t i = 0; i < archs->size(); ++i) {
        const std::string arch = archs->Get(i) ? archs->Get(i)->str() : "";
        if (arch.size() < 5 || arch.compare(0, 3, "sm_") != 0 ||
            arch.find_first_not_of("0123456789", 3) != std::string::npos)
          return fail("model.target_archs[" + std::to_string(i) + "]",
                      "'" + arch + "' is not an architecture like sm_90");
      }
    return true;
  }

  std::string weightWhere(flatbuffers::uoffset_t i, const fa::WeightValue *value) {
    std::string where = "weights[" + std::to_string(i) + "]";
    if (value && value->op() == fa::WeightOp::checkpoint && value->name())
      where += " ('" + value->name()->str() + "')";
    else if (value)
      where += std::string(" (") + fa::EnumNameWeightOp(value->op()) + ")";
    return where;
  }

  bool checkWeights() {
    const auto *weights = artifact_.weights();
    if (!weights)
      return fail("weights", "missing");
    for (flatbuffers::uoffset_t i = 0; i < weights->size(); ++i)
      if (!checkWeight(i))
        return false;
    return true;
  }

  bool checkWeight(flatbuffers::uoffset_t i) {
    const auto *weights = artifact_.weights();
    const fa::WeightValue *value = weights->Get(i);
    const std::string where = weightWhere(i, value);
    const auto *shape = value->shape();
    if (!shape)
      return fail(where, "has no shape");
    // The FlatBuffers verifier aligns a vector's length, not its 8-byte
    // elements; a corrupted offset could make reading them misaligned.
    if (!aligned(shape) || !aligned(value->permutation()))
      return fail(where, "corrupted (misaligned vector)");
    if (shape->size() > kMaxCopyRank)
      return fail(where, "rank " + std::to_string(shape->size()) + " exceeds " +
                             std::to_string(kMaxCopyRank));
    uint64_t elements = 1;
    for (int64_t dim : *shape)
      if (dim <= 0 || !multiply(elements, uint64_t(dim), elements) || elements > (1ull << 48))
        return fail(where, "bad shape " + join(shape));
    const uint64_t bytesPerElement = elementBytes(value->dtype());
    if (bytesPerElement == 0)
      return fail(where, std::string("dtype ") + dtypeName(value->dtype()) +
                             " is not supported by this runtime");

    std::vector<const fa::WeightValue *> inputs;
    if (const auto *indices = value->inputs())
      for (uint32_t input : *indices) {
        if (input >= i)
          return fail(where, "input " + std::to_string(input) + " is not an earlier value");
        inputs.push_back(weights->Get(input));
      }
    auto expectInputs = [&](size_t count) {
      return inputs.size() == count ||
             fail(where, "takes " + std::to_string(count) + " input(s), not " +
                             std::to_string(inputs.size()));
    };
    auto sameDtype = [&](const fa::WeightValue *input) {
      return input->dtype() == value->dtype() ||
             fail(where, std::string("dtype ") + dtypeName(value->dtype()) +
                             " differs from its input's " + dtypeName(input->dtype()));
    };
    auto inputElements = [](const fa::WeightValue *input) {
      uint64_t n = 1;
      for (int64_t dim : *input->shape())
        n *= uint64_t(dim);  // checked when the input was
      return n;
    };
    const int64_t rank = int64_t(shape->size());

    switch (value->op()) {
    case fa::WeightOp::checkpoint:
      if (!value->name() || value->name()->size() == 0)
        return fail(where, "checkpoint value has no tensor name");
      if (!expectInputs(0))
        return false;
      break;
    case fa::WeightOp::concat: {
      if (inputs.empty())
        return fail(where, "concat has no inputs");
      if (value->axis() < 0 || value->axis() >= rank)
        return fail(where, "axis " + std::to_string(value->axis()) + " out of range");
      int64_t total = 0;
      for (const fa::WeightValue *input : inputs) {
        if (!sameDtype(input))
          return false;
        if (input->shape()->size() != shape->size())
          return fail(where, "input shape " + join(input->shape()) + " does not concatenate to " +
                                 join(shape));
        for (int64_t d = 0; d < rank; ++d)
          if (d != value->axis() && input->shape()->Get(d) != shape->Get(d))
            return fail(where, "input shape " + join(input->shape()) +
                                   " does not concatenate to " + join(shape));
        total += input->shape()->Get(value->axis());
      }
      if (total != shape->Get(value->axis()))
        return fail(where, "inputs add up to " + std::to_string(total) + " along axis " +
                               std::to_string(value->axis()) + ", not " +
                               std::to_string(shape->Get(value->axis())));
      break;
    }
    case fa::WeightOp::cast:
      if (!expectInputs(1))
        return false;
      if (!isFloat(value->dtype()) || !isFloat(inputs[0]->dtype()))
        return fail(where, std::string("cast from ") + dtypeName(inputs[0]->dtype()) + " to " +
                               dtypeName(value->dtype()) + " is not supported");
      if (join(inputs[0]->shape()) != join(shape))
        return fail(where, "cast changes the shape " + join(inputs[0]->shape()) + " to " +
                               join(shape));
      break;
    case fa::WeightOp::reshape:
      if (!expectInputs(1) || !sameDtype(inputs[0]))
        return false;
      if (inputElements(inputs[0]) != elements)
        return fail(where, "reshape of " + join(inputs[0]->shape()) + " to " + join(shape) +
                               " changes the element count");
      break;
    case fa::WeightOp::transpose: {
      if (!expectInputs(1) || !sameDtype(inputs[0]))
        return false;
      const auto *permutation = value->permutation();
      const auto *inputShape = inputs[0]->shape();
      if (!permutation || permutation->size() != shape->size() ||
          inputShape->size() != shape->size())
        return fail(where, "permutation " + join(permutation) + " does not fit rank " +
                               std::to_string(rank));
      std::set<int64_t> seen;
      for (int64_t d = 0; d < rank; ++d) {
        const int64_t from = permutation->Get(d);
        if (from < 0 || from >= rank || !seen.insert(from).second ||
            inputShape->Get(from) != shape->Get(d))
          return fail(where, "permutation " + join(permutation) + " does not map " +
                                 join(inputShape) + " to " + join(shape));
      }
      break;
    }
    case fa::WeightOp::slice: {
      if (!expectInputs(1) || !sameDtype(inputs[0]))
        return false;
      const auto *inputShape = inputs[0]->shape();
      const int64_t axis = value->axis();
      bool ok = inputShape->size() == shape->size() && axis >= 0 && axis < rank &&
                value->start() >= 0 && value->size() > 0 &&
                value->start() + value->size() <= inputShape->Get(axis) &&
                shape->Get(axis) == value->size();
      for (int64_t d = 0; ok && d < rank; ++d)
        ok = d == axis || inputShape->Get(d) == shape->Get(d);
      if (!ok)
        return fail(where, "slice [" + std::to_string(value->start()) + ", +" +
                               std::to_string(value->size()) + ") on axis " +
                               std::to_string(axis) + " of " + join(inputShape) +
                               " does not give " + join(shape));
      break;
    }
    default:
      return fail(where, "unknown weight op " + std::to_string(int(value->op())));
    }

    const int64_t offset = value->weight_offset();
    if (offset >= 0) {
      uint64_t end;
      if (uint64_t(offset) % bytesPerElement != 0)
        return fail(where, "weight_offset " + std::to_string(offset) +
                               " is not aligned to its element size");
      if (!add(uint64_t(offset), elements * bytesPerElement, end) ||
          end > artifact_.weights_arena_bytes())
        return fail(where, "ends past the weights arena (" +
                               std::to_string(artifact_.weights_arena_bytes()) + " bytes)");
    } else if (offset != -1) {
      return fail(where, "weight_offset must be -1 or a byte offset, not " +
                             std::to_string(offset));
    }
    return true;
  }

  bool checkBuffers() {
    const auto *buffers = artifact_.buffers();
    if (!buffers)
      return fail("buffers", "missing");
    uint64_t perToken, arena;
    if (!multiply(artifact_.activation_arena_bytes_per_token(),
                  uint64_t(artifact_.model()->max_tokens()), perToken) ||
        !add(perToken, artifact_.activation_arena_fixed_bytes(), arena))
      return fail("activation arena", "size overflows");
    for (flatbuffers::uoffset_t i = 0; i < buffers->size(); ++i) {
      const fa::Buffer *buffer = buffers->Get(i);
      std::string where = "buffers[" + std::to_string(i) + "]";
      if (buffer->name())
        where += " ('" + buffer->name()->str() + "')";
      uint64_t bytes = buffer->fixed_bytes(), end;
      if (bytes == 0 &&
          !multiply(buffer->bytes_per_token(), uint64_t(artifact_.model()->max_tokens()), bytes))
        return fail(where, "size overflows");
      if (bytes == 0)
        return fail(where, "has no size (bytes_per_token and fixed_bytes are 0)");
      if (elementBytes(buffer->dtype()) == 0)
        return fail(where, std::string("dtype ") + dtypeName(buffer->dtype()) +
                               " is not supported by this runtime");
      if (!add(buffer->offset(), bytes, end) || end > arena)
        return fail(where, "bytes [" + std::to_string(buffer->offset()) + ", " +
                               std::to_string(buffer->offset() + bytes) +
                               ") at max_tokens lie outside the activation arena (" +
                               std::to_string(arena) + " bytes)");
    }
    return true;
  }

  bool checkKernels() {
    const auto *kernels = artifact_.kernels();
    if (!kernels)
      return fail("kernels", "missing");
    for (flatbuffers::uoffset_t i = 0; i < kernels->size(); ++i) {
      const fa::Kernel *kernel = kernels->Get(i);
      const std::string where = "kernels[" + std::to_string(i) + "]";
      if (!kernel->name() || kernel->name()->size() == 0)
        return fail(where, "has no name");
      if (!kernel->source() || kernel->source()->size() == 0)
        return fail(where + " ('" + kernel->name()->str() + "')", "has no source");
    }
    return true;
  }

  /// Bytes a buffer holds for its largest step: `rows` rows of `rowBytes`.
  bool bufferHolds(uint32_t index, fa::GridScale rows, uint64_t rowBytes) {
    const fa::Buffer *buffer = artifact_.buffers()->Get(index);
    if (buffer->fixed_bytes() == 0)
      return buffer->bytes_per_token() >= rowBytes;  // rows never exceed tokens
    const uint64_t maxRows = uint64_t(rows == fa::GridScale::sequences
                                          ? artifact_.model()->max_batch()
                                          : artifact_.model()->max_tokens());
    uint64_t need;
    return multiply(maxRows, rowBytes, need) && buffer->fixed_bytes() >= need;
  }

  /// A weight's view for the copy engine: what cuTensorMapEncodeTiled takes
  /// (rank, box, strides, alignment), and no element outside the weight.
  bool checkTensorMapView(const fa::Arg *arg, const std::string &where) {
    const uint32_t index = arg->index();
    if (index >= artifact_.weights()->size() ||
        artifact_.weights()->Get(index)->weight_offset() < 0)
      return fail(where, "tensor map of weight " + std::to_string(index) +
                             ", which is not a value in the weights arena");
    const fa::WeightValue *value = artifact_.weights()->Get(index);
    const std::string name = "tensor map of weight " + std::to_string(index) + " ('" +
                             (value->name() ? value->name()->str() : std::string()) + "')";
    const fa::TensorMapView *view = arg->view();
    if (!view || !view->dims() || !view->box())
      return fail(where, name + ": the view (dims, box) is missing");
    if (!aligned(view->dims()) || !aligned(view->strides()) || !aligned(view->box()))
      return fail(where, name + ": the view's arrays are misaligned (a corrupted file)");
    const size_t rank = view->dims()->size();
    const size_t strides = view->strides() ? view->strides()->size() : 0;
    if (rank < 1 || rank > 5 || view->box()->size() != rank || strides != rank - 1)
      return fail(where, name + ": a view has 1 to 5 dimensions, each with a box size, and a "
                                "stride for each but the first; this one has dims " +
                                join(view->dims()) + ", strides " + join(view->strides()) +
                                ", box " + join(view->box()));
    const uint64_t bytes = elementBytes(value->dtype());
    if (value->weight_offset() % 16 != 0)
      return fail(where, name + ": the weight starts at byte " +
                             std::to_string(value->weight_offset()) +
                             " of the arena; the copy engine needs 16-byte alignment");
    if (!isFloat(value->dtype()))
      return fail(where, name + ": the weight is " + dtypeName(value->dtype()) +
                             "; tensor maps here take f32, f16 or bf16");
    const uint32_t swizzle = view->swizzle_bytes();
    if (swizzle != 0 && swizzle != 32 && swizzle != 64 && swizzle != 128)
      return fail(where, name + ": swizzle_bytes must be 0, 32, 64 or 128, not " +
                             std::to_string(swizzle));
    const uint64_t innerBytes = uint64_t(view->box()->Get(0)) * bytes;
    if (innerBytes % 16 != 0 || (swizzle != 0 && innerBytes > swizzle))
      return fail(where, name + ": the box's first dimension is " + std::to_string(innerBytes) +
                             " bytes; it must be a multiple of 16" +
                             (swizzle ? " and at most the swizzle span of " +
                                            std::to_string(swizzle)
                                      : std::string()));
    // The furthest element the view reaches, which must lie inside the weight.
    uint64_t last = 0, elements = 1;
    for (size_t d = 0; d < rank; ++d) {
      const uint64_t dim = view->dims()->Get(flatbuffers::uoffset_t(d));
      const uint32_t box = view->box()->Get(flatbuffers::uoffset_t(d));
      if (dim == 0 || box == 0 || box > 256)
        return fail(where, name + ": dimension " + std::to_string(d) + " has " +
                               std::to_string(dim) + " elements and a box of " +
                               std::to_string(box) + "; both must be positive, the box at most 256");
      if (dim > (uint64_t(1) << 32))
        return fail(where, name + ": dimension " + std::to_string(d) + " has " +
                               std::to_string(dim) + " elements; the copy engine takes at most 2^32");
      const uint64_t stride = d == 0 ? 1 : view->strides()->Get(flatbuffers::uoffset_t(d - 1));
      uint64_t strideBytes, reach;
      if (d > 0 && (stride == 0 || !multiply(stride, bytes, strideBytes) || strideBytes % 16 != 0 ||
                    strideBytes >= (uint64_t(1) << 40)))
        return fail(where, name + ": the stride of dimension " + std::to_string(d) + " is " +
                               std::to_string(stride) +
                               " elements; it must be a positive multiple of 16 bytes below 2^40");
      if (!multiply(dim - 1, stride, reach) || !add(last, reach, last))
        return fail(where, name + ": dimension " + std::to_string(d) + " reaches past 2^64 elements");
    }
    for (int64_t dim : *value->shape())
      elements *= uint64_t(dim);
    if (last >= elements)
      return fail(where, name + ": the view reaches element " + std::to_string(last) +
                             ", but the weight has " + std::to_string(elements) + " (shape " +
                             join(value->shape()) + ")");
    return true;
  }

  bool checkArg(const fa::Arg *arg, const std::string &where) {
    if (!arg)
      return fail(where, "missing");
    const uint32_t index = arg->index();
    switch (arg->kind()) {
    case fa::ArgKind::buffer:
      if (index >= artifact_.buffers()->size())
        return fail(where, "buffer " + std::to_string(index) + " does not exist (" +
                               std::to_string(artifact_.buffers()->size()) + " buffers)");
      return true;
    case fa::ArgKind::weight:
      if (index >= artifact_.weights()->size())
        return fail(where, "weight " + std::to_string(index) + " does not exist (" +
                               std::to_string(artifact_.weights()->size()) + " weight values)");
      if (artifact_.weights()->Get(index)->weight_offset() < 0)
        return fail(where, "weight " + std::to_string(index) +
                               " is a load-time temporary, not in the weights arena");
      return true;
    case fa::ArgKind::k_cache:
    case fa::ArgKind::v_cache:
      if (int64_t(index) >= artifact_.model()->num_layers())
        return fail(where, "layer " + std::to_string(index) + " does not exist (" +
                               std::to_string(artifact_.model()->num_layers()) + " layers)");
      return true;
    case fa::ArgKind::step:
    case fa::ArgKind::num_tokens:
      return true;
    case fa::ArgKind::weight_tensor_map:
      return checkTensorMapView(arg, where);
    }
    return fail(where, "unknown argument kind " + std::to_string(int(arg->kind())));
  }

  /// The optional persistent decode program takes up to max_tokens tokens,
  /// as many as a decode step can have at most.
  bool checkPersistentDecode() {
    const fa::Step *step = artifact_.decode_persistent();
    if (!step)
      return true;
    const int maxTokens = step->max_tokens(), maxBatch = artifact_.model()->max_batch();
    if (maxTokens < 1 || maxTokens > maxBatch)
      return fail("decode_persistent.max_tokens", "must be in [1, max_batch " +
                                                      std::to_string(maxBatch) + "], not " +
                                                      std::to_string(maxTokens));
    return checkStep(step, "decode_persistent");
  }

  bool checkStep(const fa::Step *step, const char *stepName) {
    if (!step || !step->commands() || step->commands()->size() == 0)
      return fail(stepName, "missing or empty");
    for (flatbuffers::uoffset_t i = 0; i < step->commands()->size(); ++i) {
      const std::string where = std::string(stepName) + ".commands[" + std::to_string(i) + "]";
      const fa::CommandEntry *entry = step->commands()->Get(i);
      switch (entry->command_type()) {
      case fa::Command::Launch:
        if (!checkLaunch(entry->command_as_Launch(), where))
          return false;
        break;
      case fa::Command::Gemm:
        if (!checkGemm(entry->command_as_Gemm(), where))
          return false;
        break;
      case fa::Command::Collective:
        return fail(where, "collectives need a multi-GPU runtime; this one runs on one GPU");
      default:
        return fail(where, "empty or unknown command");
      }
    }
    return true;
  }

  bool checkLaunch(const fa::Launch *launch, std::string where) {
    if (launch->kernel() >= artifact_.kernels()->size())
      return fail(where, "kernel " + std::to_string(launch->kernel()) + " does not exist (" +
                             std::to_string(artifact_.kernels()->size()) + " kernels)");
    where += " (launch of '" + artifact_.kernels()->Get(launch->kernel())->name()->str() + "')";
    const auto *grid = launch->grid();
    const auto *block = launch->block();
    if (!grid || grid->size() != 3 || !block || block->size() != 3)
      return fail(where, "grid and block need 3 entries each");
    uint64_t threads = 1;
    for (flatbuffers::uoffset_t d = 0; d < 3; ++d) {
      if (grid->Get(d) == 0 || block->Get(d) == 0)
        return fail(where, "grid " + join(grid) + " and block " + join(block) +
                               " must be positive");
      threads *= block->Get(d);
    }
    if (threads > 1024)
      return fail(where, "block " + join(block) + " has more than 1024 threads");
    if (launch->scale() > fa::GridScale::MAX)
      return fail(where, "unknown grid scale");
    if (launch->scale() == fa::GridScale::query_tiles && launch->tile() == 0)
      return fail(where, "query_tiles needs a positive tile");
    if (const auto *args = launch->args())
      for (flatbuffers::uoffset_t a = 0; a < args->size(); ++a)
        if (!checkArg(args->Get(a), where + ".args[" + std::to_string(a) + "]"))
          return false;
    return true;
  }

  bool checkGemm(const fa::Gemm *gemm, std::string where) {
    if (gemm->name())
      where += " (gemm '" + gemm->name()->str() + "')";
    if (!isFloat(gemm->dtype()))
      return fail(where, std::string("dtype ") + dtypeName(gemm->dtype()) + " is not supported");
    if (gemm->n() <= 0 || gemm->k() <= 0)
      return fail(where, "n and k must be positive");
    if (gemm->rows() != fa::GridScale::tokens && gemm->rows() != fa::GridScale::sequences)
      return fail(where, "rows must be 'tokens' or 'sequences'");
    if (!checkArg(gemm->a(), where + ".a") || !checkArg(gemm->b(), where + ".b") ||
        !checkArg(gemm->c(), where + ".c") ||
        (gemm->bias() && !checkArg(gemm->bias(), where + ".bias")))
      return false;
    const uint64_t es = elementBytes(gemm->dtype());
    for (const auto &[arg, field, columns] :
         {std::tuple{gemm->a(), "a", gemm->k()}, std::tuple{gemm->c(), "c", gemm->n()}}) {
      if (arg->kind() != fa::ArgKind::buffer)
        return fail(where + "." + field, "must be an activation buffer");
      const fa::Buffer *buffer = artifact_.buffers()->Get(arg->index());
      if (buffer->dtype() != gemm->dtype())
        return fail(where + "." + field, std::string("buffer dtype ") +
                                             dtypeName(buffer->dtype()) + " is not the gemm's " +
                                             dtypeName(gemm->dtype()));
      if (!bufferHolds(arg->index(), gemm->rows(), uint64_t(columns) * es))
        return fail(where + "." + field, "buffer " + std::to_string(arg->index()) +
                                             " is too small for " + std::to_string(columns) +
                                             " columns per row");
    }
    auto checkWeightShape = [&](const fa::Arg *arg, const char *field,
                                std::vector<int64_t> expected) {
      if (arg->kind() != fa::ArgKind::weight)
        return fail(where + "." + field, "must be a weight");
      const fa::WeightValue *value = artifact_.weights()->Get(arg->index());
      std::vector<int64_t> shape(value->shape()->begin(), value->shape()->end());
      if (shape != expected || value->dtype() != gemm->dtype())
        return fail(where + "." + field, "weight " + std::to_string(arg->index()) + " is " +
                                             dtypeName(value->dtype()) + " " + join(shape) +
                                             ", not " + dtypeName(gemm->dtype()) + " " +
                                             join(expected));
      return true;
    };
    return checkWeightShape(gemm->b(), "b", {gemm->n(), gemm->k()}) &&
           (!gemm->bias() || checkWeightShape(gemm->bias(), "bias", {gemm->n()}));
  }

  bool checkLogits() {
    const uint32_t index = artifact_.logits();
    if (index >= artifact_.buffers()->size())
      return fail("logits", "buffer " + std::to_string(index) + " does not exist");
    const fa::Buffer *buffer = artifact_.buffers()->Get(index);
    if (buffer->dtype() != fa::DType::f32)
      return fail("logits", "buffer must be f32, not " + std::string(dtypeName(buffer->dtype())));
    if (!bufferHolds(index, fa::GridScale::sequences,
                     uint64_t(artifact_.model()->vocab_size()) * 4))
      return fail("logits", "buffer " + std::to_string(index) + " cannot hold " +
                                std::to_string(artifact_.model()->max_batch()) + " rows of " +
                                std::to_string(artifact_.model()->vocab_size()) + " logits");
    return true;
  }

  const fa::Artifact &artifact_;
  const std::string &name_;
  std::string &error_;
};

} // namespace

Artifact::Artifact(std::vector<uint8_t> bytes, std::string name)
    : bytes_(std::move(bytes)), name_(std::move(name)) {}

std::unique_ptr<Artifact> Artifact::open(const std::string &path, std::string &error) {
  FILE *file = std::fopen(path.c_str(), "rb");
  if (!file) {
    error = "cannot open artifact " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(file);
  std::fclose(file);
  if (failed) {
    error = "cannot read artifact " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  return fromBytes(std::move(bytes), path, error);
}

std::unique_ptr<Artifact> Artifact::fromBytes(std::vector<uint8_t> bytes, const std::string &name,
                                              std::string &error) {
  // Identifier first: a file of another format version may not even parse
  // under this schema, and saying "version 2" beats saying "corrupted".
  if (bytes.size() < 8) {
    error = name + ": not a kiln artifact (only " + std::to_string(bytes.size()) +
            " bytes; truncated?)";
    return nullptr;
  }
  const char *identifier = reinterpret_cast<const char *>(bytes.data()) + 4;
  if (std::memcmp(identifier, "KLN", 3) != 0) {
    std::string shown;
    for (int i = 0; i < 4; ++i)
      shown += std::isprint(static_cast<unsigned char>(identifier[i])) ? identifier[i] : '?';
    error = name + ": not a kiln artifact (file identifier '" + shown + "', expected 'KLN" +
            std::to_string(kArtifactVersion) + "')";
    return nullptr;
  }
  if (identifier[3] != char('0' + kArtifactVersion)) {
    error = name + ": artifact format version '" + std::string(1, identifier[3]) +
            "', but this runtime reads version " + std::to_string(kArtifactVersion) +
            "; compile the model again with a matching kiln-compile";
    return nullptr;
  }
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!fa::VerifyArtifactBuffer(verifier)) {
    error = name + ": truncated or corrupted artifact (" + std::to_string(bytes.size()) +
            " bytes fail the FlatBuffers verifier)";
    return nullptr;
  }
  std::unique_ptr<Artifact> result(new Artifact(std::move(bytes), name));
  result->artifact_ = fa::GetArtifact(result->bytes_.data());
  if (result->artifact_->version() != kArtifactVersion) {
    error = name + ": artifact version " + std::to_string(result->artifact_->version()) +
            ", but this runtime reads version " + std::to_string(kArtifactVersion) +
            "; compile the model again with a matching kiln-compile";
    return nullptr;
  }
  if (!Checker(*result->artifact_, name, error).run())
    return nullptr;
  return result;
}

uint64_t Artifact::activationArenaBytes() const {
  return artifact_->activation_arena_bytes_per_token() * uint64_t(model().max_tokens()) +
         artifact_->activation_arena_fixed_bytes();
}

uint64_t Artifact::kvCacheBytesPerLayer() const {
  const artifact::ModelInfo &m = model();
  return uint64_t(m.max_batch()) * uint64_t(m.max_seq_len()) * uint64_t(m.num_kv_heads()) *
         uint64_t(m.head_dim()) * elementBytes(m.dtype());
}

uint64_t Artifact::bufferBytes(uint32_t index, uint64_t tokens) const {
  const artifact::Buffer *buffer = artifact_->buffers()->Get(index);
  return buffer->fixed_bytes() ? buffer->fixed_bytes() : buffer->bytes_per_token() * tokens;
}

bool runtime::checkDeviceSupport(const Artifact &artifact, int major, int minor,
                                 const std::string &device, std::string &error) {
  const std::string arch = smName(major, minor);
  if (major < 8) {
    error = device + " is " + arch + "; kiln needs compute capability 8.0 (sm_80, Ampere) or newer";
    return false;
  }
  const auto *archs = artifact.model().target_archs();
  if (!archs || archs->size() == 0)
    return true;
  std::string listed;
  for (const auto *name : *archs) {
    if (name->str() == arch)
      return true;
    listed += (listed.empty() ? "" : ", ") + name->str();
  }
  error = artifact.name() + " was compiled for " + listed + ", but " + device + " is " + arch +
          "; compile it again for this GPU";
  return false;
}
