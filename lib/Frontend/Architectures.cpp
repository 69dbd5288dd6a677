//===- Architectures.cpp - Hugging Face classes kiln can import -----------===//
//
// One describe function per Hugging Face class reads that class's config
// fields (with transformers' defaults) and fills a ModelDescription: sizes,
// block kinds, quirks, checkpoint tensor names. The decoder builder then
// builds every architecture the same way. Defaults and field names follow
// transformers 5.17 (configuration_*.py / modeling_*.py); legacy spellings
// that older config.json files use are accepted too.
//
//===----------------------------------------------------------------------===//

#include "Architectures.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace kiln;

namespace {

/// More layers than any real model has; a larger count is a broken config
/// that would only make the importer build a huge program.
constexpr int64_t kMaxLayers = 4096;

/// A config number as people write it: 0.3125, 8, 1e-05.
std::string number(double value) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%g", value);
  return text;
}

/// The first of `keys` that the config writes (the names a class's
/// attribute_map makes equivalent); the first key when none is written, so
/// that a missing-field error names the usual spelling.
StringRef keyOf(const ConfigReader &config, std::initializer_list<StringRef> keys) {
  for (StringRef key : keys)
    if (config.has(key))
      return key;
  return *keys.begin();
}

/// Hugging Face activation names (transformers.activations.ACT2FN).
void readActivation(const ConfigReader &config, StringRef key, StringRef fallback,
                    ModelDescription &model) {
  std::string name = config.optionalString(key).value_or(fallback.str());
  static const std::pair<StringRef, tfm::Activation> kActivations[] = {
      {"silu", tfm::Activation::silu},
      {"swish", tfm::Activation::silu},
      {"gelu", tfm::Activation::gelu},
      {"gelu_python", tfm::Activation::gelu},
      {"gelu_new", tfm::Activation::gelu_tanh},
      {"gelu_fast", tfm::Activation::gelu_tanh},
      {"gelu_pytorch_tanh", tfm::Activation::gelu_tanh},
      {"gelu_python_tanh", tfm::Activation::gelu_tanh},
  };
  for (auto [spelling, activation] : kActivations) {
    if (name == spelling) {
      model.activation = activation;
      return;
    }
  }
  config.error(key) << "activation '" << name << "' in field '" << config.fieldName(key)
                    << "' is not supported; kiln supports "
                    << llvm::join(
                           llvm::map_range(kActivations, [](auto entry) { return entry.first; }),
                           ", ");
}

/// torch_dtype (transformers 4) or dtype (transformers 5): the weights'
/// element type when there is no checkpoint to read it from.
void readDtype(const ConfigReader &config, ModelDescription &model) {
  StringRef key = keyOf(config, {"dtype", "torch_dtype"});
  std::optional<std::string> name = config.optionalString(key);
  if (!name || *name == "float32" || *name == "float")
    model.configDtype = DType::F32;
  else if (*name == "float16" || *name == "half")
    model.configDtype = DType::F16;
  else if (*name == "bfloat16")
    model.configDtype = DType::BF16;
  else
    config.error(key) << "field '" << key << "' is '" << *name
                      << "'; kiln supports float32, float16 and bfloat16";
}

/// hidden_size / num_heads, when the config does not give head_dim.
void deriveHeadDim(const ConfigReader &config, StringRef hiddenKey, StringRef headsKey,
                   ModelDescription &model) {
  if (model.hiddenSize % model.numHeads != 0) {
    config.error(headsKey) << "'" << hiddenKey << "' (" << model.hiddenSize
                           << ") is not divisible by '" << headsKey << "' (" << model.numHeads
                           << "), so head_dim cannot be derived";
    return;
  }
  model.headDim = model.hiddenSize / model.numHeads;
}

void checkGroups(const ConfigReader &config, StringRef kvHeadsKey, const ModelDescription &model) {
  if (model.numHeads % model.numKvHeads != 0)
    config.error(kvHeadsKey) << "'num_attention_heads' (" << model.numHeads
                             << ") is not divisible by '" << kvHeadsKey << "' (" << model.numKvHeads
                             << ")";
}

