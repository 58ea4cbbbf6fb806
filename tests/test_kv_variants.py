"""Grouped-query / multi-query attention and cross-layer K/V sharing (CLA), dense models.

The full forward and every inference mode against the float64 reference of tests/reference.py
(written from the definitions, spec section 5, with a plain loop over positions, layers and
heads); the K/V cache's bytes, measured by the tracker; the configuration and the command line.
"""

from __future__ import annotations

import json
import math
from itertools import product
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from inattn.checkpoints.io import CheckpointError
from inattn.checkpoints.resume import check_resume
from inattn.config import CONF_DIR
from inattn.errors import ConfigError
from inattn.inference import (
    KVCache,
    cache_bytes_per_token,
    decode_step,
    generate,
    modes_for,
    prefill,
    state_bytes,
)
from inattn.memory import fake_module, fake_tokens, measure_peak
from inattn.model import GPT, POSITIONS, VARIANTS, GPTConfig, variant_fields
from inattn.training.config import model_config
from tests.reference import random_model, reference_logits, rel_err

N_LAYER, N_HEAD, D_MODEL = 3, 4, 16  # head_dim 4; 3 layers make kv_share=2 leave a short group
KV_HEADS = (4, 2, 1)  # multi-head, grouped (2 queries per K/V head), multi-query
SHARES = (1, 2, 3)  # none, CLA-2 (groups {0, 1}, {2}), all three layers on layer 0's K/V
CASES = list(product(KV_HEADS, SHARES, POSITIONS))
TOL64 = 1e-10


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def kv_model(n_kv: int, share: int, position: str, **kw) -> GPT:
    """A float64 dense model, n_kv K/V heads shared by `share` layers, every parameter random."""
    shape = dict(n_layer=N_LAYER, n_head=N_HEAD, d_model=D_MODEL, context_length=40)
    return random_model("dense", position, n_kv_head=n_kv, kv_share=share, **(shape | kw))


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("n_kv,share,position", CASES)
def test_forward_matches_reference(n_kv, share, position):
    model = kv_model(n_kv, share, position)
    idx = torch.randint(50, (2, 7))
    assert rel_err(model(idx), reference_logits(model, idx)) < TOL64


@pytest.mark.parametrize("n_kv,share", list(product(KV_HEADS, SHARES)))
def test_parameter_count(n_kv, share):
    """Only W_k, W_v (and biases) change: kv_dim rows each, in the layers that make K/V."""
    mha = GPT(GPTConfig(arch="dense", n_layer=N_LAYER, n_head=N_HEAD, d_model=D_MODEL))
    model = GPT(
        GPTConfig(
            arch="dense",
            n_layer=N_LAYER,
            n_head=N_HEAD,
            d_model=D_MODEL,
            n_kv_head=n_kv,
            kv_share=share,
        )
    )
    hd = D_MODEL // N_HEAD
    makers = len(range(0, N_LAYER, share))
    kv_params = lambda rows: 2 * rows * (D_MODEL + 1)  # noqa: E731  weights and biases
    expected = (
        mha.num_params()
        - N_LAYER * kv_params(D_MODEL)  # every MHA layer's W_k, W_v
        + makers * kv_params(n_kv * hd)  # the makers' smaller ones
    )
    assert model.num_params() == expected
    assert model.cfg.kv_groups == makers


