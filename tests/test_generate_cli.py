"""inattn-generate on a real checkpoint: one tiny inattn-train run for the whole module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser

from inattn.checkpoints.pretrained import load_model
from inattn.cli.generate import TextStream, main, quote_prompt
from inattn.inference import modes_for
from inattn.model import ARCHS

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
CONTEXT, D, LAYERS = 32, 64, 2  # the trained model: size=nano, context_length=32


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """last.ckpt of a two-step inattn-train run (InAttention, learned positions)."""
    root = tmp_path_factory.mktemp("train")
    cmd = [
        *(sys.executable, "-m", "inattn.cli.train", "size=nano", "context_length=32"),
        *("batch_size=4", "tokenizer.vocab_size=300", "trainer.max_steps=2"),
        *("trainer.val_check_interval=2", "trainer.limit_val_batches=1", "logger=csv"),
        *(f"paths.root={root}", f"paths.cache={root / 'cache'}"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = root.glob("outputs/**/checkpoints/last.ckpt")
    return path


def rewrite(ckpt: Path, path: Path, arch: str, seed: int | None = None) -> Path:
    """The checkpoint as `arch` (both variants own the same parameters); with `seed`, every
    weight redrawn at random, so that greedy text is varied rather than one repeated token."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["hyper_parameters"]["model"]["arch"] = arch
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        for name, t in state["state_dict"].items():
            state["state_dict"][name] = torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.3
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def dense_ckpt(ckpt, tmp_path_factory) -> Path:
    return rewrite(ckpt, tmp_path_factory.mktemp("dense") / "dense.ckpt", "dense")


@pytest.fixture(scope="module")
def random_ckpts(ckpt, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("random")
    return {arch: rewrite(ckpt, folder / f"{arch}.ckpt", arch, seed=0) for arch in ARCHS}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generate(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the command in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["inattn-generate", *args])
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def summary(err: str) -> dict[str, str]:
    (line,) = [x for x in err.splitlines() if x.startswith("generated ")]
    m = re.match(r"generated (\d+) tokens \((\d+) x up to (\d+)\).*cache (\w+): .* \((\d+) B", line)
    assert m, line
    return dict(zip(("tokens", "batch", "steps", "mode", "per_token"), m.groups(), strict=True))


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("sampling", [("temperature=0",), ("temperature=1.0", "seed=5")])
def test_text_is_the_same_whatever_the_cache(monkeypatch, capsys, random_ckpts, arch, sampling):
    """Greedy, and seeded sampling: every cache computes the same logits, so the same text."""
    args = (f"ckpt={random_ckpts[arch]}", "prompt=ROMEO:", "max_new_tokens=20", *sampling)
    texts = set()
    for cache in modes_for(arch):  # state (inattn only), kvcache, sdpa, naive
        code, out, err = generate(monkeypatch, capsys, *args, f"cache={cache}")
        assert code == 0, err
        s = summary(err)
        assert s["tokens"] == s["steps"] == "20" and s["batch"] == "1"
        texts.add(out)
    (text,) = texts
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:\n")
    if "seed=5" in sampling:
        assert len(set(text[6:])) > 5  # varied text, not one token repeated


def test_default_cache_is_the_lowest_memory_one(monkeypatch, capsys, ckpt, dense_ckpt):
    prompt_tokens = len(load_model(ckpt).tokenizer.encode("ROMEO:").ids)
    n = 5
    for path, mode, per_token in (
        (ckpt, "state", D * 4),
        (dense_ckpt, "kvcache", 2 * LAYERS * D * 4),
    ):
        code, _, err = generate(
            monkeypatch, capsys, f"ckpt={path}", "prompt=ROMEO:", f"max_new_tokens={n}"
        )
        assert code == 0, err
        s = summary(err)
        assert s["mode"] == mode and int(s["per_token"]) == per_token
        held = (prompt_tokens + n - 1) * per_token  # reserved up front; the last token is not fed
        assert f"cache {mode}: {held / 1024:.3g} KiB" in err


def test_seed_reproducibility(monkeypatch, capsys, ckpt):
    args = (f"ckpt={ckpt}", "prompt=ROMEO:", "max_new_tokens=20", "temperature=1.0", "top_p=0.95")
    runs = {}
    for key, *extra in (
        ("a", "seed=3"),
        ("b", "seed=3"),
        ("c", "seed=4"),
        ("kv", "seed=3", "cache=kvcache"),
    ):
        code, out, err = generate(monkeypatch, capsys, *args, "top_k=100", *extra)
        assert code == 0, err
        runs[key] = out
    assert runs["a"] == runs["b"] and runs["a"] != runs["c"]
    assert runs["kv"] == runs["a"]  # the same seed draws the same tokens from the same logits


def test_batch_prints_each_sample(monkeypatch, capsys, ckpt):
    args = (f"ckpt={ckpt}", "prompt=ROMEO:", "max_new_tokens=8", "temperature=0")
    single = generate(monkeypatch, capsys, *args)[1]
    code, out, err = generate(monkeypatch, capsys, *args, "batch=3")
    assert code == 0, err
    parts = re.split(r"--- sample \d of 3 ---\n", out)
    assert parts[0] == "" and parts[1:] == [single] * 3
    assert summary(err)["tokens"] == "24"


def test_prompt_is_taken_as_it_is(monkeypatch, capsys, ckpt, tmp_path):
    prompt = 'Sir, [no] a=b: it\'s "so"'
    args = (f"ckpt={ckpt}", "max_new_tokens=2", "temperature=0")
    code, out, err = generate(monkeypatch, capsys, *args, f"prompt={prompt}")
    assert code == 0, err
    assert out.startswith(prompt)
    (tmp_path / "prompt.txt").write_text(prompt)
    from_file = generate(monkeypatch, capsys, *args, f"prompt_file={tmp_path / 'prompt.txt'}")[1]
    assert from_file == out


def test_console_script_streams_and_writes_no_files(ckpt, tmp_path):
    """The installed command, in its own process; the text ends with a newline."""
    cmd = ["inattn-generate", f"ckpt={ckpt}", "prompt=ROMEO:", "max_new_tokens=5", "seed=1"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:") and result.stdout.endswith("\n")
    assert summary(result.stderr)["tokens"] == "5"
    assert list(tmp_path.iterdir()) == []  # no run folder, no log


# ----------------------------------------------------------------------------- bad input


def error_line(monkeypatch, capsys, *args: str) -> str:
    code, out, err = generate(monkeypatch, capsys, *args)
    assert code == 2 and out == "", (code, out, err)
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, ckpt, dense_ckpt, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    long_prompt = "ROMEO: " * CONTEXT
    cases = {
        "ckpt": [f"ckpt={tmp_path / 'missing.ckpt'}"],
        "truncated": [f"ckpt={truncated}"],
        "not given": [],
        "prompt too long": [f"ckpt={ckpt}", f"prompt={long_prompt}"],
        "past the table": [f"ckpt={ckpt}", "prompt=ROMEO:", "max_new_tokens=40"],
        "cache": [f"ckpt={dense_ckpt}", "cache=state"],
        "unknown cache": [f"ckpt={ckpt}", "cache=flash"],
        "old cache name": [f"ckpt={ckpt}", "cache=kv"],
        "dtype": [f"ckpt={ckpt}", "dtype=fp8"],
        "top_p": [f"ckpt={ckpt}", "top_p=1.5"],
        "empty": [f"ckpt={ckpt}", "prompt="],
    }
    lines = {name: error_line(monkeypatch, capsys, *args) for name, args in cases.items()}
    assert lines["ckpt"].startswith("error: ckpt: checkpoint not found")
    assert lines["truncated"].startswith("error: ckpt: cannot read checkpoint")
    assert lines["not given"].startswith("error: ckpt: Missing mandatory value")
    assert lines["prompt too long"].startswith("error: context_length: prompt of")
    assert "prompt too long" in lines["prompt too long"]
    room = CONTEXT - len(load_model(ckpt).tokenizer.encode("ROMEO:").ids) + 1
    assert lines["past the table"].startswith("error: max_new_tokens:")
    assert f"max_new_tokens<={room}" in lines["past the table"]
    assert lines["cache"].startswith("error: cache: cache=state needs an InAttention checkpoint")
    assert "dense" in lines["cache"]
    assert lines["unknown cache"].startswith("error: cache: unknown cache 'flash'")
    assert lines["old cache name"] == (
        "error: cache: unknown cache 'kv'; choose one of ('naive', 'sdpa', 'kvcache', 'state')"
    )
    assert lines["dtype"].startswith("error: dtype: unknown dtype 'fp8'; choose one of ('fp32',")
    assert lines["top_p"].startswith("error: top_p:")
    assert lines["empty"].startswith("error: prompt: the prompt is empty")


# ----------------------------------------------------------------------------- pieces


def test_text_stream_never_shows_half_a_character(ckpt):
    """Byte-level tokens split multi-byte characters; the pieces still join to the text."""
    tokenizer = load_model(ckpt).tokenizer
    prompt = tokenizer.encode("ROMEO:").ids
    text = " héllo wörld ✓ 日本語, the end"
    ids = tokenizer.encode(text).ids
    assert len(ids) > len(text.encode()) // 2  # a tiny vocabulary: many byte tokens
    stream = TextStream(tokenizer, prompt)
    pieces = [stream.push(i) for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "ROMEO:" + "".join(pieces) + stream.flush() == "ROMEO:" + text
    assert stream.text() == "ROMEO:" + text


@pytest.mark.parametrize(
    "prompt", ["a, b", "it's", 'say "hi", it\'s', "x\\", "[a]", "k=v", " lead", "{a: 1}"]
)
def test_quote_prompt_keeps_any_text(prompt):
    parsed = OverridesParser.create().parse_overrides([quote_prompt("prompt=" + prompt)])[0]
    assert parsed.value() == prompt
    assert quote_prompt("prompt='a, b'") == "prompt='a, b'"  # already quoted: as given
    assert quote_prompt("top_p=0.9") == "top_p=0.9"
