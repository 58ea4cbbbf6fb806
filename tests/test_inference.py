"""Every inference mode against the float64 reference of tests/reference.py (written from the
definitions, never the forward, which the `sdpa` mode is); caches, generation and sampling."""

from __future__ import annotations

import pytest
import torch

from inattn.errors import ConfigError
from inattn.inference import (
    MODES,
    cache_bytes_per_token,
    decode_step,
    filter_logits,
    generate,
    inattn_next_logits,
    max_new_tokens_for,
    modes_for,
    prefill,
    sample_next,
    state_bytes,
    stream_tokens,
    top_p_mask,
)
from inattn.inference.chunk_attention import attend, reversed_mask
from inattn.memory import fake_module, fake_tokens, measure_peak
from inattn.model import GPT, POSITIONS, GPTConfig, alibi_bias
from tests.reference import random_model, reference_logits, rel_err

CHUNK = 4
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
CASES = [(a, p) for a in ("dense", "inattn") for p in POSITIONS if (a, p) != ("inattn", "none")]


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tensors this small gain nothing from threads, and on a busy machine they wait on them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- next-token logits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("arch", "position"), CASES)
def test_every_mode_matches_full_forward(arch, position, dtype):
    model = random_model(arch, position, dtype)
    gen = torch.Generator().manual_seed(3)
    lengths = [
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        int(torch.randint(9, 33, (1,), generator=gen)),
    ]
    for T in lengths:
        idx = torch.randint(0, 50, (3, T), generator=gen)
        ref = reference_logits(model, idx, last_only=True)  # (3, vocab)
        for mode in modes_for(arch):
            logits, _ = prefill(model, idx, mode, chunk=CHUNK)
            assert logits.shape == ref.shape and logits.dtype == dtype
            assert rel_err(logits, ref) < TOL[dtype], (mode, T)


@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_inattn_next_logits_any_chunk(position):
    model = random_model("inattn", position)
    idx = torch.randint(0, 50, (2, 23))
    ref = reference_logits(model, idx, last_only=True)
    for chunk in (None, 1, 2, 7, 22, 23, 24, 1024):
        assert rel_err(inattn_next_logits(model, idx, chunk=chunk), ref) < 1e-10, chunk


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("arch", "position"), CASES)
def test_kvcache_prefill_any_chunk(arch, position, dtype):
    """Chunked K/V prefill at every boundary: logits, then decoding from the filled cache."""
    model = random_model(arch, position, dtype)
    idx = torch.randint(0, 50, (2, 13))
    expected = reference_logits(model, idx)  # (2, 13, vocab): position t's logits at [:, t]
    T = 11
    for chunk in (None, 1, 2, 3, 5, T - 1, T, T + 1):
        logits, cache = prefill(model, idx[:, :T], "kvcache", chunk=chunk)
        assert rel_err(logits, expected[:, T - 1]) < TOL[dtype], chunk
        for t in (T, T + 1):
            logits, cache = decode_step(model, idx[:, t], cache)
            assert rel_err(logits, expected[:, t]) < TOL[dtype], (chunk, t)


@pytest.mark.parametrize("position", ["learned", "alibi"])
@pytest.mark.parametrize(("q0", "q1"), [(0, 1), (0, 6), (4, 5), (4, 9), (7, 8)])
def test_chunk_attention_equals_materialised_mask(position, q0, q1):
    """The strided reversed mask against the plain (H, c, T) causal / ALiBi mask."""
    model = random_model("dense", position, n_head=4, d_model=32)
    q = torch.randn(2, 4, q1 - q0, 8, dtype=torch.float64)
    k, v = torch.randn(2, 2, 4, q1, 8, dtype=torch.float64)
    q_pos, k_pos = torch.arange(q0, q1), torch.arange(q1)
    if position == "alibi":
        full = alibi_bias(model.alibi_slopes, q_pos, k_pos, torch.float64)[None]
    else:
        full = torch.zeros(q1 - q0, q1, dtype=torch.float64)
        full = full.masked_fill(k_pos[None] > q_pos[:, None], float("-inf"))
    mask = reversed_mask(model, q0, q1, q.device, q.dtype)
    for n in range(1, q1 - q0 + 1):  # the chunk's last n queries
        expected = torch.softmax(
            q[:, :, -n:] @ k.transpose(-2, -1) / 8**0.5 + full[..., -n:, :], -1
        )
        assert rel_err(attend(q[:, :, -n:], k, v, mask), expected @ v) < 1e-12, n
    if mask is not None:  # a view of one row per head, not a (c, T) tensor
        assert mask.untyped_storage().nbytes() == mask.shape[1] * (2 * q1 - q0 - 1) * 8


