"""The configuration of an exported inattn model: its GPTConfig as a dict (`gpt`), whatever
keys that config has, so model variants added later export without a change here."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class InAttnConfig(PretrainedConfig):
    model_type = "inattn"

    def __init__(self, gpt: dict[str, Any] | None = None, **kwargs: Any):
        self.gpt = dict(gpt or {})
        # The names other tools read (lm-eval's maximum length, generation's vocabulary).
        self.vocab_size = self.gpt.get("vocab_size")
        self.hidden_size = self.gpt.get("d_model")
        self.num_hidden_layers = self.gpt.get("n_layer")
        self.num_attention_heads = self.gpt.get("n_head")
        if self.gpt.get("position") == "learned":
            self.max_position_embeddings = self.gpt.get("context_length")
        kwargs.setdefault("tie_word_embeddings", False)  # the GPT ties its head itself
        kwargs.setdefault("use_cache", False)  # every step is a full forward (no K/V cache)
        super().__init__(**kwargs)
