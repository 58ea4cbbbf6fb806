"""Equal memory (spec, section 4.2): at each budget, the largest model of each variant that fits.

The design is declared in the preset before any training (`preset.equal_vram`) and copied into
design.json and the report:

    context_length      the deployment context: inference memory is counted there, and the
                        losses compared are measured there too (on the same validation blocks)
    budgets             a grid fixed in advance: each named dense size's own footprint at that
                        context (or an explicit size such as 64MiB)
    ladder              sizes measured in every variant; the largest that fits a budget is
                        chosen. It must reach past every choice (checked before training)
    variants            InAttention (state) and the dense K/V-cache family (dense, mqa, cla, ...)
    seeds, steps        shared by every variant, so differences are paired by seed
    flops_matched       the budget's dense model trained again for the FLOPs of the InAttention
                        model it is compared with: "bigger model" told apart from "more compute"

run -> rows (runs.csv, positions.csv) -> verdicts (pure) -> render (report.md, plots). `render`
reads only the experiment folder, so `inattn-report <folder>` rebuilds the same report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.checkpoints.pretrained import load_model
from inattn.compute import flops_per_token, training_flops
from inattn.data.build import build_data
from inattn.errors import ConfigError
from inattn.experiments.budget import inference_peak, largest_fitting
from inattn.experiments.evaluate import eval_sets, evaluate_at, log2_buckets
from inattn.experiments.frame import conclude, provenance, read_back, underway
from inattn.experiments.sweep import compose_train, run_sweep
from inattn.model import GPT
from inattn.reporting.figures import new_figure, save_figure
from inattn.reporting.markdown import grid
from inattn.training.config import model_config
from inattn.units import MiB, human_bytes, parse_budget
from inattn.verdicts import mean, sd

NAME = "equal_vram"
REFERENCE = "dense"  # the variant whose footprints define the budget grid
STATE_VARIANT = "inattn"


def mode_of(variant: str) -> str:
    """The inference mode a variant is deployed in: its least memory for next-token logits."""
    return "state" if variant == STATE_VARIANT else "kvcache"


# ----------------------------------------------------------------------------- design


def design_from(cfg: DictConfig) -> dict[str, Any]:
    """The pre-registered design: the preset's section, with command-line overrides applied."""
    p = OmegaConf.to_container(cfg.preset.equal_vram, resolve=True)
    design = {k: v for k, v in p.items()}  # type: ignore[union-attr]
    if cfg.budget is not None:
        design["budgets"] = [cfg.budget]
    if cfg.context_length is not None:
        design["context_length"] = int(cfg.context_length)
    if cfg.seeds is not None:
        design["seeds"] = list(cfg.seeds)
    design["train"] = list(cfg.preset.train)
    check_design(design)
    return design


def check_design(d: Mapping[str, Any]) -> None:
    for key in ("variants", "ladder", "budgets", "seeds"):
        if not d.get(key):
            raise ConfigError(f"preset.{NAME}.{key}", "give at least one")
    for key in (STATE_VARIANT, REFERENCE):
        if key not in d["variants"]:
            raise ConfigError(f"preset.{NAME}.variants", f"must include {key!r}")
    if len(d["seeds"]) < 2:
        raise ConfigError(f"preset.{NAME}.seeds", "paired intervals need at least 2 seeds")


def train_overrides(design: Mapping[str, Any], variant: str) -> list[str]:
    """What every training job of a variant is given, besides its size, steps and seed."""
    return [
        *design["train"],
        f"arch={variant}",
        f"position={design['position']}",
        f"context_length={design['train_context_length']}",
        f"group={NAME}",
    ]


# ----------------------------------------------------------------------------- plan


