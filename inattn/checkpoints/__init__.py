"""A model's weights from training to sharing: one reader, one writer, one shape check, one error.

io.py          the file layout of a run, `read_checkpoint`, `write_checkpoint`, `SHAPE_FIELDS`
               and `check_shape`, `CheckpointError`
saving.py      when a run writes last/best/step-N, the finite-weights guard
resume.py      which checkpoint a run continues, whether it can, what Lightning leaves out
pretrained.py  a trained model and its tokenizer (generate, eval, export, init_from)
init_from.py   a run started from trained weights (a checkpoint, a folder, a hub id)
hf_folder.py   reading a Hugging Face model folder or hub id
hf_gpt2.py     Hugging Face GPT-2 <-> inattn names and configs
hf_export.py   writing a Hugging Face model folder (the remote code: hf_remote/)
"""

from inattn.checkpoints.io import (
    SHAPE_FIELDS,
    CheckpointError,
    check_shape,
    read_checkpoint,
    write_checkpoint,
)
from inattn.checkpoints.pretrained import LoadedModel, load_model

__all__ = [
    "SHAPE_FIELDS",
    "CheckpointError",
    "LoadedModel",
    "check_shape",
    "load_model",
    "read_checkpoint",
    "write_checkpoint",
]
