import copy

import pytest
import torch

from inattn.context_extension import extend_context, extend_state, extend_table
from inattn.errors import ConfigError
from inattn.model import GPT, GPTConfig, rope_cos_sin

T0 = 16


def make(position: str, arch: str = "inattn", T: int = T0) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(
        arch=arch,
        vocab_size=64,
        context_length=T,
        n_layer=2,
        n_head=2,
        d_model=16,
        position=position,
    )
    model = GPT(cfg).eval()
    if model.pos_emb is not None:  # a trained-looking table, not the tiny random init
        torch.nn.init.normal_(model.pos_emb.weight, std=1.0)
    return model


def tokens(T: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 64, (2, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("T1", [17, 31, 32, 100])
def test_interpolated_table_keeps_endpoints_and_is_linear(T1):
    table = torch.randn(T0, 8)
    new = extend_table(table, T1, "interpolate")
    assert new.shape == (T1, 8)
    assert torch.equal(new[0], table[0])
    assert torch.equal(new[-1], table[-1])
    # plain reference: row j sits at source position j * (T0-1) / (T1-1)
    for j in range(T1):
        s = j * (T0 - 1) / (T1 - 1)
        lo = int(s)
        hi = min(lo + 1, T0 - 1)
        want = (1 - (s - lo)) * table[lo] + (s - lo) * table[hi]
        torch.testing.assert_close(new[j], want, rtol=1e-5, atol=1e-6)


def test_interpolation_by_an_integer_factor_hits_old_rows():
    table = torch.randn(T0, 4)
    T1 = 3 * (T0 - 1) + 1  # row 3p is exactly old row p
    new = extend_table(table, T1, "interpolate")
    assert torch.equal(new[::3], table)


def test_copy_table_keeps_rows_and_repeats_the_last():
    table = torch.randn(T0, 4)
    new = extend_table(table, 40, "copy")
    assert torch.equal(new[:T0], table)
    assert torch.equal(new[T0:], table[-1].expand(40 - T0, -1))


@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_same_length_is_the_identity(position, arch):
    model = make(position, arch)
    x = tokens(T0)
    before = model(x)
    extend_context(model, T0)
    assert model.cfg.context_length == T0 and model.cfg.rope_scale == 1.0
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_learned_copy_keeps_outputs_on_the_first_positions(arch):
    model = make("learned", arch)
    x = tokens(T0)
    before = model(x)
    extend_context(model, 3 * T0, method="copy")
    assert model.cfg.context_length == 3 * T0
    assert model.pos_emb.weight.shape == (3 * T0, 16)
    assert model.pos_emb.weight.requires_grad
    assert torch.equal(model(x), before)
    long = tokens(3 * T0, seed=2)
    long[:, :T0] = x  # causal: a longer sequence leaves the first T0 outputs alone
    torch.testing.assert_close(model(long)[:, :T0], before, rtol=1e-5, atol=1e-5)


def test_learned_interpolation_runs_at_the_new_length_and_changes_the_middle():
    model = make("learned")
    old = model.pos_emb.weight.detach().clone()
    extend_context(model, 2 * T0)
    new = model.pos_emb.weight.detach()
    assert torch.equal(new[0], old[0]) and torch.equal(new[-1], old[-1])
    assert not torch.equal(new[1], old[1])
    assert model(tokens(2 * T0)).shape == (2, 2 * T0, 64)
    with pytest.raises(ConfigError):
        model(tokens(2 * T0 + 1))


def test_rope_interpolation_maps_position_2p_to_old_p():
    model = make("rope")
    old_cfg = copy.deepcopy(model.cfg)
    extend_context(model, 2 * T0)
    assert model.cfg.rope_scale == 2.0
    assert model.cfg.context_length == 2 * T0
    p = torch.arange(T0)
    old_cos, old_sin = rope_cos_sin(old_cfg, p, torch.float64)
    new_cos, new_sin = rope_cos_sin(model.cfg, 2 * p, torch.float64)
    assert torch.equal(new_cos, old_cos) and torch.equal(new_sin, old_sin)
    # the model's own tables follow the new scale (all blocks share the config)
    rope, _ = model.position_context(2 * T0, "cpu", torch.float64)
    assert torch.equal(rope[0][::2], old_cos)
    assert all(b.attn.cfg.rope_scale == 2.0 for b in model.blocks)


def test_rope_none_leaves_the_model_alone():
    model = make("rope")
    x = tokens(T0)
    before = model(x)
    extend_context(model, 4 * T0, method="none")
    assert model.cfg.rope_scale == 1.0 and model.cfg.context_length == 4 * T0
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_alibi_is_unchanged_and_works_longer(arch):
    model = make("alibi", arch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = tokens(T0)
    before = model(x)
    extend_context(model, 4 * T0)
    assert model.cfg.context_length == 4 * T0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(model(x), before)
    assert torch.isfinite(model(tokens(4 * T0))).all()


def test_shorter_length_and_wrong_methods_are_config_errors():
    with pytest.raises(ConfigError, match="context_length"):
        extend_context(make("learned"), T0 - 1)
    with pytest.raises(ConfigError, match="method"):
        extend_context(make("learned"), 2 * T0, method="rope_scale")
    with pytest.raises(ConfigError, match="method"):
        extend_context(make("rope"), 2 * T0, method="copy")


@pytest.mark.parametrize(
    ("position", "method"),
    [("learned", "interpolate"), ("learned", "copy"), ("rope", "auto"), ("alibi", "auto")],
)
def test_checkpoint_state_matches_the_extended_model(position, method):
    model = make(position)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    new_state, new_cfg = extend_state(state, model.cfg.to_dict(), 3 * T0, method)
    extend_context(model, 3 * T0, method)
    assert new_cfg == model.cfg.to_dict()
    reloaded = GPT(GPTConfig(**new_cfg))
    reloaded.load_state_dict({k.removeprefix("model."): v for k, v in new_state.items()})
    x = tokens(3 * T0)
    assert torch.equal(reloaded.eval()(x), model(x))