def test_defaults_are_todays_model():
    """No new parameters or shapes by default; a saved config without the new keys loads."""
    cfg = GPTConfig(arch="dense")
    assert (cfg.n_kv_head, cfg.kv_share, cfg.kv_heads, cfg.kv_groups) == (None, 1, 4, 4)
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("n_kv_head", "kv_share")}
    model = GPT(GPTConfig(**old))
    assert model.blocks[0].attn.qkv.weight.shape == (3 * cfg.d_model, cfg.d_model)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: tuple(v.shape) for k, v in GPT(cfg).state_dict().items()
    }


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(arch="dense", n_kv_head=3), "model.n_kv_head"),  # does not divide n_head=4
        (dict(arch="dense", n_kv_head=0), "model.n_kv_head"),
        (dict(arch="dense", n_kv_head=2.0), "model.n_kv_head"),
        (dict(arch="dense", n_kv_head=True), "model.n_kv_head"),
        (dict(arch="dense", kv_share=0), "model.kv_share"),
        (dict(arch="dense", kv_share=5), "model.kv_share"),  # more than n_layer=4
        (dict(arch="dense", kv_share=None), "model.kv_share"),
        (dict(arch="inattn", n_kv_head=2), "model.n_kv_head"),
        (dict(arch="inattn", n_kv_head=4), "model.n_kv_head"),  # meaningless, even if n_head
        (dict(arch="inattn", kv_share=2), "model.kv_share"),
    ],
)
def test_bad_kv_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        GPTConfig(**kwargs)
    assert err.value.field == field


# ----------------------------------------------------------------------------- fast paths


@pytest.mark.parametrize("n_kv,share,position", CASES)
def test_every_mode_matches_the_forward(n_kv, share, position):
    """kvcache at several chunk sizes (chunk boundaries included), naive, sdpa; batch 2; all
    against the float64 reference, not the forward (which `sdpa` is)."""
    model = kv_model(n_kv, share, position)
    T = 9
    idx = torch.randint(50, (2, T + 4))
    context = idx[:, :T]
    full = reference_logits(model, idx)  # (2, T + 4, vocab)
    for mode in modes_for("dense"):
        chunks = (1, 3, 4, 8, 9, 16, None) if mode == "kvcache" else (None,)
        for chunk in chunks:
            logits, cache = prefill(model, context, mode, capacity=T + 4, chunk=chunk)
            assert rel_err(logits, full[:, T - 1]) < TOL64, (mode, chunk)
            for step in range(4):  # decode: each fed token's next-token logits
                logits, cache = decode_step(model, idx[:, T + step], cache)
                assert rel_err(logits, full[:, T + step]) < TOL64, (mode, chunk, step)


@pytest.mark.parametrize("n_kv,share,position", CASES)
def test_kv_cache_keeps_only_distinct_keys_and_values(n_kv, share, position):
    model = kv_model(n_kv, share, position)
    T, cap = 6, 10
    _, cache = prefill(model, torch.randint(50, (2, T)), "kvcache", capacity=cap, chunk=4)
    assert isinstance(cache, KVCache)
    groups = -(-N_LAYER // share)
    hd = D_MODEL // N_HEAD
    assert cache.kv.shape == (groups, 2, 2, n_kv, cap, hd)
    per_token = 2 * groups * n_kv * hd * 8  # float64
    assert cache_bytes_per_token(model.cfg, "kvcache", torch.float64) == per_token
    assert state_bytes(cache) == per_token * 2 * cap  # batch 2


@pytest.mark.parametrize("n_kv,share,position", CASES)
def test_cached_greedy_generation_equals_recomputation(n_kv, share, position):
    model = kv_model(n_kv, share, position)
    prompt = torch.randint(50, (2, 5))
    cached = generate(model, prompt, 12, mode="kvcache", temperature=0.0, chunk=2)
    again = generate(model, prompt, 12, mode="sdpa", temperature=0.0)
    assert torch.equal(cached, again)


def test_float32_kvcache_within_spec_tolerance():
    torch.manual_seed(1)
    cfg = GPTConfig(arch="dense", n_layer=4, n_head=4, d_model=32, n_kv_head=1, kv_share=2)
    model = GPT(cfg).eval()
    idx = torch.randint(cfg.vocab_size, (1, 40))
    logits, _ = prefill(model, idx, "kvcache", chunk=16)
    assert rel_err(logits, model(idx)[:, -1]) < 1e-5


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    "n_kv,share",
    [(None, 1), (2, 1), (1, 1), (1, 2), (1, 3)],
    ids=["mha", "gqa", "mqa", "cla2", "cla3"],
)
def test_tracked_cache_growth_is_the_distinct_keys_and_values(n_kv, share):
    """Peak growth per token of a kvcache prefill, measured on fake tensors, is the cache's.

    Within 2%: the token ids (8 bytes a token) and the chunk mask's row (2) grow with T too.
    """
    cfg = GPTConfig(
        arch="dense",
        n_layer=5,
        n_head=8,
        d_model=512,
        vocab_size=512,
        context_length=4096,
        n_kv_head=n_kv,
        kv_share=share,
    )
    model = fake_module(lambda: GPT(cfg), dtype=torch.bfloat16).eval()

    def peak(T: int) -> int:
        idx = fake_tokens(1, T, cfg.vocab_size, like=model)
        fn = lambda: prefill(model, idx, "kvcache", chunk=256)  # noqa: E731
        return measure_peak(fn, module=model, inputs=idx, device="meta").peak_bytes

    growth = (peak(4096) - peak(2048)) / 2048
    expected = 2 * math.ceil(5 / share) * cfg.kv_heads * cfg.head_dim * 2
    assert expected == cache_bytes_per_token(cfg, "kvcache", torch.bfloat16)
    assert abs(growth - expected) / expected < 0.02, (growth, expected)