/// How a neox-style RoPE architecture spells its settings.
struct RopeFields {
  /// Whether partial_rotary_factor applies (GPT-NeoX); Llama-style default
  /// RoPE always rotates the whole head.
  bool partial = false;
  double defaultPartial = 1.0;
  /// Legacy top-level spellings of rope_theta and partial_rotary_factor.
  StringRef legacyTheta, legacyPartial;
};

/// RoPE from `rope_parameters` (transformers 5) or `rope_scaling` +
/// `rope_theta` (transformers 4), as modeling_rope_utils reads them.
void readRope(const ConfigReader &config, const RopeFields &fields, ModelDescription &model) {
  // transformers prefers rope_scaling when both are written.
  std::optional<ConfigReader> params = config.optionalObject("rope_scaling");
  if (!params)
    params = config.optionalObject("rope_parameters");
  RopeDescription rope;

  std::optional<double> theta = params ? params->optionalPositive("rope_theta") : std::nullopt;
  if (!theta)
    theta = config.optionalPositive("rope_theta");
  if (!theta && !fields.legacyTheta.empty())
    theta = config.optionalPositive(fields.legacyTheta);
  rope.theta = theta.value_or(10000.0);

  if (!fields.partial && model.headDim % 2 != 0)
    config.error(config.has("head_dim") ? "head_dim" : "num_attention_heads")
        << "RoPE rotates pairs of dimensions, but head_dim (" << model.headDim << ") is odd";
  rope.rotaryDim = model.headDim;
  if (fields.partial) {
    // Where the factor came from, for errors.
    const ConfigReader *source = &config;
    StringRef key = "partial_rotary_factor";
    if (params && params->has(key))
      source = &*params;
    else if (!fields.legacyPartial.empty() && config.has(fields.legacyPartial))
      key = fields.legacyPartial;
    double factor = source->positiveOr(key, fields.defaultPartial);
    // Python's int(head_dim * partial_rotary_factor).
    rope.rotaryDim = static_cast<int64_t>(static_cast<double>(model.headDim) * factor);
    if (rope.rotaryDim <= 0 || rope.rotaryDim % 2 != 0 || rope.rotaryDim > model.headDim)
      source->error(key) << "'" << source->fieldName(key) << "' (" << number(factor)
                         << ") gives rotary dimension " << rope.rotaryDim << " for head_dim "
                         << model.headDim << "; it must be even, positive and at most head_dim";
  }

  StringRef typeKey =
      params && params->has("type") && !params->has("rope_type") ? "type" : "rope_type";
  std::string type = params ? params->optionalString(typeKey).value_or("default") : "default";
  if (type == "linear") {
    rope.scaling = tfm::RopeScaling::linear;
    rope.factor = params->requiredPositive("factor");
  } else if (type == "llama3") {
    rope.scaling = tfm::RopeScaling::llama3;
    rope.factor = params->requiredPositive("factor");
    rope.lowFreqFactor = params->requiredPositive("low_freq_factor");
    rope.highFreqFactor = params->requiredPositive("high_freq_factor");
    // transformers lets a top-level original_max_position_embeddings win.
    std::optional<int64_t> original = config.optionalSize("original_max_position_embeddings");
    if (!original)
      original = params->optionalSize("original_max_position_embeddings");
    if (!original)
      original = model.maxPositions;
    if (!original)
      params->error(typeKey) << "llama3 rope scaling needs original_max_position_embeddings "
                                "(or max_position_embeddings)";
    rope.originalMaxPosition = original.value_or(1);
    if (!(rope.lowFreqFactor < rope.highFreqFactor))
      params->error("high_freq_factor")
          << "llama3 rope scaling needs low_freq_factor (" << number(rope.lowFreqFactor)
          << ") < high_freq_factor (" << number(rope.highFreqFactor) << ")";
  } else if (type != "default") {
    params->error(typeKey) << "rope type '" << type << "' in field '" << params->fieldName(typeKey)
                           << "' is not supported; kiln supports default, linear and llama3";
  }
  model.rope = rope;
}

/// hidden_size, num_hidden_layers, num_attention_heads, vocab_size and
/// max_position_embeddings under their usual names.
void readStandardSizes(const ConfigReader &config, ModelDescription &model) {
  model.hiddenSize = config.requiredSize("hidden_size");
  model.numLayers = config.requiredSize("num_hidden_layers");
  model.numHeads = config.requiredSize("num_attention_heads");
  model.vocabSize = config.requiredSize("vocab_size");
  model.maxPositions = config.optionalSize("max_position_embeddings");
}

