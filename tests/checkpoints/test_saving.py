"""inattn.checkpoints.saving: atomic writes, the finite-weights guard, when validation is due, and
which checkpoint files a run keeps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from inattn.checkpoints.saving import (
    BEST,
    LAST,
    AtomicCheckpointIO,
    Checkpoints,
    NumericalFault,
    finite_or_raise,
    validation_due,
)


def one_process() -> SimpleNamespace:
    """A trainer as finite_or_raise sees it on one process: the decision is its own."""
    return SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda x, all: x))


def test_atomic_save_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    assert torch.load(path)["step"] == 1

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1  # the old checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_non_finite_weights_are_refused_with_their_name():
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    finite_or_raise(one_process(), module, "checkpoint at step 5")  # all finite: nothing
    with torch.no_grad():
        module[1].bias[2] = float("inf")
    with pytest.raises(NumericalFault, match=r"checkpoint at step 5: parameter 1.bias is not"):
        finite_or_raise(one_process(), module, "checkpoint at step 5")


def test_a_fault_on_another_process_stops_this_one_too():
    module = torch.nn.Linear(2, 2)
    elsewhere = SimpleNamespace(
        strategy=SimpleNamespace(reduce_boolean_decision=lambda x, all: True)
    )
    with pytest.raises(NumericalFault, match="a parameter on another process"):
        finite_or_raise(elsewhere, module, "step 3")


@pytest.mark.parametrize(
    "every, batch_idx, enabled, due",
    [(3, 2, True, True), (3, 3, True, False), (3, 5, True, True), (3, 2, False, False),
     (1, 0, True, True), (None, 2, True, False), (0, 2, True, False)],
)  # fmt: skip
def test_validation_is_due_every_val_check_batch(every, batch_idx, enabled, due):
    trainer = SimpleNamespace(
        val_check_batch=every,
        enable_validation=enabled,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(total_batch_idx=batch_idx)),
    )
    assert validation_due(trainer) is due


def write_last(folder: Path, step: int) -> None:
    AtomicCheckpointIO().save_checkpoint({"step": step}, folder / LAST)


@pytest.mark.parametrize("keep", [1, 2, -1])
def test_kept_step_files_are_the_newest_and_survive_later_saves(tmp_path, keep):
    checkpoints = Checkpoints(tmp_path, every_n_steps=1, keep=keep)
    for step in range(1, 6):
        write_last(tmp_path, step)
        checkpoints._keep_copy(step)
    kept = sorted(p.name for p in tmp_path.glob("step-*.ckpt"))
    steps = range(1, 6) if keep == -1 else range(6 - keep, 6)
    assert kept == [f"step-{s:07d}.ckpt" for s in steps]
    write_last(tmp_path, 6)  # a rename over last.ckpt leaves the kept copies alone
    for s in steps:
        assert torch.load(tmp_path / f"step-{s:07d}.ckpt")["step"] == s


def test_best_loss_travels_in_the_callback_state(tmp_path):
    checkpoints = Checkpoints(tmp_path, every_n_steps=10)
    checkpoints.best, checkpoints.best_step = 2.5, 40
    again = Checkpoints(tmp_path, every_n_steps=10)
    again.load_state_dict(checkpoints.state_dict())
    assert (again.best, again.best_step) == (2.5, 40)
    assert again.last_path == tmp_path / LAST


def test_a_run_saves_last_periodically_and_at_the_end_and_best_on_validation(fit_tiny, tmp_path):
    folder = tmp_path / "checkpoints"
    saved: list[int] = []

    class Recording(Checkpoints):
        def _save_last(self, trainer, pl_module):
            super()._save_last(trainer, pl_module)
            saved.append(trainer.global_step)

    checkpoints = Recording(folder, every_n_steps=3)
    fit_tiny(7, callbacks=[checkpoints], validate=True, val_check_interval=2)
    # step 3: periodic; step 6: periodic, written after that step's validation; step 7: the end
    assert saved == [3, 6, 7]
    assert torch.load(folder / LAST, weights_only=False)["global_step"] == 7
    best = torch.load(folder / BEST, weights_only=False)
    assert best["global_step"] == checkpoints.best_step in (2, 4, 6)