def plan(design: Mapping[str, Any], cache: str | Path) -> dict[str, Any]:
    """Measure every (variant, size), fix the budgets, choose, and list the runs to train."""
    T, train_T = design["context_length"], design["train_context_length"]
    shapes: dict[str, dict[str, Any]] = {}
    vocab = None
    for variant in design["variants"]:
        for size in design["ladder"]:
            cfg = compose_train([*train_overrides(design, variant), f"size={size}"])
            if vocab is None:  # every run shares the data and tokenizer
                vocab = planned_vocab(cfg, train_T, cache)
            model_cfg = model_config(cfg, vocab)
            deployed = model_config(OmegaConf.merge(cfg, {"context_length": T}), vocab)
            model = GPT(model_cfg)
            shapes[f"{variant}/{size}"] = {
                "variant": variant,
                "size": size,
                "arch": model_cfg.arch,
                "params": model.num_params(),
                "flops_per_token": flops_per_token(model, train_T),
                "memory_bytes": inference_peak(deployed, T, mode_of(variant), design["dtype"]),
                "mode": mode_of(variant),
            }
    budgets = budget_grid(design, shapes)
    choices = choose(design, shapes, budgets)
    return {
        "tokens_per_step": int(cfg.batch_size) * train_T,
        "shapes": shapes,
        "budgets": budgets,
        "choices": choices,
        "runs": runs_to_train(design, shapes, choices),
    }


def planned_vocab(cfg: DictConfig, context: int, cache: str | Path) -> int:
    """The vocabulary the runs will have: from the settings where they decide it (so a plan needs
    no data), else from the tokenized corpus (characters, a given tokenizer file)."""
    tok = cfg.tokenizer
    if tok.get("path") is None and tok.kind == "bpe":
        return int(tok.vocab_size)  # a trained BPE has exactly this many entries
    if tok.get("path") is None and tok.kind == "byte":
        return 257
    return build_data(cfg.data, cfg.tokenizer, context, cache).vocab_size


def budget_grid(design: Mapping[str, Any], shapes: Mapping[str, dict]) -> dict[str, int]:
    """Budget name -> bytes: a ladder size names that dense size's own footprint."""
    grid = {}
    for b in design["budgets"]:
        key = f"{REFERENCE}/{b}"
        grid[str(b)] = shapes[key]["memory_bytes"] if key in shapes else parse_budget(b)
    return grid


def choose(
    design: Mapping[str, Any], shapes: Mapping[str, dict], budgets: Mapping[str, int]
) -> dict[str, dict[str, str | None]]:
    """budget -> variant -> the largest size that fits; refuses a choice capped by the ladder."""
    ladder = list(design["ladder"])
    out: dict[str, dict[str, str | None]] = {}
    for name, limit in budgets.items():
        out[name] = {}
        for variant in design["variants"]:
            params = {s: shapes[f"{variant}/{s}"]["params"] for s in ladder}
            memory = {s: shapes[f"{variant}/{s}"]["memory_bytes"] for s in ladder}
            size = largest_fitting(ladder, params, memory, limit)
            if size == ladder[-1]:
                raise ConfigError(
                    f"preset.{NAME}.ladder",
                    f"{variant} at budget {name} chooses the largest size of the ladder "
                    f"({size}): the ladder must reach past every choice; add a larger size",
                )
            out[name][variant] = size
        if out[name][STATE_VARIANT] is None:
            smallest = min(shapes[f"{STATE_VARIANT}/{s}"]["memory_bytes"] for s in ladder)
            raise ConfigError(
                "budget",
                f"{human_bytes(limit)} fits no size for InAttention: the smallest needs "
                f"{human_bytes(smallest)}",
            )
    return out


