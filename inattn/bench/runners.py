"""One interface for everything the speed benchmark times: our modes and the Hugging Face peer.

    runner.prefill(idx, capacity) -> (logits (B, vocab), cache)   # time to first token
    runner.decode(token (B,), cache) -> (logits (B, vocab), cache)
    runner.rewind(cache, T)            # back to T positions, so every timed round decodes alike
    runner.filled_cache(T, capacity)   # a cache holding T positions without running the prefill

`filled_cache` exists because a dense prefill at T = 16K takes minutes on a CPU while the decode
step that follows costs the same whatever the cached numbers are: K/V caches are filled with
random keys and values of the right shape. InAttention's state is built for real (its prefill
only embeds and normalises the tokens).
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any, Protocol

import torch
from torch import nn

from inattn.inference import Cache, KVCache, TokenCache, decode_step, prefill, state_bytes
from inattn.model import GPT


class Runner(Protocol):
    key: str

    def prefill(self, idx: torch.Tensor, capacity: int) -> tuple[torch.Tensor, Any]: ...
    def decode(self, token: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]: ...
    def rewind(self, cache: Any, T: int) -> None: ...
    def filled_cache(self, T: int, capacity: int) -> Any: ...
    def cache_bytes(self, cache: Any) -> int: ...


class ModeRunner:
    """A mode of `inattn.inference` on one of our models."""

    def __init__(self, model: GPT, mode: str, chunk: int | None, key: str | None = None):
        self.model, self.mode, self.chunk = model, mode, chunk
        self.key = key or f"{model.cfg.arch}/{mode}"  # the grid's key names the variant

    def prefill(self, idx: torch.Tensor, capacity: int) -> tuple[torch.Tensor, Cache]:
        return prefill(self.model, idx, self.mode, capacity=capacity, chunk=self.chunk)

    @torch.no_grad()
    def decode(self, token: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        return decode_step(self.model, token, cache)

    def rewind(self, cache: Cache, T: int) -> None:
        if isinstance(cache, TokenCache):
            cache.idx = cache.idx[:, :T]
        cache.length = T  # state and K/V buffers: rows past T are overwritten by the next steps

    @torch.no_grad()
    def filled_cache(self, T: int, capacity: int) -> Cache:
        device = self.model.tok_emb.weight.device
        idx = torch.randint(self.model.cfg.vocab_size, (1, T), device=device)
        if self.mode == "kvcache":
            cache = KVCache.empty(self.model, 1, capacity, device)
            cache.kv.normal_()
            cache.length = T
            return cache
        if self.mode == "state":
            return self.prefill(idx, capacity)[1]
        return TokenCache(idx, self.mode)

    def cache_bytes(self, cache: Cache) -> int:
        return state_bytes(cache)


class HFRunner:
    """Hugging Face GPT2LMHeadModel with `use_cache=True` (its own DynamicCache)."""

    key = "hf/kvcache"

    def __init__(self, model: nn.Module):
        self.model = model.eval()
        params = inspect.signature(model.forward).parameters
        # transformers >= 5 calls the cache argument `cache`; 4.x called it `past_key_values`
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    def _call(self, idx: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        kwargs = {self._cache_arg: cache} if cache is not None else {}
        out = self.model(input_ids=idx, use_cache=True, **kwargs, **self._keep)
        key = "cache" if "cache" in out else "past_key_values"
        return out.logits[:, -1], out[key]

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor, capacity: int) -> tuple[torch.Tensor, Any]:
        return self._call(idx, None)  # the DynamicCache grows by concatenation: no capacity

    @torch.no_grad()
    def decode(self, token: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        return self._call(token.reshape(-1, 1), cache)

    def rewind(self, cache: Any, T: int) -> None:
        extra = cache.get_seq_length() - T
        if extra > 0:
            cache.crop(-extra)  # a negative count removes that many positions (4.x and 5.x alike)

    @torch.no_grad()
    def filled_cache(self, T: int, capacity: int) -> Any:
        from transformers import DynamicCache

        cfg = self.model.config
        weight = self.model.transformer.wte.weight
        shape = (1, cfg.n_head, T, cfg.n_embd // cfg.n_head)
        cache = DynamicCache()
        for layer in range(cfg.n_layer):
            k, v = (torch.randn(shape, dtype=weight.dtype, device=weight.device) for _ in "kv")
            cache.update(k, v, layer)
        return cache

    def cache_bytes(self, cache: Any) -> int:
        return sum(
            t.numel() * t.element_size()
            for layer in cache.layers
            for t in (layer.keys, layer.values)
            if t is not None
        )


def hf_available() -> bool:
    """Whether `transformers` (the `bench` extra) is installed, so the GPT-2 peer can run."""
    return importlib.util.find_spec("transformers") is not None


def build_hf_gpt2(model: GPT) -> nn.Module:
    """A GPT2LMHeadModel (sdpa attention) of the same shape as a dense GPT, holding its weights.

    Needs learned positions, tied embeddings and biases (GPT-2's own design).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.cfg
    if c.position != "learned" or not c.tie_weights or not c.bias:
        raise ValueError("the GPT-2 peer needs position=learned, tie_weights and bias")
    cfg = GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.context_length,
        n_embd=c.d_model,
        n_layer=c.n_layer,
        n_head=c.n_head,
        n_inner=c.mlp_ratio * c.d_model,
        layer_norm_epsilon=c.norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,  # GPT-2's 50256 may lie outside a smaller vocabulary
        eos_token_id=None,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    hf = GPT2LMHeadModel(cfg)
    if hf.config._attn_implementation != "sdpa":  # a silent fallback would compare other kernels
        raise RuntimeError(f"GPT-2 attention is {hf.config._attn_implementation!r}, not sdpa")
    copy_into_hf(model, hf)
    weight = model.tok_emb.weight
    return hf.to(device=weight.device, dtype=weight.dtype).eval()


@torch.no_grad()
def copy_into_hf(ours: GPT, hf: nn.Module) -> None:
    """Our dense weights into GPT-2 (its Conv1D layers store W transposed): the same function."""
    t = hf.transformer
    t.wte.weight.copy_(ours.tok_emb.weight)
    t.wpe.weight.copy_(ours.pos_emb.weight)
    t.ln_f.load_state_dict(ours.ln_f.state_dict())
    for ob, hb in zip(ours.blocks, t.h, strict=True):
        hb.ln_1.load_state_dict(ob.ln1.state_dict())
        hb.ln_2.load_state_dict(ob.ln2.state_dict())
        for o, h in (
            (ob.attn.qkv, hb.attn.c_attn),
            (ob.attn.proj, hb.attn.c_proj),
            (ob.mlp.fc, hb.mlp.c_fc),
            (ob.mlp.proj, hb.mlp.c_proj),
        ):
            h.weight.copy_(o.weight.T)
            h.bias.copy_(o.bias)
