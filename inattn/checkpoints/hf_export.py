"""Writing an inattn GPT as a Hugging Face model folder (what inattn-export does).

    a plain GPT-2 (dense, learned positions, biases)   config.json of GPT-2, model.safetensors:
        GPT2LMHeadModel.from_pretrained(folder) computes our logits
    anything else (InAttention, RoPE, ALiBi, the K/V-sharing variants, ...)
        config.json (model_type inattn, the GPTConfig as `gpt`, an auto_map), model.safetensors,
        and the remote code: configuration_inattn.py, modeling_inattn.py, and the source of
        inattn/model.py with what it imports from inattn, so that
        AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True) needs no inattn
    both: the tokenizer (tokenizer.json and its PreTrainedTokenizerFast files) when there is one.

The folder is written under a temporary name beside `out` and renamed at the end: a failed
export leaves nothing behind, and `out` is never a half-written model.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer

from inattn.checkpoints import hf_gpt2
from inattn.checkpoints.hf_remote import FILES as REMOTE_FILES
from inattn.data.tokenizer import EOT
from inattn.errors import ConfigError
from inattn.model import GPT

PACKAGE = Path(__file__).resolve().parent.parent  # inattn/, whose model source is copied
REMOTE = Path(__file__).resolve().parent / "hf_remote"
# `from inattn.errors import X` -> `from .inattn_errors import X` (the folder is flat)
INATTN_IMPORT = re.compile(r"^(\s*)from inattn((?:\.\w+)+) import ", re.MULTILINE)


def check_target(out: Path, field: str = "out") -> None:
    """`out` must be new or an empty folder, and its parent writable."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(field, f"{out} exists and is not an empty folder: choose a new one")


def export(model: GPT, tokenizer: Tokenizer | None, out: str | Path) -> str:
    """Write `model` (and `tokenizer`) as a Hugging Face folder at `out`; returns its kind:
    "gpt2" or "inattn" (remote code)."""
    out = Path(out).expanduser().absolute()
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        model = model.float().eval()
        eos = None if tokenizer is None else tokenizer.token_to_id(EOT)
        if eos is not None and eos >= model.cfg.vocab_size:
            eos = None
        if hf_gpt2.gpt2_compatible(model.cfg):
            kind = "gpt2"
            write_gpt2(model, tmp, eos)
        else:
            kind = "inattn"
            write_remote(model, tmp, eos)
        if tokenizer is not None:
            write_tokenizer(tokenizer, tmp)
        if out.exists():
            out.rmdir()  # empty (checked above); rename cannot replace a folder
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return kind


def write_gpt2(model: GPT, folder: Path, eos: int | None) -> None:
    """A GPT2LMHeadModel holding our weights, saved by transformers itself, and checked to
    compute our logits (a mapping error would otherwise export silently)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg
    hf = GPT2LMHeadModel(GPT2Config(**hf_gpt2.hf_config(cfg, eos))).eval()
    hf.load_state_dict(hf_gpt2.to_hf(model.state_dict(), cfg), strict=True)
    idx = torch.randint(0, cfg.vocab_size, (1, min(8, cfg.context_length)))
    with torch.no_grad():
        if not torch.allclose(hf(idx).logits, model(idx), atol=1e-4, rtol=1e-4):
            raise RuntimeError("the GPT-2 copy does not compute the model's logits")
    hf.save_pretrained(folder)


def write_remote(model: GPT, folder: Path, eos: int | None) -> None:
    """config.json, model.safetensors and the remote code (see the module docstring)."""
    from safetensors.torch import save_file

    config = {
        "model_type": "inattn",
        "architectures": ["InAttnForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_inattn.InAttnConfig",
            "AutoModelForCausalLM": "modeling_inattn.InAttnForCausalLM",
        },
        "gpt": {**model.cfg.to_dict(), "dropout": 0.0},
        "bos_token_id": eos,
        "eos_token_id": eos,
        "tie_word_embeddings": False,
        "use_cache": False,
        "dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for name in REMOTE_FILES:
        shutil.copyfile(REMOTE / name, folder / name)
    for module, text in flat_sources("inattn.model"):
        (folder / flat_name(module)).write_text(text)


def flat_name(module: str) -> str:
    """inattn.model -> inattn_model.py: the name a module gets in the flat folder."""
    return module.replace(".", "_") + ".py"


def flat_sources(module: str) -> Iterator[tuple[str, str]]:
    """(module, source with `from inattn.x import` made relative) for `module` and every inattn
    module it imports, recursively; any other form of an inattn import is refused."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        text = path.read_text()
        todo += [f"inattn{m}" for _, m in INATTN_IMPORT.findall(text)]
        text = INATTN_IMPORT.sub(
            lambda m: f"{m.group(1)}from .{flat_name('inattn' + m.group(2))[:-3]} import ", text
        )
        if re.search(r"^\s*(import inattn|from inattn)", text, re.MULTILINE):
            raise RuntimeError(f"{path} imports inattn in a form the export cannot copy")
        yield name, text


def write_tokenizer(tokenizer: Tokenizer, folder: Path) -> None:
    """tokenizer.json and the files PreTrainedTokenizerFast reads (end-of-text as bos/eos)."""
    from transformers import PreTrainedTokenizerFast

    special = {}
    if tokenizer.token_to_id(EOT) is not None:
        special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer.to_str()), **special
    )
    fast.save_pretrained(folder)
