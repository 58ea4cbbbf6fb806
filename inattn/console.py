"""What a training run prints: one progress bar, a one-line summary, and the warnings that matter.

`verbose=true` (conf/train.yaml) brings back the rest: Lightning's INFO lines (devices found,
`Trainer.fit` stopped), the model summary, validation progress bars and this package's INFO log
lines on the console. Whatever `verbose` says, Lightning's advertisement for its cloud logger and
model registry is never printed, and Lightning's internal deprecation notices are dropped.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

ADVERTISED = ("litlogger", "litmodels")  # packages Lightning's tips advertise
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Warnings about Lightning's own internals, or about sizes only a tiny test run has: nothing a
# user of this package can act on.
NOT_ACTIONABLE = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)


class NoAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(name in message for name in ADVERTISED)


def configure(verbose: bool) -> None:
    """Set the console's level of detail for this process (safe to call again)."""
    level = logging.INFO if verbose else logging.WARNING
    hydra_logging = bool(logging.getLogger().handlers)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if hydra_logging:  # Lightning's own console handler would print each line a second time
            for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
                logger.removeHandler(handler)
            logger.propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, NoAdvertisement) for f in rank_zero.filters):
        rank_zero.addFilter(NoAdvertisement())
    for message in NOT_ACTIONABLE:
        warnings.filterwarnings("ignore", message=message)
    if verbose:  # Hydra's console handler: WARNING in conf/hydra/default.yaml (its log file: INFO)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                sys.stdout,
                sys.stderr,
            ):
                handler.setLevel(logging.INFO)


class TrainingBar(TQDMProgressBar):
    """The training progress bar alone: no sanity-check or validation bars (unless verbose), and
    no `v_num` (the run folder names the run)."""

    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = verbose

    def init_sanity_tqdm(self) -> Tqdm:
        return super().init_sanity_tqdm() if self.verbose else Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return super().init_validation_tqdm() if self.verbose else Tqdm(disable=True)

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
