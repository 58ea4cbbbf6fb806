"""A shuffling sampler whose order is a function of (seed, epoch), so a run can resume mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Epoch e visits a permutation drawn from torch.Generator(seed + e), from position `index`.

    With several processes (`shard(rank, world_size)`), process r takes positions r, r + W,
    r + 2W, ... of the same order. A global batch of B = W x b then holds exactly the samples one
    process with batch size B would take, so the run does not depend on the number of processes.
    Every process gets `num_samples // W` samples per epoch (the remainder is left out).

    `index` counts positions of the shared order, for all processes together. The sampler counts
    what it has handed out, but a DataLoader (and Lightning) fetch ahead of training, so on resume
    prefer `state_after(steps, batch_size)`, computed from the optimizer steps actually taken,
    over `state_dict()` taken at checkpoint time.
    """

    def __init__(
        self,
        num_samples: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.index = 0  # position within this epoch's order where the next iteration starts
        self.rank, self.world_size = 0, 1
        self.shard(rank, world_size)

    def shard(self, rank: int, world_size: int) -> None:
        """Serve process `rank` of `world_size` (1 and 0: the whole order)."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        if world_size > self.num_samples:
            raise ValueError(f"{self.num_samples} samples cannot feed {world_size} processes")
        self.rank, self.world_size = rank, world_size

    @property
    def usable(self) -> int:
        """Positions visited per epoch: the largest multiple of the world size."""
        return self.num_samples - self.num_samples % self.world_size

    def order(self, epoch: int) -> torch.Tensor:
        """The full visiting order of one epoch."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_samples, generator=gen)

    def set_epoch(self, epoch: int) -> None:
        """Move to `epoch` from its start; a no-op for the current epoch (keeps a resumed index)."""
        if epoch != self.epoch:
            self.epoch, self.index = epoch, 0

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch)
        while self.index < self.usable:
            i = int(order[self.index + self.rank])
            self.index += self.world_size
            yield i
        self.epoch, self.index = self.epoch + 1, 0  # the next pass is the next epoch

    def __len__(self) -> int:
        # Constant, so a trainer's batches-per-epoch never shrinks after a mid-epoch resume; the
        # resumed epoch simply ends early.
        return self.num_samples // self.world_size

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("seed", "num_samples"):
            if name in state and state[name] != getattr(self, name):
                raise ValueError(
                    f"sampler state has {name}={state[name]}, this sampler {getattr(self, name)}: "
                    "a resumed run must use the same data and seed"
                )
        if not 0 <= state["index"] <= self.num_samples:
            raise ValueError(f"index {state['index']} outside [0, {self.num_samples}]")
        if state["index"] % self.world_size:
            raise ValueError(f"index {state['index']} is not a multiple of {self.world_size}")
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def state_after(self, steps: int, batch_size: int, drop_last: bool = True) -> dict[str, int]:
        """The state after `steps` batches of `batch_size` per process, from the very start.

        With drop_last the incomplete batch at the end of each epoch is never trained on.
        """
        per_process = self.num_samples // self.world_size
        per_epoch = per_process // batch_size if drop_last else -(-per_process // batch_size)
        if per_epoch < 1:
            raise ValueError(f"{per_process} samples make no batch of {batch_size}")
        epoch, done = divmod(steps, per_epoch)
        return {
            "epoch": epoch,
            "index": done * batch_size * self.world_size,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }
