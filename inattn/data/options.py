"""The data and tokenizer settings: defaults per source, unknown keys and bad values refused.

The defaults are the YAML files' in `conf/data/` and `conf/tokenizer/bpe.yaml` (the one place they
are written), so a plain dict works as well as a composed Hydra config.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.config import CONF_DIR
from inattn.errors import ConfigError


def _yaml(path: str) -> dict[str, Any]:
    """A config file's values as written (a required `???` stays `???`)."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / path))  # type: ignore[return-value]


@functools.cache
def source_defaults() -> dict[str, dict[str, Any]]:
    """Each data source's settings as its option in conf/data gives them, by source name."""
    defaults = {}
    for path in sorted((CONF_DIR / "data").glob("*.yaml")):
        options = _yaml(f"data/{path.name}")
        defaults[options.pop("source")] = options
    return defaults


@functools.cache
def tokenizer_defaults() -> dict[str, Any]:
    """The tokenizer settings of the default option (tokenizer=bpe)."""
    return _yaml("tokenizer/bpe.yaml")


TOKENIZER_KINDS = ("bpe", "byte", "char")
MIN_BPE_VOCAB = 257  # the 256 byte symbols plus the end-of-text token


def plain(cfg: Mapping[str, Any] | DictConfig | None) -> dict[str, Any]:
    """A resolved plain dict from a Hydra node or any mapping."""
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _check_keys(given: dict[str, Any], known: Mapping[str, Any], prefix: str, what: str) -> None:
    for key in given:
        if key not in known:
            raise ConfigError(
                f"{prefix}.{key}", f"unknown key for {what}; known keys: {sorted(known)}"
            )


def _check_fraction(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(field, f"{field} must be a number in (0, 1), got {value!r}")


def data_options(cfg: Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """The data settings with defaults filled in, checked as far as they can be without data."""
    given = plain(cfg)
    source = given.pop("source", "shakespeare")
    defaults = source_defaults()
    if source not in defaults:
        raise ConfigError(
            "data.source", f"unknown source {source!r}; choose one of {list(defaults)}"
        )
    _check_keys(given, defaults[source], "data", f"source {source!r}")
    opts = {"source": source, **defaults[source], **given}
    _check_fraction(opts["val_fraction"], "data.val_fraction")
    if source == "files" and opts["train_files"] in (None, "", [], "???"):
        raise ConfigError("data.train_files", "give one or more text files or globs")
    if source == "hf":
        if not opts["path"]:
            raise ConfigError("data.path", "give a hub dataset name or a local dataset folder")
        cap = opts["max_documents"]
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigError("data.max_documents", f"must be null or an integer >= 1, got {cap!r}")
        if opts["streaming"] and cap is None:
            raise ConfigError(
                "data.streaming", "streaming reads the dataset lazily: also set data.max_documents"
            )
    return opts


def tokenizer_options(cfg: Mapping[str, Any] | DictConfig | None) -> dict[str, Any]:
    """The tokenizer settings with defaults filled in and checked."""
    given = plain(cfg)
    defaults = tokenizer_defaults()
    _check_keys(given, defaults, "tokenizer", "the tokenizer")
    opts = {**defaults, **given}
    kind = opts["kind"]
    if kind not in TOKENIZER_KINDS:
        raise ConfigError(
            "tokenizer.kind", f"unknown kind {kind!r}; choose one of {list(TOKENIZER_KINDS)}"
        )
    chars = opts["chars"]
    if chars is not None and (kind != "char" or not isinstance(chars, str) or not chars):
        raise ConfigError(
            "tokenizer.chars", "a non-empty string of characters, and only with tokenizer=char"
        )
    size = opts["vocab_size"]
    if (
        kind == "bpe"
        and opts["path"] is None
        and (isinstance(size, bool) or not isinstance(size, int) or size < MIN_BPE_VOCAB)
    ):
        raise ConfigError(
            "tokenizer.vocab_size", f"must be an integer >= {MIN_BPE_VOCAB}, got {size!r}"
        )
    return opts
