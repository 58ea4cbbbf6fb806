"""Fine-tuning to a longer context (spec, section 4.3).

Three routes per variant and seed, all evaluated at the long context T1:
  pretrained  trained at T0, positions extended to T1, no further training
  finetuned   the same, then trained at T1 for a fraction of the pretraining steps
  scratch     trained at T1 from the start, for the same total number of steps
Evaluations: validation loss overall and by position bucket, passkey retrieval by depth and
length (greedy decoding through the fast inference path), and each route's cost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from omegaconf import DictConfig, OmegaConf

from inattn.data.build import build_data
from inattn.experiments.evaluate import buckets, position_losses
from inattn.experiments.sweep import run_sweep
from inattn.experiments.writeup import write_report
from inattn.inference.generate import generate
from inattn.passkey import PasskeyTable, passkey_accuracy, plot_passkey
from inattn.positions import extend_context
from inattn.pretrained import load_model
from inattn.report import markdown_table

ROUTES = ("pretrained", "finetuned", "scratch")
SUBDIR = "hydra.sweep.subdir=${model.arch}_seed${seed}"  # so stages can find each other's runs


def stages(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The three training sweeps: their context, steps and extra overrides."""
    p = cfg.preset.finetune
    ft_steps = max(1, round(p.pretrain_steps * p.finetune_fraction))
    runs = Path(cfg.runs_dir) / "finetune"
    init = f"{runs / 'pretrain'}/${{model.arch}}_seed${{seed}}/checkpoints/last.ckpt"
    return {
        "pretrain": {"T": p.T0, "steps": p.pretrain_steps, "extra": []},
        "finetune": {
            "T": p.T1,
            "steps": ft_steps,
            "extra": [f"init_from={init}", f"init_extension={p.extension}"],
        },
        "scratch": {"T": p.T1, "steps": p.pretrain_steps + ft_steps, "extra": []},
    }


def plan_text(cfg: DictConfig) -> str:
    p = cfg.preset.finetune
    lines = [
        f"size {p.size}, positions {p.position} (extension: {p.extension}), "
        f"T0={p.T0} -> T1={p.T1}, seeds {list(cfg.seeds or p.seeds)}"
    ]
    for name, st in stages(cfg).items():
        lines.append(f"- {name}: {st['steps']} steps at context {st['T']}")
    return "\n".join(lines)


def run(cfg: DictConfig, launcher: str | None) -> Path | None:
    started = time.perf_counter()
    print(plan_text(cfg), flush=True)
    if cfg.dry_run:
        return None
    p = cfg.preset.finetune
    seeds = list(cfg.seeds or p.seeds)
    runs_dir = Path(cfg.runs_dir) / "finetune"
    metrics: dict[str, list[dict]] = {}
    for name, st in stages(cfg).items():
        metrics[name] = run_sweep(
            runs_dir / name,
            {"arch": ["dense", "inattn"], "seed": seeds},
            common=[
                *cfg.preset.train,
                f"size={p.size}",
                f"position={p.position}",
                f"context_length={st['T']}",
                f"trainer.max_steps={st['steps']}",
                "group=finetune",
                SUBDIR,
                *st["extra"],
            ],
            launcher=launcher,
            root=Path(cfg.paths.root),
        )
    results = evaluate_all(cfg, runs_dir, seeds, metrics)
    out = Path(cfg.report_dir) / "finetune"
    return write(cfg, results, out, started)


def _val_blocks(run_dir: Path, T: int, cache: str) -> torch.Tensor:
    """Validation blocks at context T, from the data and tokenizer the run was trained on."""
    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    data = build_data(
        OmegaConf.to_container(run_cfg.data), OmegaConf.to_container(run_cfg.tokenizer), T, cache
    )
    return data.val


def evaluate_all(
    cfg: DictConfig, runs_dir: Path, seeds: list[int], metrics: dict[str, list[dict]]
) -> list[dict[str, Any]]:
    """Loss by position and passkey accuracy at T1 for every route, arch and seed."""
    p = cfg.preset.finetune
    cost = {(m["arch"], m["seed"], stage): m for stage, ms in metrics.items() for m in ms}
    results = []
    for arch in ("dense", "inattn"):
        for seed in seeds:
            for route in ROUTES:
                stage = {"pretrained": "pretrain", "finetuned": "finetune"}.get(route, route)
                run_dir = runs_dir / stage / f"{arch}_seed{seed}"
                loaded = load_model(run_dir / "checkpoints" / "last.ckpt")
                model = loaded.model
                if model.cfg.context_length < p.T1:
                    extend_context(model, p.T1, p.extension)
                blocks = _val_blocks(run_dir, p.T1, cfg.paths.cache)
                losses = position_losses(model, blocks)
                table = passkey_accuracy(
                    _greedy(model),
                    loaded.tokenizer,
                    list(p.passkey.lengths),
                    list(p.passkey.depths),
                    trials=p.passkey.trials,
                    seed=seed,
                )
                routes_cost = [cost.get((arch, seed, "pretrain"))] if route != "scratch" else []
                if route == "finetuned":
                    routes_cost.append(cost.get((arch, seed, "finetune")))
                if route == "scratch":
                    routes_cost.append(cost.get((arch, seed, "scratch")))
                results.append(
                    {
                        "arch": arch,
                        "seed": seed,
                        "route": route,
                        "loss": float(losses.mean()),
                        "position_losses": losses.tolist(),
                        "passkey": table.accuracy,
                        "passkey_mean": table.mean(),
                        "tokens": sum(c["tokens_seen"] for c in routes_cost if c),
                        "seconds": sum(c["wall_seconds"] for c in routes_cost if c),
                    }
                )
    return results


