"""inattn-generate: continue a prompt with a trained checkpoint (conf/generate.yaml).

The text goes to stdout as the tokens arrive; a summary (tokens, tokens/s, cache bytes) goes to
stderr. Exit codes: 0 done, 2 bad input (one line naming the field or file).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from inattn.cli.app import check_run_device, run_app
from inattn.config import check_integer
from inattn.data.tokenizer import EOT
from inattn.errors import ConfigError, DataError
from inattn.units import dtype_name, parse_dtype


class TextStream:
    """New text as token ids arrive, decoding a short window rather than all ids each time.

    The ids from `prefix` to `read` were shown already and give the window its context; a new
    piece is handed out once decoding the window says more than its shown part and does not end
    in an unfinished multi-byte character (byte-level tokens can split one).
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int]):
        self.tokenizer = tokenizer
        self.ids = list(prompt_ids)
        self.prefix = self.read = len(self.ids)

    def text(self) -> str:
        """All of it, prompt included."""
        return self.tokenizer.decode(self.ids)

    def push(self, token: int) -> str:
        self.ids.append(token)
        shown = self.tokenizer.decode(self.ids[self.prefix : self.read])
        text = self.tokenizer.decode(self.ids[self.prefix :])
        if len(text) > len(shown) and not text.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return text[len(shown) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an unfinished character at the very end)."""
        shown = self.tokenizer.decode(self.ids[self.prefix : self.read])
        text = self.tokenizer.decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return text[len(shown) :]


# ----------------------------------------------------------------------------- checks


def check_cache(cache: Any) -> None:
    """`cache` is null or the name of an inference mode (state, kvcache, sdpa, naive)."""
    from inattn.inference import MODES

    if cache is not None and cache not in MODES:
        raise ConfigError("cache", f"unknown cache {cache!r}; choose one of {tuple(MODES)}")


def cache_mode(cache: str | None, arch: str) -> str:
    """The inference mode `cache` names (None: the arch's lowest-memory mode), checked."""
    from inattn.inference import DEFAULT_MODE, modes_for

    if cache is None:
        return DEFAULT_MODE[arch]
    check_cache(cache)
    if cache not in modes_for(arch):
        raise ConfigError(
            "cache",
            f"cache={cache} needs an InAttention checkpoint; this one is {arch}: "
            f"choose one of {modes_for(arch)}",
        )
    return cache


def validate(cfg: DictConfig) -> None:
    """Refuse a command line that cannot work, before the checkpoint is read."""
    from inattn.inference.common import check_chunk
    from inattn.inference.sampling import check_sampling

    if not isinstance(cfg.ckpt, str) or not cfg.ckpt:
        raise ConfigError("ckpt", f"give the checkpoint's path, got {cfg.ckpt!r}")
    if not Path(cfg.ckpt).expanduser().is_file():
        raise DataError("ckpt", f"checkpoint not found: {cfg.ckpt}")
    if cfg.prompt_file is not None and not Path(cfg.prompt_file).expanduser().is_file():
        raise DataError("prompt_file", f"no such file: {cfg.prompt_file}")
    check_integer(cfg, "max_new_tokens", 0)
    check_integer(cfg, "batch", 1)
    check_sampling(cfg.temperature, cfg.top_k, cfg.top_p)
    check_chunk(cfg.chunk)
    seed = cfg.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError("seed", f"seed must be an integer or null, got {seed!r}")
    check_cache(cfg.cache)
    dtype_name(cfg.dtype)
    check_run_device(cfg.device)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", "device=cuda but no CUDA device is available")


def prompt_text(cfg: DictConfig) -> str:
    if cfg.prompt_file is not None:
        return Path(cfg.prompt_file).expanduser().read_text()
    prompt = cfg.prompt
    if isinstance(prompt, bool) or not isinstance(prompt, (str, int, float)):
        raise ConfigError("prompt", f"the prompt must be text, got {prompt!r}")
    return str(prompt)


# ----------------------------------------------------------------------------- the task


def write(out: TextIO, text: str) -> None:
    if text:
        out.write(text)
        out.flush()


@dataclass
class Run:
    """What one generation did: for the summary line."""

    tokens: int = 0  # new tokens, finished samples' padding left out
    steps: int = 0
    seconds: float = 0.0
    first: float | None = None  # seconds to the first token (the prefill)
    cache: Any = None


def sample(cfg: DictConfig, model: Any, tokenizer: Any, mode: str, out: TextIO) -> Run:
    """Generate cfg.batch samples of the prompt and write their text to `out`."""
    import torch

    from inattn.inference import stream_tokens

    ids = tokenizer.encode(prompt_text(cfg), add_special_tokens=False).ids
    if not ids:
        raise ConfigError("prompt", "the prompt is empty: give at least one character")
    device = model.tok_emb.weight.device
    eos_id = tokenizer.token_to_id(EOT) if cfg.stop_at_eot else None
    steps = stream_tokens(
        model,
        torch.tensor([ids] * cfg.batch, device=device),
        cfg.max_new_tokens,
        mode=mode,
        temperature=float(cfg.temperature),
        top_k=cfg.top_k,
        top_p=None if cfg.top_p is None else float(cfg.top_p),
        seed=cfg.seed,
        eos_id=eos_id,
        chunk=cfg.chunk,
    )
    streams = [TextStream(tokenizer, ids) for _ in range(cfg.batch)]
    live = cfg.batch == 1  # one sample is shown as it grows; several, each once it is done
    if live:
        write(out, streams[0].text())
    run, done = Run(), torch.zeros(cfg.batch, dtype=torch.bool, device=device)
    start = time.perf_counter()
    for token, run.cache in steps:
        if run.first is None:
            run.first = time.perf_counter() - start
        run.steps += 1
        run.tokens += int((~done).sum())
        if eos_id is not None:
            done |= token == eos_id
        for stream, t in zip(streams, token.tolist(), strict=True):
            piece = stream.push(t)
            if live:
                write(out, piece)
    run.seconds = time.perf_counter() - start
    if live:
        write(out, streams[0].flush() + "\n")
    else:
        for i, stream in enumerate(streams):
            write(out, f"--- sample {i + 1} of {cfg.batch} ---\n{stream.text()}\n")
    return run


def summary(run: Run, cfg: DictConfig, model: Any, mode: str, device: str) -> str:
    from inattn.inference import cache_bytes_per_token, state_bytes
    from inattn.units import human_bytes

    rate = run.tokens / run.seconds if run.seconds > 0 else float("inf")
    first = "" if run.first is None else f", first after {run.first:.3f} s"
    held = 0 if run.cache is None else state_bytes(run.cache)
    per_token = cache_bytes_per_token(model.cfg, mode, model.tok_emb.weight.dtype)
    return (
        f"generated {run.tokens} tokens ({cfg.batch} x up to {run.steps}) in {run.seconds:.2f} s: "
        f"{rate:.1f} tokens/s{first}; cache {mode}: {human_bytes(held)} ({per_token} B per "
        f"position and sample); {arch_text(model.cfg)} model on {device} in {dtype_name(cfg.dtype)}"
    )


def arch_text(cfg: Any) -> str:
    """`dense`, `inattn`, or a dense model's K/V heads and sharing where they are not MHA's."""
    extra = [f"n_kv_head={cfg.n_kv_head}"] if cfg.n_kv_head not in (None, cfg.n_head) else []
    extra += [f"kv_share={cfg.kv_share}"] if cfg.kv_share != 1 else []
    return cfg.arch + (f" ({', '.join(extra)})" if extra else "")


def task(cfg: DictConfig, out: TextIO | None = None, err: TextIO | None = None) -> None:
    """Generate as `cfg` says; text to `out` (stdout), the summary to `err` (stderr)."""
    import torch

    from inattn.checkpoints.pretrained import load_model

    loaded = load_model(Path(cfg.ckpt).expanduser(), field="ckpt")
    if loaded.tokenizer is None:
        raise DataError("ckpt", f"{cfg.ckpt} holds no tokenizer (not written by inattn-train?)")
    mode = cache_mode(cfg.cache, loaded.cfg.arch)
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = loaded.model.to(device=device, dtype=parse_dtype(cfg.dtype))
    run = sample(cfg, model, loaded.tokenizer, mode, out or sys.stdout)
    print(summary(run, cfg, model, mode, device), file=err or sys.stderr)


def quote_prompt(arg: str) -> str:
    """`prompt=<text>` as a quoted Hydra value, so that any text (commas, brackets, `=`) is taken
    as it is; an already quoted value is left alone."""
    key, sep, value = arg.partition("=")
    if key != "prompt" or not sep or value[:1] in ("'", '"'):
        return arg
    quote = "'" if "'" not in value else '"'
    # a backslash run right before a quote (or the closing one) would escape it: double it
    value = re.sub(rf"(\\+)(?={quote}|$)", lambda m: m.group(1) * 2, value)
    escaped = value.replace(quote, "\\" + quote)
    return f"prompt={quote}{escaped}{quote}"


def main() -> None:
    sys.argv[1:] = [quote_prompt(arg) for arg in sys.argv[1:]]
    run_app(task, "generate", validate)


if __name__ == "__main__":
    main()
