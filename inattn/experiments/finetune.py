"""Fine-tuning to a longer context (spec, section 4.3), with the controls that make it decisive.

Per variant and seed, every model is evaluated at the long context T1 on the same blocks:

    pretrained      trained P steps at T0, positions extended to T1, nothing more
    finetuned       pretrained, then F = fraction x P steps at T1        (the paper's route)
    more-T0         pretrained, then F more steps at T0, extended         (control i: is it the
                                                                           longer context, or
                                                                           just more training?)
    scratch-tokens  trained at T1 from scratch on the finetuned route's total tokens  (control ii)
    scratch-steps   trained at T1 from scratch for P + F steps                        (control iii)

Claim (d), for InAttention, pre-registered: fine-tuning at T1 for F steps is cheap and effective:
  d1  it beats the same extra steps at T0 (difference: loss(more-T0) - loss(finetuned) > 0)
  d2  it is at least as good as scratch at T1 on equal total tokens
      (difference: loss(scratch-tokens) - loss(finetuned) > 0)
(d) is `held` if d1 and d2 are held, `not held` if either is not held, else `inconclusive`.
Beside it: the deficit beyond T0 (loss at positions T0..T1-1 minus positions T0/2..T0-1) before
and after, a copy probe at distances between T0 and T1, passkey retrieval, and every route's cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from inattn.checkpoints.pretrained import load_model
from inattn.compute import training_flops
from inattn.context_extension import extend_context
from inattn.data.tokenizer import EOT
from inattn.experiments.copy_probe import copy_probe
from inattn.experiments.evaluate import eval_sets, evaluate_at, log2_buckets
from inattn.experiments.frame import begin, conclude, preset_design, read_back, train_stage
from inattn.inference.generate import generate
from inattn.passkey import passkey_accuracy
from inattn.reporting.figures import new_figure, save_figure
from inattn.reporting.markdown import grid
from inattn.verdicts import combine, mean, paired_by_seed, verdict

NAME = "finetune"
ROUTES = ("pretrained", "finetuned", "more-T0", "scratch-tokens", "scratch-steps")


def stages(design: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each training sweep: its context, steps, and where it starts from."""
    P, T0, T1 = design["pretrain_steps"], design["T0"], design["T1"]
    F = max(1, round(P * design["finetune_fraction"]))
    return {
        "pretrain": {"T": T0, "steps": P, "init": False},
        "finetune": {"T": T1, "steps": F, "init": True},
        "more-T0": {"T": T0, "steps": F, "init": True},
        "scratch-tokens": {"T": T1, "steps": round((P * T0 + F * T1) / T1), "init": False},
        "scratch-steps": {"T": T1, "steps": P + F, "init": False},
    }


def plan_text(design: Mapping[str, Any]) -> str:
    d = design
    st = stages(d)
    lines = [
        "## Pre-registered design (from the preset, fixed before any training)",
        "",
        f"- variants {d['variants']}, size {d['size']}, `{d['position']}` positions "
        f"(extended by `{d['extension']}`), T0 = {d['T0']} -> T1 = {d['T1']}, seeds {d['seeds']}",
        f'- "cheap": fine-tuning at T1 for {d["finetune_fraction"]:.0%} of the pretraining '
        f"steps ({st['finetune']['steps']} of {d['pretrain_steps']})",
        f"- evaluation at T1 on {d['eval_blocks']} fixed validation blocks; copy probe: spans of "
        f"{d['probe']['span']} random tokens repeated at distances {d['probe']['distances']} "
        f"({d['probe']['trials']} trials each); passkey lengths {d['passkey']['lengths']}",
        f"- training overrides: `{' '.join(d['train'])}`",
        "",
        "Stages (each for every variant and seed):",
    ]
    for name, s in st.items():
        start = "from the pretrained model" if s["init"] else "from scratch"
        lines.append(f"- {name}: {s['steps']} steps at context {s['T']}, {start}")
    return "\n".join(lines)


def run(cfg: DictConfig, launcher: str | None) -> Path | None:
    design = preset_design(cfg, NAME)
    started = begin(cfg, NAME, design, plan_text(design))
    if started is None:
        return None
    grid = {"arch": design["variants"], "seed": design["seeds"]}
    init = f"{started.runs_dir / 'pretrain'}/${{model.variant}}_seed${{seed}}/checkpoints/last.ckpt"
    metrics: dict[str, list[dict]] = {}
    for name, st in stages(design).items():
        extra = [f"init_from={init}", f"init_extension={design['extension']}"] if st["init"] else []
        metrics[name] = train_stage(
            started, name, grid, st["T"], st["steps"], *extra,
            launcher=launcher, root=Path(cfg.paths.root),
        )  # fmt: skip
    rows, positions = evaluate_all(design, metrics, cfg.paths.cache)
    return conclude(started, rows, render, positions)


# ----------------------------------------------------------------------------- evaluation

