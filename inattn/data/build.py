"""`build_data`: settings in, packed train and validation blocks out, built once per cache key."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import inattn.data.corpora as corpora
import inattn.data.packing as packing
import inattn.data.tokenizer as tokenization
from inattn.data.cache import MARKER, build_once, cache_key
from inattn.data.options import data_options, tokenizer_options
from inattn.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Bump when the stored files or the way they are made change: old caches are then never reused.
FORMAT_VERSION = 1


@dataclass
class PackedData:
    train: torch.Tensor  # (N, context_length + 1) token ids, uint16 or int32, memory-mapped
    val: torch.Tensor  # (M, context_length + 1)
    tokenizer_path: Path  # tokenizer.json inside the cache folder
    vocab_size: int  # one more than the largest token id
    eot_id: int  # the end-of-text token that follows every document
    built: bool  # False when an existing cache was reused
    key: str  # the cache folder's name
    train_tokens: int  # tokens in the train stream (the blocks cover N * (context_length + 1))
    val_tokens: int
    meta: dict[str, Any]  # the cache's meta.json: counts, held-out works or files, key inputs


def build_data(
    data_cfg: Mapping[str, Any],
    tokenizer_cfg: Mapping[str, Any],
    context_length: int,
    cache_dir: str | Path,
) -> PackedData:
    """Load or build the tokenizer and token streams for these settings; cut them into blocks.

    The cache key covers the data settings, the source files (names, sizes, times), the tokenizer
    settings or the given tokenizer file's content, and FORMAT_VERSION. It leaves out
    context_length: blocks are views of the stored streams, so every length shares one cache.
    """
    if type(context_length) is not int or context_length < 1:
        raise ConfigError("context_length", f"must be an integer >= 1, got {context_length!r}")
    data = data_options(data_cfg)
    tok = tokenizer_options(tokenizer_cfg)
    parts = {
        "format": FORMAT_VERSION,
        "data": data,
        "source_files": corpora.fingerprint(data),
        "tokenizer": tokenization.fingerprint(tok),
    }
    key = f"{data['source']}-{cache_key(parts)}"
    folder, built = build_once(Path(cache_dir), key, lambda tmp: _build(tmp, data, tok, parts))
    log.info("data cache %s: %s", "built" if built else "reused", folder)
    return _load(folder, key, context_length, built)


def _build(folder: Path, data: dict[str, Any], tok_opts: dict[str, Any], parts: dict) -> None:
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        corpus = corpora.load_corpus(data, Path(scratch))
        if len(corpus.train) == 0:
            raise DataError("data.source", "the training split has no documents")
        tok = _make_tokenizer(tok_opts, corpus)
        eot = tok_opts["eot_token"]
        tok.save(str(folder / "tokenizer.json"))
        vocab, eot_id = tokenization.vocab_size(tok), tok.token_to_id(eot)
        dtype = packing.token_dtype(vocab)
        counts = {}
        for split, ds in (("train", corpus.train), ("val", corpus.val)):
            counts[split] = packing.write_stream(
                tok,
                corpora.iter_texts(ds),
                eot_id,
                folder / f"{split}.bin",
                dtype,
                documents=len(ds),
                desc=f"tokenize {split}",
            )
    meta = {
        "format": FORMAT_VERSION,
        "vocab_size": vocab,
        "eot_id": eot_id,
        "dtype": dtype.name,
        "train_tokens": counts["train"],
        "val_tokens": counts["val"],
        "train_documents": len(corpus.train),
        "val_documents": len(corpus.val),
        "val_names": corpus.val_names,
        "key_inputs": parts,
    }
    (folder / MARKER).write_text(json.dumps(meta, indent=1, default=str))


def _make_tokenizer(opts: dict[str, Any], corpus: corpora.Corpus) -> tokenization.Tokenizer:
    """The tokenizer the options ask for: given, trained (bpe), bytes, or the corpus's chars."""
    eot = opts["eot_token"]
    given = tokenization.given_path(opts)
    if given is not None:
        return tokenization.load_tokenizer(given, eot)
    if opts["kind"] == "byte":
        return tokenization.byte_tokenizer(eot)
    if opts["kind"] == "char":
        seen = tokenization.corpus_chars(
            texts for ds in (corpus.train, corpus.val) for texts in corpora.iter_texts(ds)
        )
        if opts["chars"] is None:
            return tokenization.char_tokenizer(seen, eot)
        tokenization.check_covers(set(opts["chars"]), seen)
        return tokenization.char_tokenizer(opts["chars"], eot)
    return tokenization.train_bpe(corpora.iter_texts(corpus.train), opts["vocab_size"], eot)


def _load(folder: Path, key: str, context_length: int, built: bool) -> PackedData:
    meta = json.loads((folder / MARKER).read_text())
    dtype = np.dtype(meta["dtype"])
    streams = {
        split: packing.read_stream(folder / f"{split}.bin", dtype, meta[f"{split}_tokens"])
        for split in ("train", "val")
    }
    return PackedData(
        train=packing.blocks(streams["train"], context_length, "train"),
        val=packing.blocks(streams["val"], context_length, "validation"),
        tokenizer_path=folder / "tokenizer.json",
        vocab_size=meta["vocab_size"],
        eot_id=meta["eot_id"],
        built=built,
        key=key,
        train_tokens=meta["train_tokens"],
        val_tokens=meta["val_tokens"],
        meta=meta,
    )
