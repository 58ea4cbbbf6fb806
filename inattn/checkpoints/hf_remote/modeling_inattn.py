"""An exported inattn GPT as a Hugging Face causal LM: a thin wrapper, the maths in
`inattn_model.py` (a copy of inattn/model.py). Generation runs a full forward per new token;
inattn-generate's state and K/V caches are not part of this file."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_inattn import InAttnConfig
from .inattn_model import GPT, GPTConfig, alibi_slopes


class InAttnForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = InAttnConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"

    def __init__(self, config: InAttnConfig):
        super().__init__(config)
        self.model = GPT(GPTConfig(**config.gpt))
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """The GPT initialises itself; an exported folder holds every weight anyway. Buffers that
        are not saved (ALiBi slopes) are rebuilt here, since loading may start on `meta`."""
        if module is self.model and getattr(module, "alibi_slopes", None) is not None:
            module.alibi_slopes = alibi_slopes(module.cfg.n_head).to(module.tok_emb.weight.device)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.tok_emb

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model.tok_emb = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError("padded batches are not supported: give sequences of equal length")
        logits = self.model(input_ids)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def prepare_inputs_for_generation(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return {"input_ids": input_ids, "attention_mask": attention_mask}
