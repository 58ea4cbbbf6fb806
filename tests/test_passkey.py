import re

import pytest

from inattn.data.tokenizer import train_bpe
from inattn.errors import ConfigError
from inattn.passkey import (
    FILLER,
    KEY_SENTENCE,
    QUESTION,
    make_prompt,
    make_prompts,
    passkey_accuracy,
    plot_passkey,
)

LENGTHS = [64, 100, 200]
DEPTHS = [0.0, 0.25, 0.5, 1.0]


@pytest.fixture(scope="module")
def tok():
    text = [
        FILLER,
        KEY_SENTENCE.format(key="12345"),
        KEY_SENTENCE.format(key="67890"),
        QUESTION,
        "Numbers like 2024, 31 and 777 appear in text.",
    ]
    return train_bpe([text * 4], vocab_size=300, eot_token="<|endoftext|>")


def key_in(tok, ids: list[int]) -> str:
    return re.search(r"The pass key is (\d+)\.", tok.decode(ids)).group(1)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_prompt_has_the_key_once_at_the_depth(tok, length, depth):
    p = make_prompt(tok, length, depth, "40917")
    assert len(p.ids) == length
    key_ids = tok.encode(KEY_SENTENCE.format(key="40917")).ids
    question = tok.encode(QUESTION).ids
    assert p.ids[p.key_start : p.key_start + len(key_ids)] == key_ids
    assert p.ids[-len(question) :] == question
    n_filler = length - len(key_ids) - len(question)
    assert abs(p.key_start - depth * n_filler) <= 1
    text = tok.decode(p.ids)
    assert text.count("The pass key is 40917.") == 1
    assert re.findall(r"\d+", text) == ["40917", "40917"]  # the filler has no digits
    assert text.rstrip().endswith("What is the pass key? The pass key is")


def test_too_short_or_bad_depth_is_a_config_error(tok):
    with pytest.raises(ConfigError, match="lengths"):
        make_prompt(tok, 10, 0.5, "12345")
    with pytest.raises(ConfigError, match="depths"):
        make_prompt(tok, 100, 1.5, "12345")


def test_same_seed_same_prompts_other_seed_other_keys(tok):
    a = make_prompts(tok, 100, 0.5, trials=4, seed=3)
    assert a == make_prompts(tok, 100, 0.5, trials=4, seed=3)
    assert [p.key for p in a] != [p.key for p in make_prompts(tok, 100, 0.5, trials=4, seed=4)]
    assert len({p.key for p in a}) > 1
    assert all(len(p.key) == 5 and p.key[0] != "0" for p in a)


def test_a_decoder_that_reads_the_key_scores_everything(tok):
    calls = []

    def copy_key(ids, max_new_tokens):
        calls.append(ids)
        answer = tok.encode(" " + key_in(tok, ids) + ".").ids
        assert len(answer) <= max_new_tokens + 1
        return answer[:max_new_tokens]

    table = passkey_accuracy(copy_key, tok, LENGTHS, DEPTHS, trials=3, seed=0)
    assert table.accuracy == [[1.0] * len(LENGTHS)] * len(DEPTHS)
    assert table.mean() == 1.0
    assert len(calls) == 3 * len(LENGTHS) * len(DEPTHS)
    assert sorted({len(ids) for ids in calls}) == LENGTHS


def test_a_constant_decoder_scores_nothing(tok):
    table = passkey_accuracy(lambda ids, n: tok.encode(" 00000").ids, tok, LENGTHS, DEPTHS, 3)
    assert table.mean() == 0.0


def test_table_cells_are_depth_by_length(tok):
    """A decoder right only for shallow keys in short prompts fills exactly those cells."""

    def shallow_short(ids, n):
        key = key_in(tok, ids)
        key_ids = tok.encode(KEY_SENTENCE.format(key=key)).ids
        start = next(i for i in range(len(ids)) if ids[i : i + len(key_ids)] == key_ids)
        n_filler = len(ids) - len(key_ids) - len(tok.encode(QUESTION).ids)
        ok = len(ids) <= 100 and start < 0.4 * n_filler
        return tok.encode(" " + (key if ok else "1")).ids

    table = passkey_accuracy(shallow_short, tok, LENGTHS, DEPTHS, trials=2, seed=1)
    want = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert table.accuracy == want
    rows = table.rows()
    assert {"length": 100, "depth": 0.25, "accuracy": 1.0, "trials": 2} in rows
    assert {"length": 200, "depth": 0.25, "accuracy": 0.0, "trials": 2} in rows


def test_heatmap_is_a_png(tok, tmp_path):
    table = passkey_accuracy(lambda ids, n: [], tok, [64, 100], [0.0, 1.0], trials=1)
    path = plot_passkey(table, tmp_path / "sub" / "passkey.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
