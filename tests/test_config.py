"""Every option of every config group composes, and the composed config builds a model."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from inattn.config import CONF_DIR, model_config, validate_train_config

SKIP_GROUPS = {"hydra", "paths"}  # framework settings, composed with every run anyway
NEEDS = {"data/files": ["data.train_files=/tmp/a.txt"]}  # required keys of an option


def group_options() -> list[tuple[str, str]]:
    return [
        (group.name, option.stem)
        for group in sorted(CONF_DIR.iterdir())
        if group.is_dir() and group.name not in SKIP_GROUPS
        for option in sorted(group.glob("*.yaml"))
    ]


def compose_train(overrides: list[str]):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.mark.parametrize("group, option", group_options())
def test_every_group_option_composes(group, option):
    overrides = [f"{group}={option}", *NEEDS.get(f"{group}/{option}", [])]
    if group == "position" and option == "none":
        overrides.append("arch=dense")  # InAttention refuses position=none, by design
    cfg = compose_train(overrides)
    validate_train_config(cfg)
    OmegaConf.to_container(cfg.model, resolve=True)


def test_groups_exist_as_the_interface_names_them():
    names = {g for g, _ in group_options()}
    assert {"arch", "size", "position", "data", "tokenizer", "optim", "trainer", "logger"} <= names


def test_defaults_are_inattn_tiny_shakespeare_offline():
    cfg = compose_train([])
    gpt = model_config(cfg, vocab_size=cfg.tokenizer.vocab_size)
    assert (gpt.arch, cfg.model.size, cfg.data.source) == ("inattn", "tiny", "shakespeare")
    assert (gpt.n_layer, gpt.n_head, gpt.d_model) == (4, 4, 128)
    assert cfg.logger.wandb.mode == "offline"


@pytest.mark.parametrize("size", ["gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl"])
def test_gpt2_ladder_shapes(size):
    shapes = {
        "gpt2-small": (12, 12, 768),
        "gpt2-medium": (24, 16, 1024),
        "gpt2-large": (36, 20, 1280),
        "gpt2-xl": (48, 25, 1600),
    }
    cfg = compose_train([f"size={size}"])
    assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model) == shapes[size]
