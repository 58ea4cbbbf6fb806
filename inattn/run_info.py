"""What every run leaves behind: metrics.json (written atomically, once, at the end)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

METRICS_FILE = "metrics.json"


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


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`.

    Readers see the old file or the whole new one, never a partial write (a crash leaves no
    temporary file behind either).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that readers see either nothing or the whole file, never a partial one."""

    def write(f: IO) -> None:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")

    write_atomic(path, write)


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The run's metrics.json, or None when the run did not finish."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), "
        f"{device}, Python {platform.python_version()}, torch {torch.__version__}"
    )


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
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git revision": revision or git_revision(),
        "machine": machine(),
        **{k.replace("_", " "): v for k, v in extra.items()},
        "command": command,
        "wall time": f"{seconds / 60:.1f} min",
        "load average": f"{load[0]:.2f} at start, {load[1]:.2f} at end (1 min, "
        f"{os.cpu_count()} cores; above the thread count, other work shared the cores)",
    }
    width = max(len(k) for k in fields) + 2
    return "\n".join([title, *(f"{k + ':':<{width}}{v}" for k, v in fields.items())])


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
