"""Where a run starts: from scratch, from `init_from`'s weights, or the checkpoint it resumes.

The checkpoint modules (resume, init_from) decide what fits; this module puts their answers
together into the LightningModule the run trains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from inattn.checkpoints.init_from import Source, copy_weights, initial_config, load_for
from inattn.checkpoints.pretrained import LoadedModel
from inattn.checkpoints.resume import check_resume, find_resume, read_resumable
from inattn.data.module import TextDataModule
from inattn.errors import ConfigError
from inattn.model import GPTConfig
from inattn.training.config import RunConfig
from inattn.training.lit import LitGPT


@dataclasses.dataclass
class Start:
    """Where a run starts: the checkpoint it resumes (path, contents, step, saved run facts)."""

    path: Path | None = None
    checkpoint: dict[str, Any] = dataclasses.field(default_factory=dict)  # dropped before fit
    step: int | None = None
    saved_run: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def find(cls, resume: Any, run_dir: Path) -> Start:
        path = find_resume(resume, run_dir)
        if path is None:
            return cls()
        ckpt = read_resumable(path)
        return cls(path, ckpt, int(ckpt["global_step"]), ckpt.get("run", {}))


def run_facts(run: RunConfig, dm: TextDataModule) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint it continues (checkpoints.resume)."""
    return {
        "seed": run.seed,
        "batch_size": run.data.batch_size,
        "context_length": run.data.context_length,
        "vocab_size": dm.vocab_size,
        "train_tokens": dm.train_tokens,  # the same data, whatever folder or file times it has
        "train_blocks": len(dm.data.train),
    }


def start_from(gpt_cfg: GPTConfig, path: str | Source, extension: str) -> LoadedModel:
    """`init_from`'s model, extended to this run's context (errors name the config keys)."""
    try:
        return load_for(gpt_cfg, path, extension)
    except ConfigError as err:
        if err.field == "method":  # the extension method, as context_extension.py calls it
            raise ConfigError("init_extension", err.message) from None
        raise


def build_module(
    run: RunConfig,
    dm: TextDataModule,
    start: Start,
    facts: dict[str, Any],
    source: Source | None = None,
) -> LitGPT:
    """The LightningModule: from scratch, from `init_from`'s weights, or the checkpoint's model."""
    gpt_cfg = dataclasses.replace(run.model, vocab_size=dm.vocab_size)
    if source is not None:  # a model folder sets the shape
        gpt_cfg = source.run_config(gpt_cfg)
    init = None
    if source is not None and not start.path:  # a resumed run has its own weights
        init = start_from(gpt_cfg, source, run.init_extension)
        gpt_cfg = initial_config(gpt_cfg, init)
    if start.path:
        max_steps = run.trainer.max_steps
        check_resume(start.checkpoint, start.path, dataclasses.asdict(gpt_cfg), facts, max_steps)
        # The model continued is the checkpoint's, settings the run derived included (an
        # extended context's RoPE scale, say), not one rebuilt from the command line.
        gpt_cfg = GPTConfig(**start.checkpoint["hyper_parameters"]["model"])
    lit = LitGPT(dataclasses.asdict(gpt_cfg), run.optim.as_hparams(), run.trainer.max_steps)
    lit.tokenizer_json = Path(dm.tokenizer_path).read_text()
    if init is not None:
        copy_weights(lit.model, init)
    return lit
