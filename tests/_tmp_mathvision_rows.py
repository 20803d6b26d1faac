"""TEMPORARY (delete when data_prep lands on main): a few real MATH-Vision rows as verl RL parquet.

Follows the RL row contract of HELPER_BRIEF.md (data_source, prompt, images, ability, reward_model, extra_info)
so that the end-to-end test can run before the real converter (data_prep) exists. Not a converter: no
resizing, no rejects file, no validation beyond what the test needs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from verl_rise.prompts import METIS_RISE_SYSTEM_PROMPT


def write_rows(jsonl: Path, out: Path, n: int, split: str) -> Path:
    rows = []
    root = jsonl.parent
    with open(jsonl) as f:
        for index, line in enumerate(f):
            if len(rows) >= n:
                break
            r = json.loads(line)
            question = r["question"].replace("<image1>", "").strip()
            options = list(r.get("options") or [])
            text = question
            if options:
                text += "\n" + "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))
            image_path = root / r["image"]
            rows.append(
                {
                    "data_source": "MathLLMs/MathVision",
                    "prompt": [
                        {"role": "system", "content": METIS_RISE_SYSTEM_PROMPT},
                        {"role": "user", "content": "<image>" + text},
                    ],
                    "images": [{"bytes": image_path.read_bytes(), "path": str(image_path)}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": str(r["answer"])},
                    "extra_info": {
                        "prompt_id": hashlib.sha256(text.encode()).hexdigest()[:16],
                        "index": index,
                        "split": split,
                        "question": question,
                        "options": options,
                        "answer": str(r["answer"]),
                        "answer_type": "choice" if options else "free_form",
                    },
                }
            )
    pd.DataFrame(rows).to_parquet(out)
    return out