/// The sizes that GPT-2 era configs spell in several ways (n_embd, n_head,
/// n_layer or the usual names), each looked up in the given order. Returns the
/// keys read for the hidden size and the heads, which errors name.
std::pair<StringRef, StringRef> readAliasedSizes(const ConfigReader &config,
                                                 ModelDescription &model,
                                                 std::initializer_list<StringRef> hiddenKeys,
                                                 std::initializer_list<StringRef> layerKeys,
                                                 std::initializer_list<StringRef> headKeys) {
  StringRef hiddenKey = keyOf(config, hiddenKeys), headsKey = keyOf(config, headKeys);
  model.hiddenSize = config.requiredSize(hiddenKey);
  model.numLayers = config.requiredSize(keyOf(config, layerKeys));
  model.numHeads = config.requiredSize(headsKey);
  model.vocabSize = config.requiredSize("vocab_size");
  return {hiddenKey, headsKey};
}

//===----------------------------------------------------------------------===//
// Llama, Mistral, Qwen2: RMSNorm, SwiGLU, separate q/k/v, RoPE, GQA
//===----------------------------------------------------------------------===//

TensorNames llamaNames() {
  TensorNames names;
  names.embedding = "model.embed_tokens";
  names.layers = "model.layers.";
  names.attentionNorm = "input_layernorm";
  names.query = "self_attn.q_proj";
  names.key = "self_attn.k_proj";
  names.value = "self_attn.v_proj";
  names.attentionOut = "self_attn.o_proj";
  names.mlpNorm = "post_attention_layernorm";
  names.mlpGate = "mlp.gate_proj";
  names.mlpUp = "mlp.up_proj";
  names.mlpDown = "mlp.down_proj";
  names.finalNorm = "model.norm";
  names.lmHead = "lm_head";
  names.basePrefix = "model.";
  return names;
}

/// What the Llama-family classes share; each caller adds biases and windows.
void readLlamaFamily(const ConfigReader &config, ModelDescription &model) {
  readStandardSizes(config, model);
  model.intermediateSize = config.requiredSize("intermediate_size");
  model.numKvHeads = config.sizeOr("num_key_value_heads", model.numHeads);
  if (std::optional<int64_t> headDim = config.optionalSize("head_dim"))
    model.headDim = *headDim;
  else if (!config.failed())
    deriveHeadDim(config, "hidden_size", "num_attention_heads", model);
  if (config.failed())
    return;
  checkGroups(config, "num_key_value_heads", model);
  model.norm = NormKind::RmsNorm;
  model.normEpsilon = config.positiveOr("rms_norm_eps", 1e-6);
  model.mlp = MlpKind::Gated;
  readActivation(config, "hidden_act", "silu", model);
  model.residual = ResidualStyle::Sequential;
  model.qkvLayout = QkvLayout::Separate;
  readRope(config, RopeFields(), model);
  model.tiedEmbeddings = config.boolOr("tie_word_embeddings", false);
  model.names = llamaNames();
}

void describeLlama(const ConfigReader &config, ModelDescription &model) {
  readLlamaFamily(config, model);
  model.qkvBias = model.attentionOutBias = config.boolOr("attention_bias", false);
  model.mlpBias = config.boolOr("mlp_bias", false);
}

/// sliding_window as MistralConfig and Qwen2Config default it: 4096 when
/// absent, no window when null.
std::optional<int64_t> readSlidingWindow(const ConfigReader &config) {
  if (!config.contains("sliding_window"))
    return 4096;
  return config.optionalSize("sliding_window");
}

void describeMistral(const ConfigReader &config, ModelDescription &model) {
  readLlamaFamily(config, model);
  if (std::optional<int64_t> window = readSlidingWindow(config))
    model.slidingWindows.assign(model.numLayers, window);
}

