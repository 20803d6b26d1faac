"""RL parquet rows in data_prep's contract, built from the real MATH-Vision rows in ../shared.

The layout follows the project contract (HELPER_BRIEF "RL parquet rows"): data_source, prompt (system + user
with one ``<image>`` per image), images (``{"bytes", "path"}``), ability, reward_model, extra_info with a
stable ``prompt_id``. Only what the pass-rate export reads matters here (extra_info.prompt_id); the other
columns are there to check that export carries the original rows through unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
MATHVISION = SHARED / "data" / "mathvision"


def mathvision_rows(n: int) -> list[dict]:
    """The first ``n`` rows of ../shared's MATH-Vision train split as RL rows (raises if ../shared is absent)."""
    rows = []
    with open(MATHVISION / "train.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(rows) == n:
                break
            src = json.loads(line)
            image = (MATHVISION / src["image"]).read_bytes()
            question = src["question"].replace("<image1>", "<image>")
            prompt_id = hashlib.sha256(json.dumps([question, src["options"], src["answer"]]).encode()).hexdigest()[:32]
            rows.append(
                {
                    "data_source": "MathLLMs/MathVision",
                    "prompt": [
                        {"role": "system", "content": "system prompt"},
                        {"role": "user", "content": question},
                    ],
                    "images": [{"bytes": image, "path": src["image"]}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": src["answer"]},
                    "extra_info": {
                        "prompt_id": prompt_id,
                        "index": len(rows),
                        "split": "train",
                        "question": question,
                        "options": src["options"],
                        "answer": src["answer"],
                        "answer_type": "choice" if src["options"] else "free_form",
                    },
                }
            )
    assert len(rows) == n, f"only {len(rows)} rows in {MATHVISION / 'train.jsonl'}"
    return rows


def write_dataset(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)  # several row groups on purpose
    return path
