"""Chat messages of an RL parquet row, as verl builds them for the processor."""

from __future__ import annotations

import io
from typing import Any


def rl_row_messages(row: dict) -> tuple[list[dict], list[Any]]:
    """Chat messages and PIL images of a data_prep RL row, as verl's ``RLHFDataset`` and agent loop build them.

    Each ``<image>`` placeholder of a message becomes an ``{"type": "image"}`` content item (in order), the text
    around it ``{"type": "text", ...}`` items; messages without a placeholder keep their string content.

    Args:
        row: a row of an RL parquet file (``prompt``: list of ``{"role", "content"}``; ``images``: list of
            ``{"bytes": ...}``), e.g. ``pandas.read_parquet(path).to_dict("records")[i]``.

    Returns:
        ``(messages, images)``: messages for ``processor.apply_chat_template`` and the RGB images for the
        processor's ``images=``, one per placeholder.

    Example:
        >>> msgs, imgs = rl_row_messages({"prompt": [{"role": "user", "content": "<image>How many?"}], "images": []})
        >>> msgs
        [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'How many?'}]}]
    """
    from PIL import Image

    images = [Image.open(io.BytesIO(img["bytes"])).convert("RGB") for img in row["images"]]
    messages = []
    for msg in row["prompt"]:
        content = msg["content"]
        if "<image>" not in content:
            messages.append({"role": msg["role"], "content": content})
            continue
        parts: list[dict] = []
        for i, piece in enumerate(content.split("<image>")):
            if i > 0:
                parts.append({"type": "image"})
            if piece:
                parts.append({"type": "text", "text": piece})
        messages.append({"role": msg["role"], "content": parts})
    return messages, images