def _greedy(model):
    def decode(prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        idx = torch.tensor([prompt_ids])
        out = generate(model, idx, max_new_tokens, temperature=0.0)
        return out[0, len(prompt_ids) :].tolist()

    return decode


def mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def write(cfg: DictConfig, results: list[dict], out: Path, started: float) -> Path:
    p = cfg.preset.finetune
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    rows, summary = [], {}
    for arch in ("dense", "inattn"):
        for route in ROUTES:
            rs = [r for r in results if r["arch"] == arch and r["route"] == route]
            loss, std = mean_std([r["loss"] for r in rs])
            bucket_means = [
                mean_std(
                    [
                        buckets(torch.tensor(r["position_losses"]), p.position_buckets)[i][2]
                        for r in rs
                    ]
                )[0]
                for i in range(p.position_buckets)
            ]
            summary[(arch, route)] = (loss, std, bucket_means)
            rows.append(
                {
                    "arch": arch,
                    "route": route,
                    f"loss at T1={p.T1}": f"{loss:.4f} ± {std:.4f}"
                    if len(rs) > 1
                    else f"{loss:.4f} (n=1)",
                    "first bucket": f"{bucket_means[0]:.3f}",
                    "last bucket": f"{bucket_means[-1]:.3f}",
                    "passkey": f"{sum(r['passkey_mean'] for r in rs) / len(rs):.0%}",
                    "tokens": f"{sum(r['tokens'] for r in rs) / len(rs):,.0f}",
                    "seconds": f"{sum(r['seconds'] for r in rs) / len(rs):.0f}",
                }
            )
    plot_position_losses(summary, p, out / "loss_vs_position.png")
    for arch in ("dense", "inattn"):
        rs = [r for r in results if r["arch"] == arch and r["route"] == "finetuned"]
        table = PasskeyTable(
            list(p.passkey.lengths), list(p.passkey.depths), p.passkey.trials, rs[0]["passkey"]
        )
        plot_passkey(table, out / f"passkey_{arch}_finetuned.png", f"passkey, {arch}, fine-tuned")
    verdicts = []
    for arch in ("dense", "inattn"):
        pre, ft, sc = (summary[(arch, r)][0] for r in ROUTES)
        gain = pre - ft
        verdicts.append(
            f"- {arch}: fine-tuning {'helped' if gain > 0 else 'did not help'} at T1 "
            f"({pre:.4f} -> {ft:.4f}, {gain:+.4f}); fine-tuned vs scratch at equal steps: "
            f"{ft:.4f} vs {sc:.4f} ({'fine-tuned better' if ft < sc else 'scratch better'})"
        )
    ina_gain = summary[("inattn", "pretrained")][0] - summary[("inattn", "finetuned")][0]
    verdicts.append(
        f"- The paper's claim (a pretrained InAttention model extends to a longer context by "
        f"brief fine-tuning) **{'held' if ina_gain > 0 else 'did not hold'}** here."
    )
    body = "\n\n".join(
        [
            "## Claim\nA model pretrained at a short context T0 can be fine-tuned to a longer "
            "context T1 cheaply; InAttention's linear-memory inference then serves the long "
            "context.",
            "## Plan\n" + plan_text(cfg),
            "## Results at T1 (mean ± std over seeds)\n" + markdown_table(rows, list(rows[0])),
            "## Verdict\n" + "\n".join(verdicts),
            "![loss vs position](loss_vs_position.png)",
            "![passkey dense](passkey_dense_finetuned.png) ![passkey inattn]"
            "(passkey_inattn_finetuned.png)",
            "Passkey accuracy is by exact recall of a 5-digit key through greedy decoding "
            "(InAttention: the `state` cache; dense: the K/V cache).",
        ]
    )
    return write_report(
        out / "report.md",
        "Fine-tuning to a longer context",
        body,
        started,
        tables={"results": rows},
    )


def plot_position_losses(summary: dict, p: DictConfig, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    edges = [int(round(i * p.T1 / p.position_buckets)) for i in range(p.position_buckets)]
    for ax, arch in zip(axes, ("dense", "inattn"), strict=True):
        for route in ROUTES:
            ax.plot(edges, summary[(arch, route)][2], marker="o", label=route)
        ax.axvline(p.T0, color="k", linestyle=":", label=f"T0={p.T0}")
        ax.set_title(arch)
        ax.set_xlabel("position (bucket start)")
        ax.legend()
    axes[0].set_ylabel(f"validation loss at T1={p.T1}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
