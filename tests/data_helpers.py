"""Small corpora for the data tests (helpers only; no tests here)."""

from __future__ import annotations

import random
from pathlib import Path

SYLLABLES = ["ka", "lo", "mi", "ru", "te", "sha", "ne", "vo", "di", "pe", "qua", "zu"]


def random_text(n_words: int, seed: int | str) -> str:
    """Pseudo-words in lines: enough repetition for BPE merges, different per seed."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(n_words)
    ]
    lines = [" ".join(words[i : i + 9]) for i in range(0, n_words, 9)]
    return "\n".join(lines) + "\n"


def write_docs(folder: Path, n_docs: int, n_words: int = 400, prefix: str = "doc") -> list[Path]:
    """`n_docs` UTF-8 text files (one with non-ASCII text), sorted by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_docs):
        path = folder / f"{prefix}{i:02d}.txt"
        text = random_text(n_words, seed=path.name)
        if i == 0:
            text = "Überschrift — ☃ café\n" + text
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def tiny_tokenizer() -> dict:
    return {"vocab_size": 300}
