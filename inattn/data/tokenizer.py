"""The tokenizer: a byte-level BPE trained on the training documents, plain bytes, the corpus's
characters, or a given tokenizer.json.

    bpe   byte-level BPE (GPT-2 style) with `vocab_size` entries, trained on the train split
    byte  every UTF-8 byte is one token (256 + end-of-text): nothing to train, covers any text
    char  every character is one token; the vocabulary is the corpus's characters (both splits)
          or the `chars` given, which must then cover the corpus

Small models learn and use context quickly at the byte or character level: their loss falls
steeply along the positions of a block, which is the regime where attention variants can differ.
All kinds are saved as one tokenizer.json, carried by the data cache and every checkpoint.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from inattn.errors import DataError

EOT = "<|endoftext|>"  # the document separator of inattn's tokenizers (and GPT-2's)


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


def byte_tokenizer(eot_token: str) -> Tokenizer:
    """One token per byte (GPT-2's byte-to-symbol map, no merges) plus the end-of-text token."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={s: i for i, s in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([eot_token])
    return tok


def char_tokenizer(chars: Iterable[str], eot_token: str) -> Tokenizer:
    """One token per character of `chars` (sorted, so the ids do not depend on reading order)."""
    alphabet = sorted(set(chars))
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    # every character is its own piece; a character outside the vocabulary would be dropped
    # silently, which is why the corpus is checked against it first (`check_covers`)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([eot_token])
    return tok


def corpus_chars(batches: Iterable[list[str]]) -> set[str]:
    """Every character that occurs in the texts."""
    found: set[str] = set()
    for batch in batches:
        for text in batch:
            found.update(text)
    return found


def check_covers(vocabulary: set[str], corpus: set[str], field: str = "tokenizer.chars") -> None:
    """Refuse a character vocabulary that misses characters of the corpus (they would vanish)."""
    missing = sorted(corpus - vocabulary)
    if missing:
        shown = "".join(missing[:20])
        raise DataError(
            field,
            f"the vocabulary does not cover the corpus: {len(missing)} characters missing "
            f"({shown!r}); add them, leave tokenizer.chars unset, or use tokenizer=byte",
        )


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
    if opts["kind"] != "bpe":
        found.pop("vocab_size")  # the kind decides
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