@pytest.mark.parametrize("arch", ["dense", "inattn"])
@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_other_shapes_no_bias_three_heads(arch, position):
    """No biases, and three heads (ALiBi slopes for a non-power of two)."""
    model = random_model(arch, position, bias=False, n_head=3, d_model=24, tie_weights=False)
    idx = torch.randint(0, 50, (2, 11))
    ref = reference_logits(model, idx, last_only=True)
    for mode in modes_for(arch):
        assert rel_err(prefill(model, idx, mode, chunk=CHUNK)[0], ref) < 1e-10, mode


def test_no_position_beyond_context_length_without_a_table():
    """RoPE and ALiBi have no table: contexts past context_length are fine."""
    model = random_model("inattn", "alibi", context_length=8)
    idx = torch.randint(0, 50, (1, 20))
    ref = reference_logits(model, idx, last_only=True)
    assert rel_err(inattn_next_logits(model, idx, chunk=CHUNK), ref) < 1e-10


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("arch", "position"), CASES)
def test_decode_steps_match_full_forward(arch, position, dtype):
    """Prefill a prefix, then feed the rest one token at a time (past chunks and capacity)."""
    model = random_model(arch, position, dtype)
    idx = torch.randint(0, 50, (2, 2 * CHUNK + 3))
    expected = reference_logits(model, idx)  # (2, T, vocab): position t's logits at [:, t]
    for mode in modes_for(arch):
        for start in (1, CHUNK + 1):
            logits, cache = prefill(model, idx[:, :start], mode, chunk=CHUNK)
            for t in range(start, idx.shape[1]):
                assert rel_err(logits, expected[:, t - 1]) < TOL[dtype], (mode, t)
                logits, cache = decode_step(model, idx[:, t], cache)
            assert cache.length == idx.shape[1]
            assert rel_err(logits, expected[:, -1]) < TOL[dtype]


