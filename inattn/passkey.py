"""Passkey retrieval: can the model recall a number hidden at some depth of a long filler text?

A prompt of exactly `length` tokens (of the model's own tokenizer) is

    <filler, depth * F tokens> The pass key is 12345. Remember it. 12345 is the pass key.
    <filler, the rest of F tokens> What is the pass key? The pass key is

where F is whatever the key sentence and the question leave of `length`. The filler is one fixed
passage repeated and cut at token granularity, so the depth is exact to a token; it holds no
digits. An answer is correct when the greedily decoded continuation, spaces removed, starts with
the key.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from inattn.errors import ConfigError
from inattn.reporting.figures import new_figure, save_figure

FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
KEY_SENTENCE = " The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = " What is the pass key? The pass key is"

# prompt ids, max new tokens -> the new tokens only (greedy)
DecodeFn = Callable[[list[int], int], list[int]]


@dataclass(frozen=True)
class PasskeyPrompt:
    ids: list[int]
    key: str
    key_start: int  # index of the key sentence's first token
    depth: float


@dataclass
class PasskeyTable:
    lengths: list[int]
    depths: list[float]
    trials: int
    accuracy: list[list[float]]  # [depth index][length index], fraction correct

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {"length": n, "depth": d, "accuracy": self.accuracy[i][j], "trials": self.trials}
            for i, d in enumerate(self.depths)
            for j, n in enumerate(self.lengths)
        ]

    def mean(self) -> float:
        cells = [a for row in self.accuracy for a in row]
        return sum(cells) / len(cells)


def filler_ids(tokenizer: Tokenizer, n: int) -> list[int]:
    """The first n tokens of the filler passage repeated end to end."""
    first = tokenizer.encode(FILLER).ids
    again = tokenizer.encode(" " + FILLER).ids
    ids = list(first)
    while len(ids) < n:
        ids += again
    return ids[:n]


def random_key(rng: random.Random, digits: int = 5) -> str:
    """A number of exactly `digits` digits (no leading zero)."""
    return str(rng.randrange(10 ** (digits - 1), 10**digits))


def make_prompt(tokenizer: Tokenizer, length: int, depth: float, key: str) -> PasskeyPrompt:
    """The prompt of exactly `length` tokens with `key` after a `depth` fraction of the filler."""
    if not 0.0 <= depth <= 1.0:
        raise ConfigError("depths", f"depth must be within [0, 1], got {depth}")
    key_ids = tokenizer.encode(KEY_SENTENCE.format(key=key)).ids
    question = tokenizer.encode(QUESTION).ids
    n_filler = length - len(key_ids) - len(question)
    if n_filler < 0:
        raise ConfigError(
            "lengths",
            f"length {length} is too short: the key sentence and question alone take "
            f"{len(key_ids) + len(question)} tokens",
        )
    filler = filler_ids(tokenizer, n_filler)
    at = round(depth * n_filler)
    ids = filler[:at] + key_ids + filler[at:] + question
    return PasskeyPrompt(ids=ids, key=key, key_start=at, depth=depth)


def make_prompts(
    tokenizer: Tokenizer, length: int, depth: float, trials: int, seed: int = 0, digits: int = 5
) -> list[PasskeyPrompt]:
    """`trials` prompts with keys drawn from (seed, length, depth, trial): the same every time."""
    keys = [
        random_key(random.Random(f"{seed}/{length}/{depth}/{t}"), digits) for t in range(trials)
    ]
    return [make_prompt(tokenizer, length, depth, key) for key in keys]


def is_correct(tokenizer: Tokenizer, key: str, new_ids: Sequence[int]) -> bool:
    """The continuation, whitespace removed, starts with the key."""
    text = re.sub(r"\s+", "", tokenizer.decode(list(new_ids)))
    return text.startswith(key)


def passkey_accuracy(
    decode_fn: DecodeFn,
    tokenizer: Tokenizer,
    lengths: Sequence[int],
    depths: Sequence[float],
    trials: int = 5,
    seed: int = 0,
    digits: int = 5,
) -> PasskeyTable:
    """Fraction of correct answers for every (depth, length) cell."""
    if trials < 1:
        raise ConfigError("trials", f"trials must be at least 1, got {trials}")
    accuracy = []
    for depth in depths:
        row = []
        for length in lengths:
            prompts = make_prompts(tokenizer, length, depth, trials, seed, digits)
            hits = 0
            for p in prompts:
                # the key's own tokens, plus room for a space or a split digit
                budget = len(tokenizer.encode(" " + p.key).ids) + 2
                hits += is_correct(tokenizer, p.key, decode_fn(p.ids, budget))
            row.append(hits / trials)
        accuracy.append(row)
    return PasskeyTable(list(lengths), list(depths), trials, accuracy)


def plot_passkey(table: PasskeyTable, path: str | Path, title: str | None = None) -> Path:
    """Heatmap PNG of accuracy, depth (rows) by prompt length (columns)."""
    width, height = 1.2 + 0.9 * len(table.lengths), 1.0 + 0.5 * len(table.depths)
    fig, (ax,) = new_figure(width, height)
    image = ax.imshow(table.accuracy, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(table.lengths)), [str(n) for n in table.lengths])
    ax.set_yticks(range(len(table.depths)), [f"{d:.0%}" for d in table.depths])
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("key depth")
    for i, row in enumerate(table.accuracy):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="accuracy")
    ax.set_title(title or f"passkey retrieval ({table.trials} trials per cell)")
    return save_figure(fig, [ax], Path(path), grid=False, legend="never")
