"""Atomic writes and the benchmark report header."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inattn.run_info import BenchmarkRun, benchmark_header, write_atomic, write_json_atomic


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_json_atomic_writes_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.json"
    write_json_atomic(path, {"b": 2, "a": 1})
    assert json.loads(path.read_text()) == {"a": 1, "b": 2}
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.bin"
    path.write_bytes(b"old")

    def half_then_fail(f) -> None:
        f.write(b"new but incomplete")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, half_then_fail, binary=True)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]


def test_benchmark_header_names_the_run() -> None:
    text = benchmark_header("Title", "python x.py --a 1", (0.5, 1.5), 90.0, threads="2")
    lines = text.splitlines()
    assert lines[0] == "Title"
    fields = dict(line.split(":", 1) for line in lines[1:])
    assert fields["command"].strip() == "python x.py --a 1"
    assert fields["wall time"].strip() == "1.5 min"
    assert fields["threads"].strip() == "2"
    assert fields["load average"].strip().startswith("0.50 at start, 1.50 at end")
    assert {"date", "git revision", "machine"} <= fields.keys()


def test_benchmark_run_reports_from_its_start(tmp_path: Path, capsys) -> None:
    import time

    run = BenchmarkRun(revision="abc123", load_start=0.25, start=time.perf_counter() - 90)
    fields = dict(line.split(":", 1) for line in run.header("T", "cmd").splitlines()[1:])
    assert fields["git revision"].strip() == "abc123"  # taken at the start, not now
    assert fields["wall time"].strip() == "1.5 min"
    assert fields["load average"].strip().startswith("0.25 at start")
    out = tmp_path / "sub" / "report.txt"
    run.emit("report\n", out)
    assert out.read_text() == "report\n" and capsys.readouterr().out == "report\n"
