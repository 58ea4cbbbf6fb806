"""Reading a Hugging Face model folder (or a hub id) into an inattn GPT, with its tokenizer.

    <folder>/config.json                       model_type gpt2 (or inattn: a folder we exported)
    <folder>/model.safetensors                 or pytorch_model.bin, or a sharded *.index.json
    <folder>/tokenizer.json                    or vocab.json + merges.txt (optional)

A hub id (`gpt2`, `openai-community/gpt2-medium`) is looked up in the local hub cache first; it
is downloaded only when the hub is reachable, and offline mode is checked before anything is
tried, so an offline machine gets one line at once instead of a wait for a timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from inattn.checkpoints import hf_gpt2
from inattn.checkpoints.io import CheckpointError
from inattn.data.tokenizer import EOT
from inattn.model import GPT, GPTConfig

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"]
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


@dataclass
class HFCheckpoint:
    """A model folder: its config (ours), its config.json, and where its tokenizer is."""

    folder: Path
    cfg: GPTConfig  # arch as saved (dense for GPT-2); the run chooses its own arch
    raw: dict[str, Any]
    field: str

    @property
    def kind(self) -> str:
        return self.raw["model_type"]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Our state dict (names and layouts of `inattn.model.GPT`)."""
        state = read_weights(self.folder, self.field)
        if self.kind == "gpt2":
            return hf_gpt2.to_inattn(state, self.cfg, self.field)
        return {k.removeprefix("model."): v for k, v in state.items()}

    def model(self, cfg: GPTConfig | None = None) -> GPT:
        """A GPT of `cfg` (default: the folder's) holding the folder's weights, in eval mode."""
        model = GPT(cfg or self.cfg)
        try:
            model.load_state_dict(self.state_dict())
        except RuntimeError as err:  # shapes that do not match config.json
            first = str(err).strip().splitlines()[-1].strip()
            message = f"{self.folder}: weights and config differ: {first}"
            raise CheckpointError(self.field, message) from None
        return model.eval()

    def tokenizer(self) -> Tokenizer | None:
        return read_tokenizer(self.folder, self.field)


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file()


def open_folder(folder: Path, field: str = "init_from") -> HFCheckpoint:
    """The folder's config, checked: a GPT-2 checkpoint or a folder inattn-export wrote."""
    if not is_model_folder(folder):
        raise CheckpointError(field, f"{folder} is not a Hugging Face model folder (no {CONFIG})")
    try:
        raw = json.loads((folder / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(field, f"cannot read {folder / CONFIG}: {err}") from None
    if not isinstance(raw, dict):
        raise CheckpointError(field, f"{folder / CONFIG} is not a JSON object")
    if raw.get("model_type") == "inattn" and isinstance(raw.get("gpt"), dict):
        cfg = GPTConfig(**raw["gpt"])
    else:
        cfg = hf_gpt2.gpt_config(raw, field=field)
    if not any((folder / name).is_file() for name in (*WEIGHTS, *INDEXES)):
        raise CheckpointError(field, f"{folder} has no weights ({' or '.join(WEIGHTS)})")
    return HFCheckpoint(folder, cfg, raw, field)


def read_weights(folder: Path, field: str) -> dict[str, torch.Tensor]:
    """All tensors of the folder: one safetensors or .bin file, or the shards of an index."""
    for index in INDEXES:
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            state = {}
            for shard in shards:
                state.update(read_weight_file(folder / shard, field))
            return state
    path = next(folder / name for name in WEIGHTS if (folder / name).is_file())
    return read_weight_file(path, field)


def read_weight_file(path: Path, field: str) -> dict[str, torch.Tensor]:
    try:
        if path.name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors and torch raise several kinds for a bad file
        raise CheckpointError(field, f"cannot read {path} (truncated or corrupt?): {err}") from None


# ----------------------------------------------------------------------------- tokenizers


def read_tokenizer(folder: Path, field: str = "init_from") -> Tokenizer | None:
    """tokenizer.json, else GPT-2's vocab.json + merges.txt as the same byte-level BPE; or None."""
    try:
        if (folder / "tokenizer.json").is_file():
            return Tokenizer.from_file(str(folder / "tokenizer.json"))
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        if vocab.is_file() and merges.is_file():
            return byte_level_bpe(vocab, merges)
    except Exception as err:  # the tokenizers library raises a bare Exception for bad files
        raise CheckpointError(field, f"cannot read the tokenizer in {folder}: {err}") from None
    return None


def byte_level_bpe(vocab: Path, merges: Path) -> Tokenizer:
    """GPT-2's tokenizer from its two files, as `GPT2TokenizerFast` builds it."""
    tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    if tok.token_to_id(EOT) is not None:
        tok.add_special_tokens([EOT])
    return tok


def tokenizer_file(checkpoint: HFCheckpoint, cache: Path) -> Path | None:
    """A tokenizer.json for the data pipeline: the folder's own, or one converted from
    vocab.json + merges.txt into `cache` (named by its content); None without a tokenizer."""
    own = checkpoint.folder / "tokenizer.json"
    if own.is_file():
        return own
    tok = checkpoint.tokenizer()
    if tok is None:
        return None
    text = tok.to_str()
    path = Path(cache) / "hf-tokenizers" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.is_file():
        from inattn.run_info import write_atomic

        write_atomic(path, lambda f: f.write(text))
    return path


# ----------------------------------------------------------------------------- hub ids


def hub_offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub's endpoint within `timeout` seconds."""
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def from_hub(repo_id: str, field: str = "init_from") -> Path:
    """The local folder of a hub model: the cached snapshot, or a download when online."""
    from huggingface_hub import snapshot_download

    patterns = [CONFIG, *WEIGHTS, *INDEXES, "*.safetensors", *TOKENIZER_FILES]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # not in the cache (the exception type depends on the hub version)
        pass
    if hub_offline():
        raise CheckpointError(
            field,
            f"{repo_id!r} is not a local path and not in the hub cache, and the Hugging Face hub "
            "is offline (HF_HUB_OFFLINE): download it first or give a folder",
        )
    if not hub_reachable():
        raise CheckpointError(
            field,
            f"{repo_id!r} is not a local path and not in the hub cache, and the Hugging Face hub "
            "cannot be reached: download it where there is a network, or give a folder",
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as err:  # unknown repo, gated repo, network errors ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(field, f"cannot download {repo_id!r} from the hub: {first}") from None


def resolve(source: str | Path, field: str = "init_from") -> Path:
    """A local path as it is (file or folder); a hub id as its local folder."""
    path = Path(str(source)).expanduser()
    if path.exists():
        return path
    text = str(source)
    if not HUB_ID.fullmatch(text) or text.count("/") > 1 or text.endswith(".ckpt"):
        raise CheckpointError(field, f"no checkpoint file or model folder at {text}")
    return from_hub(text, field)
