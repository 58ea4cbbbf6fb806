"""The frame every experiment run shares, around its own training and evaluation.

    design = preset_design(cfg, NAME)              # the preset's section, seeds overridden
    started = begin(cfg, NAME, design, plan_text(design))
    if started is None:                            # dry run: the plan was printed, nothing more
        return None
    metrics = train_stage(started, "stage", grid, context, steps, launcher=..., root=...)
    ... evaluate the runs into rows ...
    return conclude(started, rows, render, positions)  # runs.csv, design.json, report.md, W&B

    def render(folder):                            # from the written files alone
        written = read_back(folder)
        ... verdicts, plots ...
        return written.report(TITLE, sections)

The design and the provenance are written before any training, so a run that dies still says
what it was; `conclude` completes the provenance (wall time, load) and renders the report from
the written files alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.experiments import record
from inattn.experiments.sweep import run_sweep
from inattn.reporting.markdown import write_report
from inattn.reporting.provenance import command_line, finish, start
from inattn.reporting.wandb_log import log_report

# each stage's runs in <variant>_seed<seed>, so a later stage can name an earlier stage's run
SUBDIR = "hydra.sweep.subdir=${model.variant}_seed${seed}"


def provenance() -> dict[str, Any]:
    """Read as an experiment starts: revision, machine, clock, the `inattn-reproduce` command."""
    return start(command_line("inattn-reproduce"))


def preset_design(cfg: DictConfig, name: str) -> dict[str, Any]:
    """The preset's section for experiment `name`, `seeds=` applied, the training overrides."""
    design = OmegaConf.to_container(cfg.preset[name], resolve=True)
    if cfg.seeds is not None:
        design["seeds"] = list(cfg.seeds)  # type: ignore[index]
    design["train"] = list(cfg.preset.train)  # type: ignore[index]
    return design  # type: ignore[return-value]


@dataclass(frozen=True)
class Underway:
    """An experiment that has started: its design, its folders, its provenance at the start."""

    name: str
    design: Mapping[str, Any]
    out: Path  # report.md, runs.csv, design.json
    runs_dir: Path  # the training runs
    prov: Mapping[str, Any]
    saved: Mapping[str, Any] = field(default_factory=dict)  # more design.json fields (the plan)

    def design_record(self, prov: Mapping[str, Any]) -> dict[str, Any]:
        """design.json's content, with `prov` as its provenance."""
        return {"experiment": self.name, "design": self.design, **self.saved, "provenance": prov}


def underway(
    cfg: DictConfig,
    name: str,
    design: Mapping[str, Any],
    prov: Mapping[str, Any],
    saved: Mapping[str, Any] | None = None,
) -> Underway:
    """The experiment's folders, with its design and provenance written before any training."""
    run = Underway(
        name, design, Path(cfg.report_dir) / name, Path(cfg.runs_dir) / name, prov, saved or {}
    )
    run.out.mkdir(parents=True, exist_ok=True)
    record.write_design(run.out, run.design_record(prov))
    return run


def begin(cfg: DictConfig, name: str, design: Mapping[str, Any], plan: str) -> Underway | None:
    """Provenance read and the plan printed; on a dry run None, else the experiment underway."""
    prov = provenance()
    print(plan, flush=True)
    if cfg.dry_run:
        return None
    return underway(cfg, name, design, prov)


def train_stage(
    run: Underway,
    stage: str,
    grid: Mapping[str, Any],
    context: int,
    steps: int,
    *extra: str,
    launcher: str | None,
    root: Path,
) -> list[dict[str, Any]]:
    """One stage's training runs (a sweep over `grid`, e.g. arch x seed) into runs_dir/stage.

    Every run gets the design's training overrides, size and positions, the stage's context and
    steps, the experiment as its group, then `extra` (an init_from, say).
    """
    d = run.design
    common = [
        *d["train"],
        f"size={d['size']}",
        f"position={d['position']}",
        f"context_length={context}",
        f"trainer.max_steps={steps}",
        f"group={run.name}",
        SUBDIR,
        *extra,
    ]
    return run_sweep(run.runs_dir / stage, grid, common=common, launcher=launcher, root=root)


def conclude(
    run: Underway,
    rows: Sequence[Mapping[str, Any]],
    render: Callable[[Path], Path],
    positions: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """runs.csv (and positions.csv), the finished provenance, report.md, one W&B summary run."""
    record.write_rows(run.out / record.RUNS_FILE, rows, record.RUN_COLUMNS)
    if positions is not None:
        record.write_rows(run.out / record.POSITIONS_FILE, positions, record.POSITION_COLUMNS)
    record.write_design(run.out, run.design_record(finish(run.prov)))
    report = render(run.out)
    log_report(run.out, {"runs": rows})
    return report


@dataclass(frozen=True)
class Written:
    """An experiment folder's files read back: everything its `render` may use."""

    folder: Path
    saved: Mapping[str, Any]  # design.json: experiment, design, plan where measured, provenance
    rows: list[dict[str, Any]]  # runs.csv
    positions: list[dict[str, Any]]  # positions.csv, or [] where not measured

    @property
    def design(self) -> Mapping[str, Any]:
        return self.saved["design"]

    def report(self, title: str, sections: Sequence[str]) -> Path:
        """report.md in the folder: the sections, then the provenance read at the start."""
        return write_report(self.folder / "report.md", title, sections, self.saved["provenance"])


def read_back(folder: Path) -> Written:
    """design.json, runs.csv and positions.csv (if any) of an experiment folder."""
    saved, rows, positions = record.load(Path(folder))
    return Written(Path(folder), saved, rows, positions)
