"""inattn-eval: lm-evaluation-harness scores of a checkpoint (conf/eval.yaml).

A thin front end over `lm_eval.simple_evaluate` with the `inattn` model class
(inattn/lm_eval_model.py): prints the harness's table, writes <run folder>/eval.json, logs the
scores to W&B. Exit codes: 0 done, 2 bad input (one line naming the field or file).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from inattn.cli.app import check_run_device, run_app
from inattn.errors import ConfigError, DataError
from inattn.reporting.wandb_log import WANDB_MODES
from inattn.units import dtype_name

DTYPES = ("fp32", "bf16", "fp16")  # what the harness runs in (inattn.units names them)
RESULTS = "eval.json"


def as_list(value: Any) -> list[Any]:
    """A config value that may be one item, a list, or null, as a list."""
    if value is None:
        return []
    if isinstance(value, ListConfig):
        return list(OmegaConf.to_container(value))
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate(cfg: DictConfig) -> None:
    """Refuse a command line that cannot work, before the model or the harness is loaded."""
    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(
            "tasks", "lm-evaluation-harness is not installed: pip install inattn[eval]"
        )
    if not isinstance(cfg.ckpt, str) or not Path(cfg.ckpt).expanduser().exists():
        raise DataError("ckpt", f"checkpoint not found: {cfg.ckpt}")
    tasks = as_list(cfg.tasks)
    if not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise ConfigError("tasks", f"give task names, e.g. tasks=[hellaswag], got {cfg.tasks!r}")
    for folder in as_list(cfg.include_path):
        if not Path(folder).expanduser().is_dir():
            raise DataError("include_path", f"no such folder: {folder}")
    if cfg.num_fewshot is not None and (
        not isinstance(cfg.num_fewshot, int) or cfg.num_fewshot < 0
    ):
        raise ConfigError(
            "num_fewshot", f"must be null or an integer >= 0, got {cfg.num_fewshot!r}"
        )
    limit = cfg.limit
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0
    ):
        raise ConfigError("limit", f"must be null or a number > 0, got {limit!r}")
    if (
        isinstance(cfg.batch_size, bool)
        or not isinstance(cfg.batch_size, int)
        or cfg.batch_size < 1
    ):
        raise ConfigError("batch_size", f"must be an integer >= 1, got {cfg.batch_size!r}")
    check_run_device(cfg.device)
    dtype_name(cfg.dtype, choices=DTYPES)
    if cfg.logger.mode not in WANDB_MODES:
        raise ConfigError(
            "logger.mode", f"choose offline, online or disabled, got {cfg.logger.mode!r}"
        )


def run_folder(ckpt: Path) -> Path:
    """<run>/checkpoints/last.ckpt -> <run>; a model folder or another file: where it lies."""
    if ckpt.is_dir():
        return ckpt
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def scores(results: dict[str, Any]) -> dict[str, float]:
    """{"<task>/<metric>": value} of every numeric score ("acc,none" -> "acc")."""
    flat = {}
    for task, metrics in results["results"].items():
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metric, _, filt = key.partition(",")
                name = metric if filt in ("", "none") else f"{metric}[{filt}]"
                flat[f"{task}/{name}"] = float(value)
    return flat


def write_results(path: Path, ckpt: Path, results: dict[str, Any]) -> None:
    """eval.json: each task's latest scores, merged with what earlier evaluations wrote."""
    import json

    from inattn.run_info import write_json_atomic

    old = json.loads(path.read_text()) if path.is_file() else {}
    tasks = {**old.get("tasks", {}), **results["results"]}
    write_json_atomic(path, {"checkpoint": str(ckpt), "tasks": tasks, "time": time.time()})


def log_wandb(cfg: DictConfig, folder: Path, ckpt: Path, flat: dict[str, float]) -> bool:
    """One W&B run of job type `eval` in the run folder; W&B failing costs a warning only."""
    from inattn.reporting.wandb_log import guarded_run

    def fill(wandb: Any, run: Any) -> None:
        run.log({f"eval/{k}": v for k, v in flat.items()})
        run.summary.update({f"eval/{k}": v for k, v in flat.items()})

    return guarded_run(
        fill,
        mode=cfg.logger.mode,
        results_at=f"scores are in {RESULTS}",
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        dir=str(folder),
        job_type="eval",
        name=f"eval-{folder.name}",
        config={"ckpt": str(ckpt), "tasks": as_list(cfg.tasks), "limit": cfg.limit},
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """The harness's results dict for `cfg` (unknown task names refused first)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import inattn.lm_eval_model  # noqa: F401  (registers the `inattn` model class)

    include = as_list(cfg.include_path) or None
    manager = TaskManager(include_path=include)
    tasks = as_list(cfg.tasks)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError("tasks", f"unknown task(s) {unknown}: see `lm_eval ls tasks`")
    args = {"checkpoint": str(Path(cfg.ckpt).expanduser()), "dtype": cfg.dtype}
    if cfg.max_length is not None:
        args["max_length"] = int(cfg.max_length)
    return simple_evaluate(
        model="inattn",
        model_args=args,
        tasks=tasks,
        num_fewshot=cfg.num_fewshot,
        limit=cfg.limit,
        batch_size=cfg.batch_size,
        device=cfg.device,
        task_manager=manager,
        log_samples=False,
        random_seed=cfg.seed,
        numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed,
        fewshot_random_seed=cfg.seed,
    )


def task(cfg: DictConfig) -> dict[str, float]:
    from lm_eval.utils import make_table

    ckpt = Path(cfg.ckpt).expanduser().absolute()
    results = evaluate(cfg)
    folder = Path(cfg.output).expanduser() if cfg.output else run_folder(ckpt)
    flat = scores(results)
    write_results(folder / RESULTS, ckpt, results)
    log_wandb(cfg, folder, ckpt, flat)
    print(make_table(results))
    print(f"scores written to {folder / RESULTS}")
    return flat


def main() -> None:
    run_app(task, "eval", validate)


if __name__ == "__main__":
    main()
