"""Everything a result file or report shares, written once.

provenance   where a result comes from: the code's revision, the machine, the command, the clock
markdown     tables and report.md (findings first, provenance last)
figures      the one figure style of every PNG
wandb_log    W&B records that can never fail the job that writes them
runs_summary finished runs (metrics.json files or W&B summaries) -> grouped tables and plots

A low layer: it imports nothing from `inattn.bench`, `inattn.experiments` or `inattn.cli`, which
all import it.
"""
