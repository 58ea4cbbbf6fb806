"""Small Hugging Face GPT-2 folders with random weights, shared by the GPT-2 in/out tests."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer

from tests.helpers import WORDS

VOCAB = 300


def word_tokenizer(vocab_size: int = VOCAB) -> Tokenizer:
    """A byte-level BPE with end-of-text, trained on the test corpus's words."""
    from inattn.data.tokenizer import train_bpe

    text = [" ".join(WORDS * 4)] * 8
    return train_bpe([text], vocab_size, "<|endoftext|>")


def random_gpt2(seed: int = 0, tied: bool = True, n_positions: int = 64):
    """A GPT2LMHeadModel (2 layers, 4 heads, d=64) with every parameter random: weights,
    biases and layer-norm weights and biases alike, so that a transposed or swapped tensor shows."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=4,
        layer_norm_epsilon=1e-4,  # not our default: the value must be read from the folder
        tie_word_embeddings=tied,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,  # GPT-2's 50256 lies outside this vocabulary
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "ln_f.w" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model


def save_folder(model, folder: Path, form: str = "safetensors", tokenizer: str = "json") -> Path:
    """`model` saved as a hub folder would be.

    form: safetensors (save_pretrained), bin (pytorch_model.bin), or original (the first GPT-2
    uploads: .bin without the `transformer.` prefix, causal-mask buffers included).
    tokenizer: json (tokenizer.json), files (vocab.json + merges.txt), or none.
    """
    model.save_pretrained(folder)
    if form != "safetensors":
        (folder / "model.safetensors").unlink()
        state = model.state_dict()
        if form == "original":
            state = {k.removeprefix("transformer."): v for k, v in state.items()}
            state.pop("lm_head.weight", None)
            n = model.config.n_positions
            for i in range(model.config.n_layer):
                state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
        torch.save(state, folder / "pytorch_model.bin")
    tok = word_tokenizer()
    if tokenizer == "json":
        tok.save(str(folder / "tokenizer.json"))
    elif tokenizer == "files":
        tok.model.save(str(folder))  # vocab.json, merges.txt
    return folder


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random and non-trivial: layer-norm weights around 1, the rest around 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            norm_weight = name.endswith("weight") and ("ln" in name.split(".")[-2])
            p.copy_(1 + 0.3 * noise if norm_weight else 0.15 * noise)
    return model.eval()


def random_checkpoint(path: Path, seed: int = 0, **cfg) -> Path:
    """An inattn checkpoint file (what inattn-train writes, as far as loading goes) of a GPT with
    random weights, holding the test tokenizer."""
    from inattn.model import GPT, GPTConfig

    shape = {"vocab_size": VOCAB, "context_length": 64, "n_layer": 2, "n_head": 4, "d_model": 64}
    model = randomise(GPT(GPTConfig(**{**shape, **cfg})), seed)
    save_checkpoint(model, word_tokenizer(), path)
    return path


def save_checkpoint(model, tokenizer: Tokenizer | None, path: Path) -> Path:
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model": model.cfg.to_dict()},
            "inattn": {"tokenizer_json": None if tokenizer is None else tokenizer.to_str()},
        },
        path,
    )
    return path
