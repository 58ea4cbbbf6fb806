"""The resumable sampler and the Lightning data module's loaders."""

from __future__ import annotations

import itertools

import datasets
import pytest
import torch
from torch.utils.data import DataLoader

from inattn.data import ResumableSampler, TextDataModule
from inattn.errors import DataError
from tests.data_helpers import tiny_tokenizer, write_docs


def run(sampler: ResumableSampler, n: int) -> list[int]:
    """The next n indices, over as many epochs as it takes."""
    out: list[int] = []
    while len(out) < n:
        out += list(itertools.islice(iter(sampler), n - len(out)))
    return out


def test_sampler_epochs_are_permutations_fixed_by_seed_and_epoch():
    a, b, c = ResumableSampler(50, seed=3), ResumableSampler(50, seed=3), ResumableSampler(50, 4)
    first, second = list(a), list(a)  # one pass each: epoch 0, then epoch 1
    assert sorted(first) == sorted(second) == list(range(50)) and first != second
    assert list(b) == first and list(c) != first
    b.set_epoch(1)
    assert list(b) == second
    assert list(ResumableSampler(5, 0, shuffle=False)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("stop", [0, 7, 50, 63, 137])
def test_sampler_resume_continues_the_same_order(stop):
    whole = run(ResumableSampler(50, seed=1), 200)
    before = ResumableSampler(50, seed=1)
    seen = run(before, stop)
    state = before.state_dict()
    after = ResumableSampler(50, seed=1)
    after.load_state_dict(state)
    after.set_epoch(state["epoch"])  # what a trainer does first: must keep the position
    assert seen + run(after, 200 - stop) == whole
    with pytest.raises(ValueError, match="seed"):
        ResumableSampler(50, seed=2).load_state_dict(state)


def test_sampler_state_after_steps_matches_a_loader_run():
    batch = 8
    sampler = ResumableSampler(45, seed=0)  # 5 full batches per epoch, 5 samples dropped
    loader = torch.utils.data.DataLoader(
        range(45), batch_size=batch, sampler=sampler, drop_last=True
    )
    batches = [b.tolist() for b in itertools.islice(itertools.chain(loader, loader, loader), 14)]
    for steps in (0, 3, 5, 9):
        resumed = ResumableSampler(45, seed=0)
        resumed.load_state_dict(resumed.state_after(steps, batch))
        again = DataLoader(range(45), batch_size=batch, sampler=resumed, drop_last=True)
        got = [b.tolist() for b in itertools.islice(itertools.chain(again, again, again), 5)]
        assert got == batches[steps : steps + 5]


@pytest.fixture
def data_module_cfg(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    train = write_docs(tmp_path / "train", 4)
    val = write_docs(tmp_path / "val", 1, prefix="v")
    data = {"source": "files", "train_files": [str(p) for p in train], "val_files": str(val[0])}
    return {
        "data_cfg": data,
        "tokenizer_cfg": tiny_tokenizer(),
        "context_length": 16,
        "cache_dir": tmp_path / "cache",
    }


def test_data_module_loaders(data_module_cfg):
    dm = TextDataModule(**data_module_cfg, batch_size=4, seed=0, val_batch_size=5)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.vocab_size == 300 and dm.tokenizer_path.is_file()
    assert dm.train_tokens == dm.data.train_tokens > 0 and dm.val_tokens > 0
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    rows = [dm.data.train[i].long() for i in range(len(dm.data.train))]
    for xi, yi in zip(x, y, strict=True):  # each row is one whole block, shifted by one
        match = [r for r in rows if torch.equal(r[:-1], xi)]
        assert len(match) == 1 and torch.equal(match[0][1:], yi)
    val = list(dm.val_dataloader())
    assert torch.equal(torch.cat([b[0] for b in val]), dm.data.val[:, :-1].long())
    assert torch.equal(torch.cat([b[1] for b in val]), dm.data.val[:, 1:].long())
    assert len(dm.data.val) % 5 == 0 or len(val[-1][0]) == len(dm.data.val) % 5


def test_data_module_train_order_follows_the_seed(data_module_cfg):
    def first_batches(seed: int) -> list[torch.Tensor]:
        dm = TextDataModule(**data_module_cfg, batch_size=4, seed=seed)
        return [x for x, _ in itertools.islice(dm.train_dataloader(), 3)]

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


def test_data_module_resumes_after_a_number_of_batches(data_module_cfg):
    def batches(dm: TextDataModule, n: int) -> list[torch.Tensor]:
        loader = dm.train_dataloader()
        epochs = itertools.chain.from_iterable(loader for _ in range(n))
        return [x for x, _ in itertools.islice(epochs, n)]

    whole = TextDataModule(**data_module_cfg, batch_size=4, seed=2)
    per_epoch = len(whole.data.train) // 4
    steps = per_epoch + 3  # resume inside the second epoch
    expected = batches(whole, steps + per_epoch)
    resumed = TextDataModule(**data_module_cfg, batch_size=4, seed=2)
    resumed.resume_at(steps)
    got = batches(resumed, per_epoch)
    assert all(torch.equal(a, b) for a, b in zip(got, expected[steps:], strict=True))


def test_data_module_batch_larger_than_the_data(data_module_cfg):
    dm = TextDataModule(**data_module_cfg, batch_size=100_000, seed=0)
    with pytest.raises(DataError, match="batch_size"):
        dm.setup("fit")
