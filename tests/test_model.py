"""The model against references written straight from the spec (section 1), in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from inattn.errors import ConfigError
from inattn.model import GPT, POSITIONS, GPTConfig, alibi_slopes

TOL = 1e-10


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def random_model(arch: str, position: str, seed: int = 0, **kw) -> GPT:
    """A float64 model with every parameter random, biases and norms included."""
    torch.manual_seed(seed)
    cfg = GPTConfig(
        arch=arch,
        position=position,
        vocab_size=50,
        context_length=32,
        n_layer=3,
        n_head=2,
        d_model=16,
        **kw,
    )
    model = GPT(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model


def layer_norm(x, w, b, eps):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    y = (x - mu) / math.sqrt(var + eps)
    return y if w is None else y * w + (0 if b is None else b)


def rotate(x: torch.Tensor, pos: int, cfg: GPTConfig) -> torch.Tensor:
    """RoPE on one head vector, pairs (i, i + hd/2) rotated by pos / scale * base^(-2i/hd)."""
    hd = x.shape[0]
    out = x.clone()
    for i in range(hd // 2):
        theta = (pos / cfg.rope_scale) * cfg.rope_base ** (-2 * i / hd)
        c, s = math.cos(theta), math.sin(theta)
        out[i] = x[i] * c - x[i + hd // 2] * s
        out[i + hd // 2] = x[i + hd // 2] * c + x[i] * s
    return out


def attend(block, cfg, a_t, t, sources):
    """One query at position t over sources[0..t] (each a d-vector), head by head."""
    d, H, hd = cfg.d_model, cfg.n_head, cfg.head_dim
    W, b = block.attn.qkv.weight, block.attn.qkv.bias
    q = W[:d] @ a_t + b[:d]
    out = torch.zeros(d, dtype=a_t.dtype)
    slopes = alibi_slopes(H)
    for h in range(H):
        sl = slice(h * hd, (h + 1) * hd)
        qh = q[sl]
        if cfg.position == "rope":
            qh = rotate(qh, t, cfg)
        scores, values = [], []
        for j in range(t + 1):
            k = W[d : 2 * d][sl] @ sources[j] + b[d : 2 * d][sl]
            v = W[2 * d :][sl] @ sources[j] + b[2 * d :][sl]
            if cfg.position == "rope":
                k = rotate(k, j, cfg)
            s = float(qh @ k) / math.sqrt(hd)
            if cfg.position == "alibi":
                s -= float(slopes[h]) * (t - j)
            scores.append(s)
            values.append(v)
        m = max(scores)
        w = [math.exp(s - m) for s in scores]
        z = sum(w)
        out[sl] = sum(wi / z * v for wi, v in zip(w, values, strict=True))
    return block.attn.proj.weight @ out + block.attn.proj.bias


def mlp(block, x):
    h = block.mlp.fc.weight @ x + block.mlp.fc.bias
    h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    return block.mlp.proj.weight @ h + block.mlp.proj.bias


def initial_states(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    x0 = [model.tok_emb.weight[int(tok)].clone() for tok in idx]
    if model.cfg.position == "learned":
        x0 = [x + model.pos_emb.weight[t] for t, x in enumerate(x0)]
    return x0


def final_logits(model: GPT, h: torch.Tensor) -> torch.Tensor:
    cfg = model.cfg
    return model.tok_emb.weight @ layer_norm(h, model.ln_f.weight, model.ln_f.bias, cfg.norm_eps)


def inattn_reference(model: GPT, idx: torch.Tensor, t: int) -> torch.Tensor:
    """Position t from x0[<=t] and t's own path only, as the spec says it must be."""
    cfg = model.cfg
    x0 = initial_states(model, idx[: t + 1])
    s = [layer_norm(x, None, None, cfg.norm_eps) for x in x0]  # N(x0), no parameters
    h = x0[t]
    for block in model.blocks:
        a = layer_norm(h, block.ln1.weight, block.ln1.bias, cfg.norm_eps)
        h = h + attend(block, cfg, a, t, s)
        h = h + mlp(block, layer_norm(h, block.ln2.weight, block.ln2.bias, cfg.norm_eps))
    return final_logits(model, h)


