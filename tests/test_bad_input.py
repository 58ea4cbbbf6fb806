"""Bad input, table-driven: exit code 2, one `error:` line naming the field or file, no traceback,
no metrics.json. Most rows run the CLI's `main` in this process; a few run it as a subprocess."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from inattn.cli import generate, reproduce, train
from tests.helpers import cli, cli_in_process, tiny, train_in_process


@dataclass
class Inputs:
    """Files the rows point at, made once per module."""

    root: Path
    cache: Path
    good: Path  # a text file
    val: Path  # another one
    empty: Path
    binary: Path
    checkpoint: Path  # an inattn run's last.ckpt
    truncated: Path
    run_dir: Path  # that run's folder

    def killed_run(self, dest: Path) -> Path:
        """A copy of the run folder as a killed run leaves it: checkpoints, no metrics.json."""
        shutil.copytree(self.run_dir, dest)
        (dest / "metrics.json").unlink()
        return dest


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request) -> Inputs:
    request.getfixturevalue("one_thread")
    root = tmp_path_factory.mktemp("bad-input")
    cache = root / "cache"
    run_dir = root / "run"
    train_in_process(tiny(root, cache, "trainer.max_steps=2", "checkpoint.keep=0"), run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    data = checkpoint.read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (root / "good.txt").write_text("the cat sat on the mat\n")
    (root / "val.txt").write_text("the dog ran far away\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(b"text then \xff\xfe\xfd bytes that are not UTF-8\n")
    return Inputs(
        root=root,
        cache=cache,
        good=root / "good.txt",
        val=root / "val.txt",
        empty=root / "empty.txt",
        binary=root / "binary.txt",
        checkpoint=checkpoint,
        truncated=root / "truncated.ckpt",
        run_dir=run_dir,
    )


@dataclass
class Row:
    args: Callable[[Inputs, Path], list[str]]  # (inputs, this row's tmp folder) -> arguments
    field: str  # must appear in the error line
    program: str = "train"  # train | reproduce | generate
    subprocess: bool = False


def files(train_files: str, val: str | Path) -> list[str]:
    return ["data=files", f"data.train_files=[{train_files}]", f"data.val_files={val}"]


ROWS = {
    "unknown group option": Row(lambda i, t: ["arch=sparse"], "arch", subprocess=True),
    "negative lr": Row(lambda i, t: ["optim.lr=-1"], "optim.lr"),
    "zero lr": Row(lambda i, t: ["optim.lr=0"], "optim.lr"),
    "zero context_length": Row(lambda i, t: ["context_length=0"], "context_length"),
    "context beyond the learned table": Row(
        lambda i, t: ["model.context_length=8", "context_length=16"], "context_length"
    ),
    "init_from at a longer context with no extension method": Row(
        lambda i, t: [f"init_from={i.checkpoint}", "context_length=32", "init_extension=none"],
        "init_extension",
    ),
    "InAttention without positions": Row(lambda i, t: ["position=none"], "position"),
    "d_model not divisible by n_head": Row(lambda i, t: ["model.d_model=65"], "d_model"),
    "non-numeric override": Row(lambda i, t: ["trainer.max_steps=abc"], "trainer.max_steps"),
    "unknown key": Row(lambda i, t: ["model.colour=blue"], "model.colour"),
    "a sweep without -m": Row(lambda i, t: ["seed=1,2"], "seed"),
    "negative checkpoint interval": Row(
        lambda i, t: ["checkpoint.every_n_steps=-1"], "checkpoint.every_n_steps"
    ),
    "missing data path": Row(
        lambda i, t: files("/nonexistent/corpus.txt", i.val), "data.train_files"
    ),
    "empty file": Row(
        lambda i, t: files(f"{i.good},{i.empty}", i.val), "empty.txt", subprocess=True
    ),
    "binary file": Row(lambda i, t: files(f"{i.good},{i.binary}", i.val), "binary.txt"),
    "corpus smaller than one block": Row(
        lambda i, t: [*files(str(i.good), i.val), "context_length=512"], "context_length"
    ),
    "batch larger than the data": Row(lambda i, t: ["batch_size=1000"], "batch_size"),
    "missing checkpoint": Row(lambda i, t: [f"resume={t}/none.ckpt"], "resume"),
    "truncated checkpoint": Row(
        lambda i, t: [f"resume={i.truncated}"], "truncated.ckpt", subprocess=True
    ),
    "checkpoint of the other arch": Row(
        lambda i, t: [f"resume={i.checkpoint}", "arch=dense"], "arch"
    ),
    "resume=auto without a run folder": Row(
        lambda i, t: ["resume=auto", "hydra.run.dir=null"], "resume"
    ),
    "resume=auto past max_steps": Row(
        lambda i, t: [
            "resume=auto",
            f"hydra.run.dir={i.killed_run(t / 'killed')}",
            "trainer.max_steps=1",
        ],
        "trainer.max_steps",
    ),
    "fractional seed": Row(lambda i, t: ["seed=1.5"], "seed"),
    "negative seed": Row(lambda i, t: ["seed=-3"], "seed", subprocess=True),
    "unknown precision": Row(lambda i, t: ["trainer.precision=bf17"], "trainer.precision"),
    "tags as a bare string": Row(lambda i, t: ["tags=fast"], "tags"),
    "betas out of range": Row(lambda i, t: ["optim.betas=[0.9,1.5]"], "optim.betas"),
    "Trainer key Lightning refuses": Row(
        lambda i, t: ["trainer.val_check_interval=-1"], "trainer.val_check_interval"
    ),
    "Trainer key Lightning does not know": Row(
        lambda i, t: ["+trainer.colour=blue"], "trainer.colour", subprocess=True
    ),
    "Trainer strategy Lightning does not know": Row(
        lambda i, t: ["trainer.strategy=sideways"], "trainer.strategy"
    ),
    "zero devices": Row(lambda i, t: ["trainer.devices=0"], "trainer.devices"),
    "W&B mode with logger=csv": Row(
        lambda i, t: ["logger=csv", "logger.wandb.mode=online"], "logger.wandb.mode"
    ),
    "DDP in a local sweep": Row(
        lambda i, t: ["-m", "trainer=ddp", "seed=1,2", f"hydra.sweep.dir={t}/sweep"],
        "trainer.strategy",
    ),
    "unwritable output folder": Row(
        lambda i, t: [f"hydra.run.dir={i.good}/run"], "hydra.run.dir", subprocess=True
    ),
    "budget smaller than every size": Row(
        lambda i, t: ["experiment=equal_vram", "preset=smoke", "budget=1KiB", "dry_run=true"],
        "budget",
        program="reproduce",
    ),
    "prompt longer than the model allows": Row(
        lambda i, t: [f"ckpt={i.checkpoint}", "prompt=" + "the cat " * 40, "max_new_tokens=4"],
        "prompt",
        program="generate",
    ),
}


def arguments(row: Row, inputs: Inputs, tmp: Path) -> list[str]:
    args = row.args(inputs, tmp)
    if row.program == "reproduce":
        return [*args, f"paths.root={tmp}"]
    if row.program == "generate":
        return args
    base = tiny(tmp, inputs.cache)
    if not any(a.startswith(("hydra.run.dir=", "-m")) for a in args):
        base.append(f"hydra.run.dir={tmp}/run")
    flags = [a for a in args if a == "-m"]  # Hydra's flags go before the overrides
    return [*flags, *base, *(a for a in args if a not in ("-m", "hydra.run.dir=null"))]


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_is_one_line_and_exit_2(name, inputs, tmp_path, capsys, monkeypatch):
    row = ROWS[name]
    args = arguments(row, inputs, tmp_path)
    if row.subprocess:
        result = cli(*args)
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        program = {"train": train, "reproduce": reproduce, "generate": generate}[row.program]
        code, out, err = cli_in_process(program.main, args, capsys, monkeypatch)
    assert code == 2, (out + err)[-3000:]
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and row.field in errors[0], err[-3000:]
    assert not list(tmp_path.rglob("metrics.json"))


def test_the_table_has_the_rows_the_contract_asks_for():
    assert len(ROWS) >= 15 and sum(r.subprocess for r in ROWS.values()) >= 3
