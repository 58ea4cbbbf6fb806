"""The model shapes of `conf/size`, by name: what `size=<name>` gives a model, read anywhere.

Benchmarks and `inattn-bench sizes=[...]` read shapes here rather than typing them again, so a
name means one shape everywhere (`tiny` is 4 layers, 4 heads, d = 128).
"""

from __future__ import annotations

import functools

from omegaconf import OmegaConf

from inattn.config import CONF_DIR
from inattn.errors import ConfigError

SHAPE_KEYS = ("n_layer", "n_head", "d_model")


def size_names() -> list[str]:
    """Every size in conf/size, sorted."""
    return sorted(p.stem for p in (CONF_DIR / "size").glob("*.yaml"))


def size_shape(name: str, field: str = "size") -> dict[str, int]:
    """{n_layer, n_head, d_model} of conf/size/<name>.yaml (ConfigError naming `field`: unknown)."""
    known = size_names()
    if name not in known:
        raise ConfigError(field, f"unknown size {name!r}; choose from {known}")
    return dict(zip(SHAPE_KEYS, _read_shape(name), strict=True))


@functools.cache
def _read_shape(name: str) -> tuple[int, ...]:
    """The file once per process: plans ask for n_layer, n_head and d_model one at a time."""
    node = OmegaConf.load(CONF_DIR / "size" / f"{name}.yaml")
    return tuple(int(node[k]) for k in SHAPE_KEYS)


class NamedSize:
    """For a plan with a `size` field: its shape, read from conf/size/<size>.yaml when asked."""

    size: str

    @property
    def shape(self) -> dict[str, int]:
        """{n_layer, n_head, d_model}, as conf/size/<size>.yaml gives them."""
        return size_shape(self.size)

    @property
    def n_layer(self) -> int:
        return self.shape["n_layer"]

    @property
    def n_head(self) -> int:
        return self.shape["n_head"]

    @property
    def d_model(self) -> int:
        return self.shape["d_model"]
