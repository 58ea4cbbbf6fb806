"""Training compute of a GPT, counted from its shape: FLOPs per token and per run.

The usual accounting (Kaplan et al. 2020, appendix; Chinchilla's "6N"): a forward pass costs two
FLOPs per weight that multiplies an activation, the backward pass twice that, so training costs

    flops per token = 6 * N_matmul + 6 * L * T * d_attn

N_matmul counts the weights used in matrix products: every layer's projections and MLP, and
the output head (tied or not: the product happens either way), but not the embedding lookups,
layer norms or biases. The second term is attention's score and weighted-sum products over a
context of T tokens (the causal mask is not subtracted, as in Kaplan et al.; the same rule for
every variant, so ratios are fair). InAttention projects its keys and values from N(x0) with
the same matrices a dense layer applies to its own input, so it costs the same per token; GQA,
MQA and CLA cost less because they hold fewer key/value weights, and the count below sees that.
"""

from __future__ import annotations

from torch import nn

from inattn.model import GPT


def matmul_params(model: GPT) -> int:
    """Weights that multiply activations: every nn.Linear (K/V from N(x0) included), the head."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    head = model.tok_emb.weight.numel() if model.head is None else 0  # tied head: one more matmul
    return linear + head


def flops_per_token(model: GPT, context_length: int) -> int:
    """Training FLOPs per token at this context (see the module docstring)."""
    cfg = model.cfg
    return 6 * matmul_params(model) + 6 * cfg.n_layer * context_length * cfg.d_model


def training_flops(model: GPT, context_length: int, tokens: int) -> int:
    """Training FLOPs of a run that saw `tokens` tokens at `context_length`."""
    return flops_per_token(model, context_length) * int(tokens)
