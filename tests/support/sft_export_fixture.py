"""Test inputs for the SFT builder: a pass-rate export made from REAL data_prep output of MATH-Vision rows.

The files have exactly the schema ``python -m verl_rise.passrate export`` writes: the original RL parquet rows, the
statistics columns, and ``correct_responses`` in ``inconsistent.parquet``. Buckets and responses are chosen by the
test (there is no RL run here); everything else is real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep import mathvision
from tests.support.paths import MATHVISION
from verl_rise.passrate.export import RESPONSE_TYPE, STAT_COLUMNS  # the exported file layout

BUCKETS = ("hard", "inconsistent", "solved", "unseen")
def convert_train(out_dir: Path) -> Path:
    """Run data_prep's MATH-Vision converter on ../shared train.jsonl; returns the RL parquet."""
    dest = out_dir / "train.parquet"
    code = mathvision.main(["-i", str(MATHVISION / "train.jsonl"), "-o", str(dest), "--no-progress"])
    assert code == 0
    return dest


def write_export(
    rl_parquet: Path,
    out_dir: Path,
    bucket_of: dict[str, str],
    responses: dict[str, list[dict]] | None = None,
    default_bucket: str = "solved",
) -> dict[str, int]:
    """Split an RL parquet into the four export files.

    Args:
        rl_parquet: data_prep output.
        out_dir: the export directory.
        bucket_of: prompt_id -> bucket; other prompts get ``default_bucket``.
        responses: prompt_id -> ``correct_responses`` items for inconsistent prompts.

    Returns:
        rows per bucket.
    """
    responses = responses or {}
    table = pq.read_table(rl_parquet)
    rows = table.to_pylist()
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    attempts = 8
    for bucket in BUCKETS:
        part = [r for r in rows if bucket_of.get(r["extra_info"]["prompt_id"], default_bucket) == bucket]
        correct = [0 if bucket in ("hard", "unseen") else attempts if bucket == "solved"
                   else max(1, min(attempts - 1, len(responses.get(r["extra_info"]["prompt_id"], []))))
                   for r in part]
        seen = bucket != "unseen"
        rate = [c / attempts if seen else None for c in correct]
        n_att = [attempts if seen else 0] * len(part)
        stats = {
            "passrate_bucket": [bucket] * len(part),
            "passrate": rate, "passrate_attempts": n_att, "passrate_correct": correct,
            "passrate_overall": rate, "passrate_overall_attempts": n_att, "passrate_overall_correct": correct,
            "passrate_window": rate, "passrate_window_attempts": n_att, "passrate_window_correct": correct,
            "passrate_mean_score": [None if x is None else 0.9 * x + 0.1 for x in rate],
            "passrate_first_step_solved": [1 if c else None for c in correct],
            "passrate_last_step_seen": [10 if seen else None for _ in part],
        }
        t = pa.Table.from_pylist(part, schema=table.schema)
        for name, typ in STAT_COLUMNS:
            t = t.append_column(name, pa.array(stats[name], typ))
        if bucket == "inconsistent":
            t = t.append_column("correct_responses", pa.array(
                [responses.get(r["extra_info"]["prompt_id"], []) for r in part], RESPONSE_TYPE))
        pq.write_table(t, out_dir / f"{bucket}.parquet")
        counts[bucket] = len(part)
    (out_dir / "summary.json").write_text(json.dumps({"rows_per_bucket": counts}))
    return counts


def mathvision_prompt_ids(rl_parquet: Path) -> dict[str, str]:
    """MATH-V ``id`` -> prompt_id for the converted train rows (rows are written in input order, none rejected)."""
    raw = [json.loads(line) for line in (MATHVISION / "train.jsonl").read_text().splitlines() if line.strip()]
    ids = pq.read_table(rl_parquet, columns=["extra_info"]).column("extra_info").to_pylist()
    assert len(raw) == len(ids)
    return {r["id"]: e["prompt_id"] for r, e in zip(raw, ids)}


def train_rows(rl_parquet: Path) -> dict[str, dict]:
    """MATH-V ``id`` -> converted RL row dict."""
    raw = [json.loads(line) for line in (MATHVISION / "train.jsonl").read_text().splitlines() if line.strip()]
    rows = pq.read_table(rl_parquet).to_pylist()
    return {r["id"]: row for r, row in zip(raw, rows)}


def rise(reasoning: str, answer: str) -> str:
    """A response in the RISE format (the layout of the Metis-RISE system prompt's example)."""
    return f"<think> {reasoning} </think><answer> The answer is $\\boxed{{{answer}}}$ </answer>"


#: Small text-only math problems with worked solutions in the MATH layout (solution ends in a \boxed{} answer).
TEXT_PROBLEMS = [
    ("What is $3 \\cdot 4 + 5$?", "Multiplication comes first: $3 \\cdot 4 = 12$, then $12 + 5 = 17$. "
     "So the value is $\\boxed{17}$."),
    ("A rectangle is 6 cm long and 4 cm wide. What is its area in square centimetres?",
     "The area of a rectangle is length times width, $6 \\cdot 4 = 24$, so the area is $\\boxed{24}$."),
    ("Solve $2x + 3 = 11$ for $x$.", "Subtract 3 from both sides: $2x = 8$. Divide by 2: $x = \\boxed{4}$."),
    ("What is the sum of the interior angles of a triangle, in degrees?",
     "Angles of a triangle always add up to a straight angle. A straight angle is $\\boxed{180}$ degrees."),
    ("How many minutes are there in 2.5 hours?", "One hour has 60 minutes, and $2.5 \\cdot 60 = 150$.\n"
     "The answer is: $\\boxed{150}$"),
    ("What is 7 squared?", "$\\boxed{49}$"),  # correct but no reasoning: rejected
]


def write_text_only(out_dir: Path, problems=TEXT_PROBLEMS) -> Path:
    """data_prep.text_only on a MATH-style JSONL, plus a ``response`` column holding each worked solution."""
    from data_prep import text_only

    src = out_dir / "text.jsonl"
    src.write_text("".join(json.dumps({"problem": q, "solution": s}) + "\n" for q, s in problems))
    rl = out_dir / "text_rl.parquet"
    code = text_only.main(["-i", str(src), "-o", str(rl), "--answer-field", "solution", "--answer-from-boxed",
                           "--no-progress"])
    assert code == 0
    table = pq.read_table(rl)
    solution_of = dict(problems)
    questions = [e["question"] for e in table.column("extra_info").to_pylist()]
    table = table.append_column("response", pa.array([solution_of[q] for q in questions], pa.string()))
    dest = out_dir / "text_sft_input.parquet"
    pq.write_table(table, dest)
    return dest
