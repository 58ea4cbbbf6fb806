"""Provenance: the benchmark report header and an experiment's start and finish records."""

from __future__ import annotations

import time
from pathlib import Path

from inattn.reporting.markdown import provenance_section
from inattn.reporting.provenance import BenchmarkRun, benchmark_header, field_lines, finish, start


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
    run = BenchmarkRun(revision="abc123", load_start=0.25, start=time.perf_counter() - 90)
    fields = dict(line.split(":", 1) for line in run.header("T", "cmd").splitlines()[1:])
    assert fields["git revision"].strip() == "abc123"  # taken at the start, not now
    assert fields["wall time"].strip() == "1.5 min"
    assert fields["load average"].strip().startswith("0.25 at start")
    out = tmp_path / "sub" / "report.txt"
    run.emit("report\n", out)
    assert out.read_text() == "report\n" and capsys.readouterr().out == "report\n"


def test_field_lines_align_the_values() -> None:
    assert field_lines({"a": "1", "long key": "2"}) == ["a:        1", "long key: 2"]


def test_start_and_finish_record_the_job_and_feed_the_report_footer() -> None:
    prov = start("inattn-reproduce experiment=vram")
    assert prov["revision"] and prov["machine"] and "clock_start" in prov
    done = finish({**prov, "clock_start": time.time() - 120})
    assert "clock_start" not in done and done["wall_minutes"] == 2.0
    footer = provenance_section(done)
    assert footer.startswith("## How this was produced")
    assert "`inattn-reproduce experiment=vram`" in footer and "wall time 2.0 min" in footer
