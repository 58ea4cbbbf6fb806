"""W&B records written after the fact (a benchmark, an evaluation, an experiment's summary).

W&B must never fail the job: the results are on disk before it is called, so whatever goes
wrong (no network, no login, a W&B version that moved its API) costs one warning line and a
False. The training-time logger (Lightning's WandbLogger) is set up elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

WANDB_MODES = ("offline", "online", "disabled")

log = logging.getLogger(__name__)


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def guarded_run(
    fill: Callable[[Any, Any], None],
    *,
    mode: str,
    results_at: str,
    init_timeout: float = 60.0,
    **init: Any,
) -> bool:
    """One W&B run: `wandb.init(mode=mode, **init)`, `fill(wandb, run)`, finish.

    mode "disabled" writes nothing. Any failure is caught and logged as one warning that says
    where the results are instead (`results_at`); the return value says whether it worked.
    """
    if mode == "disabled":
        return False
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        settings = wandb.Settings(init_timeout=float(init_timeout))
        run = wandb.init(mode=mode, settings=settings, **init)
        fill(wandb, run)
        run.finish()
    except Exception as err:  # W&B must never fail the job
        log.warning("W&B logging failed (%s); %s", first_line(err), results_at)
        return False
    return True


def table(
    wandb: Any, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = (), text: bool = False
) -> Any:
    """A wandb.Table of dict rows (`columns`: their keys, default the first row's).

    text: every cell as a string, for columns whose cells mix numbers, words and blanks (W&B
    refuses a column whose type changes from row to row).
    """
    columns = list(columns or rows[0])
    cell = str if text else (lambda v: v)
    return wandb.Table(columns=columns, data=[[cell(row.get(c)) for c in columns] for row in rows])


def log_report(folder: Path, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
    """One W&B run per report folder (group = the folder's name): its tables and its PNGs.

    Offline unless WANDB_MODE says otherwise.
    """
    folder = Path(folder)

    def fill(wandb: Any, run: Any) -> None:
        payload = {name: table(wandb, rows, text=True) for name, rows in tables.items() if rows}
        payload |= {png.stem: wandb.Image(str(png)) for png in sorted(folder.glob("*.png"))}
        run.log(payload)

    return guarded_run(
        fill,
        mode=os.environ.get("WANDB_MODE", "offline"),
        results_at="the report is on disk",
        project="inattn",
        group=folder.name,
        name=f"{folder.parent.name}-{folder.name}-summary",
        job_type="report",
        dir=str(folder),
    )
