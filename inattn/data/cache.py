"""The on-disk cache: one folder per key, built once even when several processes ask at once.

A folder is complete exactly when it exists under its key: it is built in a temporary folder
beside it and renamed into place (`os.replace` is atomic). Builders of the same key take turns on
an exclusive `flock`, and whoever gets it second finds the folder and reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKER = "meta.json"  # written last into a build; its presence means the folder is usable


def cache_key(parts: dict[str, Any]) -> str:
    """A short hash of everything that decides the cached result."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (released by the OS if the process dies)."""
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_once(root: Path, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """`root/key`, made by `build(empty_folder)` unless it exists; returns (folder, built)."""
    final = root / key
    if is_complete(final):
        return final, False
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f"{key}.lock"):
        if is_complete(final):  # another process built it while this one waited
            return final, False
        tmp = Path(tempfile.mkdtemp(prefix=f".building-{key}-", dir=root))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            build(tmp)
            if final.exists():  # a folder left without its marker: not usable
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, True
