"""A regular (not editable) install works away from the repository: the wheel carries `conf/`.

The wheel is built from a copy of the sources and installed without its dependencies into a
fresh virtual environment that sees this environment's packages through a .pth file, so nothing is
downloaded. The commands then run from an unrelated folder, with nothing of the checkout on the
path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("inattn", "conf", "pyproject.toml", "setup.py", "README.md")


def run(cmd: list[str | Path], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    # The checkout must not be importable: the installed copy is what is tested.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1")
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtual environment with inattn installed from its wheel."""
    root = tmp_path_factory.mktemp("install")
    src, dist, venv = root / "src", root / "dist", root / "venv"
    src.mkdir()
    for name in SOURCES:  # a copy, so the build leaves nothing in the checkout
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name)
    shutil.rmtree(src / "conf" / "local", ignore_errors=True)  # this machine's own settings
    pip = [sys.executable, "-m", "pip"]
    built = run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src], root)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("inattn-*.whl")
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    assert made.returncode == 0, made.stderr[-3000:]
    python = venv / "bin" / "python"
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root)
    # The dependencies: this environment's site-packages as a plain path entry (its own .pth
    # files, among them an editable inattn, are not processed there).
    Path(site.stdout.strip(), "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    flags = ["--no-deps", "--no-index", "--ignore-installed", "-q"]
    done = run([python, "-m", "pip", "install", *flags, wheel], root)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def test_the_installed_package_uses_its_own_copy_of_conf(installed, tmp_path):
    found = run(
        [installed / "python", "-c", "import inattn.config as c; print(c.CONF_DIR)"], tmp_path
    )
    conf = Path(found.stdout.strip())
    assert conf.parts[-2:] == ("inattn", "conf") and "site-packages" in conf.parts, found.stderr
    assert (conf / "train.yaml").is_file() and (conf / "trainer" / "default.yaml").is_file()


def test_installed_commands_work_from_an_unrelated_folder(installed, tmp_path, tiny_corpus):
    job = run([installed / "inattn-train", "--cfg", "job"], tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "arch: inattn" in job.stdout
    for other in ("inattn-generate", "inattn-bench", "inattn-reproduce"):
        shown = run([installed / other, "--help"], tmp_path)  # composes the app's config
        assert shown.returncode == 0 and "== Config ==" in shown.stdout, (other, shown.stderr)

    trained = run(
        [
            installed / "inattn-train",
            "trainer.max_steps=5",
            *tiny_corpus,
            "size=nano",
            "context_length=16",
            "batch_size=4",
            "tokenizer.vocab_size=300",
            "trainer.accelerator=cpu",
            "trainer.val_check_interval=5",
            "logger=csv",
            "hydra.run.dir=run",
        ],
        tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
