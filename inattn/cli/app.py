"""Running a Hydra app so that bad input gives one line and exit code 2, never a traceback.

Before Hydra starts, the command line is composed once per sweep value with the compose API and
checked by the app's validator; the folder Hydra will create (hydra.run.dir, or hydra.sweep.dir
with -m) must be writable; Hydra's own multi-line errors are turned into `error: <field>: ...`.
Inside the job, a `UserError` is reported the same way.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from inattn.config import CONF_DIR
from inattn.errors import ConfigError, UserError

EXIT_BAD_INPUT = 2
RUN_DEVICES = (
    "auto",
    "cpu",
    "cuda",
)  # where a loaded model runs (generate, eval); auto: cuda if any


def check_run_device(device: str) -> None:
    if device not in RUN_DEVICES:
        raise ConfigError("device", f"unknown device {device!r}; choose one of {RUN_DEVICES}")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def describe(err: Exception) -> str:
    """One line naming the field, from Hydra's and OmegaConf's longer messages."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        if group:
            options = ", ".join(err.options or [])
            return f"{group}: unknown option {option!r}" + (
                f" (choose from {options})" if options else ""
            )
    cause = err
    while cause is not None:
        key = getattr(cause, "full_key", None)
        if key:
            return f"{key}: {str(cause).splitlines()[0]}"
        cause = cause.__cause__
    return str(err).strip().splitlines()[0]


def sweep_combinations(overrides: list[str], multirun: bool = True) -> Iterator[list[str]]:
    """Override lists that, together, use every value of every sweep at least once."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices: list[list[str]] = []
    for o in parsed:
        if o.is_sweep_override():
            key, value = o.input_line.split("=", 1)
            if not multirun:
                # the outer quotes are for the shell, the inner ones for Hydra
                quoted = f"\"{key}='{value}'\""
                raise UserError(key, f"{value} is a sweep: add -m, or quote it: {quoted}")
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    base = [c[0] for c in choices]
    yield base
    for i, values in enumerate(choices):
        for value in values[1:]:
            yield [*base[:i], value, *base[i + 1 :]]


def check_writable(folder: Path, field: str) -> None:
    """Refuse a folder that cannot be created or written (tried for real: root ignores modes)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(field, f"cannot create {folder}: {existing} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
    except OSError as err:
        raise UserError(field, f"cannot write in {existing} ({err.strerror})") from None


def check_hydra(
    config_name: str,
    overrides: list[str],
    multirun: bool,
    check_run: Callable[[DictConfig, bool], Any] | None,
) -> None:
    """Checks that need Hydra's own settings: the output folder, and the app's `check_run`."""
    cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so that ${hydra:...} in the folder names resolves
    try:
        field = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        folder = Path(str(OmegaConf.select(cfg, field))).absolute()
        if not folder.is_dir() or cfg.hydra.output_subdir is not None:  # else nothing is written
            check_writable(folder, field)
        if check_run is not None:
            check_run(cfg, multirun)
    finally:
        HydraConfig.instance().cfg = None


@contextlib.contextmanager
def job_config(config_name: str, overrides: list[str]) -> Iterator[DictConfig]:
    """The config a job will be handed, with Hydra's own settings in place meanwhile, so that
    values read from them (`${hydra:launcher.nodes}` in a SLURM config) resolve as in the job."""
    cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]  # as Hydra hands a job its config
        yield cfg
    finally:
        HydraConfig.instance().cfg = None


def precheck(
    config_name: str,
    overrides: list[str],
    validate: Callable[[DictConfig], Any] | None,
    multirun: bool = False,
    check_run: Callable[[DictConfig, bool], Any] | None = None,
) -> None:
    try:
        combos = list(sweep_combinations(overrides, multirun))
    except UserError as err:
        fail(str(err))
    except HydraException as err:
        fail(describe(err))
    for n, combo in enumerate(itertools.islice(combos, 256)):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                if validate is not None:
                    with job_config(config_name, combo) as cfg:
                        validate(cfg)
                if n == 0:
                    check_hydra(config_name, combo, multirun, check_run)
        except UserError as err:
            fail(str(err))
        except (HydraException, OmegaConfBaseException) as err:
            fail(describe(err))
        finally:
            GlobalHydra.instance().clear()


def run_app(
    task: Callable[[DictConfig], Any],
    config_name: str,
    validate: Callable[[DictConfig], Any] | None = None,
    check_run: Callable[[DictConfig, bool], Any] | None = None,
) -> None:
    """Check the command line, then hand it to Hydra (which handles -m, --help, --cfg, ...).

    `validate(cfg)` sees each sweep value's config; `check_run(cfg, multirun)` sees the first one
    with Hydra's own settings (`cfg.hydra`: folders, launcher, the overrides given).
    """
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if not (args.help or args.hydra_help or args.info or args.shell_completion):
        precheck(config_name, args.overrides, validate, bool(args.multirun), check_run)

    @functools.wraps(task)
    def guarded(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except UserError as err:
            fail(str(err))

    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(guarded)()
