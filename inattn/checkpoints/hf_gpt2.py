"""Hugging Face GPT-2 <-> inattn: the config mapping and the state-dict name mapping, both ways.

GPT-2 is our dense model with learned positions, biases and GELU-tanh; only names differ, and
HF's `Conv1D` stores W transposed relative to `nn.Linear` (x @ W, not x @ W.T):

    HF GPT-2 (GPT2LMHeadModel)              inattn GPT
    transformer.wte / wpe                   tok_emb / pos_emb
    transformer.h.i.ln_1 / ln_2             blocks.i.ln1 / ln2
    transformer.h.i.attn.c_attn (d, 3d)     blocks.i.attn.qkv (3d, d)   q, k, v in the same order
    transformer.h.i.attn.c_proj (d, d)      blocks.i.attn.proj
    transformer.h.i.mlp.c_fc / c_proj       blocks.i.mlp.fc / proj
    transformer.ln_f                        ln_f
    lm_head (= wte when tied)               head (absent when tied)

The same tensors load into `arch=inattn`: both variants own the same parameters, and each
InAttention layer's W_k, W_v then read N(x0) instead of the layer's own input.
"""

from __future__ import annotations

from typing import Any

import torch

from inattn.checkpoints.io import CheckpointError
from inattn.model import GPTConfig

# GPT-2's activation names that mean GELU with the tanh approximation (our MLP's).
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")
# Buffers older GPT-2 files carry (the causal mask), not parameters: `h.<i>.attn.<name>`.
MASK_BUFFERS = ("bias", "masked_bias")

# (HF name in layer i, our name in layer i, stored transposed by HF)
LAYER = (
    ("ln_1.weight", "ln1.weight", False),
    ("ln_1.bias", "ln1.bias", False),
    ("attn.c_attn.weight", "attn.qkv.weight", True),
    ("attn.c_attn.bias", "attn.qkv.bias", False),
    ("attn.c_proj.weight", "attn.proj.weight", True),
    ("attn.c_proj.bias", "attn.proj.bias", False),
    ("ln_2.weight", "ln2.weight", False),
    ("ln_2.bias", "ln2.bias", False),
    ("mlp.c_fc.weight", "mlp.fc.weight", True),
    ("mlp.c_fc.bias", "mlp.fc.bias", False),
    ("mlp.c_proj.weight", "mlp.proj.weight", True),
    ("mlp.c_proj.bias", "mlp.proj.bias", False),
)
TOP = (
    ("transformer.wte.weight", "tok_emb.weight"),
    ("transformer.wpe.weight", "pos_emb.weight"),
    ("transformer.ln_f.weight", "ln_f.weight"),
    ("transformer.ln_f.bias", "ln_f.bias"),
)


def name_pairs(n_layer: int, tied: bool) -> list[tuple[str, str, bool]]:
    """Every (HF name, our name, transposed) of a GPT-2 with `n_layer` layers."""
    pairs = [(hf, ours, False) for hf, ours in TOP]
    for i in range(n_layer):
        pairs += [(f"transformer.h.{i}.{h}", f"blocks.{i}.{o}", t) for h, o, t in LAYER]
    if not tied:
        pairs.append(("lm_head.weight", "head.weight", False))
    return pairs


# ----------------------------------------------------------------------------- configs


