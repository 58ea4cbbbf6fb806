"""The live-storage tracker: exact peaks on scripted allocations, real and fake tensors alike."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from inattn.errors import ConfigError
from inattn.memory import (
    MemoryTracker,
    bytes_of,
    fake_mode_of,
    fake_module,
    fake_tokens,
    measure_peak,
)
from inattn.model import GPT, GPTConfig

KiB, MiB = 2**10, 2**20
FP32 = 4


def floats(nbytes: int) -> torch.Tensor:
    return torch.ones(nbytes // FP32)


def scripted(mt: MemoryTracker) -> list[tuple[int, int]]:
    """Allocate, view, modify in place and free; record (current, peak) after each step."""
    seen = []
    a = floats(1 * MiB)
    seen.append((mt.current_bytes, mt.peak_bytes))
    b = floats(2 * MiB)
    seen.append((mt.current_bytes, mt.peak_bytes))
    views = (a.view(2, -1), a[::2], a.view(64, -1).t(), b.unsqueeze(0), *b.split(1000))
    a.add_(1).mul_(2)
    b.zero_()
    torch.mul(a, 3, out=a)
    seen.append((mt.current_bytes, mt.peak_bytes))
    del a, views
    seen.append((mt.current_bytes, mt.peak_bytes))
    c = floats(512 * KiB)
    seen.append((mt.current_bytes, mt.peak_bytes))
    values, indices = c.sort()  # an op returning a tuple: two new storages
    seen.append((mt.current_bytes, mt.peak_bytes))
    del b, c, values, indices
    seen.append((mt.current_bytes, mt.peak_bytes))
    return seen


SCRIPT = [
    (1 * MiB, 1 * MiB),
    (3 * MiB, 3 * MiB),  # two tensors live
    (3 * MiB, 3 * MiB),  # views and in-place ops add nothing
    (2 * MiB, 3 * MiB),  # the first one freed (its views too)
    (2 * MiB + 512 * KiB, 3 * MiB),
    (2 * MiB + 512 * KiB + 512 * KiB + 1024 * KiB, 4 * MiB),  # float32 values + int64 indices
    (0, 4 * MiB),
]


@pytest.mark.parametrize("fake", [False, True], ids=["cpu", "fake"])
def test_scripted_peak_is_exact(fake):
    with FakeTensorMode() if fake else nullcontext(), MemoryTracker() as mt:
        seen = scripted(mt)
    assert seen == SCRIPT
    mt.reset_peak()
    assert mt.peak_bytes == mt.current_bytes == 0


def test_out_resize_is_counted():
    with MemoryTracker() as mt:
        out = torch.empty(0)
        x = floats(KiB)
        torch.add(x, x, out=out)  # out grows from 0 to 1 KiB in place
        assert mt.current_bytes == 2 * KiB
        assert mt.peak_bytes == 2 * KiB


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(64, 32)
        self.head = nn.Linear(32, 64, bias=False)
        self.head.weight = self.emb.weight  # one storage, two names
        self.register_buffer("scale", torch.ones(32))

    def forward(self, idx):
        h = self.emb(idx) * self.scale
        return F.linear(h, self.head.weight[:48])  # a view of the weight: no new storage


def test_weights_counted_once():
    model = Tied()
    weights = 64 * 32 * FP32 + 32 * FP32
    idx = torch.zeros(1, 8, dtype=torch.long)
    with MemoryTracker() as mt:
        assert mt.track_module(model) == weights
        assert mt.track_module(model) == 0
        assert mt.track(model.emb.weight, model.head.weight.T) == 0
        assert mt.weight_bytes == weights
        model(idx)
    h, logits = 8 * 32 * FP32, 8 * 48 * FP32
    # Live at the peak: the scaled copy and the logits (the raw embedding died after the scaling).
    assert mt.peak_bytes == weights + max(2 * h, h + logits) == weights + h + logits
    assert mt.current_bytes == weights  # all activations died
    report = measure_peak(lambda: model(idx), module=model, inputs=idx)
    assert report.weight_bytes == weights
    assert report.peak_bytes == weights + idx.nbytes + h + logits


def test_bytes_of_counts_each_storage_once():
    x, y = torch.zeros(10, 4), torch.zeros(3, dtype=torch.float64)
    tree = {"k": x, "v": [x[1:], x.T, (y, y[:1])], "n": None, "i": 3}
    assert bytes_of(tree) == x.nbytes + y.nbytes
    with FakeTensorMode():
        s = torch.empty(2**20, 768, dtype=torch.bfloat16)  # 1.5 GiB, never allocated
        assert bytes_of([s, s[:-1]]) == 2**20 * 768 * 2


def test_dead_tracker_is_not_kept_alive():
    import gc
    import weakref

    keep = floats(KiB)
    mt = MemoryTracker()
    mt.track(keep)
    ref = weakref.ref(mt)
    del mt
    gc.collect()
    assert ref() is None  # the storage's finalizer holds the tracker weakly
    del keep  # and its finalizer then finds no tracker


def gpt_cfg(T: int, **kw) -> GPTConfig:
    base = dict(arch="dense", n_layer=2, n_head=4, d_model=64, vocab_size=256, context_length=T)
    return GPTConfig(**(base | kw))


@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_fake_equals_cpu_on_a_gpt_forward(arch):
    T = 256
    cfg = gpt_cfg(T, arch=arch)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(cfg.vocab_size, (1, T))
    real = measure_peak(lambda: model(idx, last_only=True), module=model, inputs=idx)
    fm = fake_module(lambda: GPT(cfg))
    fidx = fake_tokens(1, T, cfg.vocab_size, like=fm)
    fake = measure_peak(lambda: fm(fidx, last_only=True), module=fm, inputs=fidx, device="meta")
    # A real module measured in meta mode: its weights join the fake computation as they are.
    mixed = measure_peak(
        lambda: model(idx, last_only=True), module=model, inputs=idx, device="meta"
    )
    assert real.peak_bytes == fake.peak_bytes == mixed.peak_bytes
    assert real.weight_bytes == fake.weight_bytes == bytes_of(list(model.parameters()))
    assert real.peak_bytes > real.weight_bytes + idx.nbytes


def test_agrees_with_torch_mem_tracker():
    mem_tracker = pytest.importorskip("torch.distributed._tools.mem_tracker")
    T = 128
    model = GPT(gpt_cfg(T))
    idx = torch.randint(256, (1, T))
    theirs = mem_tracker.MemTracker()
    theirs.track_external(model, idx)
    with theirs, torch.no_grad():
        model(idx, last_only=True)
    ours = measure_peak(lambda: model(idx, last_only=True), module=model, inputs=idx)
    assert ours.peak_bytes == theirs.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


def test_inference_runs_without_autograd():
    T = 256
    model = GPT(gpt_cfg(T))
    idx = torch.randint(256, (1, T))
    inference = measure_peak(lambda: model(idx), module=model, inputs=idx)
    training = measure_peak(lambda: model(idx), module=model, inputs=idx, grad=True)
    assert training.peak_bytes > inference.peak_bytes  # saved activations for backward


def naive_attention(q: torch.Tensor) -> torch.Tensor:
    """Materialised causal scores: the quadratic baseline the tracker must be able to see."""
    T = q.shape[-2]
    att = (q @ q.transpose(-2, -1)) / q.shape[-1] ** 0.5
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return att.masked_fill(~mask, float("-inf")).softmax(-1) @ q


@pytest.mark.parametrize(
    "attend, quadratic",
    [
        (lambda q: F.scaled_dot_product_attention(q, q, q, is_causal=True), False),
        (naive_attention, True),
    ],
    ids=["sdpa", "naive"],
)
def test_fake_sdpa_takes_the_fused_path(attend, quadratic):
    H, T, hd = 8, 4096, 64
    with FakeTensorMode():
        q = torch.empty(1, H, T, hd)
        with MemoryTracker() as mt:
            mt.track(q)
            attend(q)
    scores = H * T * T * FP32
    assert (mt.peak_bytes >= scores) == quadratic


def dense_activation_bytes(cfg: GPTConfig, T: int, dtype=torch.float32) -> int:
    model = fake_module(lambda: GPT(cfg), dtype=dtype)
    idx = fake_tokens(1, T, cfg.vocab_size, like=model)
    report = measure_peak(
        lambda: model(idx, last_only=True), module=model, inputs=idx, device="meta"
    )
    return report.activation_bytes


def test_dense_fake_forward_grows_linearly():
    T1, T2 = 1024, 4096
    cfg = gpt_cfg(T2, n_head=8, d_model=128)
    a1, a2 = dense_activation_bytes(cfg, T1), dense_activation_bytes(cfg, T2)
    assert 3.5 < a2 / a1 < 4.5  # x4 tokens, x4 memory
    assert a2 < cfg.n_head * T2 * T2 * FP32 / 10  # far below one layer's scores


def test_gpt2_small_shape_at_4k_without_allocating():
    T = 4096
    cfg = GPTConfig(
        arch="dense", n_layer=12, n_head=12, d_model=768, vocab_size=50257, context_length=T
    )
    activations = dense_activation_bytes(cfg, T)
    assert activations < cfg.n_head * T * T * FP32  # no layer ever holds its T x T scores
    assert activations > T * cfg.mlp_ratio * cfg.d_model * FP32  # the MLP hidden state at least


def test_fake_helpers_share_one_mode():
    model = fake_module(lambda: Tied(), dtype=torch.bfloat16)
    assert model.emb.weight is model.head.weight  # ties survive the cast
    assert model.emb.weight.dtype == model.scale.dtype == torch.bfloat16
    idx = fake_tokens(2, 5, 64, like=model)
    assert idx.shape == (2, 5) and idx.dtype == torch.long
    assert fake_mode_of(idx) is fake_mode_of(model) is not None
    with pytest.raises(ConfigError):
        fake_tokens(1, 5, 64, like=Tied())


def test_device_errors():
    with pytest.raises(ConfigError):
        measure_peak(lambda: None, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            measure_peak(lambda: None, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tracker_agrees_with_cuda_allocator():
    T = 2048
    model = GPT(gpt_cfg(T, n_head=8, d_model=256)).cuda()
    idx = torch.randint(256, (1, T), device="cuda")
    report = measure_peak(
        lambda: model(idx, last_only=True), module=model, inputs=idx, device="cuda"
    )
    assert report.cuda_peak_bytes is not None
    assert abs(report.cuda_peak_bytes - report.peak_bytes) < 0.02 * report.peak_bytes + 64 * KiB
