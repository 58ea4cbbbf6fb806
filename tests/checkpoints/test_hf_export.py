"""Models out: inattn-export writes folders that transformers loads and that compute our logits
and greedy tokens; HF GPT-2 -> inattn -> HF GPT-2 keeps every tensor; bad input is one line."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from inattn.checkpoints.hf_folder import open_folder  # noqa: E402
from inattn.checkpoints.pretrained import load_model  # noqa: E402
from inattn.cli import export as export_cli  # noqa: E402
from inattn.cli import generate as generate_cli  # noqa: E402
from inattn.model import GPTConfig  # noqa: E402
from tests.helpers import cli_in_process  # noqa: E402
from tests.hf_helpers import (  # noqa: E402
    VOCAB,
    random_checkpoint,
    random_gpt2,
    save_checkpoint,
    save_folder,
)


def run(main, args, capsys, monkeypatch) -> tuple[int, str, str]:
    return cli_in_process(main, args, capsys, monkeypatch)


def test_gpt2_folder_through_inattn_and_back_is_identical(tmp_path, capsys, monkeypatch):
    hf = random_gpt2(seed=4)
    folder = open_folder(save_folder(hf, tmp_path / "gpt2"))
    ckpt = save_checkpoint(folder.model(), folder.tokenizer(), tmp_path / "from-gpt2.ckpt")
    code, out, err = run(
        export_cli.main, [f"ckpt={ckpt}", f"out={tmp_path / 'out'}"], capsys, monkeypatch
    )
    assert code == 0, err
    from transformers import GPT2LMHeadModel

    back = GPT2LMHeadModel.from_pretrained(tmp_path / "out")
    assert back.config.layer_norm_epsilon == hf.config.layer_norm_epsilon
    want, got = hf.state_dict(), back.state_dict()
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name


VARIANTS = {
    "gpt2": {"arch": "dense", "position": "learned"},
    "inattn": {"arch": "inattn", "position": "learned"},
    "dense rope": {"arch": "dense", "position": "rope"},
    "inattn alibi untied no bias": {
        "arch": "inattn",
        "position": "alibi",
        "tie_weights": False,
        "bias": False,
    },
    "inattn rope": {"arch": "inattn", "position": "rope", "rope_scale": 2.0},
}
# The K/V-sharing variants, where the model has them: exported with no change to the exporter.
if {"n_kv_head", "kv_share"} <= {f.name for f in dataclasses.fields(GPTConfig)}:
    VARIANTS["gqa"] = {"arch": "dense", "n_kv_head": 2}
    VARIANTS["cla-2 mqa alibi"] = {
        "arch": "dense",
        "n_kv_head": 1,
        "kv_share": 2,
        "position": "alibi",
    }


@pytest.mark.parametrize("name", list(VARIANTS))
def test_export_loads_in_transformers_with_our_logits_and_greedy_tokens(
    name, tmp_path, capsys, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    ckpt = random_checkpoint(tmp_path / "model.ckpt", seed=5, **VARIANTS[name])
    out = tmp_path / "hf"
    code, _, err = run(export_cli.main, [f"ckpt={ckpt}", f"out={out}"], capsys, monkeypatch)
    assert code == 0, err
    ours = load_model(ckpt).model
    if name == "gpt2":
        assert json.loads((out / "config.json").read_text())["model_type"] == "gpt2"
        hf = GPT2LMHeadModel.from_pretrained(out)
    else:
        assert (out / "inattn_model.py").is_file() and (out / "inattn_errors.py").is_file()
        for code in out.glob("*.py"):  # the folder works without inattn installed
            assert not re.search(r"^\s*(from|import) inattn", code.read_text(), re.MULTILINE)
        hf = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    hf.eval()
    idx = torch.randint(0, VOCAB, (2, 64))
    with torch.no_grad():
        assert (hf(idx).logits - ours(idx)).abs().max() < 1e-4
        # and the folder loads back into inattn (init_from or inattn-export take it)
        assert torch.equal(open_folder(out, "ckpt").model()(idx), ours(idx))

    prompt, n = "the cat sat on", 12
    args = [f"ckpt={ckpt}", f"prompt={prompt}", "temperature=0", f"max_new_tokens={n}"]
    code, text, err = run(generate_cli.main, [*args, "stop_at_eot=false"], capsys, monkeypatch)
    assert code == 0, err
    tokenizer = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        tokens = hf.generate(
            ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None
        )
    assert tokens.shape[1] == ids.shape[1] + n
    assert text == tokenizer.decode(tokens[0], skip_special_tokens=True) + "\n"


@pytest.fixture
def written(tmp_path) -> Path:
    return random_checkpoint(tmp_path / "model.ckpt", arch="inattn")


def bad(tmp_path: Path, written: Path) -> dict[str, tuple[list[str], str]]:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("already here\n")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(written.read_bytes()[:2000])
    new = tmp_path / "new"
    return {
        "target not empty": ([f"ckpt={written}", f"out={full}"], "out"),
        "missing checkpoint": ([f"ckpt={tmp_path / 'none.ckpt'}", f"out={new}"], "ckpt"),
        "corrupt checkpoint": ([f"ckpt={corrupt}", f"out={new}"], "ckpt"),
        "folder that is no model": ([f"ckpt={full}", f"out={new}"], "ckpt"),
    }


@pytest.mark.parametrize(
    "name",
    ["target not empty", "missing checkpoint", "corrupt checkpoint", "folder that is no model"],
)
def test_bad_export_is_one_line_and_writes_nothing(name, tmp_path, written, capsys, monkeypatch):
    args, field = bad(tmp_path, written)[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(export_cli.main, args, capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and field in errors[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no folder, no temporary one
    assert (tmp_path / "full" / "keep.txt").read_text() == "already here\n"
