"""Checkpoint files: where a run keeps them, the one reader, the one writer, the one shape check.

    <run folder>/checkpoints/last.ckpt      every `checkpoint.every_n_steps` steps and at the end
    <run folder>/checkpoints/best.ckpt      after each validation that lowers val/loss
    <run folder>/checkpoints/step-N.ckpt    the newest `checkpoint.keep` of the periodic saves

A checkpoint is the dict Lightning saves with `torch.save`:

    state_dict          the LitGPT's tensors: "model." + the names of `inattn.model.GPT`
    hyper_parameters    {"model": the GPTConfig fields, "optim": ..., "max_steps": ...}
    global_step, optimizer_states, lr_schedulers, loops, callbacks    what a resume continues
    run                 the run's facts and RNG streams (`resume.RunState`)
    inattn              {"tokenizer_json": the data's tokenizer}

Every way a checkpoint cannot be used (missing, truncated, not a torch file, not ours, another
shape) is one `CheckpointError`: one line naming the config key and the file, exit code 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from inattn.errors import UserError
from inattn.run_info import write_atomic

FOLDER = "checkpoints"
LAST = "last.ckpt"
BEST = "best.ckpt"
STEP_FILE = re.compile(r"step-(\d+)\.ckpt")

MODEL_KEYS = ("state_dict", "hyper_parameters")  # what loading a trained model needs
RESUME_KEYS = (*MODEL_KEYS, "global_step")  # what continuing a run needs besides

# The GPTConfig fields that decide which tensors a model holds and their shapes: a checkpoint's
# weights fit a model only when all of these agree (arch and context_length are checked where
# they matter: a resume keeps both, init_from converts the one and extends the other).
SHAPE_FIELDS = (
    "n_layer",
    "n_head",
    "d_model",
    "vocab_size",
    "mlp_ratio",
    "position",
    "bias",
    "tie_weights",
    "n_kv_head",
    "kv_share",
)
# Fields older checkpoints do not record; they were trained with these values.
OLDER_DEFAULTS = {"n_kv_head": None, "kv_share": 1}
# The config key that sets a GPTConfig field, where it is not `model.<field>`.
CONFIG_KEYS = {
    "arch": "arch",
    "position": "position",
    "context_length": "context_length",
    "vocab_size": "tokenizer.vocab_size",
}


class CheckpointError(UserError):
    """A checkpoint file or model folder that cannot be used: missing, unreadable, not ours, or
    not of this run's shape. `field` names the config key that points at it (or must change)."""


def read_checkpoint(
    path: str | Path, field: str = "ckpt", needs: Iterable[str] = MODEL_KEYS
) -> dict[str, Any]:
    """The checkpoint's contents (tensors memory-mapped, so a large file costs no memory until a
    model copies them), with the keys `needs` checked; any failure is one `CheckpointError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        folder = " (a folder, not a checkpoint file)" if path.is_dir() else ""
        raise CheckpointError(field, f"checkpoint not found: {path}{folder}")
    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as err:  # truncated zip, pickle errors, not a torch file at all
        raise CheckpointError(
            field, f"cannot read checkpoint {path} (truncated or corrupt?): {first_line(err)}"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(field, f"{path} is not an inattn-train checkpoint (not a dict)")
    missing = [key for key in needs if key not in ckpt or not well_formed(key, ckpt[key])]
    if missing:
        raise CheckpointError(
            field, f"{path} is not an inattn-train checkpoint (no {', '.join(missing)})"
        )
    return ckpt


def well_formed(key: str, value: Any) -> bool:
    """Whether a checkpoint's `key` holds what loading it reads (a model config, tensors)."""
    if key == "hyper_parameters":
        return isinstance(value, dict) and isinstance(value.get("model"), dict)
    if key == "state_dict":
        return isinstance(value, dict)
    return True


def write_checkpoint(contents: dict[str, Any], path: str | Path) -> None:
    """torch.save into a temporary file beside `path`, then rename over it: a crash mid-write
    leaves the old file whole, and no reader ever sees half a checkpoint."""
    write_atomic(Path(path), lambda f: torch.save(contents, f), binary=True)


def model_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The GPT's tensors of a checkpoint (the LitGPT's `model.` prefix removed)."""
    return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}


def first_line(err: BaseException) -> str:
    """The gist of an exception in one line (torch's load errors run over several)."""
    text = str(err).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(err).__name__


def config_key(name: str) -> str:
    """The config key that sets GPTConfig field `name` (`model.n_layer`, `arch`, ...)."""
    return CONFIG_KEYS.get(name, f"model.{name}")


def check_shape(
    saved: Mapping[str, Any],
    wanted: Mapping[str, Any],
    path: str | Path,
    field: str | None = None,
    names: Iterable[str] = SHAPE_FIELDS,
    fix: str = "",
) -> None:
    """Refuse a checkpoint whose model config `saved` differs from `wanted` in one of `names`.

    The error names `field`, or by default the config key of the first field that differs. A
    field the checkpoint does not record is skipped, unless older checkpoints were trained with
    a known value of it (`OLDER_DEFAULTS`).
    """
    for name in names:
        if name not in saved and name not in OLDER_DEFAULTS:
            continue
        before, now = saved.get(name, OLDER_DEFAULTS.get(name)), wanted.get(name)
        if before != now:
            raise CheckpointError(
                field or config_key(name),
                f"{path} was trained with {name}={before}, this run has {name}={now}"
                + (f": {fix}" if fix else ""),
            )
