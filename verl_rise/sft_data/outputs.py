"""Write the SFT set: verl's multimodal SFT parquet and a LLaMA-Factory (sharegpt) export, atomically.

verl parquet (read as it is by verl 0.9.1's ``MultiTurnSFTDataset``, ``verl/utils/dataset/multiturn_sft_dataset.py``,
with its defaults ``messages_key=messages``, ``image_key=images``)::

    messages     [{"role": "system", "content": METIS_RISE_SYSTEM_PROMPT},   the RL row's prompt as it is
                  {"role": "user", "content": "... <image> ..."},
                  {"role": "assistant", "content": "<think> ... </think><answer> ... \\boxed{X} ... </answer>"}]
    images       [{"bytes": b"...", "path": str | None}, ...]       one per <image>, in order ([] for text-only)
    data_source  str
    extra_info   {prompt_id, sft_source, passrate_bucket, passrate, method, pred, origin (JSON text)}

LLaMA-Factory export (``<out>/llamafactory/``; its documented sharegpt/OpenAI-messages layout, data/README.md of
github.com/hiyouga/LLaMA-Factory): ``<name>.json`` is a list of ``{"messages": [...same messages...], "images":
["images/<sha256>.<ext>", ...]}`` with ``<image>`` tokens in the user text; ``images/`` holds each distinct image
once, named by the SHA-256 of its bytes; ``dataset_info.json`` has the entry ``<name>`` with ``formatting:
sharegpt``, ``columns: {messages, images}`` and the role/content tags including ``system_tag``. Train with
``dataset_dir: <out>/llamafactory`` and ``dataset: <name>``: LLaMA-Factory resolves image paths against
``media_dir``, which defaults to ``dataset_dir``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data_prep.atomic import AtomicFile, atomic_path, write_text_atomic

MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
IMAGE_TYPE = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
SFT_SCHEMA = pa.schema(
    [
        ("messages", MESSAGE_TYPE),
        ("images", IMAGE_TYPE),
        ("data_source", pa.string()),
        (
            "extra_info",
            pa.struct(
                [
                    ("prompt_id", pa.string()),
                    ("sft_source", pa.string()),
                    ("passrate_bucket", pa.string()),
                    ("passrate", pa.float64()),
                    ("method", pa.string()),
                    ("pred", pa.string()),
                    ("origin", pa.string()),
                ]
            ),
        ),
    ]
)
LLAMAFACTORY_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


def write_sft_parquet(path: str | os.PathLike, rows: Iterable[dict[str, Any]], row_group_size: int = 256) -> int:
    """Write SFT row dicts (schema :data:`SFT_SCHEMA`) to ``path`` atomically, in row groups. Returns the count."""
    file = AtomicFile(path)
    written = 0
    try:
        with pq.ParquetWriter(file.tmp, SFT_SCHEMA) as writer:
            buffer: list[dict[str, Any]] = []
            for row in rows:
                buffer.append(row)
                if len(buffer) >= row_group_size:
                    writer.write_table(pa.Table.from_pylist(buffer, schema=SFT_SCHEMA))
                    written += len(buffer)
                    buffer.clear()
            # An empty SFT set still gets a valid file with the schema (an empty row group would be dropped).
            writer.write_table(pa.Table.from_pylist(buffer, schema=SFT_SCHEMA))
            written += len(buffer)
    except BaseException:
        file.abort()
        raise
    file.commit()
    return written


def _image_file_name(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        fmt = (im.format or "png").lower()
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    return f"{hashlib.sha256(data).hexdigest()}.{ext}"


def write_llamafactory(out_dir: str | os.PathLike, rows: Iterable[dict[str, Any]], name: str = "rise_sft") -> dict:
    """Write the LLaMA-Factory export of SFT rows (see the module docstring).

    Args:
        out_dir: the export folder (created).
        rows: SFT row dicts as written to the verl parquet.
        name: dataset name: the ``dataset_info.json`` key and ``<name>.json``.

    Returns:
        ``{"examples": n, "images": distinct image files, "dir": str}``.

    Raises:
        ValueError: a row whose ``<image>`` count differs from its image count.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    examples, written = [], set()
    for i, row in enumerate(rows):
        placeholders = sum(m["content"].count("<image>") for m in row["messages"])
        if placeholders != len(row["images"]):
            raise ValueError(f"SFT row {i}: {placeholders} <image> token(s) but {len(row['images'])} image(s)")
        paths = []
        for image in row["images"]:
            file_name = _image_file_name(image["bytes"])
            if file_name not in written:
                target = out / "images" / file_name
                if not target.is_file():
                    with atomic_path(target) as tmp:
                        tmp.write_bytes(image["bytes"])
                written.add(file_name)
            paths.append(f"images/{file_name}")
        examples.append({"messages": [dict(m) for m in row["messages"]], "images": paths})
    write_text_atomic(out / f"{name}.json", json.dumps(examples, ensure_ascii=False, indent=1))
    info = {
        name: {
            "file_name": f"{name}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": dict(LLAMAFACTORY_TAGS),
        }
    }
    write_text_atomic(out / "dataset_info.json", json.dumps(info, indent=2) + "\n")
    return {"examples": len(examples), "images": len(written), "dir": str(out)}
