"""inattn models in EleutherAI's lm-evaluation-harness: the model class `inattn`.

    inattn-lm-eval --model inattn --model_args checkpoint=<last.ckpt or model folder> --tasks ...

`inattn-lm-eval` is the harness's own command line with this class registered (lm-eval 0.4
finds models only in its own source tree, so the plain `lm_eval` cannot see a model class that
another package provides). An exported folder (inattn-export) also runs under the plain command:
`lm_eval --model hf --model_args pretrained=<folder>,trust_remote_code=True`.

The three request types:
    loglikelihood          log P(continuation | context), and whether greedy decoding gives it
    loglikelihood_rolling  log P(text), in windows of the model's context (the harness's own
                           window rule: each window conditions on the end of the one before)
    generate_until         the model's fast cache (state for InAttention, K/V for dense), greedy
                           unless the task samples, stopped at the `until` strings or end-of-text
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from inattn.data.tokenizer import EOT
from inattn.errors import DataError, UserError
from inattn.units import parse_dtype


def load(checkpoint: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of an inattn-train checkpoint or a model folder; a tokenizer is needed."""
    from inattn.checkpoints.hf_folder import open_folder
    from inattn.checkpoints.pretrained import load_model

    path = Path(checkpoint).expanduser()
    if path.is_dir():
        folder = open_folder(path, "checkpoint")
        model, tokenizer = folder.model(), folder.tokenizer()
    else:
        loaded = load_model(path, field="checkpoint")
        model, tokenizer = loaded.model, loaded.tokenizer
    if tokenizer is None:
        raise DataError("checkpoint", f"{path} holds no tokenizer")
    return model, tokenizer


@register_model("inattn")
class InAttnLM(LM):
    def __init__(
        self,
        checkpoint: str,
        device: str | None = None,
        batch_size: int | str | None = 16,
        dtype: str = "fp32",
        max_length: int | None = None,
        **kwargs: Any,  # the harness's other settings (max_batch_size, ...)
    ):
        super().__init__()
        model, self.tokenizer = load(checkpoint)
        # The harness's command line asks for cuda unless told otherwise; like its own models,
        # fall back to the CPU where there is no GPU.
        if (
            not device
            or device == "auto"
            or (device.startswith("cuda") and not torch.cuda.is_available())
        ):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)  # the harness's `device` property reads it
        self.model = model.to(device=self._device, dtype=parse_dtype(dtype)).eval()
        self.max_length = int(max_length or model.cfg.context_length)
        # "auto" (the harness's batch-size search) is answered with a fixed, modest batch
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 16
        self.eot_id = self.tokenizer.token_to_id(EOT)
        if self.eot_id is None:
            raise DataError("checkpoint", f"the tokenizer has no {EOT} token")

    # -- tokens --

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation tokens, split as the harness's own models split them: the
        whole text is tokenized once, so a token that spans the boundary belongs to the
        continuation; trailing spaces of the context move to the continuation."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            return [self.eot_id], self.encode(continuation)
        whole = self.encode(context + continuation)
        context_ids = self.encode(context)
        return context_ids, whole[len(context_ids) :]

    # -- scoring --

    @torch.no_grad()
    def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum of log P(continuation tokens), all greedy) per (context, continuation) pair,
        in batches of similar length, right-padded (causal: padding never changes a real
        position), each sequence cut to the model's last `max_length` positions."""
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        rows = []
        for i, (context, continuation) in enumerate(pairs):
            tokens = (context + continuation)[-(self.max_length + 1) :]
            n = min(len(continuation), len(tokens) - 1)
            if n == 0:  # nothing to score: probability 1
                results[i] = (0.0, True)
                continue
            rows.append((i, tokens[:-1], tokens[-n:]))
        rows.sort(key=lambda r: -len(r[1]))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            width = len(batch[0][1])
            idx = torch.zeros(len(batch), width, dtype=torch.long)
            for b, (_, inp, _) in enumerate(batch):
                idx[b, : len(inp)] = torch.tensor(inp)
            logp = F.log_softmax(self.model(idx.to(self.device)).float(), dim=-1)
            for b, (i, inp, target) in enumerate(batch):
                span = logp[b, len(inp) - len(target) : len(inp)]  # predicts `target`
                want = torch.tensor(target, device=self.device)
                total = span.gather(1, want[:, None]).sum().item()
                results[i] = (total, bool((span.argmax(-1) == want).all()))
        return results  # type: ignore[return-value]

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False):
        pairs = [self.encode_pair(*req.args) for req in requests]
        return self.score(pairs)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False):
        results = []
        for req in requests:
            windows = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(
                    token_list=self.encode(req.args[0]),
                    prefix_token=self.eot_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                )
            ]
            results.append(sum(logp for logp, _ in self.score(windows)))
        return results

    # -- generation --

    @torch.no_grad()
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return [self.generate_one(*req.args) for req in requests]

    def generate_one(self, context: str, gen_kwargs: dict[str, Any]) -> str:
        from inattn.inference import max_new_tokens_for, stream_tokens

        kwargs = dict(gen_kwargs)
        until = kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        max_new = int(kwargs.pop("max_gen_toks", 256))
        sample = bool(kwargs.pop("do_sample", False))
        temperature = float(kwargs.pop("temperature", 0.0)) if sample else 0.0
        ids = (self.encode(context) or [self.eot_id])[-max(self.max_length - max_new, 1) :]
        room = max_new_tokens_for(self.model, len(ids))
        max_new = max_new if room is None else min(max_new, room)
        idx = torch.tensor([ids], device=self.device)
        steps = stream_tokens(
            self.model,
            idx,
            max_new,
            temperature=temperature,
            top_k=kwargs.get("top_k") if sample else None,
            top_p=kwargs.get("top_p") if sample else None,
            eos_id=self.eot_id,
        )
        new: list[int] = []
        text = ""
        for token, _ in steps:
            t = int(token[0])
            if t == self.eot_id:
                break
            new.append(t)
            text = self.tokenizer.decode(new)
            cut = min((text.index(s) for s in until if s and s in text), default=None)
            if cut is not None:
                return text[:cut]
        return text


def main() -> None:
    """`inattn-lm-eval`: the harness's command line (`lm_eval ...`) with `inattn` registered."""
    from lm_eval.__main__ import cli_evaluate

    try:
        cli_evaluate()
    except UserError as err:  # a bad argument or checkpoint: one line, exit 2
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