def greedy_by_full_forward(model: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    for _ in range(n):
        idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


@pytest.mark.parametrize(("arch", "position"), CASES)
def test_cached_and_uncached_greedy_generation_identical(arch, position):
    model = random_model(arch, position, torch.float32)
    idx = torch.randint(0, 50, (2, 5))
    n = 3 * CHUNK
    expected = greedy_by_full_forward(model, idx, n)
    for mode in modes_for(arch):
        out = generate(model, idx, n, mode=mode, temperature=0, chunk=CHUNK)
        assert torch.equal(out, expected), mode


def test_batch_rows_generate_as_if_alone():
    model = random_model("inattn", "rope", torch.float32)
    idx = torch.randint(0, 50, (3, 6))
    batch = generate(model, idx, 8, temperature=0, chunk=CHUNK)
    for b in range(3):
        assert torch.equal(batch[b : b + 1], generate(model, idx[b : b + 1], 8, temperature=0))


def test_eos_stops_and_pads():
    model = random_model("inattn", "learned")
    idx = torch.randint(0, 50, (2, 4))
    free = generate(model, idx, 10, temperature=0)
    eos = int(free[0, 6])  # row 0's third new token
    out = generate(model, idx, 10, temperature=0, eos_id=eos)
    first = [
        int(torch.nonzero(row[4:] == eos)[0]) if (row[4:] == eos).any() else None for row in free
    ]
    for b, k in enumerate(first):
        if k is None:
            assert torch.equal(out[b], free[b, : out.shape[1]])
        else:
            assert torch.equal(out[b, : 4 + k + 1], free[b, : 4 + k + 1])
            assert (out[b, 4 + k :] == eos).all()
    if all(k is not None for k in first):
        assert out.shape[1] == 4 + max(first) + 1  # stops once every row is done


def test_stream_sees_every_new_token():
    model = random_model("dense", "alibi")
    idx = torch.randint(0, 50, (2, 3))
    seen = []
    out = generate(model, idx, 5, temperature=0.8, seed=1, stream=seen.append)
    assert torch.equal(torch.stack(seen, dim=1), out[:, 3:])


@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_stream_tokens_yields_the_cache_of_the_whole_generation(arch):
    model = random_model(arch, "rope", torch.float32)
    idx = torch.randint(0, 50, (2, 5))
    steps = list(stream_tokens(model, idx, 6, temperature=0, chunk=CHUNK))
    tokens = torch.stack([t for t, _ in steps], dim=1)
    assert torch.equal(tokens, generate(model, idx, 6, temperature=0)[:, 5:])
    cache = steps[-1][1]
    per_token = cache_bytes_per_token(
        model.cfg, "state" if arch == "inattn" else "kvcache", torch.float32
    )
    assert cache.length == 5 + 6 - 1 and state_bytes(cache) == 2 * (5 + 6 - 1) * per_token
    with pytest.raises(ConfigError, match="top_k"):  # checked at the call, not at the first step
        stream_tokens(model, idx, 6, top_k=0)


def test_generate_restores_training_mode_and_handles_zero_tokens():
    model = random_model("inattn", "learned").train()
    idx = torch.randint(0, 50, (1, 4))
    assert torch.equal(generate(model, idx, 0), idx)
    generate(model, idx, 2, temperature=0)
    assert model.training


# ----------------------------------------------------------------------------- errors


def test_learned_positions_refuse_long_prompts():
    model = random_model("inattn", "learned", context_length=8)
    for mode in modes_for("inattn"):
        with pytest.raises(ConfigError) as err:
            prefill(model, torch.zeros(1, 9, dtype=torch.long), mode)
        assert err.value.field == "context_length" and "prompt too long" in str(err.value)
    with pytest.raises(ConfigError) as err:  # prompt + new tokens too long
        generate(model, torch.zeros(1, 6, dtype=torch.long), 4)
    assert err.value.field == "max_new_tokens" and "max_new_tokens<=3" in str(err.value)
    assert "context_length=8" in str(err.value)
    assert max_new_tokens_for(model, 6) == 3 and max_new_tokens_for(model, 9) == 0
    assert max_new_tokens_for(random_model("inattn", "rope"), 100) is None
    # the last new token is never fed back: 6 + 3 tokens from an 8-row table
    assert generate(model, torch.zeros(1, 6, dtype=torch.long), 3, temperature=0).shape == (1, 9)


def test_mode_and_argument_errors():
    dense = random_model("dense", "learned")
    idx = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ConfigError, match="mode"):
        prefill(dense, idx, "state")
    with pytest.raises(ConfigError, match="unknown mode"):
        prefill(dense, idx, "flash")
    with pytest.raises(ConfigError, match="prompt"):
        prefill(dense, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ConfigError, match="chunk"):
        prefill(random_model("inattn", "rope"), idx, "state", chunk=0)
    for kw in ({"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            generate(dense, idx, 2, **kw)
    assert set(modes_for("dense")) == {"naive", "sdpa", "kvcache"}
    assert set(modes_for("inattn")) == set(MODES)


# ----------------------------------------------------------------------------- state bytes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_state_bytes(dtype):
    size = torch.empty((), dtype=dtype).element_size()
    inattn, dense = random_model("inattn", "rope", dtype), random_model("dense", "rope", dtype)
    L, d, B = 3, 16, 2
    for T in (1, 5, 17, 32):
        idx = torch.randint(0, 50, (B, T))
        state = prefill(inattn, idx, "state", chunk=CHUNK)[1]
        assert state_bytes(state) == B * T * d * size
        for model in (inattn, dense):
            assert state_bytes(prefill(model, idx, "kvcache")[1]) == 2 * L * B * T * d * size
        assert cache_bytes_per_token(inattn.cfg, "state", dtype) == d * size
        assert cache_bytes_per_token(dense.cfg, "kvcache", dtype) == 2 * L * d * size
    # a reserved capacity is held (and counted) from the start; decoding within it adds nothing
    logits, state = prefill(inattn, idx[:, :4], "state", capacity=10)
    assert state_bytes(state) == B * 10 * d * size
    for t in range(4, 10):
        logits, state = decode_step(inattn, idx[:, t], state)
    assert state_bytes(state) == B * 10 * d * size and state.length == 10


def activation_per_token(arch: str, mode: str, T1: int, T2: int) -> float:
    """Growth of the tracked peak per context token, measured on fake tensors (no compute)."""
    cfg = GPTConfig(arch=arch, n_layer=4, n_head=4, d_model=128, vocab_size=256, context_length=T2)
    model = fake_module(lambda: GPT(cfg))

    def peak(T: int) -> int:
        idx = fake_tokens(1, T, cfg.vocab_size, like=model)
        run = lambda: prefill(model, idx, mode, chunk=256)  # noqa: E731
        return measure_peak(run, module=model, inputs=idx, device="meta").activation_bytes

    return (peak(T2) - peak(T1)) / (T2 - T1)


def test_state_path_holds_only_s_per_token():
    """No layer forms keys or values for the context: per token, S (d fp32) and the token id."""
    assert activation_per_token("inattn", "state", 2048, 4096) == 128 * 4 + 8
    assert activation_per_token("dense", "kvcache", 2048, 4096) >= 2 * 4 * 128 * 4


def kvcache_workspace(arch: str, position: str, T: int, chunk: int) -> int:
    """Prefill's tracked peak beyond weights, K/V cache and token ids (fake tensors, fp32)."""
    cfg = GPTConfig(arch=arch, position=position, n_layer=4, n_head=4, d_model=128, vocab_size=256)
    cfg.context_length = T
    model = fake_module(lambda: GPT(cfg))
    idx = fake_tokens(1, T, cfg.vocab_size, like=model)
    run = lambda: prefill(model, idx, "kvcache", chunk=chunk)  # noqa: E731
    peak = measure_peak(run, module=model, inputs=idx, device="meta").activation_bytes
    return peak - 2 * cfg.n_layer * T * cfg.d_model * 4 - T * 8


@pytest.mark.parametrize("arch", ["dense", "inattn"])
@pytest.mark.parametrize("position", ["learned", "alibi"])
def test_kvcache_prefill_workspace_does_not_grow_with_context(arch, position):
    """Beyond the cache, chunked prefill needs O(chunk x d): the same at T and at 4 T.

    What may grow is the mask: one row of c + T values per head (ALiBi) or shared (causal).
    A whole-context forward would need tens of d per token here (12 KiB a token at d = 128).
    """
    chunk, d, T1, T2 = 128, 128, 512, 2048
    small, large = (kvcache_workspace(arch, position, T, chunk) for T in (T1, T2))
    assert max(small, large) <= 16 * chunk * d * 4
    mask_row = (4 if position == "alibi" else 1) * 4  # bytes per token
    assert large - small <= mask_row * (T2 - T1)


# ----------------------------------------------------------------------------- sampling


def test_seed_reproducibility():
    model = random_model("inattn", "alibi")
    idx = torch.randint(0, 50, (2, 4))
    a = generate(model, idx, 12, temperature=1.0, seed=7)
    assert torch.equal(a, generate(model, idx, 12, temperature=1.0, seed=7))
    assert torch.equal(a, generate(model, idx, 12, seed=torch.Generator().manual_seed(7)))
    assert not torch.equal(a, generate(model, idx, 12, temperature=1.0, seed=8))
    # the same seed gives the same tokens whichever mode computes the logits
    assert torch.equal(a, generate(model, idx, 12, mode="kvcache", seed=7))


def test_top_k_one_is_greedy():
    model = random_model("dense", "rope")
    idx = torch.randint(0, 50, (3, 4))
    greedy = generate(model, idx, 10, temperature=0)
    for seed in range(3):
        assert torch.equal(generate(model, idx, 10, temperature=1.5, top_k=1, seed=seed), greedy)
    logits = torch.randn(5, 50)
    assert torch.equal(sample_next(logits, 2.0, top_p=1e-6), logits.argmax(-1))


def test_top_p_keeps_smallest_set_with_enough_mass():
    probs = torch.tensor([[1 / 16, 1 / 2, 3 / 16, 1 / 4]], dtype=torch.float64)  # sorted: 1 3 2 0
    expected = {
        0.25: [1],
        0.5: [1],  # 1/2 alone already has mass 0.5
        0.51: [1, 3],
        0.75: [1, 3],
        0.76: [1, 3, 2],
        0.9375: [1, 3, 2],
        0.94: [0, 1, 2, 3],
        1.0: [0, 1, 2, 3],
    }
    for p, keep in expected.items():
        mask = top_p_mask(probs, p)[0]
        assert sorted(torch.nonzero(mask)[:, 0].tolist()) == sorted(keep), p
    logits = torch.log(probs)
    filtered = filter_logits(logits, 1.0, top_p=0.6)
    assert torch.isinf(filtered[0, [0, 2]]).all() and torch.isfinite(filtered[0, [1, 3]]).all()
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, 1.0, top_p=0.6, generator=gen) for _ in range(200)])
    assert set(draws.flatten().tolist()) == {1, 3}


def test_top_k_filter():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    filtered = filter_logits(logits, 0.5, top_k=2)
    assert torch.equal(torch.isfinite(filtered), torch.tensor([[False, True, False, True]]))
    assert torch.allclose(filtered[0, [1, 3]], torch.tensor([6.0, 4.0]))  # divided by temperature
