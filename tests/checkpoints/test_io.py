"""inattn.checkpoints.io: the one reader (every failure one `CheckpointError` naming the field),
the one writer (atomic, also when the process is killed mid-write), and the one list of shape
fields (it holds every GPTConfig field that changes a model's tensors)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inattn.checkpoints import CheckpointError, read_checkpoint, write_checkpoint
from inattn.checkpoints.io import (
    LAST,
    SHAPE_FIELDS,
    STEP_FILE,
    check_shape,
    config_key,
    model_state,
)
from inattn.checkpoints.pretrained import load_model
from inattn.checkpoints.resume import read_resumable
from inattn.model import GPT, GPTConfig

TINY = GPTConfig(arch="dense", vocab_size=32, context_length=8, n_layer=2, n_head=2, d_model=16)


def contents(cfg: GPTConfig = TINY, step: int = 3) -> dict:
    """What inattn-train saves, as far as reading goes."""
    model = GPT(cfg)
    return {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {"model": cfg.to_dict()},
        "global_step": step,
    }


def test_a_written_checkpoint_reads_back(tmp_path):
    path = tmp_path / LAST
    write_checkpoint(contents(step=7), path)
    ckpt = read_checkpoint(path)
    assert ckpt["global_step"] == 7 and ckpt["hyper_parameters"]["model"] == TINY.to_dict()
    assert model_state(ckpt).keys() == GPT(TINY).state_dict().keys()
    assert load_model(path).cfg == TINY


def truncated(path: Path) -> None:
    write_checkpoint(contents(), path)
    path.write_bytes(path.read_bytes()[:1000])


BROKEN = {  # failure -> (how the file is made, what the one line says)
    "missing": (lambda p: None, "checkpoint not found"),
    "a folder": (lambda p: p.mkdir(), "(a folder, not a checkpoint file)"),
    "truncated": (truncated, "cannot read checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "cannot read checkpoint"),
    "not a torch file": (lambda p: p.write_text("the cat sat\n"), "cannot read checkpoint"),
    "not a dict": (lambda p: torch.save(torch.zeros(3), p), "not an inattn-train checkpoint"),
    "no state_dict": (
        lambda p: torch.save({"hyper_parameters": {"model": {}}}, p),
        "(no state_dict)",
    ),
    "no model config": (
        lambda p: torch.save({"state_dict": {}, "hyper_parameters": {}}, p),
        "(no hyper_parameters)",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_every_failure_is_one_checkpoint_error_naming_field_and_file(tmp_path, name):
    make, says = BROKEN[name]
    path = tmp_path / "model.ckpt"
    make(path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path, field="init_from")
    assert err.value.field == "init_from"
    assert says in err.value.message and str(path) in err.value.message
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("init_from: ")  # what the CLIs print after `error: `


def test_a_resume_also_needs_the_step(tmp_path):
    path = tmp_path / "weights-only.ckpt"
    write_checkpoint({k: v for k, v in contents().items() if k != "global_step"}, path)
    read_checkpoint(path)  # enough for a trained model
    with pytest.raises(CheckpointError) as err:
        read_resumable(path)
    assert err.value.field == "resume" and "(no global_step)" in err.value.message


def test_a_checkpoint_whose_tensors_do_not_fit_its_config_is_refused(tmp_path):
    ckpt = contents()
    del ckpt["state_dict"]["model.ln_f.weight"]
    write_checkpoint(ckpt, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "model.ckpt", field="ckpt")
    assert err.value.field == "ckpt" and "ln_f.weight" in err.value.message
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- the writer


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / LAST
    write_checkpoint(contents(step=1), path)

    def half_then_fail(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(contents(step=2), path)
    monkeypatch.undo()
    assert read_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [LAST]


KILLED_MID_WRITE = """
import io, os, signal, sys
import torch
from inattn.checkpoints.io import write_checkpoint

real_save = torch.save

def half_then_die(obj, f):
    buffer = io.BytesIO()
    real_save(obj, buffer)
    f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = half_then_die
write_checkpoint({"global_step": 2, "state_dict": {}}, sys.argv[1])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_process_killed_mid_write_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / LAST
    write_checkpoint(contents(step=1), path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)], env=env, capture_output=True
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert read_checkpoint(path)["global_step"] == 1  # the old one, whole
    left = [p.name for p in tmp_path.iterdir() if p.name != LAST]
    assert len(left) == 1 and left[0].startswith(f".{LAST}.")  # the half file, hidden
    assert not STEP_FILE.fullmatch(left[0])  # and never taken for a checkpoint


# ----------------------------------------------------------------------------- shape fields

# One other value for every GPTConfig field (from TINY): a new field must be added here, which
# asks whether it changes the model's tensors and so belongs in SHAPE_FIELDS.
OTHER = {
    "arch": "inattn",
    "vocab_size": 40,
    "context_length": 12,
    "n_layer": 3,
    "n_head": 4,
    "d_model": 24,
    "mlp_ratio": 2,
    "position": "rope",
    "rope_base": 500.0,
    "rope_scale": 2.0,
    "tie_weights": False,
    "bias": False,
    "dropout": 0.1,
    "norm_eps": 1e-6,
    "n_kv_head": 1,
    "kv_share": 2,
}


def tensor_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in GPT(cfg).state_dict().items()}


def test_shape_fields_are_the_fields_that_change_the_tensors():
    assert set(OTHER) == {f.name for f in dataclasses.fields(GPTConfig)}
    changes = {
        name
        for name, value in OTHER.items()
        if tensor_shapes(dataclasses.replace(TINY, **{name: value})) != tensor_shapes(TINY)
    }
    # context_length sizes the learned table: a resume keeps it, init_from extends the table;
    # n_head keeps every tensor's shape but cuts the same tensors into other heads
    assert changes | {"n_head"} == {*SHAPE_FIELDS, "context_length"}


@pytest.mark.parametrize("name", SHAPE_FIELDS)
def test_each_shape_field_that_differs_is_refused_naming_its_config_key(name, tmp_path):
    saved = TINY.to_dict()
    check_shape(saved, dict(saved), tmp_path / "a.ckpt")  # the same shape: nothing
    wanted = {**saved, name: OTHER[name]}
    with pytest.raises(CheckpointError) as err:
        check_shape(saved, wanted, tmp_path / "a.ckpt", fix="resume with the same model")
    assert err.value.field == config_key(name)
    assert f"{name}={saved[name]}" in err.value.message
    assert f"{name}={OTHER[name]}" in err.value.message
    assert err.value.message.endswith(": resume with the same model")
    with pytest.raises(CheckpointError) as err:
        check_shape(saved, wanted, tmp_path / "a.ckpt", field="init_from")
    assert err.value.field == "init_from"


def test_config_keys_of_shape_fields():
    assert config_key("n_layer") == "model.n_layer"
    assert config_key("position") == "position"
    assert config_key("vocab_size") == "tokenizer.vocab_size"


def test_older_checkpoints_count_as_trained_with_the_old_defaults(tmp_path):
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("n_kv_head", "kv_share")}
    check_shape(old, TINY.to_dict(), tmp_path)  # MHA, no sharing: what they were
    with pytest.raises(CheckpointError) as err:
        check_shape(old, {**TINY.to_dict(), "n_kv_head": 1}, tmp_path)
    assert err.value.field == "model.n_kv_head"
    # another field a checkpoint does not record is not held against it
    check_shape({k: v for k, v in TINY.to_dict().items() if k != "bias"}, TINY.to_dict(), tmp_path)
