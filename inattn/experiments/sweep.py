"""Training jobs of an experiment, run as `inattn-train -m` sweeps, and the configs they use.

A sweep is a subprocess so that the user's Hydra launcher (joblib locally, submitit on SLURM)
spreads its jobs exactly as it would for a sweep started by hand, and so that a rerun with the
same sweep folder skips the jobs that already finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from inattn.config import CONF_DIR
from inattn.errors import UserError
from inattn.reporting.runs_summary import collect_runs


def sweep_value(value: Any) -> str:
    """A Hydra override value; a list becomes a sweep (`a,b,c`)."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return "null" if value is None else str(value)


def sweep_command(
    sweep_dir: Path,
    grid: Mapping[str, Any],
    common: Sequence[str] = (),
    launcher: str | None = None,
) -> list[str]:
    cmd = [sys.executable, "-m", "inattn.cli.train", "-m", *common]
    cmd += [f"{key}={sweep_value(value)}" for key, value in grid.items()]
    cmd += [f"hydra.sweep.dir={sweep_dir}"]
    if launcher and launcher != "basic":
        cmd += [f"hydra/launcher={launcher}"]
    return cmd


def run_sweep(
    sweep_dir: Path,
    grid: Mapping[str, Any],
    common: Sequence[str] = (),
    launcher: str | None = None,
    root: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the grid and return the metrics of its finished jobs (with their `run_dir`)."""
    cmd = sweep_command(sweep_dir, grid, common, launcher)
    print("$ " + " ".join(cmd[2:]).replace("inattn.cli.train", "inattn-train"), flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if launcher == "joblib":  # jobs side by side: one thread each, or they fight for the cores
        env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run(cmd, cwd=root, env=env)
    if result.returncode != 0:
        raise UserError("sweep", f"training sweep failed (exit {result.returncode}): {sweep_dir}")
    runs = collect_runs(sweep_dir)
    for run in runs:
        run["run_dir"] = str(Path(run["metrics_file"]).parent)
    return runs


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """The `inattn-train` config these overrides give: what a sweep job would train.

    Works inside a running Hydra app (the experiments) and outside one (tests, scripts).
    """
    if GlobalHydra.instance().is_initialized():
        return compose("train", overrides=list(overrides))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))