def dense_reference(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Every position, layer by layer: keys and values from each layer's own input."""
    cfg = model.cfg
    hs = initial_states(model, idx)
    for block in model.blocks:
        a = [layer_norm(h, block.ln1.weight, block.ln1.bias, cfg.norm_eps) for h in hs]
        hs = [h + attend(block, cfg, a[t], t, a) for t, h in enumerate(hs)]
        hs = [
            h + mlp(block, layer_norm(h, block.ln2.weight, block.ln2.bias, cfg.norm_eps))
            for h in hs
        ]
    return torch.stack([final_logits(model, h) for h in hs])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_inattn_matches_per_position_reference(position):
    model = random_model("inattn", position)
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 50, (11,), generator=gen)
    logits = model(idx[None])[0]
    for t in [0, int(torch.randint(1, 10, (1,), generator=gen)), 10]:
        assert rel_err(logits[t], inattn_reference(model, idx, t)) < TOL


@pytest.mark.parametrize("position", POSITIONS)
def test_dense_matches_per_position_reference(position):
    model = random_model("dense", position)
    idx = torch.randint(0, 50, (9,), generator=torch.Generator().manual_seed(2))
    assert rel_err(model(idx[None])[0], dense_reference(model, idx)) < TOL


@pytest.mark.parametrize("arch", ["dense", "inattn"])
@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_causal(arch, position):
    model = random_model(arch, position)
    idx = torch.randint(0, 50, (1, 12))
    t = 5
    changed = idx.clone()
    changed[0, t + 1 :] = (changed[0, t + 1 :] + 7) % 50
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], rtol=0, atol=0)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_last_only_equals_full_forward():
    model = random_model("inattn", "rope")
    idx = torch.randint(0, 50, (2, 10))
    torch.testing.assert_close(model(idx, last_only=True)[:, 0], model(idx)[:, -1])


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("tie", [True, False])
def test_equal_parameter_counts(position, tie):
    counts = set()
    for arch in ("dense", "inattn"):
        if arch == "inattn" and position == "none":
            continue
        cfg = GPTConfig(arch=arch, position=position, tie_weights=tie)
        counts.add(GPT(cfg).num_params())
    assert len(counts) == 1


def test_variants_share_state_dict_keys():
    dense = GPT(GPTConfig(arch="dense")).state_dict()
    inattn = GPT(GPTConfig(arch="inattn")).state_dict()
    assert dense.keys() == inattn.keys()


def test_inattn_kv_is_one_projection_of_normalised_x0():
    model = random_model("inattn", "learned")
    x0 = torch.randn(2, 7, 16, dtype=torch.float64)
    kvs = model.inattn_kv(x0)
    s = F.layer_norm(x0, (16,), eps=model.cfg.norm_eps)
    for block, (k, v) in zip(model.blocks, kvs, strict=True):
        w, b = block.attn.kv_weight()
        torch.testing.assert_close(torch.cat([k, v], -1), F.linear(s, w, b))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"arch": "sparse"}, "arch"),
        ({"d_model": 130, "n_head": 4}, "d_model"),
        ({"arch": "inattn", "position": "none"}, "position"),
        ({"position": "sinusoid"}, "position"),
        ({"n_layer": 0}, "n_layer"),
        ({"context_length": -1}, "context_length"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        GPTConfig(**kwargs)
    assert err.value.field == field


def test_sequence_beyond_learned_table_is_refused():
    model = GPT(GPTConfig(context_length=8))
    with pytest.raises(ConfigError, match="context_length"):
        model(torch.zeros(1, 9, dtype=torch.long))
