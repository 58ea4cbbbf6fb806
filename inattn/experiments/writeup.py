"""The frame every experiment report shares: what was run, where, on which revision, how long."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from inattn.run_info import git_revision


def command_line() -> str:
    """The command as the user typed it (console-script name, then the overrides)."""
    return shlex.join(["inattn-reproduce", *sys.argv[1:]])


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), "
        f"{device}, Python {platform.python_version()}, torch {torch.__version__}"
    )


def write_report(path: Path, title: str, body: str, started: float) -> Path:
    """report.md: the findings first, then the exact command, revision, machine and wall time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    minutes = (time.perf_counter() - started) / 60
    text = (
        f"# {title}\n\n{body.strip()}\n\n## How this was produced\n\n"
        f"- command: `{command_line()}`\n- git revision: `{git_revision()}`\n"
        f"- machine: {machine()}\n- wall time: {minutes:.1f} min\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
    )
    path.write_text(text)
    return path
