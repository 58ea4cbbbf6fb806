"""The model against the float64 references of tests/reference.py, written from the spec."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inattn.errors import ConfigError
from inattn.model import GPT, POSITIONS, GPTConfig
from tests.reference import dense_logits, inattn_position, random_model, rel_err

TOL = 1e-10


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.mark.parametrize("naive", [False, True], ids=["sdpa", "naive"])
@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_inattn_matches_per_position_reference(position, naive):
    model = random_model("inattn", position)
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 50, (11,), generator=gen)
    logits = model(idx[None], naive=naive)[0]
    for t in [0, int(torch.randint(1, 10, (1,), generator=gen)), 10]:
        assert rel_err(logits[t], inattn_position(model, idx, t)) < TOL


@pytest.mark.parametrize("naive", [False, True], ids=["sdpa", "naive"])
@pytest.mark.parametrize("position", POSITIONS)
def test_dense_matches_per_position_reference(position, naive):
    model = random_model("dense", position)
    idx = torch.randint(0, 50, (9,), generator=torch.Generator().manual_seed(2))
    assert rel_err(model(idx[None], naive=naive)[0], dense_logits(model, idx)) < TOL


@pytest.mark.parametrize("arch", ["dense", "inattn"])
@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_causal(arch, position):
    model = random_model(arch, position)
    idx = torch.randint(0, 50, (1, 12))
    t = 5
    changed = idx.clone()
    changed[0, t + 1 :] = (changed[0, t + 1 :] + 7) % 50
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], rtol=0, atol=0)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_last_only_equals_full_forward():
    model = random_model("inattn", "rope")
    idx = torch.randint(0, 50, (2, 10))
    torch.testing.assert_close(model(idx, last_only=True)[:, 0], model(idx)[:, -1])


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("tie", [True, False])
def test_equal_parameter_counts(position, tie):
    counts = set()
    for arch in ("dense", "inattn"):
        if arch == "inattn" and position == "none":
            continue
        cfg = GPTConfig(arch=arch, position=position, tie_weights=tie)
        counts.add(GPT(cfg).num_params())
    assert len(counts) == 1


def test_variants_share_state_dict_keys():
    dense = GPT(GPTConfig(arch="dense")).state_dict()
    inattn = GPT(GPTConfig(arch="inattn")).state_dict()
    assert dense.keys() == inattn.keys()


def test_inattn_kv_is_one_projection_of_normalised_x0():
    model = random_model("inattn", "learned")
    x0 = torch.randn(2, 7, 16, dtype=torch.float64)
    kvs = model.inattn_kv(x0)
    s = F.layer_norm(x0, (16,), eps=model.cfg.norm_eps)
    for block, (k, v) in zip(model.blocks, kvs, strict=True):
        w, b = block.attn.kv_weight()
        torch.testing.assert_close(torch.cat([k, v], -1), F.linear(s, w, b))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"arch": "sparse"}, "arch"),
        ({"d_model": 130, "n_head": 4}, "d_model"),
        ({"arch": "inattn", "position": "none"}, "position"),
        ({"position": "sinusoid"}, "position"),
        ({"n_layer": 0}, "n_layer"),
        ({"context_length": -1}, "context_length"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        GPTConfig(**kwargs)
    assert err.value.field == field


def test_sequence_beyond_learned_table_is_refused():
    model = GPT(GPTConfig(context_length=8))
    with pytest.raises(ConfigError, match="context_length"):
        model(torch.zeros(1, 9, dtype=torch.long))
