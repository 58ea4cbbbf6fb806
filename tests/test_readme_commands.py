"""Every `inattn-*` command line shown in README.md works, in a cheap form.

The Hydra commands run in this process with `--cfg job` added: their command line is checked
exactly as for a real run (config composition, the app's validation, the output folder), then the
config is printed instead of running; a `-m` sweep is checked the same way and not launched.
Placeholder paths (`...`, checkpoints, sweep folders) are replaced by those of a finished tiny
run. `inattn-report` runs for real on that run.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from inattn.cli import bench, generate, report, reproduce, train
from inattn.cli.app import sweep_combinations
from inattn.config import CONF_DIR
from tests.helpers import cli_in_process

README = Path(__file__).resolve().parent.parent / "README.md"
PROGRAMS = {
    "inattn-train": train.main,
    "inattn-generate": generate.main,
    "inattn-bench": bench.main,
    "inattn-reproduce": reproduce.main,
    "inattn-report": report.main,
}


def readme_commands(text: str) -> list[str]:
    """The `inattn-*` lines of the bash blocks (continuations joined) and of inline code."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`(inattn-[a-z]+ [^`]+)`", text)  # not a program's bare name
    return [line.strip() for line in lines if line.strip().split(" ")[0] in PROGRAMS]


COMMANDS = list(dict.fromkeys(readme_commands(README.read_text())))


def test_the_readme_shows_every_command():
    assert {c.split()[0] for c in COMMANDS} == set(PROGRAMS)
    assert len(COMMANDS) >= 20


def concrete(args: list[str], run: Path) -> list[str]:
    """The arguments with placeholder paths (checkpoints, model folders, hub ids that need the
    network) replaced by the finished run's checkpoint."""
    checkpoint = run / "checkpoints" / "last.ckpt"
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key in ("ckpt", "resume", "init_from") and value not in ("auto", "false"):
            arg = f"{key}={checkpoint}"
        out.append(arg)
    return out


def sweep_folder(config_path: str, config_name: str, version_base: str) -> Callable:
    """In place of `hydra.main`: resolves the sweep's folder as Hydra's sweeper does (before any
    job, so without a job's Hydra settings), and launches nothing."""

    def decorate(task: Callable) -> Callable[[], None]:
        def run() -> None:
            given = [a for a in sys.argv[1:] if not a.startswith("-")]
            first = next(sweep_combinations(given))  # the sweeper resolves the folder once
            with initialize_config_dir(config_path, version_base=version_base):
                cfg = compose(config_name, first, return_hydra_config=True)
            assert str(cfg.hydra.sweep.dir)

        return run

    return decorate


def hydra_flags_first(args: list[str]) -> list[str]:
    """Hydra's flags, then the overrides (the test adds some); `--cfg job` unless --help or -m."""
    flags, overrides, rest = [], [], iter(args)
    for arg in rest:
        if arg == "--cfg":
            flags += [arg, next(rest)]
        elif arg.startswith("-"):
            flags.append(arg)
        else:
            overrides.append(arg)
    if not {"--help", "--cfg", "-m"} & set(flags):
        flags += ["--cfg", "job"]
    return [*flags, *overrides]


@pytest.fixture
def slurm_conf(tmp_path, monkeypatch) -> None:
    """conf/ with the SLURM example copied to local/slurm.yaml, as the README tells users to."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    shutil.copy(conf / "local" / "slurm.example.yaml", conf / "local" / "slurm.yaml")
    monkeypatch.setattr("inattn.cli.app.CONF_DIR", conf)


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_works(line, trained_run, tmp_path, capsys, monkeypatch, request):
    program, *args = shlex.split(line, comments=True)
    if "device=cuda" in args and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    monkeypatch.chdir(tmp_path)  # relative output folders land here
    if program == "inattn-report":
        folder = [a for a in args if not a.startswith("-")]
        args = [str(trained_run.parent) if a in folder else a for a in args]
        argv = [*args, "--out", str(tmp_path / "report")]
        code, out, err = cli_in_process(lambda: report.main(argv), [], capsys, monkeypatch)
        assert code == 0, err[-3000:]
        assert (tmp_path / "report" / "report.md").is_file()
        return
    if any(a.startswith("local=slurm") for a in args):
        request.getfixturevalue("slurm_conf")
    if "-m" in args:  # Hydra refuses -m with --cfg: check the sweep as a run would, launch none
        monkeypatch.setattr("inattn.cli.app.hydra.main", sweep_folder)
    args = hydra_flags_first(concrete(args, trained_run))
    code, out, err = cli_in_process(PROGRAMS[program], args, capsys, monkeypatch)
    assert code == 0, (out + err)[-3000:]
    assert "error:" not in err and "Traceback" not in err
