"""Local text files: globs expanded, contents checked, stats for the cache key, held-out names."""

from __future__ import annotations

import codecs
import glob
import hashlib
from collections.abc import Sequence
from pathlib import Path

from inattn.errors import DataError

CHUNK = 1 << 20


def split_patterns(patterns: str | Path | Sequence[str]) -> list[str]:
    """A list of paths and globs, or one string of them separated by commas (`'a.txt,b/*.txt'`);
    a string naming an existing file is that file, commas and all."""
    if not isinstance(patterns, (str, Path)):
        return [str(p) for p in patterns]
    text = str(patterns)
    if "," not in text or Path(text).expanduser().exists():
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


def expand(patterns: str | Sequence[str], field: str) -> list[Path]:
    """Paths and globs to sorted files, each once; a pattern that matches nothing is refused."""
    patterns = split_patterns(patterns)
    found: dict[str, Path] = {}
    for pattern in patterns:
        pattern = str(Path(pattern).expanduser())
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            matches = [p for p in matches if p.is_file()]
        else:
            path = Path(pattern)
            if path.is_dir():
                raise DataError(
                    field, f"{path} is a directory; name files or a glob like {path}/*.txt"
                )
            matches = [path] if path.is_file() else []
        if not matches:
            raise DataError(field, f"no file matches {pattern!r}")
        for path in matches:
            found.setdefault(str(path.resolve()), path)
    return sorted(found.values())


def check_text(path: Path, field: str) -> None:
    """Refuse a file that is empty, not UTF-8, or binary (NUL bytes), naming it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if b"\x00" in chunk:
                raise DataError(field, f"{path} looks binary (NUL byte near offset {offset})")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                where = offset + e.start
                raise DataError(
                    field, f"{path} is not UTF-8 text (bad byte at offset {where})"
                ) from e
            offset += len(chunk)
    if offset == 0:
        raise DataError(field, f"{path} is empty")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        raise DataError(field, f"{path} is not UTF-8 text (truncated at the end)") from e


def stats(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """(absolute path, size, mtime in ns) per file: what the cache key sees of local files."""
    out = []
    for path in paths:
        st = path.stat()
        out.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
    return out


def tree_stats(root: Path) -> list[tuple[str, int, int]]:
    """`stats` of every file under a folder (a dataset written by `save_to_disk`, say)."""
    return stats(sorted(p for p in root.rglob("*") if p.is_file()))


def held_out(names: Sequence[str], fraction: float) -> set[str]:
    """round(fraction * n) names (at least one, never all), ranked by a hash of the name.

    The choice depends on each name alone, so it never changes with the platform or file order.
    """
    if len(names) < 2:
        raise ValueError("holding out needs at least two names")
    count = min(max(1, round(fraction * len(names))), len(names) - 1)
    ranked = sorted(names, key=lambda n: hashlib.sha256(f"inattn-val:{n}".encode()).hexdigest())
    return set(ranked[:count])
