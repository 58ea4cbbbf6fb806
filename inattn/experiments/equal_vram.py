"""Equal memory (spec, section 4.2): the biggest model of each variant that fits one budget.

For a budget and a deployment context T, every size of the ladder is measured (inference memory
for next-token logits at T, batch 1, weights included, on fake tensors) in each variant's mode:
InAttention `state`, dense `kvcache` (dense's best) and dense `naive` (the paper's baseline).
The largest size that fits is chosen per mode. Then the whole ladder is trained in both variants
with several seeds (one sweep), which gives both the chosen pair and loss vs parameters.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from omegaconf import DictConfig

from inattn.config import CONF_DIR
from inattn.errors import ConfigError
from inattn.experiments.budget import Candidate, Choice, parse_budget, pick_largest
from inattn.experiments.memory import inference_peak
from inattn.experiments.sweep import run_sweep
from inattn.experiments.writeup import write_report
from inattn.model import GPT, GPTConfig
from inattn.report import markdown_table, plot_metric_vs_params, summarise

MiB = 2**20
# (label, arch, inference mode): the chosen models and the mode their memory is measured in
ROUTES = [
    ("InAttention (state)", "inattn", "state"),
    ("dense (K/V cache)", "dense", "kvcache"),
    ("dense (naive, paper baseline)", "dense", "naive"),
]


def ladder_configs(sizes: list[str], vocab_size: int, context_length: int) -> dict[str, dict]:
    """Shapes of the named sizes, read from conf/size/ so sizes are defined once."""
    from omegaconf import OmegaConf

    out = {}
    for name in sizes:
        node = OmegaConf.load(CONF_DIR / "size" / f"{name}.yaml")
        out[name] = dict(
            n_layer=node.n_layer,
            n_head=node.n_head,
            d_model=node.d_model,
            vocab_size=vocab_size,
            context_length=context_length,
        )
    return out


def plan(cfg: DictConfig) -> dict[str, Any]:
    """Measure every size in every route and pick the largest that fits the budget."""
    p = cfg.preset.equal_vram
    budget = parse_budget(cfg.budget if cfg.budget is not None else p.budget)
    T = int(cfg.context_length if cfg.context_length is not None else p.context_length)
    vocab = _vocab_size(cfg)
    shapes = ladder_configs(list(p.ladder), vocab, T)
    train_T = int(p.train_context_length)  # parameters as trained (position table included)
    params = {
        size: GPT(GPTConfig(arch="dense", **{**s, "context_length": train_T})).num_params()
        for size, s in shapes.items()
    }
    memory: dict[tuple[str, str], int] = {}
    choices: dict[str, Choice] = {}
    for label, arch, mode in ROUTES:
        ladder = []
        for size, shape in shapes.items():
            gpt = GPTConfig(arch=arch, **shape)
            ladder.append(Candidate(size, gpt, params[size]))

        def measured(c: Candidate, mode: str = mode) -> int:
            key = (c.size, mode)
            if key not in memory:
                memory[key] = inference_peak(c.cfg, T, mode, p.dtype)
            return memory[key]

        try:
            choices[label] = pick_largest(ladder, budget, measured, label)
        except ConfigError:
            if mode != "naive":  # the paper's baseline is reported beside, not required
                raise
            choices[label] = None
    return {
        "budget": budget,
        "context_length": T,
        "dtype": p.dtype,
        "vocab_size": vocab,
        "memory": memory,
        "choices": choices,
        "params": params,
        "seeds": list(cfg.seeds or p.seeds),
        "ladder": list(p.ladder),
        "train_context_length": p.train_context_length,
        "max_steps": p.max_steps,
    }


def _vocab_size(cfg: DictConfig) -> int:
    for override in cfg.preset.train:
        if str(override).startswith("tokenizer.vocab_size="):
            return int(str(override).split("=", 1)[1])
    return 4096


def plan_text(pl: dict[str, Any]) -> str:
    rows = [
        [size, f"{pl['params'][size]:,}"]
        + [f"{pl['memory'][(size, mode)] / MiB:.1f}" for _, _, mode in ROUTES]
        for size in pl["ladder"]
    ]
    header = ["size", "params"] + [f"{label} MiB" for label, _, _ in ROUTES]
    lines = [
        f"Budget {pl['budget'] / MiB:.1f} MiB at context {pl['context_length']} "
        f"({pl['dtype']}, batch 1, weights included; measured on fake tensors).",
        "",
        markdown_table([dict(zip(header, r, strict=True)) for r in rows], header),
        "",
        "Chosen (largest that fits):",
    ]
    for label, choice in pl["choices"].items():
        if choice is None:
            lines.append(f"- {label}: no size fits")
            continue
        lines.append(
            f"- {label}: **{choice.size}** ({choice.params:,} params, "
            f"{choice.memory_bytes / MiB:.1f} MiB)"
        )
    lines.append(
        f"\nTraining: sizes {pl['ladder']} x arch [dense, inattn] x seeds {pl['seeds']}, "
        f"{pl['max_steps']} steps at context {pl['train_context_length']}."
    )
    return "\n".join(lines)


def run(cfg: DictConfig, launcher: str | None) -> Path | None:
    started = time.perf_counter()
    pl = plan(cfg)
    print(plan_text(pl), flush=True)
    if cfg.dry_run:
        return None
    runs = run_sweep(
        Path(cfg.runs_dir) / "equal_vram",
        {"arch": ["dense", "inattn"], "size": pl["ladder"], "seed": pl["seeds"]},
        common=[
            *cfg.preset.train,
            f"context_length={pl['train_context_length']}",
            f"trainer.max_steps={pl['max_steps']}",
            "group=equal_vram",
        ],
        launcher=launcher,
        root=Path(cfg.paths.root),
    )
    out = Path(cfg.report_dir) / "equal_vram"
    return write(pl, runs, out, started)


def write(pl: dict[str, Any], runs: list[dict], out: Path, started: float) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    grid = summarise(runs, by=("arch", "size"), metric="val_loss")
    stats = {(r["arch"], r["size"]): r for r in grid}
    for r in grid:
        mode = "state" if r["arch"] == "inattn" else "kvcache"
        r["memory_mib"] = pl["memory"].get((r["size"], mode), float("nan")) / MiB
    plot_metric_vs_params(grid, out / "loss_vs_params.png", by=("arch", "size"))
    plot_loss_vs_memory(grid, pl["budget"], out / "loss_vs_memory.png")

    chosen_rows, verdicts = [], []
    for label, arch, _ in ROUTES:
        choice = pl["choices"][label]
        if choice is None:
            chosen_rows.append(
                {
                    "route": label,
                    "size": "none fits",
                    "params": "",
                    "memory MiB": "",
                    "val loss": "",
                }
            )
            continue
        s = stats.get((arch, choice.size))
        chosen_rows.append(
            {
                "route": label,
                "size": choice.size,
                "params": f"{choice.params:,}",
                "memory MiB": f"{choice.memory_bytes / MiB:.1f}",
                "val loss": "n/a"
                if s is None
                else f"{s['mean']:.4f} ± {s['std']:.4f} (n={s['n']})",
            }
        )
    ina = stats.get(("inattn", pl["choices"][ROUTES[0][0]].size))
    for label, arch, _ in ROUTES[1:]:
        choice = pl["choices"][label]
        dense = stats.get((arch, choice.size)) if choice else None
        if ina and dense:
            verdicts.append(verdict(ina, dense, label))
        elif choice is None:
            verdicts.append(f"vs {label}: no dense size fits the budget at all")
    same_size = [
        (size, stats[("inattn", size)]["mean"] - stats[("dense", size)]["mean"])
        for size in pl["ladder"]
        if ("inattn", size) in stats and ("dense", size) in stats
    ]
    gaps = ", ".join(f"{s}: {g:+.4f}" for s, g in same_size)
    body = "\n\n".join(
        [
            "## Claim\nAt equal inference memory, the bigger InAttention model that fits beats the "
            "smaller dense model that fits; at equal size, InAttention is slightly worse.",
            "## Plan\n" + plan_text(pl),
            "## Chosen models\n" + markdown_table(chosen_rows, list(chosen_rows[0])),
            "## Verdict\n" + "\n".join(f"- {v}" for v in verdicts),
            "## Full grid (validation loss, mean ± std over seeds)\n"
            + markdown_table(
                [
                    {
                        "arch": r["arch"],
                        "size": r["size"],
                        "params": f"{r['params']:,}",
                        "val loss": f"{r['mean']:.4f} ± {r['std']:.4f}",
                        "n": r["n"],
                        "inference MiB": f"{r['memory_mib']:.1f}",
                    }
                    for r in grid
                ],
                ["arch", "size", "params", "val loss", "n", "inference MiB"],
            ),
            f"Equal size, InAttention minus dense validation loss: {gaps}.",
            "![loss vs params](loss_vs_params.png)\n\n![loss vs memory](loss_vs_memory.png)",
        ]
    )
    return write_report(
        out / "report.md",
        "Equal memory: InAttention vs dense",
        body,
        started,
        tables={"chosen": chosen_rows, "grid": grid},
    )


def verdict(ina: dict, dense: dict, label: str) -> str:
    diff = dense["mean"] - ina["mean"]
    spread = max((ina["std"] ** 2 + dense["std"] ** 2) ** 0.5, 1e-12)
    held = "held" if diff > 0 else "did not hold"
    return (
        f"vs {label}: InAttention {ina['size']} {ina['mean']:.4f} against dense {dense['size']} "
        f"{dense['mean']:.4f}: the claim **{held}** (margin {diff:+.4f} nats, "
        f"{diff / spread:+.1f} combined std)"
    )


def plot_loss_vs_memory(grid: list[dict], budget: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for arch in sorted({r["arch"] for r in grid}):
        rows = sorted((r for r in grid if r["arch"] == arch), key=lambda r: r["memory_mib"])
        ax.errorbar(
            [r["memory_mib"] for r in rows],
            [r["mean"] for r in rows],
            yerr=[r["std"] for r in rows],
            marker="o",
            capsize=3,
            label=arch,
        )
        for r in rows:
            ax.annotate(r["size"], (r["memory_mib"], r["mean"]), fontsize=7)
    ax.axvline(budget / MiB, color="k", linestyle="--", label="budget")
    ax.set_xscale("log")
    ax.set_xlabel("inference memory at the deployment context (MiB)")
    ax.set_ylabel("validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
