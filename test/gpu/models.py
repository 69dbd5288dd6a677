"""The models of kiln's GPU test: one per architecture variant the frontend
supports, wider and deeper than the CI fixtures (hidden 1024, 4 layers,
realistic head counts, a 32000-token vocabulary).

Each config is the CI fixture's config.json (as transformers wrote it) with
the sizes below, so kiln-compile (here) and transformers (on the GPU machine)
read the very same file. Needs only the standard library.
"""

import copy
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures")

HIDDEN = 1024
LAYERS = 4
VOCAB = 32000
MAX_POSITIONS = 2048

# Artifact limits: batch 4, and room for the longest prompt plus 64 decode steps.
# The batch's long prompt makes decode attention split its keys over blocks
# and combine them (contexts over 512 keys), next to sequences that do not.
MAX_BATCH = 4
MAX_SEQ_LEN = 1100
DECODE_STEPS = 64
PROMPT_LENGTHS_BATCH = (7, 19, 40, 1000)
PROMPT_LENGTH_SINGLE = 23

# name -> (fixture whose config is the template, overrides, tied embeddings)
MODELS = {
    "llama": ("llama", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=16,
                            num_key_value_heads=4, head_dim=64, intermediate_size=2816), False),
    "llama3": ("llama3", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=8,
                              num_key_value_heads=2, head_dim=128, intermediate_size=3584,
                              tie_word_embeddings=False,
                              rope_parameters={"factor": 8.0, "high_freq_factor": 4.0,
                                               "low_freq_factor": 1.0,
                                               "original_max_position_embeddings": 64,
                                               "rope_theta": 500000.0, "rope_type": "llama3"}),
               False),
    # A window shorter than the sequences, so that it matters in prefill and decode.
    "mistral": ("mistral", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                num_attention_heads=16, num_key_value_heads=4, head_dim=64,
                                intermediate_size=2816, sliding_window=48), False),
    "qwen2": ("qwen2", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=16,
                            num_key_value_heads=2, intermediate_size=2816,
                            layer_types=["full_attention"] * LAYERS), True),
    "gpt_neox": ("gpt_neox", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                  num_attention_heads=16, intermediate_size=4 * HIDDEN), False),
    "gpt_neox_seq": ("gpt_neox_seq", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                          num_attention_heads=16, intermediate_size=4 * HIDDEN),
                     False),
    "gptj": ("gptj", dict(n_embd=HIDDEN, n_layer=LAYERS, n_head=16, rotary_dim=32,
                          n_positions=MAX_POSITIONS), False),
    "bloom": ("bloom", dict(hidden_size=HIDDEN, n_layer=LAYERS, n_head=16,
                            tie_word_embeddings=False), False),
    "falcon_mqa": ("falcon_mqa", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                      num_attention_heads=16, ffn_hidden_size=4 * HIDDEN,
                                      tie_word_embeddings=False), False),
    "falcon_gqa": ("falcon_gqa", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                      num_attention_heads=16, num_kv_heads=4,
                                      ffn_hidden_size=4 * HIDDEN, tie_word_embeddings=False),
                   False),
}

DTYPES = ("fp32", "bf16")
# The model whose sampling (temperature, top-k, top-p, seed) is checked: its
# tied embeddings give a spread-out next-token distribution, so sampling has
# real choices to make (the untied models' is too peaked for that).
SAMPLED = "qwen2"
# One extra artifact with small steps: its prompts are prefilled in chunks.
CHUNKED = ("llama", "fp32", 16)


def config(name, dtype="fp32"):
    """The model's config.json contents. A bf16 model's checkpoint holds bf16
    weights (the config's dtype says so), as most released checkpoints do."""
    fixture, overrides, _ = MODELS[name]
    with open(os.path.join(FIXTURES, fixture, "config.json")) as f:
        result = json.load(f)
    result = copy.deepcopy(result)
    result.update(overrides)
    result["vocab_size"] = VOCAB
    if "max_position_embeddings" in result:
        result["max_position_embeddings"] = MAX_POSITIONS
    result["dtype"] = {"fp32": "float32", "bf16": "bfloat16"}[dtype]
    return result


def checkpoint_dir(name, dtype):
    """Where a model's config (and, on the GPU machine, checkpoint) of one dtype lives."""
    return os.path.join(name, dtype)


def artifact_name(dtype, max_tokens=None):
    return f"{dtype}.kiln" if max_tokens is None else f"{dtype}_t{max_tokens}.kiln"
