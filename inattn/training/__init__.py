"""Training: typed config pieces, the LightningModule, loggers, the Trainer and `train()`.

config.py   RunConfig.from_cfg(cfg): the composed Hydra config, checked, as typed pieces
lit.py      LitGPT: one training recipe for both variants
loggers.py  the CSV log that resumes, guarded W&B, one row per optimizer step
trainer.py  the Lightning Trainer's settings, checked by Lightning before anything is built
start.py    from scratch, from init_from's weights, or a resumed checkpoint
results.py  metrics.json and the one-line summary
train.py    train(cfg, run_dir): the outline of one run
"""
