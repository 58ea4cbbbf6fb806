"""Uptraining a pretrained dense model into InAttention, against training InAttention from scratch.

A dense GPT's weights are exactly an InAttention model's (only where each layer's keys and values
are read from changes), so a trained dense model can be converted and fine-tuned. Per seed:

    source       the dense model, trained here (so its pretraining tokens are known exactly)
    converted    the source's weights read as InAttention, before any fine-tuning
    uptrain-f    converted, then fine-tuned on a fraction f of the source's pretraining tokens
    scratch-f    InAttention trained from scratch on the same total tokens (source + fine-tune)

Claim, pre-registered: uptraining is the cheaper route to an InAttention model; at every
fraction, loss(scratch-f) - loss(uptrain-f) > 0 (paired by seed). `held` if held at every
fraction, `not held` if not held at any, else `inconclusive`. Beside it: the share of the gap
between InAttention from scratch and the dense source that uptraining recovers,
(loss(scratch-f) - loss(uptrain-f)) / (loss(scratch-f) - loss(source)), against the compute spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from inattn.checkpoints.init_from import convert_arch
from inattn.checkpoints.pretrained import load_model
from inattn.compute import training_flops
from inattn.experiments.evaluate import eval_sets, evaluate_at
from inattn.experiments.frame import begin, conclude, preset_design, read_back, train_stage
from inattn.reporting.figures import new_figure, save_figure
from inattn.reporting.markdown import grid
from inattn.verdicts import combine, mean, paired_by_seed, verdict

NAME = "uptrain"


def fraction_steps(design: Mapping[str, Any], fraction: float) -> int:
    return max(1, round(design["source_steps"] * fraction))


def plan_text(design: Mapping[str, Any]) -> str:
    d = design
    lines = [
        "## Pre-registered design (from the preset, fixed before any training)",
        "",
        f"- source: dense {d['size']} trained here for {d['source_steps']} steps at context "
        f"{d['context_length']} (`{d['position']}` positions), seeds {d['seeds']}",
        f"- fractions of the source's pretraining steps (= tokens) spent on fine-tuning: "
        f"{d['fractions']}; scratch InAttention gets the source's steps plus the same fraction",
        f"- evaluation on {d['eval_blocks']} fixed validation blocks of {d['context_length']} "
        "tokens, the same for every model",
        f"- training overrides: `{' '.join(d['train'])}`",
        "",
        "Stages (each for every seed):",
        f"- source: dense, {d['source_steps']} steps from scratch",
    ]
    for f in d["fractions"]:
        n = fraction_steps(d, f)
        lines.append(
            f"- f = {f:g}: uptrain {n} steps from the source; scratch {d['source_steps'] + n} steps"
        )
    return "\n".join(lines)


def run(cfg: DictConfig, launcher: str | None) -> Path | None:
    design = preset_design(cfg, NAME)
    started = begin(cfg, NAME, design, plan_text(design))
    if started is None:
        return None

    def sweep(stage: str, arch: str, steps: int, *extra: str) -> list[dict]:
        grid = {"arch": arch, "seed": design["seeds"]}
        T, root = design["context_length"], Path(cfg.paths.root)
        return train_stage(started, stage, grid, T, steps, *extra, launcher=launcher, root=root)

    metrics = {"source": sweep("source", "dense", design["source_steps"])}
    source = f"{started.runs_dir / 'source'}/dense_seed${{seed}}/checkpoints/last.ckpt"
    for f in design["fractions"]:
        n = fraction_steps(design, f)
        metrics[f"uptrain-{f:g}"] = sweep(f"uptrain-{f:g}", "inattn", n, f"init_from={source}")
        metrics[f"scratch-{f:g}"] = sweep(f"scratch-{f:g}", "inattn", design["source_steps"] + n)
    rows = evaluate_all(design, metrics, cfg.paths.cache)
    return conclude(started, rows, render)


def evaluate_all(
    design: Mapping[str, Any], metrics: Mapping[str, list[dict]], cache: str | Path
) -> list[dict[str, Any]]:
    """One row per (route, seed): loss on the fixed blocks, and the route's total cost."""
    by = {(stage, m["seed"]): m for stage, ms in metrics.items() for m in ms}
    rows, blocks, windows = [], None, None
    for seed in design["seeds"]:
        source = by[("source", seed)]
        routes = [("source", source, [source]), ("converted", source, [source])]
        for f in design["fractions"]:
            up = by[(f"uptrain-{f:g}", seed)]
            routes += [(f"uptrain-{f:g}", up, [source, up])]
            routes += [
                (f"scratch-{f:g}", by[(f"scratch-{f:g}", seed)], [by[(f"scratch-{f:g}", seed)]])
            ]
        for route, m, cost in routes:
            loaded = load_model(Path(m["run_dir"]) / "checkpoints" / "last.ckpt")
            if route == "converted":
                loaded = convert_arch(loaded, "inattn")
            if blocks is None:
                blocks, windows = eval_sets(m["run_dir"], design["context_length"], design, cache)
            scores, _ = evaluate_at(loaded.model, blocks, windows)
            tokens = sum(c["tokens_seen"] for c in cost)
            rows.append(
                {
                    "experiment": NAME,
                    "route": route,
                    "arch": loaded.cfg.arch,
                    "variant": loaded.cfg.arch,
                    "size": design["size"],
                    "seed": seed,
                    "params": m["params"],
                    "tokens": tokens,
                    "flops": sum(
                        training_flops(loaded.model, c["context_length"], c["tokens_seen"])
                        for c in cost
                    ),
                    "train_context": m["context_length"],
                    "eval_context": design["context_length"],
                    "memory_bytes": None,
                    **scores,
                    "extra_tokens": tokens - source["tokens_seen"] if route != "source" else 0,
                    "steps": sum(c["steps"] for c in cost),
                }
            )
    return rows