/// Qwen2 windows only some layers: those that `layer_types` marks, or by
/// default the layers from max_window_layers on, and only with
/// use_sliding_window.
void describeQwen2(const ConfigReader &config, ModelDescription &model) {
  readLlamaFamily(config, model);
  model.qkvBias = true;
  if (!config.boolOr("use_sliding_window", false) || config.failed())
    return;
  std::optional<int64_t> window = readSlidingWindow(config);
  if (!window)
    return;
  model.slidingWindows.assign(model.numLayers, std::nullopt);
  if (std::optional<std::vector<std::string>> types = config.optionalStringList("layer_types")) {
    if (static_cast<int64_t>(types->size()) != model.numLayers) {
      config.error("layer_types") << "'layer_types' has " << types->size()
                                  << " entries but the model has " << model.numLayers << " layers";
      return;
    }
    for (auto [layer, type] : llvm::enumerate(*types)) {
      if (type == "sliding_attention")
        model.slidingWindows[layer] = window;
      else if (type != "full_attention")
        config.error("layer_types") << "layer type '" << type << "' in 'layer_types' is not "
                                    << "supported; kiln supports full_attention and "
                                       "sliding_attention";
    }
    return;
  }
  int64_t firstWindowed = config.countOr("max_window_layers", 28);
  for (int64_t layer = firstWindowed; layer < model.numLayers; ++layer)
    model.slidingWindows[layer] = window;
}

//===----------------------------------------------------------------------===//
// GPT-NeoX, GPT-J, Bloom, Falcon: LayerNorm, plain MLP
//===----------------------------------------------------------------------===//

/// Names shared by Bloom and Falcon ("transformer.h.N.self_attention...").
TensorNames bloomStyleNames() {
  TensorNames names;
  names.embedding = "transformer.word_embeddings";
  names.layers = "transformer.h.";
  names.attentionNorm = "input_layernorm";
  names.mlpNorm = "post_attention_layernorm";
  names.qkv = "self_attention.query_key_value";
  names.attentionOut = "self_attention.dense";
  names.mlpUp = "mlp.dense_h_to_4h";
  names.mlpDown = "mlp.dense_4h_to_h";
  names.finalNorm = "transformer.ln_f";
  names.lmHead = "lm_head";
  names.basePrefix = "transformer.";
  return names;
}

void describeGptNeox(const ConfigReader &config, ModelDescription &model) {
  readStandardSizes(config, model);
  model.intermediateSize = config.requiredSize("intermediate_size");
  if (config.failed())
    return;
  model.numKvHeads = model.numHeads;
  deriveHeadDim(config, "hidden_size", "num_attention_heads", model);
  if (config.failed())
    return;
  model.norm = NormKind::LayerNorm;
  model.normEpsilon = config.positiveOr("layer_norm_eps", 1e-5);
  model.mlp = MlpKind::Plain;
  readActivation(config, "hidden_act", "gelu", model);
  model.residual = config.boolOr("use_parallel_residual", true) ? ResidualStyle::ParallelTwoNorms
                                                                : ResidualStyle::Sequential;
  model.qkvLayout = QkvLayout::FusedGrouped;
  model.qkvBias = model.attentionOutBias = config.boolOr("attention_bias", true);
  model.mlpBias = true;
  RopeFields rope;
  rope.partial = true;
  rope.defaultPartial = 0.25;
  rope.legacyTheta = "rotary_emb_base";
  rope.legacyPartial = "rotary_pct";
  readRope(config, rope, model);
  model.tiedEmbeddings = config.boolOr("tie_word_embeddings", false);

  TensorNames &names = model.names;
  names.embedding = "gpt_neox.embed_in";
  names.layers = "gpt_neox.layers.";
  names.attentionNorm = "input_layernorm";
  names.mlpNorm = "post_attention_layernorm";
  names.qkv = "attention.query_key_value";
  names.attentionOut = "attention.dense";
  names.mlpUp = "mlp.dense_h_to_4h";
  names.mlpDown = "mlp.dense_4h_to_h";
  names.finalNorm = "gpt_neox.final_layer_norm";
  names.lmHead = "embed_out";
  names.lmHeadAlias = "lm_head";
  names.basePrefix = "gpt_neox.";
}

