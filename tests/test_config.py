"""Every option of every config group composes, and the composed config builds a model."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from inattn.config import CONF_DIR
from inattn.training.config import RunConfig, model_config

NEEDS = {"data/files": ["data.train_files=/tmp/a.txt"]}  # required keys of an option
APPS = ("train", "bench", "reproduce", "generate")  # the primary configs of the CLIs


def app_groups(app: str) -> list[str]:
    """Config groups in an app's defaults list (framework groups such as hydra/ excluded)."""
    defaults = OmegaConf.load(CONF_DIR / f"{app}.yaml").get("defaults", [])
    names = [next(iter(d)) for d in defaults if isinstance(d, dict | DictConfig)]
    return [n for n in names if (CONF_DIR / n).is_dir() and n not in ("hydra", "paths")]


def group_options(app: str = "train") -> list[tuple[str, str]]:
    return [
        (group, option.stem)
        for group in app_groups(app)
        for option in sorted((CONF_DIR / group).glob("*.yaml"))
    ]


def compose_train(overrides: list[str]):
    return compose_app("train", overrides)


def compose_app(app: str, overrides: list[str]):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(app, overrides=overrides)


def test_every_group_belongs_to_an_app():
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} - {"hydra", "paths", "local"}
    used = {g for app in APPS if (CONF_DIR / f"{app}.yaml").is_file() for g in app_groups(app)}
    assert groups <= used


@pytest.mark.parametrize(
    "app, group, option",
    [
        (app, group, option)
        for app in APPS[1:]
        if (CONF_DIR / f"{app}.yaml").is_file()
        for group, option in group_options(app)
        if group not in ("size", "position", "arch")  # composed with train below
    ],
)
def test_every_option_of_the_other_apps_composes(app, group, option):
    cfg = compose_app(app, [f"{group}={option}"])
    OmegaConf.to_container(cfg, resolve=False)


@pytest.mark.parametrize("group, option", group_options("train"))
def test_every_group_option_composes(group, option):
    overrides = [f"{group}={option}", *NEEDS.get(f"{group}/{option}", [])]
    if group == "position" and option == "none":
        overrides.append("arch=dense")  # InAttention refuses position=none, by design
    cfg = compose_train(overrides)
    RunConfig.from_cfg(cfg)
    OmegaConf.to_container(cfg.model, resolve=True)


def test_groups_exist_as_the_interface_names_them():
    names = set(app_groups("train"))
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


def test_the_precisions_accepted_are_lightnings_own():
    import typing

    from lightning.pytorch.trainer.connectors import accelerator_connector

    from inattn.training.config import PRECISIONS

    kinds = typing.get_args(accelerator_connector._PRECISION_INPUT)
    lightnings = {str(v) for kind in kinds for v in typing.get_args(kind)}
    assert set(PRECISIONS) == lightnings | {"auto"}