# ----------------------------------------------------------------------------- verdicts


def loss_by_seed(rows: Sequence[Mapping], route: str) -> dict[int, float]:
    return {int(r["seed"]): r["val_loss"] for r in rows if r["route"] == route}


def verdicts(design: Mapping[str, Any], rows: Sequence[Mapping]) -> dict[str, Any]:
    """Per fraction: uptrain against scratch on equal tokens, and the share of the gap it
    recovers; a pure function of the rows."""
    source = loss_by_seed(rows, "source")
    out: dict[str, Any] = {"fractions": []}
    for f in design["fractions"]:
        up, scratch = loss_by_seed(rows, f"uptrain-{f:g}"), loss_by_seed(rows, f"scratch-{f:g}")
        p = paired_by_seed(scratch, up)
        gap = mean([scratch[s] - source[s] for s in scratch if s in source])
        out["fractions"].append(
            {
                "fraction": f,
                "paired": p,
                "word": verdict(p),
                "gap": gap,
                "recovered": p.mean / gap if gap else float("nan"),
                "uptrain": mean(list(up.values())),
                "scratch": mean(list(scratch.values())),
            }
        )
    out["source"] = mean(list(source.values()))
    out["word"] = combine([c["word"] for c in out["fractions"]])
    return out


# ----------------------------------------------------------------------------- render


def render(folder: Path) -> Path:
    """report.md and the plot from design.json and runs.csv alone."""
    written = read_back(folder)
    design, rows = written.design, written.rows
    v = verdicts(design, rows)
    plot(v, written.folder / "loss_vs_fraction.png")
    head = ["route", "loss (mean over seeds)", "tokens", "extra tokens", "TFLOP", "context gain"]
    body = []
    routes = dict.fromkeys(r["route"] for r in rows)
    for route in routes:
        rs = [r for r in rows if r["route"] == route]
        m = {k: mean([r[k] for r in rs]) for k in ("val_loss", "tokens", "extra_tokens", "flops",
                                                     "context_gain")}  # fmt: skip
        body.append(
            [route, f"{m['val_loss']:.4f}", f"{m['tokens']:,.0f}", f"{m['extra_tokens']:,.0f}",
             f"{m['flops'] / 1e12:.2f}", f"{m['context_gain']:.1%}"]
        )  # fmt: skip
    verdict_lines = [
        f"- Uptraining beats InAttention from scratch on equal tokens: **{v['word']}**"
    ]
    for c in v["fractions"]:
        verdict_lines.append(
            f"  - f = {c['fraction']:g}: scratch - uptrain {c['paired'].text()} -> {c['word']}; "
            f"share of the scratch-to-dense gap ({c['gap']:+.3f} nats) recovered: "
            f"{c['recovered']:.0%}"
        )
    sections = [
        "## Claim\nA pretrained dense model converts into InAttention (the same weights, keys and "
        "values now read from N(x0)) and recovers with a small fraction of its pretraining "
        "compute: cheaper than training InAttention from scratch.",
        "## Verdict\n" + "\n".join(verdict_lines),
        plan_text(design),
        "## Results (mean over seeds)\n" + grid(head, body),
        "![loss vs fine-tuning fraction](loss_vs_fraction.png)",
    ]
    return written.report("Uptraining a dense model into InAttention", sections)


def plot(v: Mapping[str, Any], path: Path) -> None:
    """Loss against the fine-tuning fraction: uptrained, scratch on equal tokens, the source."""
    fig, (ax,) = new_figure(6.0, 4.0)
    xs = [c["fraction"] for c in v["fractions"]]
    ax.plot(xs, [c["uptrain"] for c in v["fractions"]], marker="o", label="uptrained InAttention")
    ax.plot(xs, [c["scratch"] for c in v["fractions"]], marker="s",
            label="InAttention from scratch, equal tokens")  # fmt: skip
    ax.axhline(v["source"], color="k", linestyle=":", label="dense source")
    ax.set_xscale("log")
    ax.set_xlabel("fine-tuning tokens / the source's pretraining tokens")
    ax.set_ylabel("validation loss (mean over seeds)")
    save_figure(fig, [ax], path)