void describeGptj(const ConfigReader &config, ModelDescription &model) {
  auto [hiddenKey, headsKey] =
      readAliasedSizes(config, model, {"n_embd", "hidden_size"}, {"n_layer", "num_hidden_layers"},
                       {"n_head", "num_attention_heads"});
  model.maxPositions =
      config.optionalSize(keyOf(config, {"n_positions", "max_position_embeddings"}));
  if (config.failed())
    return;
  model.intermediateSize = config.sizeOr("n_inner", 4 * model.hiddenSize);
  model.numKvHeads = model.numHeads;
  deriveHeadDim(config, hiddenKey, headsKey, model);
  if (config.failed())
    return;
  model.norm = NormKind::LayerNorm;
  model.normEpsilon = config.positiveOr("layer_norm_epsilon", 1e-5);
  model.mlp = MlpKind::Plain;
  readActivation(config, "activation_function", "gelu_new", model);
  model.residual = ResidualStyle::ParallelOneNorm;
  model.qkvLayout = QkvLayout::Separate;
  model.mlpBias = true;
  // GPT-J rotates pairs (2i, 2i + 1) of the first rotary_dim dimensions with
  // a fixed base of 10000.
  RopeDescription rope;
  rope.style = tfm::RopeStyle::gptj;
  rope.rotaryDim = config.sizeOr("rotary_dim", model.headDim);
  if (rope.rotaryDim % 2 != 0 || rope.rotaryDim > model.headDim)
    config.error("rotary_dim") << "'rotary_dim' (" << rope.rotaryDim
                               << ") must be even and at most head_dim (" << model.headDim << ")";
  model.rope = rope;
  model.tiedEmbeddings = config.boolOr("tie_word_embeddings", false);
  model.lmHeadBias = true;

  TensorNames &names = model.names;
  names.embedding = "transformer.wte";
  names.layers = "transformer.h.";
  names.attentionNorm = "ln_1";
  names.query = "attn.q_proj";
  names.key = "attn.k_proj";
  names.value = "attn.v_proj";
  names.attentionOut = "attn.out_proj";
  names.mlpUp = "mlp.fc_in";
  names.mlpDown = "mlp.fc_out";
  names.finalNorm = "transformer.ln_f";
  names.lmHead = "lm_head";
  names.basePrefix = "transformer.";
}

void describeBloom(const ConfigReader &config, ModelDescription &model) {
  auto [hiddenKey, headsKey] =
      readAliasedSizes(config, model, {"hidden_size", "n_embed"}, {"n_layer", "num_hidden_layers"},
                       {"n_head", "num_attention_heads"});
  if (config.failed())
    return;
  model.intermediateSize = 4 * model.hiddenSize;
  model.numKvHeads = model.numHeads;
  deriveHeadDim(config, hiddenKey, headsKey, model);
  model.norm = NormKind::LayerNorm;
  model.normEpsilon = config.positiveOr("layer_norm_epsilon", 1e-5);
  model.mlp = MlpKind::Plain;
  model.activation = tfm::Activation::gelu_tanh; // BloomGelu, whatever the config says
  model.residual = ResidualStyle::Sequential;
  model.residualFromNorm = config.boolOr("apply_residual_connection_post_layernorm", false);
  model.qkvLayout = QkvLayout::FusedGrouped;
  model.qkvBias = model.attentionOutBias = model.mlpBias = true;
  model.alibi = true;
  model.embeddingNorm = true;
  model.tiedEmbeddings = config.boolOr("tie_word_embeddings", true);
  model.names = bloomStyleNames();
  model.names.embeddingNorm = "transformer.word_embeddings_layernorm";
}

