"""What every run leaves behind: metrics.json (written atomically, once, at the end)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

METRICS_FILE = "metrics.json"


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
