"""Data: corpora (shakespeare / hf / files), the tokenizer, packing, the cache, the data module.

build_data(data_cfg, tokenizer_cfg, context_length, cache_dir) -> PackedData
TextDataModule(...)        Lightning data module over build_data (imports lightning lazily)
ResumableSampler(n, seed)  deterministic shuffling that resumes mid-epoch
"""

from __future__ import annotations

from typing import Any

from inattn.data.build import FORMAT_VERSION, PackedData, build_data
from inattn.data.sampler import ResumableSampler

__all__ = ["FORMAT_VERSION", "PackedData", "ResumableSampler", "TextDataModule", "build_data"]


def __getattr__(name: str) -> Any:
    if name == "TextDataModule":
        from inattn.data.module import TextDataModule

        return TextDataModule
    raise AttributeError(name)
