"""Where a result comes from: the code's revision, the machine, the command, when and how long.

Every result file records these (an experiment's design.json, a benchmark's results.json and
report, a training run's metrics.json), so each fact is read here and nowhere else.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


def git_revision(path: Path | None = None) -> str:
    """The checkout's commit (with `-dirty` when it has local changes), or 'unknown'."""
    cwd = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def machine() -> str:
    """Platform, cores, torch threads, GPU, Python and torch versions, in one line."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), "
        f"{device}, Python {platform.python_version()}, torch {torch.__version__}"
    )


def command_line(program: str) -> str:
    """The command as the user typed it: the console-script name, then the arguments."""
    return shlex.join([program, *sys.argv[1:]])


def local_time() -> str:
    """Now, in the machine's time zone, to the second (ISO 8601)."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def start(command: str) -> dict[str, Any]:
    """Read at the start of a long job: revision (`-dirty` if changed), command, machine, clock.

    Reading them first matters: the tree may change while the job runs.
    """
    return {
        "revision": git_revision(),
        "command": command,
        "machine": machine(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": round(os.getloadavg()[0], 2),
        "clock_start": time.time(),
    }


def finish(prov: Mapping[str, Any]) -> dict[str, Any]:
    """`start`'s record completed at the end: wall time and load (the raw clock dropped)."""
    return {
        **{k: v for k, v in prov.items() if k != "clock_start"},
        "wall_minutes": round((time.time() - prov["clock_start"]) / 60, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
    }


def field_lines(fields: Mapping[str, str]) -> list[str]:
    """`key:   value` lines with the values aligned: the head of a plain-text report."""
    width = max(len(k) for k in fields) + 2
    return [f"{k + ':':<{width}}{v}" for k, v in fields.items()]


def benchmark_header(
    title: str,
    command: str,
    load: tuple[float, float],
    seconds: float,
    revision: str | None = None,
    **extra: str,
) -> str:
    """The lines that open a benchmark report: when, what code, what machine, how loaded.

    load: the 1-minute load average at start and end; above the thread count, other work shared
    the cores while the benchmark ran. revision: the code's commit, best taken at the start
    (default: now).
    """
    fields = {
        "date": local_time(),
        "git revision": revision or git_revision(),
        "machine": machine(),
        **{k.replace("_", " "): v for k, v in extra.items()},
        "command": command,
        "wall time": f"{seconds / 60:.1f} min",
        "load average": f"{load[0]:.2f} at start, {load[1]:.2f} at end (1 min, "
        f"{os.cpu_count()} cores; above the thread count, other work shared the cores)",
    }
    return "\n".join([title, *field_lines(fields)])


@dataclass
class BenchmarkRun:
    """A benchmark's start (the code's revision, the load, the clock) and its report's ending."""

    revision: str = field(default_factory=git_revision)
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])
    start: float = field(default_factory=time.perf_counter)

    def header(self, title: str, command: str, **extra: str) -> str:
        load = (self.load_start, os.getloadavg()[0])
        seconds = time.perf_counter() - self.start
        return benchmark_header(title, command, load, seconds, self.revision, **extra)

    @staticmethod
    def emit(report: str, out: Path | None) -> None:
        """Print the report, and write it to `out` too when given."""
        print(report, end="")
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report)