def test_cla2_over_mqa_caches_as_much_as_inattention_state():
    """gpt2-small's shape: 2 ceil(12 / 2) x 1 x 64 = 768 numbers per token, InAttention's d."""
    shape = dict(n_layer=12, n_head=12, d_model=768)
    cla = GPTConfig(**shape, **variant_fields("cla", 12))
    inattn = GPTConfig(**shape, **variant_fields("inattn", 12))
    mqa = GPTConfig(**shape, **variant_fields("mqa", 12))
    per = lambda c, m: cache_bytes_per_token(c, m, torch.bfloat16) // 2  # noqa: E731
    assert per(cla, "kvcache") == per(inattn, "state") == 768
    assert per(mqa, "kvcache") == 1536
    assert per(GPTConfig(**shape, **variant_fields("dense", 12)), "kvcache") == 18432


# ----------------------------------------------------------------------------- configuration


def compose_train(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


SIZES = sorted(p.stem for p in (CONF_DIR / "size").glob("*.yaml"))


@pytest.mark.parametrize("variant,size", list(product(VARIANTS, SIZES)))
def test_arch_options_compose_to_their_variant(variant, size):
    """conf/arch/<variant>.yaml gives the fields of `variant_fields` for every size."""
    cfg = compose_train(f"arch={variant}", f"size={size}")
    gpt = model_config(cfg, vocab_size=100)
    assert cfg.model.variant == variant
    fields = variant_fields(variant, gpt.n_head)
    assert {k: getattr(gpt, k) for k in fields} == fields
    assert gpt.n_head % gpt.kv_heads == 0


def test_gqa_heads_for_the_gpt2_ladder():
    got = {s: model_config(compose_train("arch=gqa", f"size={s}"), 100).kv_heads for s in SIZES}
    assert got["gpt2-small"] == 6 and got["gpt2-medium"] == 8 and got["gpt2-xl"] == 5


def test_resume_refuses_other_kv_settings(tmp_path):
    saved = GPTConfig(arch="dense").to_dict()
    old = {k: v for k, v in saved.items() if k not in ("n_kv_head", "kv_share")}
    for model, field in (
        (dict(saved, n_kv_head=1), "model.n_kv_head"),
        (dict(saved, kv_share=2), "model.kv_share"),
    ):
        for ckpt_model in (saved, old):  # an older checkpoint lacks the keys: trained with MHA
            ckpt = {"hyper_parameters": {"model": ckpt_model}, "global_step": 1}
            with pytest.raises(CheckpointError) as err:
                check_resume(ckpt, tmp_path / "x.ckpt", model, {}, 10)
            assert err.value.field == field
    check_resume({"hyper_parameters": {"model": old}, "global_step": 1}, tmp_path, saved, {}, 10)


# ----------------------------------------------------------------------------- command line


def test_sweep_over_the_variants_names_its_runs(tmp_path):
    """`inattn-train -m arch=dense,mqa,cla,inattn`: a folder and metrics.json per option."""
    from tests.helpers import cli, tiny

    args = tiny(tmp_path, tmp_path / "cache", "trainer.max_steps=1", "checkpoint.every_n_steps=0")
    sweep = tmp_path / "sweep"
    result = cli("-m", *args, "arch=dense,mqa,cla,inattn", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {}
    for path in sweep.glob("*/metrics.json"):
        m = json.loads(path.read_text())
        runs[m["variant"]] = (path.parent.name, m)
    assert sorted(runs) == ["cla", "dense", "inattn", "mqa"]
    for variant, (folder, m) in runs.items():
        assert f"_{variant}_" in folder
        assert m["arch"] == ("inattn" if variant == "inattn" else "dense")
    n_head = runs["dense"][1]["n_head"]
    assert (runs["mqa"][1]["n_kv_head"], runs["mqa"][1]["kv_share"]) == (1, 1)
    assert (runs["cla"][1]["n_kv_head"], runs["cla"][1]["kv_share"]) == (1, 2)
    assert runs["dense"][1]["n_kv_head"] == n_head
    assert runs["mqa"][1]["params"] < runs["dense"][1]["params"] == runs["inattn"][1]["params"]
    assert runs["cla"][1]["params"] < runs["mqa"][1]["params"]


BAD = {
    "K/V heads for InAttention": (["arch=inattn", "model.n_kv_head=2"], "model.n_kv_head"),
    "K/V sharing for InAttention": (["arch=inattn", "model.kv_share=2"], "model.kv_share"),
    "K/V heads not dividing n_head": (["arch=gqa", "model.n_kv_head=3"], "model.n_kv_head"),
    "K/V sharing of zero layers": (["arch=cla", "model.kv_share=0"], "model.kv_share"),
    "K/V sharing past n_layer": (["arch=cla", "model.kv_share=3"], "model.kv_share"),
    "resuming MHA as MQA": (["arch=mqa", "resume={dense}"], "model.n_kv_head"),
    "resuming CLA without sharing": (["arch=mqa", "resume={cla}"], "model.kv_share"),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """last.ckpt of a one-step nano run per variant (dense, cla)."""
    from tests.helpers import tiny, train_in_process

    root = tmp_path_factory.mktemp("kv-ckpt")
    out = {}
    for variant in ("dense", "cla"):
        args = tiny(root, root / "cache", "trainer.max_steps=1", f"arch={variant}")
        train_in_process(args, root / variant)
        out[variant] = str(root / variant / "checkpoints" / "last.ckpt")
    return out


@pytest.mark.parametrize("name", list(BAD))
def test_bad_kv_input_is_one_line_and_exit_2(name, checkpoints, tmp_path, capsys, monkeypatch):
    """nano: 2 layers, 2 heads."""
    from inattn.cli import train
    from tests.helpers import cli_in_process, tiny

    overrides, field = BAD[name]
    overrides = [o.format(**checkpoints) for o in overrides]
    args = [*tiny(tmp_path, tmp_path / "cache"), f"hydra.run.dir={tmp_path}/run", *overrides]
    code, out, err = cli_in_process(train.main, args, capsys, monkeypatch)
    assert code == 2, (out + err)[-3000:]
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {field}: "), err[-3000:]
    assert not list(tmp_path.rglob("metrics.json"))


def test_generate_cli_on_a_cla_checkpoint(checkpoints, capsys, monkeypatch):
    """inattn-generate decodes a CLA-2 + MQA checkpoint from its K/V cache (the default)."""
    from inattn.checkpoints.pretrained import load_model
    from inattn.cli import generate as generate_cli
    from tests.helpers import cli_in_process

    ckpt = checkpoints["cla"]
    args = [f"ckpt={ckpt}", "prompt=ROMEO:", "max_new_tokens=5", "seed=1", "temperature=0"]
    code, out, err = cli_in_process(generate_cli.main, args, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    cfg = load_model(Path(ckpt), field="ckpt").cfg
    per_token = 2 * cfg.kv_groups * cfg.head_dim * 4  # one K/V head, fp32
    assert "cache kvcache: " in err and f"({per_token} B per position" in err, err
    assert "dense (n_kv_head=1, kv_share=2) model" in err


# ----------------------------------------------------------------------------- benchmark


def test_bench_measures_the_variants_beside_dense_and_inattention():
    """gpt2-small on fake tensors, bf16: per-token growth of each variant's peak is its cache's
    (2 ceil(L / kv_share) n_kv hd x 2 bytes), and CLA-2 + MQA's equals InAttention's state."""
    from inattn.bench.grid import run_grid
    from inattn.bench.spec import BenchSpec

    shape = {"n_layer": 12, "n_head": 12, "d_model": 768}
    keys = ["dense/kvcache", "gqa/kvcache", "mqa/kvcache", "cla/kvcache", "inattn/state"]
    grid = BenchSpec(
        sizes={"gpt2-small": shape},
        modes=keys,
        context_lengths=[2048, 4096],
        device="meta",
        dtype="bf16",
        model={"vocab_size": 50257},
        chunk=1024,
    )
    rows = {(r.key, r.context): r for r in run_grid(grid, progress=False)}
    growth = {k: (rows[k, 4096].peak_bytes - rows[k, 2048].peak_bytes) / 2048 for k in keys}
    for key, n_kv, share in [
        ("dense/kvcache", 12, 1),
        ("gqa/kvcache", 6, 1),
        ("mqa/kvcache", 1, 1),
        ("cla/kvcache", 1, 2),
    ]:
        expected = 2 * math.ceil(12 / share) * n_kv * 64 * 2
        assert abs(growth[key] - expected) / expected < 0.02, (key, growth[key], expected)
        assert rows[key, 4096].state_bytes == expected * 4096
    assert abs(growth["cla/kvcache"] / growth["inattn/state"] - 1) < 0.02
    assert rows["cla/kvcache", 2048].params < rows["mqa/kvcache", 2048].params


def compose_bench(*overrides: str):
    from inattn.cli.bench import spec_from_config

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return spec_from_config(compose("bench", overrides=list(overrides)))
    finally:
        GlobalHydra.instance().clear()


def test_bench_arch_option_selects_a_variant():
    grid = compose_bench("size=gpt2-small", "arch=cla")
    assert grid.modes == ["cla/kvcache"] and grid.variants == {}
    cfg = grid.gpt_config("gpt2-small", "cla")
    assert (cfg.arch, cfg.kv_heads, cfg.kv_share) == ("dense", 1, 2)
    grid = compose_bench("size=gpt2-small", "arch=gqa", "modes=[gqa/sdpa,gqa/kvcache,dense/sdpa]")
    assert grid.modes == ["gqa/sdpa", "gqa/kvcache"]
    assert grid.gpt_config("gpt2-small", "gqa").kv_heads == 6
    grid = compose_bench("size=gpt2-small", "arch=gqa", "modes=[gqa/kvcache]", "model.n_kv_head=4")
    assert grid.gpt_config("gpt2-small", "gqa").kv_heads == 4
    grid = compose_bench("sizes=[gpt2-small,gpt2-xl]", "arch=gqa", "modes=[gqa/kvcache]")
    assert [grid.gpt_config(s, "gqa").kv_heads for s in grid.sizes] == [6, 5]  # per size


@pytest.mark.parametrize(
    "overrides,field",
    [
        (["arch=inattn", "model.n_kv_head=2"], "model.n_kv_head"),
        (["arch=gqa", "modes=[gqa/kvcache]", "model.n_kv_head=5"], "model.n_kv_head"),
        (["modes=[mqa/state]"], "modes"),  # MQA is dense: no state path
        (["arch=mqa", "modes=[dense/kvcache]"], "modes"),
    ],
)
def test_bench_bad_variant_input(overrides, field):
    with pytest.raises(ConfigError) as err:
        compose_bench("size=gpt2-small", *overrides)
    assert err.value.field == field