/// Falcon's three layouts of one class: the original one (multi-query or
/// not, parallel_attn or sequential) and new_decoder_architecture (grouped
/// kv heads, always parallel, one or two norms).
void describeFalcon(const ConfigReader &config, ModelDescription &model) {
  auto [hiddenKey, headsKey] =
      readAliasedSizes(config, model, {"hidden_size", "n_embed"}, {"num_hidden_layers", "n_layer"},
                       {"num_attention_heads", "n_head"});
  model.maxPositions = config.optionalSize("max_position_embeddings");
  if (config.failed())
    return;
  model.intermediateSize = config.sizeOr("ffn_hidden_size", 4 * model.hiddenSize);
  deriveHeadDim(config, hiddenKey, headsKey, model);
  bool newArchitecture = config.boolOr("new_decoder_architecture", false);
  bool parallel = config.boolOr("parallel_attn", true);
  // new_decoder_architecture configs still say multi_query: true; it only
  // matters for the original layout.
  if (newArchitecture)
    model.numKvHeads = config.sizeOr("num_kv_heads", model.numHeads);
  else
    model.numKvHeads = config.boolOr("multi_query", true) ? 1 : model.numHeads;
  if (config.failed())
    return;
  checkGroups(config, "num_kv_heads", model);

  model.norm = NormKind::LayerNorm;
  model.normEpsilon = config.positiveOr("layer_norm_epsilon", 1e-5);
  model.mlp = MlpKind::Plain;
  readActivation(config, "activation", "gelu", model);
  model.qkvLayout = QkvLayout::FusedGrouped;
  model.qkvBias = model.attentionOutBias = model.mlpBias = config.boolOr("bias", false);
  model.tiedEmbeddings = config.boolOr("tie_word_embeddings", true);
  model.names = bloomStyleNames();

  if (config.boolOr("alibi", false)) {
    // Falcon adds its ALiBi bias before the 1/sqrt(head_dim) scale and rounds
    // the slopes to bfloat16; tfm.alibi_bias adds exact slopes after it.
    config.error("alibi") << "Falcon with 'alibi': true is not supported: its ALiBi slopes "
                             "are rounded to bfloat16 and scaled by 1/sqrt(head_dim), which "
                             "tfm.alibi_bias does not express";
    return;
  }
  readRope(config, RopeFields(), model);

  if (newArchitecture) {
    if (!parallel) {
      config.error("parallel_attn") << "'new_decoder_architecture' needs 'parallel_attn': true "
                                       "(transformers cannot run this combination either)";
      return;
    }
    int64_t norms = config.sizeOr("num_ln_in_parallel_attn", 2);
    if (norms == 2) {
      model.residual = ResidualStyle::ParallelTwoNorms;
      model.names.attentionNorm = "ln_attn";
      model.names.mlpNorm = "ln_mlp";
    } else if (norms == 1) {
      model.residual = ResidualStyle::ParallelOneNorm;
      model.names.mlpNorm = "";
    } else {
      config.error("num_ln_in_parallel_attn")
          << "'num_ln_in_parallel_attn' must be 1 or 2, got " << norms;
    }
  } else if (parallel) {
    model.residual = ResidualStyle::ParallelOneNorm;
    model.names.mlpNorm = "";
  } else {
    model.residual = ResidualStyle::Sequential;
  }
}

struct Architecture {
  const char *name;
  void (*describe)(const ConfigReader &config, ModelDescription &model);
};

const Architecture kArchitectures[] = {
    {"LlamaForCausalLM", describeLlama},   {"MistralForCausalLM", describeMistral},
    {"Qwen2ForCausalLM", describeQwen2},   {"GPTNeoXForCausalLM", describeGptNeox},
    {"GPTJForCausalLM", describeGptj},     {"BloomForCausalLM", describeBloom},
    {"FalconForCausalLM", describeFalcon},
};

} // namespace

std::vector<std::string> kiln::architectureNames() {
  std::vector<std::string> names;
  for (const Architecture &architecture : kArchitectures)
    names.push_back(architecture.name);
  return names;
}

LogicalResult kiln::describeModel(const ConfigReader &config, ModelDescription &model) {
  if (config.failed())
    return failure();
  std::optional<std::vector<std::string>> classes = config.optionalStringList("architectures");
  if (config.failed())
    return failure();
  if (!classes || classes->empty())
    return config.error("architectures")
           << "field 'architectures' must name the model class; kiln supports "
           << llvm::join(architectureNames(), ", ");
  // transformers instantiates the first class the list names.
  const std::string &name = classes->front();
  const Architecture *architecture = llvm::find_if(
      kArchitectures, [&](const Architecture &candidate) { return name == candidate.name; });
  if (architecture == std::end(kArchitectures))
    return config.error("architectures") << "unknown architecture '" << name << "'; kiln supports "
                                         << llvm::join(architectureNames(), ", ");
  model.architecture = name;
  architecture->describe(config, model);
  readDtype(config, model);
  if (!config.failed() && model.numLayers > kMaxLayers)
    config.error(keyOf(config, {"num_hidden_layers", "n_layer"}))
        << "the model has " << model.numLayers << " layers; kiln compiles at most " << kMaxLayers;
  return failure(config.failed());
}
