"""inattn.data.sampler.ResumableSampler: orders from (seed, epoch), shards, and exact resumes."""

from __future__ import annotations

import random

import pytest
from torch.utils.data import DataLoader

from inattn.data.sampler import ResumableSampler


def batches(sampler: ResumableSampler, batch: int, epochs: range) -> list[list[int]]:
    """The batches a drop_last DataLoader over this sampler yields, epoch by epoch (as Lightning
    calls set_epoch at each epoch's start)."""
    loader = DataLoader(
        range(sampler.num_samples), batch_size=batch, sampler=sampler, drop_last=True
    )
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out += [b.tolist() for b in loader]
    return out


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    a, b = ResumableSampler(50, seed=4), ResumableSampler(50, seed=4)
    first = list(a)
    assert sorted(first) == list(range(50)) and first == list(b)
    second = list(a)  # the next pass is the next epoch: another order
    assert sorted(second) == list(range(50)) and second != first
    assert list(ResumableSampler(50, seed=5)) != first
    assert list(ResumableSampler(50, seed=4, shuffle=False)) == list(range(50))


def test_shards_interleave_to_the_single_process_order():
    rng = random.Random(0)
    for _ in range(10):
        n, world = rng.randint(8, 60), rng.randint(1, 4)
        whole = list(ResumableSampler(n, seed=1))
        shards = [list(ResumableSampler(n, seed=1, rank=r, world_size=world)) for r in range(world)]
        assert all(len(s) == n // world for s in shards)
        interleaved = [shard[i] for i in range(n // world) for shard in shards]
        assert interleaved == whole[: n - n % world]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_resuming_from_state_after_continues_the_same_batches(world):
    rng = random.Random(world)
    for _ in range(10):
        n, batch = rng.randint(12, 40), rng.randint(1, 3)
        per_epoch = (n // world) // batch
        epochs = range(3)
        for rank in range(world):
            whole = batches(ResumableSampler(n, 9, rank=rank, world_size=world), batch, epochs)
            assert len(whole) == 3 * per_epoch
            steps = rng.randint(0, len(whole) - 1)
            resumed = ResumableSampler(n, 9, rank=rank, world_size=world)
            state = resumed.state_after(steps, batch)
            resumed.load_state_dict(state)
            again = batches(resumed, batch, range(state["epoch"], 3))
            assert again == whole[steps:], (n, batch, world, rank, steps)


def test_length_stays_constant_after_a_mid_epoch_resume():
    sampler = ResumableSampler(30, seed=2, world_size=2)
    sampler.load_state_dict(sampler.state_after(2, batch_size=4))  # 2 of the epoch's 3 batches
    assert len(sampler) == 15 and len(list(sampler)) == 15 - 2 * 4


def test_a_state_from_other_data_or_seed_is_refused():
    sampler = ResumableSampler(30, seed=2, world_size=2)
    state = sampler.state_after(1, batch_size=2)
    with pytest.raises(ValueError, match="seed"):
        ResumableSampler(30, seed=3, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="num_samples"):
        ResumableSampler(31, seed=2, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="multiple of 2"):
        sampler.load_state_dict({**state, "index": 3})
    with pytest.raises(ValueError, match="outside"):
        sampler.load_state_dict({**state, "index": 40})


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError):
        ResumableSampler(0, seed=1)
    with pytest.raises(ValueError):
        ResumableSampler(10, seed=1, rank=2, world_size=2)
    with pytest.raises(ValueError):
        ResumableSampler(3, seed=1, world_size=4)
    with pytest.raises(ValueError, match="no batch"):
        ResumableSampler(3, seed=1).state_after(1, batch_size=4)


def test_state_dict_mid_epoch_continues_the_same_order():
    sampler = ResumableSampler(20, seed=7)
    it = iter(sampler)
    head = [next(it) for _ in range(6)]
    state = sampler.state_dict()
    assert state == {"epoch": 0, "index": 6, "seed": 7, "num_samples": 20}
    resumed = ResumableSampler(20, seed=7)
    resumed.load_state_dict(state)
    assert head + list(resumed) == list(ResumableSampler(20, seed=7))


def test_set_epoch_keeps_a_resumed_position_in_the_same_epoch_only():
    sampler = ResumableSampler(12, seed=1)
    sampler.load_state_dict(sampler.state_after(2, batch_size=3))  # 6 samples into epoch 0
    sampler.set_epoch(0)
    assert sampler.index == 6
    sampler.set_epoch(1)
    assert (sampler.epoch, sampler.index) == (1, 0)
    assert list(sampler) == sampler.order(1).tolist()


def test_sharding_later_serves_that_rank_and_drops_the_remainder():
    sampler = ResumableSampler(11, seed=3)
    sampler.shard(1, 3)
    assert sampler.usable == 9 and len(sampler) == 3
    assert list(sampler) == sampler.order(0)[1:9:3].tolist()
    with pytest.raises(ValueError, match="outside"):
        sampler.shard(3, 3)


def test_state_after_without_drop_last_counts_the_short_batch():
    sampler = ResumableSampler(10, seed=1)
    assert sampler.state_after(4, batch_size=3, drop_last=False)["epoch"] == 1  # 4 batches/epoch
    assert sampler.state_after(4, batch_size=3)["epoch"] == 1  # 3 full batches/epoch, 1 into e1
    assert sampler.state_after(4, batch_size=3)["index"] == 3
    assert sampler.state_after(4, batch_size=3, drop_last=False)["index"] == 0
