"""tokenizer=byte and tokenizer=char: round trips, the vocabulary saved with the data, bad input."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from inattn.data.build import build_data
from inattn.data.options import tokenizer_options
from inattn.errors import ConfigError, DataError
from tests.data_helpers import write_docs


def files_cfg(folder) -> dict:
    paths = write_docs(folder / "docs", 4, n_words=300)
    return {"source": "files", "train_files": [str(p) for p in paths[:3]],
            "val_files": [str(paths[3])]}  # fmt: skip


def decode_all(tok: Tokenizer, ids) -> str:
    return tok.decode([int(i) for i in ids], skip_special_tokens=False)


@pytest.mark.parametrize("kind", ["byte", "char"])
def test_every_text_round_trips_one_token_per_symbol(tmp_path, kind):
    cfg = files_cfg(tmp_path)
    data = build_data(cfg, {"kind": kind}, 16, tmp_path / "cache")
    tok = Tokenizer.from_file(str(data.tokenizer_path))  # the vocabulary travels as a file
    text = (tmp_path / "docs" / "doc00.txt").read_text()  # has non-ASCII characters
    ids = tok.encode(text).ids
    assert decode_all(tok, ids) == text
    symbols = len(text.encode("utf-8")) if kind == "byte" else len(text)
    assert len(ids) == symbols
    if kind == "byte":
        assert data.vocab_size == 257
    else:  # the corpus's own characters plus end-of-text
        chars = set("".join(p.read_text() for p in (tmp_path / "docs").glob("*.txt")))
        assert data.vocab_size == len(chars) + 1
    # the packed stream is the documents' symbols joined by end-of-text
    first = data.train.reshape(-1)[: len(ids)].tolist()
    assert first == ids


def test_given_characters_must_cover_the_corpus(tmp_path):
    cfg = files_cfg(tmp_path)
    with pytest.raises(DataError, match=r"tokenizer.chars: the vocabulary does not cover"):
        build_data(cfg, {"kind": "char", "chars": "abcdefghijklmnopqrstuvwxyz \n"}, 16,
                   tmp_path / "cache")  # fmt: skip
    assert not any((tmp_path / "cache").glob("files-*/meta.json"))  # nothing half-built
    text = "".join(p.read_text() for p in (tmp_path / "docs").glob("*.txt"))
    data = build_data(cfg, {"kind": "char", "chars": "".join(set(text)) + "XYZ"}, 16,
                      tmp_path / "cache")  # fmt: skip
    assert data.vocab_size == len(set(text) | set("XYZ")) + 1


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        ({"kind": "words"}, "tokenizer.kind"),
        ({"kind": "bpe", "chars": "abc"}, "tokenizer.chars"),
        ({"kind": "char", "chars": ""}, "tokenizer.chars"),
        ({"kind": "bpe", "vocab_size": 100}, "tokenizer.vocab_size"),
    ],
)
def test_bad_tokenizer_options(opts, field):
    with pytest.raises(ConfigError, match=field):
        tokenizer_options(opts)


def test_byte_and_char_ignore_vocab_size():
    assert tokenizer_options({"kind": "char", "vocab_size": 3})["kind"] == "char"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokenizer=words"], "error: tokenizer: unknown option 'words'"),
        (["tokenizer=char", "tokenizer.chars=abc"], "error: tokenizer.chars: the vocabulary does"),
    ],
)
def test_bad_tokenizer_on_the_command_line(tmp_path, capsys, monkeypatch, args, message):
    from inattn.cli import train
    from tests.helpers import cli_in_process, tiny

    run_dir = tmp_path / "run"
    overrides = [*tiny(tmp_path, tmp_path / "cache"), *args, f"hydra.run.dir={run_dir}"]
    code, out, err = cli_in_process(train.main, overrides, capsys, monkeypatch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert not (run_dir / "metrics.json").exists()
