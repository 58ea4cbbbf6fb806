"""GPT-2 in: Hugging Face GPT-2 folders load exactly (dense) and as InAttention; init_from takes
them (folder or hub id), with their tokenizer; bad folders are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from inattn.checkpoints import hf_gpt2  # noqa: E402
from inattn.checkpoints.hf_folder import open_folder, read_tokenizer, resolve  # noqa: E402
from inattn.checkpoints.io import CheckpointError  # noqa: E402
from inattn.cli import train as train_cli  # noqa: E402
from tests.helpers import (  # noqa: E402
    cli_in_process,
    one_thread,  # noqa: E402, F401
    tiny,
)
from tests.hf_helpers import VOCAB, random_gpt2, save_folder  # noqa: E402


@pytest.mark.parametrize(
    "form, tied",
    [("safetensors", True), ("bin", True), ("original", True), ("safetensors", False)],
)
def test_gpt2_logits_equal_hf(tmp_path, form, tied):
    hf = random_gpt2(seed=1, tied=tied)
    folder = save_folder(hf, tmp_path / "gpt2", form)
    ckpt = open_folder(folder)
    assert ckpt.cfg.norm_eps == 1e-4 and ckpt.cfg.context_length == 64
    ours = ckpt.model()
    idx = torch.randint(0, VOCAB, (3, 64))
    with torch.no_grad():
        want = hf(idx).logits
        got = ours(idx)
    assert (got - want).abs().max() < 1e-4
    # the same tensors in an InAttention model: its keys and values read N(x0), so it differs
    inattn = ckpt.model(hf_gpt2.gpt_config(ckpt.raw, arch="inattn"))
    for name, tensor in ours.state_dict().items():
        assert torch.equal(inattn.state_dict()[name], tensor), name
    with torch.no_grad():
        assert (inattn(idx) - want).abs().max() > 1e-2


def test_state_dict_round_trip_is_identical(tmp_path):
    hf = random_gpt2(seed=2)
    ckpt = open_folder(save_folder(hf, tmp_path / "gpt2"))
    back = hf_gpt2.to_hf(ckpt.state_dict(), ckpt.cfg)
    want = dict(hf.state_dict())
    assert set(back) == set(want)
    for name, tensor in want.items():
        assert torch.equal(back[name], tensor), name


def test_tokenizer_from_vocab_and_merges_matches_tokenizer_json(tmp_path):
    hf = random_gpt2()
    a = read_tokenizer(save_folder(hf, tmp_path / "a", tokenizer="json"))
    b = read_tokenizer(save_folder(hf, tmp_path / "b", tokenizer="files"))
    text = "the cat sat on the mat<|endoftext|> and the dog ran far away"
    assert a.encode(text).ids == b.encode(text).ids
    assert b.decode(b.encode(text).ids, skip_special_tokens=False) == text


def test_config_mapping_refuses_what_does_not_load_exactly():
    with pytest.raises(CheckpointError, match="gpt2"):
        hf_gpt2.gpt_config({"model_type": "llama"})
    with pytest.raises(CheckpointError, match="activation"):
        hf_gpt2.gpt_config({"model_type": "gpt2", "activation_function": "relu"})


def test_hub_id_offline_is_one_line_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty hub cache
    with pytest.raises(CheckpointError) as err:
        resolve("no-such-owner/no-such-gpt2")
    assert err.value.field == "init_from" and "no-such-owner/no-such-gpt2" in err.value.message
    assert "offline" in err.value.message


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gpt2")
    return save_folder(random_gpt2(seed=3), root / "gpt2", tokenizer="files")


@pytest.mark.parametrize("arch", ["dense", "inattn"])
@pytest.mark.usefixtures("one_thread")
def test_train_from_a_gpt2_folder(arch, gpt2_folder, tmp_path, capsys, monkeypatch):
    """init_from=<folder>: the folder's shape, positions, layer-norm epsilon and tokenizer."""
    from inattn.checkpoints.pretrained import load_model

    args = [
        *(a for a in tiny(tmp_path, tmp_path / "cache") if a != "size=nano"),
        f"init_from={gpt2_folder}",
        f"arch={arch}",
        "model.dropout=0.0",
        "trainer.max_steps=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    code, out, err = cli_in_process(train_cli.main, args, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["n_layer"], metrics["d_model"], metrics["vocab_size"]) == (2, 64, VOCAB)
    loaded = load_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert loaded.cfg.arch == arch and loaded.cfg.context_length == 64
    assert loaded.cfg.norm_eps == 1e-4
    # the run tokenized its data with the folder's tokenizer
    folder_tok = read_tokenizer(gpt2_folder)
    assert loaded.tokenizer.get_vocab() == folder_tok.get_vocab()


BAD = {
    "not a model folder": (lambda f, t: [f"init_from={t}"], "init_from"),
    "not GPT-2": (lambda f, t: [f"init_from={llama(t)}"], "init_from"),
    "size contradicts the folder": (lambda f, t: [f"init_from={f}", "size=tiny"], "size"),
    "d_model contradicts": (lambda f, t: [f"init_from={f}", "model.d_model=32"], "d_model"),
    "hub id offline": (lambda f, t: ["init_from=no-such-owner/gpt2-x"], "init_from"),
}


def llama(folder: Path) -> Path:
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


@pytest.mark.parametrize("name", list(BAD))
def test_bad_init_from_is_one_line(name, gpt2_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    make, field = BAD[name]
    folder = tmp_path / "given"
    folder.mkdir()
    base = [a for a in tiny(tmp_path, tmp_path / "cache") if a != "size=nano"]
    args = [*base, *make(gpt2_folder, folder)]
    args.append(f"hydra.run.dir={tmp_path / 'run'}")
    code, out, err = cli_in_process(train_cli.main, args, capsys, monkeypatch)
    assert code == 2, err[-3000:]
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and field in errors[0], err
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


@pytest.mark.usefixtures("one_thread")
def test_a_run_started_from_a_folder_resumes(gpt2_folder, tmp_path, capsys, monkeypatch):
    """resume=auto: the folder's shape and tokenizer again, the run's own weights continued."""
    base = [a for a in tiny(tmp_path, tmp_path / "cache") if a != "size=nano"]
    run = f"hydra.run.dir={tmp_path / 'run'}"
    args = [*base, f"init_from={gpt2_folder}", "arch=inattn", run, "checkpoint.every_n_steps=1"]
    code, _, err = cli_in_process(
        train_cli.main, [*args, "trainer.max_steps=2"], capsys, monkeypatch
    )
    assert code == 0, err[-3000:]
    (tmp_path / "run" / "metrics.json").unlink()  # as a killed run leaves it
    more = [*args, "trainer.max_steps=3", "resume=auto"]
    code, _, err = cli_in_process(train_cli.main, more, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 3
    assert (metrics["n_layer"], metrics["d_model"], metrics["vocab_size"]) == (2, 64, VOCAB)
