"""The Lightning data module: packed blocks as (input, target) batches."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from inattn.data.build import PackedData, build_data
from inattn.data.sampler import ResumableSampler
from inattn.errors import DataError


class BlockDataset(Dataset):
    """Block i as (x, y) = (block[:-1], block[1:]), int64."""

    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks  # (N, T + 1)

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.blocks[i].long()
        return block[:-1], block[1:]


class TextDataModule(L.LightningDataModule):
    """Builds or reuses the data cache (`build_data`) and serves it in a resumable order."""

    def __init__(
        self,
        data_cfg: Mapping[str, Any],
        tokenizer_cfg: Mapping[str, Any],
        context_length: int,
        batch_size: int,
        cache_dir: str | Path,
        seed: int,
        num_workers: int = 0,
        val_batch_size: int | None = None,
    ):
        super().__init__()
        self.data_cfg = data_cfg
        self.tokenizer_cfg = tokenizer_cfg
        self.context_length = context_length
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.cache_dir = Path(cache_dir)
        self.seed = seed
        self.num_workers = num_workers
        self._data: PackedData | None = None
        self._sampler: ResumableSampler | None = None

    def _build(self) -> PackedData:
        return build_data(self.data_cfg, self.tokenizer_cfg, self.context_length, self.cache_dir)

    def prepare_data(self) -> None:
        """Build the cache once per node; `setup` on every process then only reads it."""
        self._build()

    def setup(self, stage: str | None = None) -> None:
        if self._data is None:
            self._data = self._build()
            if len(self._data.train) < self.batch_size:
                raise DataError(
                    "batch_size",
                    f"the train split makes {len(self._data.train)} blocks of "
                    f"{self.context_length + 1} tokens, fewer than batch_size = {self.batch_size}",
                )

    @property
    def data(self) -> PackedData:
        self.setup()
        assert self._data is not None
        return self._data

    @property
    def vocab_size(self) -> int:
        return self.data.vocab_size

    @property
    def eot_id(self) -> int:
        return self.data.eot_id

    @property
    def tokenizer_path(self) -> Path:
        return self.data.tokenizer_path

    @property
    def train_tokens(self) -> int:
        """Tokens in the train stream (documents plus one end-of-text each)."""
        return self.data.train_tokens

    @property
    def val_tokens(self) -> int:
        return self.data.val_tokens

    @property
    def train_sampler(self) -> ResumableSampler:
        """The one sampler every train loader shares, so its state is the run's data position."""
        if self._sampler is None:
            self._sampler = ResumableSampler(len(self.data.train), self.seed)
        return self._sampler

    def resume_at(self, batches: int) -> None:
        """Continue the train order after `batches` batches per process (steps x accumulation).

        The one place a resumed run sets its data position; the count comes from the trainer,
        not from the sampler, which the loaders fetch ahead of training. With several processes
        the sampler must be sharded first (`train_dataloader` does it): the position in the shared
        order is then `batches x batch_size x world_size`.
        """
        self._shard()
        self.train_sampler.load_state_dict(self.train_sampler.state_after(batches, self.batch_size))

    def _shard(self) -> None:
        """Split the train order over the trainer's processes (all of it without a trainer)."""
        trainer = self.trainer
        if trainer is not None:
            self.train_sampler.shard(trainer.global_rank, trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        self._shard()
        return DataLoader(
            BlockDataset(self.data.train),
            batch_size=self.batch_size,
            sampler=self.train_sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=self._loader_generator(),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            BlockDataset(self.data.val),
            batch_size=self.val_batch_size,
            shuffle=False,
            drop_last=False,
            num_workers=self.num_workers,
            generator=self._loader_generator(),
        )

    def _loader_generator(self) -> torch.Generator:
        """A loader's own generator: without one, every `iter(loader)` draws its workers' base
        seed from the global RNG, so dropout would depend on when loaders were (re)started, and a
        resumed run, which starts them at other times, would draw other dropout masks."""
        return torch.Generator().manual_seed(self.seed)