def runs_to_train(
    design: Mapping[str, Any], shapes: Mapping[str, dict], choices: Mapping[str, dict]
) -> list[dict[str, Any]]:
    """(route, variant, size, steps): every choice; InAttention at each budget's dense size too
    (equal size); and the dense choice trained for the InAttention choice's FLOPs."""
    steps = int(design["steps"])
    wanted: dict[tuple, dict[str, Any]] = {}

    def add(route: str, variant: str, size: str, n_steps: int) -> None:
        wanted.setdefault(
            (route, variant, size, n_steps),
            {"route": route, "variant": variant, "size": size, "steps": n_steps},
        )

    for picked in choices.values():
        for variant, size in picked.items():
            if size is not None:
                add("ladder", variant, size, steps)
        dense, ina = picked[REFERENCE], picked[STATE_VARIANT]
        if dense is not None:
            add("ladder", STATE_VARIANT, dense, steps)  # the equal-size pair
        if design.get("flops_matched") and dense is not None and ina is not None:
            ratio = (
                shapes[f"{STATE_VARIANT}/{ina}"]["flops_per_token"]
                / shapes[f"{REFERENCE}/{dense}"]["flops_per_token"]
            )
            if ratio > 1:
                add("flops-matched", REFERENCE, dense, round(steps * ratio))
    return sorted(wanted.values(), key=lambda r: (r["route"], r["variant"], r["steps"]))


# ----------------------------------------------------------------------------- run


def run(cfg: DictConfig, launcher: str | None) -> Path | None:
    prov = provenance()
    design = design_from(cfg)
    pl = plan(design, cfg.paths.cache)
    print(plan_text(design, pl), flush=True)
    if cfg.dry_run:
        from inattn.experiments.gpu_hours import print_estimate

        print_estimate(design, pl, cfg.preset.get("gpu"))
        return None
    started = underway(cfg, NAME, design, prov, {"plan": pl})
    runs_dir = started.runs_dir
    metrics = []
    for job in sweeps(pl["runs"]):
        metrics += run_sweep(
            runs_dir / f"{job['variant']}-{job['steps']}steps",
            {"size": job["sizes"], "seed": design["seeds"]},
            common=[*train_overrides(design, job["variant"]), f"trainer.max_steps={job['steps']}"],
            launcher=launcher,
            root=Path(cfg.paths.root),
        )
    rows, positions = evaluate_runs(design, pl, metrics, cfg.paths.cache)
    return conclude(started, rows, render, positions)


