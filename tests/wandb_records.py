"""Read back what a W&B offline run logged, from its `.wandb` transaction log.

The file is a LevelDB-style log (a 7-byte header, then 32 KiB blocks of chunks: crc32c (4),
length (2), type (1: full, 2: first, 3: middle, 4: last)), each record a protobuf `Record`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

HEADER = 7
BLOCK = 32 * 1024
CHUNK_HEADER = 7


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pending, pos = [], b"", HEADER
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < CHUNK_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def run_contents(run_dir: Path) -> dict[str, Any]:
    """{'history': [ {key: value} per step ], 'config': {...}, 'summary': {...}, 'run': Record}."""
    (log,) = Path(run_dir).glob("*.wandb")
    history, config, summary, run = [], {}, {}, None
    for r in records(log):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in r.summary.update})
        elif kind == "run":
            run = r.run
            config.update({i.key: json.loads(i.value_json) for i in r.run.config.update})
    return {"history": history, "config": config, "summary": summary, "run": run}


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)
