"""Token streams and blocks: documents encoded, each followed by end-of-text, cut into blocks.

A split is stored as one flat stream of token ids (raw binary, `token_dtype`). Blocks of
`context_length + 1` tokens are a view of that stream, so one cache serves every context length:
block i is stream[i * (T + 1) : (i + 1) * (T + 1)], its input block[:-1] and target block[1:].
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from inattn.errors import DataError


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocab < 65536), int32 beyond."""
    return np.dtype(np.uint16 if vocab_size < 1 << 16 else np.int32)


def encode_documents(tok: Tokenizer, texts: list[str], eot_id: int) -> np.ndarray:
    """The documents' ids, each document followed by `eot_id`, as one int64 array."""
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    ids = chain.from_iterable(chain(e.ids, (eot_id,)) for e in encodings)
    return np.fromiter(ids, dtype=np.int64)


def write_stream(
    tok: Tokenizer,
    batches: Iterable[list[str]],
    eot_id: int,
    out: Path,
    dtype: np.dtype,
    documents: int | None = None,
    desc: str = "tokenize",
) -> int:
    """Encode batches of documents into `out` (raw ids of `dtype`); returns the token count."""
    count = 0
    with open(out, "wb") as f, tqdm(total=documents, desc=desc, unit="doc", disable=None) as bar:
        for texts in batches:
            ids = encode_documents(tok, texts, eot_id)
            f.write(ids.astype(dtype).tobytes())
            count += ids.size
            bar.update(len(texts))
    return count


def read_stream(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """The stored stream, memory-mapped copy-on-write: writable in memory, never written back."""
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="c", shape=(count,))


def blocks(stream: np.ndarray, context_length: int, split: str) -> torch.Tensor:
    """(N, context_length + 1) non-overlapping blocks from the start of the stream; tail dropped."""
    size = context_length + 1
    n = len(stream) // size
    if n == 0:
        raise DataError(
            "context_length",
            f"the {split} split has {len(stream)} tokens, fewer than one block of "
            f"context_length + 1 = {size}: lower context_length or use more data",
        )
    return torch.from_numpy(stream[: n * size].reshape(n, size))
