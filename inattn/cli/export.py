"""inattn-export: a checkpoint as a Hugging Face model folder (conf/export.yaml).

Exit codes: 0 written, 2 bad input (one line naming the field or file; nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from inattn.cli.app import check_writable, run_app
from inattn.errors import ConfigError, DataError


def validate(cfg: DictConfig) -> None:
    """Refuse a command line that cannot work, before the checkpoint is read."""
    from inattn.checkpoints.hf_export import check_target

    for key in ("ckpt", "out"):
        value = cfg.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(key, f"give a path, got {value!r}")
    if not Path(cfg.ckpt).expanduser().exists():
        raise DataError("ckpt", f"checkpoint not found: {cfg.ckpt}")
    out = Path(cfg.out).expanduser().absolute()
    check_target(out)
    check_writable(out.parent, "out")


def load(path: Path) -> tuple[Any, Any]:
    """(model, tokenizer or None) of an inattn-train checkpoint or a model folder."""
    from inattn.checkpoints.hf_folder import open_folder
    from inattn.checkpoints.pretrained import load_model

    if path.is_dir():
        folder = open_folder(path, "ckpt")
        return folder.model(), folder.tokenizer()
    loaded = load_model(path, field="ckpt")
    return loaded.model, loaded.tokenizer


def task(cfg: DictConfig) -> None:
    from inattn.checkpoints.hf_export import export

    model, tokenizer = load(Path(cfg.ckpt).expanduser())
    out = Path(cfg.out).expanduser().absolute()
    kind = export(model, tokenizer, out)
    how = (
        "GPT2LMHeadModel.from_pretrained(out)"
        if kind == "gpt2"
        else "AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)"
    )
    tok = "with its tokenizer" if tokenizer is not None else "no tokenizer (none in the checkpoint)"
    print(
        f"wrote {out}: {model.cfg.arch} model, {model.num_params():,} parameters, {tok}; "
        f"load it with {how}"
    )


def main() -> None:
    run_app(task, "export", validate)


if __name__ == "__main__":
    main()