def sweeps(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One sweep per (variant, steps), over its sizes and all seeds."""
    groups: dict[tuple[str, int], list[str]] = {}
    for r in runs:
        groups.setdefault((r["variant"], r["steps"]), []).append(r["size"])
    return [{"variant": v, "steps": s, "sizes": sizes} for (v, s), sizes in groups.items()]


def evaluate_runs(
    design: Mapping[str, Any], pl: Mapping[str, Any], metrics: list[dict], cache: str | Path
) -> tuple[list[dict], list[dict]]:
    """One row per run: its cost, its memory at the deployment context, its loss measured there."""
    T = design["context_length"]
    blocks = None
    rows, positions, windows = [], [], None
    for m in sorted(metrics, key=lambda m: (variant_of(m), m["params"], m["steps"], m["seed"])):
        loaded = load_model(Path(m["run_dir"]) / "checkpoints" / "last.ckpt")
        if blocks is None:  # every run shares the data, so one set of blocks serves all
            blocks, windows = eval_sets(m["run_dir"], T, design, cache)
        scores, losses = evaluate_at(loaded.model, blocks, windows)
        shape = pl["shapes"][f"{variant_of(m)}/{m['size']}"]
        route = "ladder" if m["steps"] == int(design["steps"]) else "flops-matched"
        key = {"route": route, "variant": variant_of(m), "size": m["size"], "seed": m["seed"]}
        rows.append(
            {
                "experiment": NAME,
                **key,
                "arch": m["arch"],
                "params": m["params"],
                "tokens": m["tokens_seen"],
                "flops": training_flops(loaded.model, m["context_length"], m["tokens_seen"]),
                "train_context": m["context_length"],
                "eval_context": T,
                "memory_bytes": shape["memory_bytes"],
                **scores,
                "steps": m["steps"],
                "train_val_loss": m["val_loss"],
                "wall_seconds": m["wall_seconds"],
            }
        )
        positions += [{**key, "first": a, "last": b, "loss": v} for a, b, v in log2_buckets(losses)]
    return rows, positions


def variant_of(metrics: Mapping[str, Any]) -> str:
    """The arch option a run was trained with (runs from before variants existed: the arch)."""
    return metrics.get("variant") or metrics["arch"]


# ----------------------------------------------------------------------------- verdicts


def losses_by_seed(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, dict[int, float]]:
    """(route, variant, size) -> seed -> loss at the deployment context."""
    out: dict[tuple, dict[int, float]] = {}
    for r in rows:
        out.setdefault((r["route"], r["variant"], r["size"]), {})[int(r["seed"])] = r["val_loss"]
    return out


def verdicts(design: Mapping[str, Any], pl: Mapping[str, Any], rows: Sequence[Mapping]) -> dict:
    """Every claim's paired difference and word; a pure function of the design, plan and rows."""
    from inattn.verdicts import combine, paired_by_seed, verdict

    loss = losses_by_seed(rows)
    out: dict[str, Any] = {"equal_size": [], "equal_memory": [], "flops_matched": [], "vs": []}
    for budget, picked in pl["choices"].items():
        dense, ina = picked[REFERENCE], picked[STATE_VARIANT]
        ina_loss = loss.get(("ladder", STATE_VARIANT, ina), {})
        if dense is not None:  # (b): InAttention is worse than dense at the same size
            p = paired_by_seed(
                loss[("ladder", STATE_VARIANT, dense)], loss[("ladder", REFERENCE, dense)]
            )
            out["equal_size"].append({"size": dense, "paired": p, "word": verdict(p)})
        if dense is not None and ina is not None:  # (c): the bigger InAttention model wins
            p = paired_by_seed(loss[("ladder", REFERENCE, dense)], ina_loss)
            out["equal_memory"].append({"budget": budget, "paired": p, "word": verdict(p)})
            matched = [k for k in loss if k[0] == "flops-matched" and k[2] == dense]
            for k in matched:
                p = paired_by_seed(loss[k], ina_loss)
                out["flops_matched"].append({"budget": budget, "paired": p, "word": verdict(p)})
        for variant, size in picked.items():
            if variant in (STATE_VARIANT, REFERENCE) or size is None or ina is None:
                continue
            p = paired_by_seed(loss[("ladder", variant, size)], ina_loss)
            out["vs"].append(
                {"budget": budget, "variant": variant, "paired": p, "word": verdict(p)}
            )
    for claim in ("equal_size", "equal_memory", "flops_matched"):
        out[f"{claim}_word"] = combine([c["word"] for c in out[claim]])
    return out


# ----------------------------------------------------------------------------- render

CLAIMS = {
    "memory": "(a) InAttention's inference memory grows linearly with context and is the lowest "
    "(the `vram` experiment)",
    "equal_size": "(b) at equal size, InAttention is slightly worse than dense "
    "(difference: InAttention loss - dense loss, expected > 0)",
    "equal_memory": "(c) at equal inference memory, the larger InAttention model that fits beats "
    "the dense model that fits (difference: dense loss - InAttention loss, expected > 0)",
    "flops_matched": "(c, compute control) InAttention still wins when the dense model gets the "
    "same training FLOPs (more steps) (difference: dense loss - InAttention loss)",
    "vs": "(c, stronger baselines) InAttention beats each K/V-cache variant's largest model that "
    "fits (difference: variant loss - InAttention loss)",
}
RULES = (
    "Decision rules (fixed before the runs): per comparison, the 95% t-interval of the per-seed "
    "paired difference; `held` if it lies above zero, `not held` if below, `inconclusive` if it "
    "contains zero. A claim tested at several budgets or sizes is `held` if held at every one, "
    "`not held` if not held at any one, else `inconclusive`."
)


def render(folder: Path) -> Path:
    """report.md and plots from design.json, runs.csv and positions.csv alone."""
    written = read_back(folder)
    folder, rows = written.folder, written.rows
    design, pl = written.design, written.saved["plan"]
    v = verdicts(design, pl, rows)
    plot_frontiers(design, pl, rows, folder / "loss_vs_memory.png")
    plot_compute(rows, folder / "loss_vs_flops.png")
    plot_positions(design, pl, written.positions, folder / "loss_by_position.png")
    sections = [
        "## Claims\n" + "\n".join(f"- {CLAIMS[k]}" for k in CLAIMS if k != "memory"),
        "## Verdicts\n" + verdict_text(v),
        design_text(design, pl) + "\n\n" + RULES,
        "## Regime: do the models use their context?\n" + regime_text(design, pl, rows),
        "## Results at each budget\n" + budget_tables(design, pl, rows, v),
        "![loss vs memory](loss_vs_memory.png)\n\n![loss vs flops](loss_vs_flops.png)\n\n"
        "![loss by position](loss_by_position.png)",
        "## Every trained configuration\n" + grid_table(rows),
    ]
    return written.report("Equal memory: InAttention vs the dense K/V-cache family", sections)


def verdict_text(v: Mapping[str, Any]) -> str:
    lines = []
    for claim, label in (("equal_size", "size"), ("equal_memory", "budget")):
        parts = "; ".join(f"{c[label]}: {c['paired'].text()} -> {c['word']}" for c in v[claim])
        lines.append(f"- {CLAIMS[claim]}: **{v[f'{claim}_word']}** ({parts})")
    parts = "; ".join(f"budget {c['budget']}: {c['paired'].text()} -> {c['word']}"
                      for c in v["flops_matched"])  # fmt: skip
    lines.append(f"- {CLAIMS['flops_matched']}: **{v['flops_matched_word']}** ({parts or 'none'})")
    for c in v["vs"]:
        lines.append(
            f"- InAttention vs {c['variant']} at budget {c['budget']}: {c['paired'].text()} "
            f"-> **{c['word']}**"
        )
    return "\n".join(lines)


def design_text(design: Mapping[str, Any], pl: Mapping[str, Any]) -> str:
    d = design
    lines = [
        "## Pre-registered design (from the preset, fixed before any training)",
        "",
        f"- deployment context: **{d['context_length']}** tokens; inference memory (batch 1, "
        f"{d['dtype']}, weights included, measured on fake tensors) and validation loss are both "
        f"taken there ({d['eval_blocks']} fixed validation blocks, the same for every run; the "
        f"first 8 positions also on {d['first_windows']} windows of 8 tokens, for less noise)",
        f"- training: context {d['train_context_length']} with `{d['position']}` positions "
        f"(they extend to the deployment context), {d['steps']} steps, seeds {d['seeds']} shared "
        "by every variant",
        f"- budgets: {', '.join(str(b) for b in d['budgets'])} (a size name: that dense "
        "model's own footprint at the deployment context)",
        f"- ladder: {', '.join(d['ladder'])}; variants: {', '.join(d['variants'])} "
        "(InAttention in its `state` mode, the others with a K/V cache)",
        f"- compute control: {'yes' if d.get('flops_matched') else 'no'}; regime threshold: the "
        f"dense models compared must show a context gain of at least {d['context_use_min']:.0%}",
        f"- training overrides: `{' '.join(d['train'])}`",
        "",
        "Measured plan (inference memory at the deployment context; the budgets that choose it):",
        "",
        plan_table(design, pl),
    ]
    return "\n".join(lines)


def plan_table(design: Mapping[str, Any], pl: Mapping[str, Any]) -> str:
    body = []
    for s in pl["shapes"].values():
        chosen = [b for b, picked in pl["choices"].items() if picked[s["variant"]] == s["size"]]
        body.append(
            [s["variant"], s["size"], f"{s['params']:,}", f"{s['memory_bytes'] / MiB:.2f}",
             ", ".join(chosen) or "-"]
        )  # fmt: skip
    budgets = ", ".join(f"{b} = {n / MiB:.2f} MiB" for b, n in pl["budgets"].items())
    table = grid(["variant", "size", "params", "MiB", "chosen at"], body)
    return table + f"\n\nBudgets: {budgets}."


def group(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, list[Mapping[str, Any]]]:
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault((r["route"], r["variant"], r["size"]), []).append(r)
    return out


def regime_text(design: Mapping[str, Any], pl: Mapping[str, Any], rows: Sequence[Mapping]) -> str:
    """Context use of every trained configuration; the check on the dense models compared."""
    lines = [
        "Mean loss over the first 8 positions against the second half of the deployment "
        "context, and the relative gain (mean over seeds).",
        "",
    ]
    head = ["route", "variant", "size", "loss first 8", "loss second half", "context gain"]
    body = [
        [route, variant, size, f"{mean([r['loss_first8'] for r in rs]):.3f}",
         f"{mean([r['loss_second_half'] for r in rs]):.3f}",
         f"{mean([r['context_gain'] for r in rs]):.1%}"]
        for (route, variant, size), rs in group(rows).items()
    ]  # fmt: skip
    lines.append(grid(head, body))
    dense = {picked[REFERENCE] for picked in pl["choices"].values()} - {None}
    gains = {
        s: mean([r["context_gain"] for r in rows
                  if r["route"] == "ladder" and r["variant"] == REFERENCE and r["size"] == s])
        for s in sorted(dense)
    }  # fmt: skip
    ok = all(g >= design["context_use_min"] for g in gains.values())
    shown = ", ".join(f"{s} {g:.1%}" for s, g in gains.items())
    lines += [
        "",
        f"Regime check (dense models of the main comparison, gain >= "
        f"{design['context_use_min']:.0%}): {shown} -> **{'passed' if ok else 'failed'}**.",
    ]
    return "\n".join(lines)


def budget_tables(
    design: Mapping[str, Any], pl: Mapping[str, Any], rows: Sequence[Mapping], v: Mapping
) -> str:
    """Per budget: every variant's choice, its cost and loss; the lowest loss named."""
    groups = group(rows)
    vs = {(c["budget"], c["variant"]): c for c in v["vs"]}
    vs |= {(c["budget"], REFERENCE): c for c in v["equal_memory"]}
    parts = []
    for budget, picked in pl["choices"].items():
        lines = [
            f"### Budget {budget} ({pl['budgets'][budget] / MiB:.2f} MiB at T = "
            f"{design['context_length']})",
            "",
        ]
        means, body = {}, []
        for variant, size in picked.items():
            if size is None:
                body.append([variant, "none fits", *[""] * 6])
                continue
            rs = groups.get(("ladder", variant, size), [])
            losses = [r["val_loss"] for r in rs]
            means[variant] = mean(losses)
            diff = vs.get((budget, variant))
            body.append(
                [variant, size, f"{rs[0]['params']:,}", f"{rs[0]['memory_bytes'] / MiB:.2f}",
                 f"{mean([r['tokens'] for r in rs]):,.0f}",
                 f"{mean([r['flops'] for r in rs]) / 1e12:.2f}",
                 f"{means[variant]:.4f} ± {sd(losses):.4f} (n={len(rs)})",
                 diff["paired"].text() + " " + diff["word"] if diff else ""]
            )  # fmt: skip
        head = ["variant", "size", "params", "memory MiB", "tokens", "training TFLOP",
                "loss (mean ± sd)", "minus InAttention (paired)"]  # fmt: skip
        best = min(means, key=means.get) if means else None
        lines += [grid(head, body), "", f"Lowest mean loss at this budget: **{best}**."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def grid_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ["route", "variant", "size", "params", "steps", "tokens", "TFLOP", "memory MiB",
            "loss at T (mean ± sd)", "loss at train context", "n"]  # fmt: skip
    body = []
    for (route, variant, size), rs in group(rows).items():
        losses = [r["val_loss"] for r in rs]
        body.append(
            [route, variant, size, f"{rs[0]['params']:,}", rs[0]["steps"], f"{rs[0]['tokens']:,}",
             f"{rs[0]['flops'] / 1e12:.2f}", f"{rs[0]['memory_bytes'] / MiB:.2f}",
             f"{mean(losses):.4f} ± {sd(losses):.4f}",
             f"{mean([r['train_val_loss'] for r in rs]):.4f}", len(rs)]
        )  # fmt: skip
    return grid(head, body)


# ----------------------------------------------------------------------------- plots


def _figure():
    fig, axes = new_figure()
    return fig, axes[0]


def _save(fig, ax, path: Path) -> None:
    save_figure(fig, [ax], path)


def plot_frontiers(design, pl, rows, path: Path) -> None:
    """Loss at the deployment context against inference memory there: one line per variant."""
    fig, ax = _figure()
    groups = group(rows)
    for variant in design["variants"]:
        pts = sorted(
            (rs[0]["memory_bytes"] / MiB, mean([r["val_loss"] for r in rs]),
             sd([r["val_loss"] for r in rs]), size)
            for (route, v, size), rs in groups.items() if route == "ladder" and v == variant
        )  # fmt: skip
        if pts:
            xs, ys, es, names = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=variant)
            for x, y, n in zip(xs, ys, names, strict=True):
                ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for i, limit in enumerate(pl["budgets"].values()):
        ax.axvline(limit / MiB, color="k", linestyle=":", alpha=0.6,
                   label="budgets" if i == 0 else None)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"inference memory at T = {design['context_length']} (MiB)")
    ax.set_ylabel(f"validation loss at T = {design['context_length']}")
    ax.set_title("loss against memory (mean ± sd over seeds)")
    _save(fig, ax, path)


