"""The tokenizer: a byte-level BPE trained on the training documents, or a given tokenizer.json."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from inattn.errors import DataError


def train_bpe(batches: Iterable[list[str]], vocab_size: int, eot_token: str) -> Tokenizer:
    """Byte-level BPE (GPT-2 style): every byte is a symbol, so any text encodes; no <unk>."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eot_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),
    )
    tok.train_from_iterator(batches, trainer)
    return tok


def given_path(opts: dict[str, Any]) -> Path | None:
    """The tokenizer.json to use instead of training one, checked to exist."""
    if opts["path"] is None:
        return None
    path = Path(str(opts["path"])).expanduser()
    if not path.is_file():
        raise DataError("tokenizer.path", f"no tokenizer file at {path}")
    return path


def load_tokenizer(path: Path, eot_token: str, field: str = "tokenizer.path") -> Tokenizer:
    """A tokenizer.json that has the end-of-text token, with truncation and padding off."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # the tokenizers library raises a bare Exception for bad files
        raise DataError(field, f"{path} is not a tokenizer.json: {e}") from e
    if tok.token_to_id(eot_token) is None:
        raise DataError(
            "tokenizer.eot_token", f"{path} has no token {eot_token!r}; set tokenizer.eot_token"
        )
    tok.no_truncation()
    tok.no_padding()
    return tok


def fingerprint(opts: dict[str, Any]) -> dict[str, Any]:
    """What the cache key must know about the tokenizer: its settings, a given file's content."""
    found = {k: v for k, v in opts.items() if k != "path"}
    path = given_path(opts)
    if path is None:
        found["tokenizers"] = tokenizers.__version__  # training results may change with it
    else:
        found["file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        found.pop("vocab_size")  # the file decides
    return found


def vocab_size(tok: Tokenizer) -> int:
    """One more than the largest id (added tokens included): the model's embedding rows."""
    return max(tok.get_vocab(with_added_tokens=True).values()) + 1