def gpt_config(hf: dict[str, Any], arch: str = "dense", field: str = "init_from") -> GPTConfig:
    """Our config for a GPT-2 `config.json` (as a dict); what we cannot compute exactly is refused.

    Dropout is the run's business, not the checkpoint's: it is left at 0 here.
    """
    if hf.get("model_type") != "gpt2":
        kind = hf.get("model_type")
        raise CheckpointError(
            field, f"model_type is {kind!r}, not 'gpt2': only GPT-2 checkpoints load"
        )
    d = hf.get("n_embd", 768)
    inner = hf.get("n_inner") or 4 * d
    if inner % d:
        raise CheckpointError(field, f"n_inner={inner} is not a multiple of n_embd={d}")
    act = hf.get("activation_function", "gelu_new")
    if act not in TANH_GELU:
        raise CheckpointError(field, f"activation_function={act!r}; only {TANH_GELU} load exactly")
    if not hf.get("scale_attn_weights", True) or hf.get("scale_attn_by_inverse_layer_idx", False):
        raise CheckpointError(field, "only GPT-2's standard 1/sqrt(head_dim) attention scale loads")
    return GPTConfig(
        arch=arch,
        vocab_size=hf.get("vocab_size", 50257),
        context_length=hf.get("n_positions", 1024),
        n_layer=hf.get("n_layer", 12),
        n_head=hf.get("n_head", 12),
        d_model=d,
        mlp_ratio=inner // d,
        position="learned",
        tie_weights=bool(hf.get("tie_word_embeddings", True)),
        bias=True,
        dropout=0.0,
        norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
    )


def gpt2_compatible(cfg: GPTConfig) -> bool:
    """Whether `cfg` is a plain GPT-2: dense, learned positions, biases, and every setting GPT-2
    has no equivalent for at its default (so variants added later count as not GPT-2)."""
    own = {"arch", "position", "bias", "tie_weights", "dropout", "rope_base", "rope_scale"}
    own |= {"vocab_size", "context_length", "n_layer", "n_head", "d_model", "mlp_ratio"}
    own |= {"norm_eps"}
    default = GPTConfig()
    others = {k: v for k, v in cfg.to_dict().items() if k not in own}
    return (
        cfg.arch == "dense"
        and cfg.position == "learned"
        and cfg.bias
        and all(getattr(default, k) == v for k, v in others.items())
    )


def hf_config(cfg: GPTConfig, eos_token_id: int | None = None) -> dict[str, Any]:
    """`GPT2Config` keyword arguments for a GPT-2-compatible config (`gpt2_compatible`)."""
    if not gpt2_compatible(cfg):
        raise CheckpointError("ckpt", "this model is not a plain GPT-2 (dense, learned, biases)")
    return {
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.context_length,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": cfg.mlp_ratio * cfg.d_model,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": cfg.norm_eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": cfg.tie_weights,
        "bos_token_id": eos_token_id,
        "eos_token_id": eos_token_id,
    }


# ----------------------------------------------------------------------------- state dicts


def to_inattn(
    state: dict[str, torch.Tensor], cfg: GPTConfig, field: str = "init_from"
) -> dict[str, torch.Tensor]:
    """Our state dict from a GPT-2 one (with or without the `transformer.` prefix)."""
    hf = {}
    for name, tensor in state.items():
        parts = name.split(".")
        if len(parts) > 2 and parts[-2] == "attn" and parts[-1] in MASK_BUFFERS:
            continue
        if not name.startswith(("transformer.", "lm_head.")):
            name = f"transformer.{name}"  # the original GPT-2 files: `h.0.ln_1.weight`, ...
        hf[name] = tensor
    tied = cfg.tie_weights
    ours = {}
    for hf_name, our_name, transposed in name_pairs(cfg.n_layer, tied):
        if hf_name not in hf:
            raise CheckpointError(field, f"the checkpoint has no tensor {hf_name}")
        tensor = hf.pop(hf_name)
        ours[our_name] = tensor.t().contiguous() if transposed else tensor
    if tied:
        hf.pop("lm_head.weight", None)  # the same tensor as wte
    if hf:
        raise CheckpointError(field, f"unexpected tensors in the checkpoint: {sorted(hf)[:3]}")
    return ours


def to_hf(state: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    """A GPT2LMHeadModel state dict from ours (`lm_head.weight` included, tied or not)."""
    hf = {}
    for hf_name, our_name, transposed in name_pairs(cfg.n_layer, cfg.tie_weights):
        tensor = state[our_name]
        hf[hf_name] = tensor.t().contiguous() if transposed else tensor
    if cfg.tie_weights:
        hf["lm_head.weight"] = state["tok_emb.weight"]
    return hf
