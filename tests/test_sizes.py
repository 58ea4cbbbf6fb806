"""Model shapes read from conf/size: one name, one shape everywhere."""

from __future__ import annotations

import pytest

from inattn.errors import ConfigError
from inattn.sizes import size_names, size_shape


def test_conf_sizes_by_name():
    assert size_shape("tiny") == {"n_layer": 4, "n_head": 4, "d_model": 128}
    assert size_shape("gpt2-small") == {"n_layer": 12, "n_head": 12, "d_model": 768}
    assert {"nano", "tiny", "gpt2-small"} <= set(size_names())


def test_unknown_size_names_the_field():
    with pytest.raises(ConfigError, match="sizes: unknown size 'huge'"):
        size_shape("huge", "sizes")
