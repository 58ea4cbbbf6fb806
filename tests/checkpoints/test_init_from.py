"""Starting from a checkpoint at a longer context: weights copied, positions extended, checks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inattn.checkpoints.init_from import copy_weights, initial_config, load_for
from inattn.checkpoints.io import CheckpointError
from inattn.model import GPT, GPTConfig


def save(tmp_path, cfg: GPTConfig):
    torch.manual_seed(0)
    model = GPT(cfg)
    path = tmp_path / "last.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model": cfg.to_dict()},
        },
        path,
    )
    return model, path


@pytest.mark.parametrize(
    "position, method",
    [("learned", "interpolate"), ("learned", "copy"), ("rope", "rope_scale"), ("alibi", "auto")],
)
def test_weights_copied_and_positions_extended(tmp_path, position, method):
    short = GPTConfig(
        arch="inattn",
        position=position,
        context_length=16,
        vocab_size=64,
        n_layer=2,
        n_head=2,
        d_model=32,
    )
    old, path = save(tmp_path, short)
    long_cfg = dataclasses.replace(short, context_length=64)
    loaded = load_for(long_cfg, path, method)
    new = GPT(initial_config(long_cfg, loaded))
    copy_weights(new, loaded)
    assert new.cfg.context_length == 64
    torch.testing.assert_close(new.blocks[1].mlp.fc.weight, old.blocks[1].mlp.fc.weight)
    if position == "learned":
        torch.testing.assert_close(new.pos_emb.weight[0], old.pos_emb.weight[0])
        end = 63 if method == "interpolate" else 15
        torch.testing.assert_close(new.pos_emb.weight[end], old.pos_emb.weight[15])
    if position == "rope":
        assert new.cfg.rope_scale == 4.0
    idx = torch.randint(0, 64, (1, 16))
    if method in ("copy", "auto"):  # the first T0 positions behave exactly as before
        torch.testing.assert_close(new(idx), old(idx))
    assert new(torch.randint(0, 64, (1, 64))).shape == (1, 64, 64)


def test_dense_converts_to_inattention_with_the_same_tensors(tmp_path):
    cfg = GPTConfig(arch="dense", context_length=16, vocab_size=64, n_layer=2, n_head=2, d_model=32)
    dense, path = save(tmp_path, cfg)
    loaded = load_for(dataclasses.replace(cfg, arch="inattn"), path)
    assert loaded.cfg.arch == "inattn"
    for (name, a), (_, b) in zip(
        dense.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    x = torch.randint(0, 64, (2, 16))  # the same weights, now reading K/V from N(x0)
    want = GPT(dataclasses.replace(cfg, arch="inattn"))
    want.load_state_dict(dense.state_dict())
    assert torch.equal(loaded.model(x), want.eval()(x))


def test_other_kv_layout_or_shape_is_refused(tmp_path):
    mqa = GPTConfig(
        arch="dense", n_kv_head=1, context_length=16, vocab_size=64, n_layer=2, n_head=2, d_model=32
    )
    _, path = save(tmp_path / "mqa", mqa) if (tmp_path / "mqa").mkdir() is None else None
    with pytest.raises(CheckpointError) as err:
        load_for(dataclasses.replace(mqa, arch="inattn", n_kv_head=None), path)
    assert err.value.field == "arch" and "n_kv_head=1" in err.value.message
    cfg = GPTConfig(
        arch="inattn", context_length=16, vocab_size=64, n_layer=2, n_head=2, d_model=32
    )
    _, path = save(tmp_path, cfg)
    with pytest.raises(CheckpointError) as err:
        load_for(dataclasses.replace(cfg, n_layer=3), path)
    assert err.value.field == "init_from" and "n_layer" in err.value.message


def test_other_kv_heads_in_the_same_arch_are_refused(tmp_path):
    """An MQA checkpoint into a multi-head dense run: the key/value tensors differ (a traceback
    from load_state_dict before n_kv_head was a shape field)."""
    mqa = GPTConfig(
        arch="dense", n_kv_head=1, context_length=16, vocab_size=64, n_layer=2, n_head=2, d_model=32
    )
    _, path = save(tmp_path, mqa)
    with pytest.raises(CheckpointError) as err:
        load_for(dataclasses.replace(mqa, n_kv_head=None), path)
    assert err.value.field == "init_from" and "n_kv_head=1" in err.value.message