STAGE_OF = {"pretrained": "pretrain", "finetuned": "finetune"}


def evaluate_all(
    design: Mapping[str, Any], metrics: Mapping[str, list[dict]], cache: str | Path
) -> tuple[list[dict], list[dict]]:
    """One row per (route, variant, seed): loss at T1, by position, probes, cost."""
    by = {
        (stage, m.get("variant") or m["arch"], m["seed"]): m
        for stage, ms in metrics.items()
        for m in ms
    }
    rows, positions, blocks = [], [], None
    for variant in design["variants"]:
        for seed in design["seeds"]:
            for route in ROUTES:
                m = by[(STAGE_OF.get(route, route), variant, seed)]
                loaded = load_model(Path(m["run_dir"]) / "checkpoints" / "last.ckpt")
                if blocks is None:
                    blocks, windows = eval_sets(m["run_dir"], design["T1"], design, cache)
                row, losses = evaluate_one(design, loaded, blocks, windows, seed)
                history = (
                    [by[("pretrain", variant, seed)]] if route in ("finetuned", "more-T0") else []
                )
                cost = [*history, m]
                key = {"route": route, "variant": variant, "size": design["size"], "seed": seed}
                rows.append(
                    {
                        "experiment": NAME,
                        **key,
                        "arch": m["arch"],
                        "params": m["params"],
                        "tokens": sum(c["tokens_seen"] for c in cost),
                        "flops": sum(
                            training_flops(loaded.model, c["context_length"], c["tokens_seen"])
                            for c in cost
                        ),
                        "train_context": m["context_length"],
                        "eval_context": design["T1"],
                        "memory_bytes": None,
                        **row,
                        "steps": sum(c["steps"] for c in cost),
                        "wall_seconds": sum(c["wall_seconds"] for c in cost),
                    }
                )
                positions += [
                    {**key, "first": a, "last": b, "loss": v} for a, b, v in log2_buckets(losses)
                ]
    return rows, positions