def plot_compute(rows, path: Path) -> None:
    """Loss against training FLOPs: a bigger model and more steps side by side."""
    fig, ax = _figure()
    for (route, variant, size), rs in group(rows).items():
        ax.errorbar(
            [mean([r["flops"] for r in rs])], [mean([r["val_loss"] for r in rs])],
            yerr=[sd([r["val_loss"] for r in rs])], marker="s" if route != "ladder" else "o",
            capsize=3, linestyle="none", label=f"{variant} {size}" + ("" if route == "ladder"
                                                                     else f" ({route})"),
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("validation loss at the deployment context")
    ax.set_title("loss against training compute")
    _save(fig, ax, path)


def plot_positions(design, pl, positions, path: Path) -> None:
    """Loss by position (log-2 buckets) of each variant's choice at the largest budget."""
    fig, ax = _figure()
    budget = max(pl["budgets"], key=pl["budgets"].get)
    for variant, size in pl["choices"][budget].items():
        pts: dict[int, list[float]] = {}
        for p in positions:
            if p["route"] == "ladder" and p["variant"] == variant and p["size"] == size:
                pts.setdefault(p["first"], []).append(p["loss"])
        if pts:
            xs = sorted(pts)
            ax.plot([x + 1 for x in xs], [mean(pts[x]) for x in xs], marker="o",
                    label=f"{variant} {size}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("position (bucket start + 1)")
    ax.set_ylabel("validation loss")
    ax.set_title(f"loss by position, choices at budget {budget}")
    _save(fig, ax, path)


def plan_text(design: Mapping[str, Any], pl: Mapping[str, Any]) -> str:
    """What will be trained, printed before training (and by dry_run)."""
    lines = [design_text(design, pl), "", "Runs (each for every seed):"]
    for r in pl["runs"]:
        lines.append(f"- {r['route']}: {r['variant']} {r['size']}, {r['steps']} steps")
    return "\n".join(lines)
