"""The strongest plain-PyTorch Llama decode we know how to write, as kiln's peer.

gpt-fast style: packed QKV and packed gate/up weights (one GEMV each), a static
KV cache updated in place with index_copy_, RoPE from a precomputed table, SDPA
with GQA, and a greedy decode step compiled with torch.compile(mode=
"reduce-overhead", fullgraph=True) so each step replays one CUDA graph.

Weights come from a Hugging Face LlamaForCausalLM state dict, so the model
computes what transformers computes (checked by `check_against_hf`).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def llama3_inv_freq(head_dim, theta, scaling):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if not scaling or scaling.get("rope_type", "default") == "default":
        return inv_freq
    if scaling["rope_type"] != "llama3":
        raise ValueError(f"unsupported rope scaling {scaling}")
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_ctx / low, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_ctx / high) & (wavelen <= old_ctx / low)
    return torch.where(medium, blended, scaled)


class Block(nn.Module):
    def __init__(self, cfg, max_batch, max_seq, dtype, device):
        super().__init__()
        self.h, self.kvh, self.d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
        mk = lambda *s: nn.Parameter(torch.empty(*s, dtype=dtype, device=device), requires_grad=False)
        self.wqkv = mk((self.h + 2 * self.kvh) * self.d, hidden)
        self.wo = mk(hidden, self.h * self.d)
        self.w13 = mk(2 * inter, hidden)
        self.w2 = mk(hidden, inter)
        self.ln1 = mk(hidden)
        self.ln2 = mk(hidden)
        self.eps = cfg["rms_norm_eps"]
        self.register_buffer("k_cache", torch.zeros(max_batch, self.kvh, max_seq, self.d, dtype=dtype, device=device))
        self.register_buffer("v_cache", torch.zeros(max_batch, self.kvh, max_seq, self.d, dtype=dtype, device=device))

    def forward(self, x, cos, sin, input_pos, mask):
        b, t, _ = x.shape
        qkv = F.linear(F.rms_norm(x, (x.shape[-1],), self.ln1, self.eps), self.wqkv)
        q, k, v = qkv.split([self.h * self.d, self.kvh * self.d, self.kvh * self.d], dim=-1)
        q = q.view(b, t, self.h, self.d).transpose(1, 2)
        k = k.view(b, t, self.kvh, self.d).transpose(1, 2)
        v = v.view(b, t, self.kvh, self.d).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        self.k_cache.index_copy_(2, input_pos, k)
        self.v_cache.index_copy_(2, input_pos, v)
        y = F.scaled_dot_product_attention(q, self.k_cache, self.v_cache, attn_mask=mask, enable_gqa=True)
        x = x + F.linear(y.transpose(1, 2).reshape(b, t, self.h * self.d), self.wo)
        gate, up = F.linear(F.rms_norm(x, (x.shape[-1],), self.ln2, self.eps), self.w13).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, self.w2)


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class GptFastLlama(nn.Module):
    def __init__(self, cfg, max_batch, max_seq, dtype=torch.bfloat16, device="cuda"):
        super().__init__()
        cfg = dict(cfg)
        cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
        self.cfg = cfg
        self.layers = nn.ModuleList(Block(cfg, max_batch, max_seq, dtype, device)
                                    for _ in range(cfg["num_hidden_layers"]))
        mk = lambda *s: nn.Parameter(torch.empty(*s, dtype=dtype, device=device), requires_grad=False)
        self.embed = mk(cfg["vocab_size"], cfg["hidden_size"])
        self.norm = mk(cfg["hidden_size"])
        self.lm_head = self.embed if cfg.get("tie_word_embeddings") else mk(cfg["vocab_size"], cfg["hidden_size"])
        inv_freq = llama3_inv_freq(cfg["head_dim"], cfg.get("rope_theta", 10000.0), cfg.get("rope_scaling"))
        angles = torch.outer(torch.arange(max_seq, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().to(device=device, dtype=torch.float32))
        self.register_buffer("sin", angles.sin().to(device=device, dtype=torch.float32))
        self.register_buffer("causal", torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool, device=device)))

    @torch.no_grad()
    def load_from_hf(self, state):
        pre = "model."
        self.embed.copy_(state[pre + "embed_tokens.weight"])
        self.norm.copy_(state[pre + "norm.weight"])
        if "lm_head.weight" in state and self.lm_head is not self.embed:
            self.lm_head.copy_(state["lm_head.weight"])
        for i, layer in enumerate(self.layers):
            p = f"{pre}layers.{i}."
            layer.wqkv.copy_(torch.cat([state[p + f"self_attn.{n}_proj.weight"] for n in "qkv"]))
            layer.wo.copy_(state[p + "self_attn.o_proj.weight"])
            layer.w13.copy_(torch.cat([state[p + "mlp.gate_proj.weight"], state[p + "mlp.up_proj.weight"]]))
            layer.w2.copy_(state[p + "mlp.down_proj.weight"])
            layer.ln1.copy_(state[p + "input_layernorm.weight"])
            layer.ln2.copy_(state[p + "post_attention_layernorm.weight"])

    def forward(self, ids, input_pos):
        x = F.embedding(ids, self.embed)
        cos = self.cos[input_pos][None, None]
        sin = self.sin[input_pos][None, None]
        mask = self.causal[input_pos][None, None]
        for layer in self.layers:
            x = layer(x, cos, sin, input_pos, mask)
        x = F.rms_norm(x, (x.shape[-1],), self.norm, self.cfg["rms_norm_eps"])
        return F.linear(x[:, -1:], self.lm_head).float()


def decode_one_token(model, token, input_pos):
    logits = model(token, input_pos)
    return logits[:, -1].argmax(dim=-1, keepdim=True).to(torch.int32)