def evaluate_one(
    design, loaded, blocks: torch.Tensor, windows: torch.Tensor, seed: int
) -> tuple[dict, torch.Tensor]:
    """Loss at T1 (overall, around T0), the copy probe and passkey of one model."""
    T0, T1 = design["T0"], design["T1"]
    model = loaded.model
    if model.cfg.context_length < T1:
        extend_context(model, T1, design["extension"])
    scores, losses = evaluate_at(model, blocks, windows)
    row = {
        **scores,
        "loss_below_T0": float(losses[T0 // 2 : T0].mean()),
        "loss_beyond_T0": float(losses[T0:].mean()),
    }
    row["deficit"] = row["loss_beyond_T0"] - row["loss_below_T0"]
    eot = loaded.tokenizer.token_to_id(design.get("eot_token", EOT))
    symbols = [i for i in range(model.cfg.vocab_size) if i != eot]
    probe = design["probe"]
    for distance in probe["distances"]:
        p = copy_probe(model, blocks, probe["span"], distance, probe["trials"], symbols, seed=0)
        row |= {f"copy_first_{distance}": p["first"], f"copy_second_{distance}": p["second"],
                f"copy_gain_{distance}": p["gain"]}  # fmt: skip
    pk = design["passkey"]
    if pk["trials"] > 0:
        table = passkey_accuracy(_greedy(model), loaded.tokenizer, pk["lengths"], pk["depths"],
                                 trials=pk["trials"], seed=seed)  # fmt: skip
        row["passkey"] = table.mean()
    return row, losses


def _greedy(model):
    def decode(prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        out = generate(model, torch.tensor([prompt_ids]), max_new_tokens, temperature=0.0)
        return out[0, len(prompt_ids) :].tolist()

    return decode


# ----------------------------------------------------------------------------- verdicts


def by_seed(rows: Sequence[Mapping], route: str, variant: str, key: str) -> dict[int, float]:
    return {int(r["seed"]): r[key] for r in rows if r["route"] == route and r["variant"] == variant}


def verdicts(design: Mapping[str, Any], rows: Sequence[Mapping]) -> dict[str, dict[str, Any]]:
    """Per variant: d1, d2, (d), and whether the deficit beyond T0 closes. Pure."""
    out = {}
    for variant in design["variants"]:
        loss = {route: by_seed(rows, route, variant, "val_loss") for route in ROUTES}
        d1 = paired_by_seed(loss["more-T0"], loss["finetuned"])
        d2 = paired_by_seed(loss["scratch-tokens"], loss["finetuned"])
        steps = paired_by_seed(loss["scratch-steps"], loss["finetuned"])
        deficit = paired_by_seed(
            by_seed(rows, "pretrained", variant, "deficit"),
            by_seed(rows, "finetuned", variant, "deficit"),
        )
        out[variant] = {
            "d1": (d1, verdict(d1)),
            "d2": (d2, verdict(d2)),
            "d": combine([verdict(d1), verdict(d2)]),
            "vs_scratch_steps": (steps, verdict(steps)),
            "deficit_closes": (deficit, verdict(deficit)),
        }
    return out


# ----------------------------------------------------------------------------- render


def render(folder: Path) -> Path:
    """report.md and plots from design.json, runs.csv and positions.csv alone."""
    written = read_back(folder)
    design, rows = written.design, written.rows
    v = verdicts(design, rows)
    plot_positions(design, written.positions, written.folder / "loss_by_position.png")
    sections = [
        "## Claim\n(d) A model pretrained at a short context T0 is extended to a longer context "
        "T1 cheaply, by fine-tuning at T1 for a small fraction of the pretraining steps. "
        "Judged for InAttention (dense beside it), with the rule in the design below.",
        "## Verdicts\n" + verdict_text(v),
        plan_text(design),
        "## Results at T1 (mean over seeds)\n" + results_table(design, rows),
        "## Copy probe (loss on the first and second copy of a random span; gain = first - "
        "second)\n" + probe_table(design, rows),
        "![loss by position](loss_by_position.png)",
    ]
    return written.report("Fine-tuning to a longer context", sections)


def verdict_text(v: Mapping[str, Any]) -> str:
    lines = []
    for variant, c in v.items():
        lines += [
            f"- {variant}: (d) **{c['d']}**",
            f"  - d1, fine-tuning at T1 beats the same steps at T0: {c['d1'][0].text()} -> "
            f"{c['d1'][1]}",
            f"  - d2, at least as good as scratch at T1 on equal tokens: {c['d2'][0].text()} -> "
            f"{c['d2'][1]}",
            f"  - beside: against scratch at T1 for equal steps (more tokens): "
            f"{c['vs_scratch_steps'][0].text()} -> {c['vs_scratch_steps'][1]}; the deficit "
            f"beyond T0 shrinks (before - after): {c['deficit_closes'][0].text()} -> "
            f"{c['deficit_closes'][1]}",
        ]
    return "\n".join(lines)


def results_table(design: Mapping[str, Any], rows: Sequence[Mapping]) -> str:
    head = ["variant", "route", "loss at T1", "below T0", "beyond T0", "deficit", "context gain",
            "passkey", "tokens", "TFLOP", "steps"]  # fmt: skip
    body = []
    for variant in design["variants"]:
        for route in ROUTES:
            rs = [r for r in rows if r["variant"] == variant and r["route"] == route]
            m = {k: mean([r.get(k) for r in rs]) for k in (
                "val_loss", "loss_below_T0", "loss_beyond_T0", "deficit", "context_gain",
                "passkey", "tokens", "flops", "steps")}  # fmt: skip
            passkey = "-" if m["passkey"] != m["passkey"] else format(m["passkey"], ".0%")
            body.append(
                [variant, route, f"{m['val_loss']:.4f}", f"{m['loss_below_T0']:.4f}",
                 f"{m['loss_beyond_T0']:.4f}", f"{m['deficit']:+.4f}", f"{m['context_gain']:.1%}",
                 passkey, f"{m['tokens']:,.0f}", f"{m['flops'] / 1e12:.2f}", f"{m['steps']:.0f}"]
            )  # fmt: skip
    return grid(head, body)


def probe_table(design: Mapping[str, Any], rows: Sequence[Mapping]) -> str:
    distances = design["probe"]["distances"]
    head = ["variant", "route", *(f"d={d}: first / second / gain" for d in distances)]
    body = []
    for variant in design["variants"]:
        for route in ROUTES:
            rs = [r for r in rows if r["variant"] == variant and r["route"] == route]
            cells = [
                f"{mean([r[f'copy_first_{d}'] for r in rs]):.3f} / "
                f"{mean([r[f'copy_second_{d}'] for r in rs]):.3f} / "
                f"{mean([r[f'copy_gain_{d}'] for r in rs]):+.3f}"
                for d in distances
            ]
            body.append([variant, route, *cells])
    return grid(head, body)


def plot_positions(design: Mapping[str, Any], positions: Sequence[Mapping], path: Path) -> None:
    variants = design["variants"]
    fig, axes = new_figure(5.0 * len(variants), 4.2, panels=len(variants))
    for ax, variant in zip(axes, variants, strict=True):
        for route in ROUTES:
            pts: dict[int, list[float]] = {}
            for p in positions:
                if p["variant"] == variant and p["route"] == route:
                    pts.setdefault(p["first"], []).append(p["loss"])
            xs = sorted(pts)
            ax.plot([x + 1 for x in xs], [mean(pts[x]) for x in xs], marker="o", label=route)
        ax.axvline(design["T0"], color="k", linestyle=":", label=f"T0 = {design['T0']}")
        ax.set_xscale("log", base=2)
        ax.set_title(variant)
        ax.set_xlabel("position (bucket start + 1)")
    axes[0].set_ylabel(f"validation loss at T1 = {design['T1']}")
    save_figure(fig, axes, path)
