"""A training run's console: one progress bar and a one-line summary, nothing advertised;
`verbose=true` brings back Lightning's INFO lines."""

from __future__ import annotations

import logging
import re

import lightning as L

from inattn import console

PROGRESS = re.compile(r"^(Training|Epoch \d+):")  # the training bar's redraws
ADVERT = re.compile(r"litlogger|litmodels|Tip:", re.I)


def console_lines(output: str) -> list[str]:
    """Every line printed, a progress bar's redraws (separated by \\r) counted one by one."""
    return [part.strip() for part in re.split(r"[\r\n]", output) if part.strip()]


def with_progress_bar(overrides: list[str], *extra: str) -> list[str]:
    kept = [o for o in overrides if not o.startswith("trainer.enable_progress_bar")]
    return [*kept, "trainer.enable_progress_bar=true", "trainer.max_steps=3", *extra]


def test_a_short_run_prints_its_bar_and_one_summary_line(run_cli, train_overrides, tmp_path):
    result = run_cli("train", *with_progress_bar(train_overrides))
    assert result.code == 0, result.stderr[-3000:]
    lines = console_lines(result.output)
    assert not [line for line in lines if ADVERT.search(line)]
    others = [line for line in lines if not PROGRESS.match(line)]
    assert len(others) == 1, others  # the summary
    assert "final val loss" in others[0] and str(tmp_path / "run") in others[0]
    assert any(PROGRESS.match(line) for line in lines)  # the bar is there


def test_verbose_shows_lightnings_info_but_no_advertisement(run_cli, train_overrides):
    result = run_cli("train", *with_progress_bar(train_overrides, "verbose=true"))
    assert result.code == 0, result.stderr[-3000:]
    lines = console_lines(result.output)
    assert any("GPU available" in line for line in lines)
    assert any("max_steps=3` reached" in line for line in lines)
    assert not [line for line in lines if line.startswith("INFO: ")]  # once, through Hydra's log
    assert not [line for line in lines if ADVERT.search(line)]


def test_the_advertisement_filter_drops_lightnings_tip_at_its_source(caplog):
    console.configure(verbose=True)
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
            L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    finally:
        console.configure(verbose=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any("GPU available" in m for m in messages)  # INFO is on: only the tip is dropped
    assert not [m for m in messages if ADVERT.search(m)]
