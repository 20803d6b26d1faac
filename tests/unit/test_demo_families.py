"""The demo's problem families: answers that follow from the picture, balanced colours, fresh held-out draws,
verified expert solutions, and base-model guesses that can never solve the absent family."""

from __future__ import annotations

import io
import json
import random
from collections import Counter

import pandas as pd
import pytest
from PIL import Image

from reward_fns import compute_score
from verl_rise.demo import families
from verl_rise.demo.base_model import GUESS_TEMPLATE, guesses
from verl_rise.sft_data.rewrite import to_rise_format


def _nearest_colour(p) -> str:
    """The named colour nearest to the picture's pixels (all of them one shade)."""
    pixels = set(Image.open(io.BytesIO(p.image)).convert("RGB").getdata())
    assert pixels == {tuple(p.meta["fill"])}
    return min(families.COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(families.COLOURS[c], p.meta["fill"])))


@pytest.mark.parametrize("family", families.FAMILIES)
def test_the_answer_is_the_colour_in_the_picture(family):
    for i in range(12):
        p = families.draw_problem(family, "train", 0, i)
        assert _nearest_colour(p) == p.meta["colour"]
        if family == "learnable":
            assert p.options == list(families.CHOICE_COLOURS)
            assert p.options[ord(p.answer) - ord("A")] == p.meta["colour"]
        else:
            assert p.options == [] and p.answer == p.meta["colour"] in families.WORD_COLOURS


def test_draws_are_pure_balanced_and_differ_between_splits_and_seeds():
    a = families.draw_problem("absent", "train", 3, 7)
    assert a.image == families.draw_problem("absent", "train", 3, 7).image
    assert a.image != families.draw_problem("absent", "test", 3, 7).image
    assert a.image != families.draw_problem("absent", "train", 4, 7).image
    colours = Counter(p.meta["colour"] for p in families.iter_family_problems("absent", "train", 0, 20))
    assert set(colours.values()) == {4}  # 20 problems, 5 colours
    with pytest.raises(ValueError, match="unknown family"):
        families.draw_problem("easy", "train", 0, 0)


def test_write_split_interleaves_the_families_with_their_data_sources(tmp_path):
    info = families.write_split(tmp_path / "train.parquet", {"learnable": 6, "absent": 4}, "train", 0)
    assert info == {"rows": 10, "rejected": 0, "by_family": {"learnable": 6, "absent": 4}}
    df = pd.read_parquet(tmp_path / "train.parquet")
    assert [families.family_of(ds) for ds in df.data_source] == ["learnable", "absent"] * 4 + ["learnable"] * 2
    assert df.extra_info.map(lambda e: e["prompt_id"]).is_unique
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]  # no temporary or empty rejects left
    ids = frozenset(df.extra_info.map(lambda e: e["prompt_id"]))
    families.write_split(tmp_path / "test.parquet", {"learnable": 6, "absent": 4}, "test", 0, exclude_prompt_ids=ids)
    with pytest.raises(ValueError, match="equal training rows"):
        families.write_split(tmp_path / "leak.parquet", {"learnable": 2}, "train", 0, exclude_prompt_ids=ids)
    assert not (tmp_path / "leak.parquet").exists()


def test_expert_solutions_are_verified_and_guesses_never_solve_the_absent_family(tmp_path):
    counts = {"learnable": 6, "absent": 10}
    families.write_split(tmp_path / "train.parquet", counts, "train", 1)
    assert families.write_expert_file(tmp_path / "expert.jsonl", counts, 1) == 16
    rows = {r["extra_info"]["prompt_id"]: r for r in pd.read_parquet(tmp_path / "train.parquet").to_dict("records")}
    records = [json.loads(line) for line in (tmp_path / "expert.jsonl").read_text().splitlines()]
    assert [r["prompt_id"] for r in records] == list(rows)
    rng = random.Random(0)
    for rec in records:
        row = rows[rec["prompt_id"]]
        extra = dict(row["extra_info"])
        gt = row["reward_model"]["ground_truth"]
        assert compute_score(row["data_source"], rec["response"], gt, extra)["acc"] == 1.0, rec
        # What the SFT-set builder does with an expert response: kept as it is (enough reasoning, right answer).
        rewrite = to_rise_format(rec["response"], gt, list(extra["options"] if extra["options"] is not None else []))
        assert rewrite.ok and rewrite.method == "as_is", (rec, rewrite)
        if families.family_of(row["data_source"]) == "absent":
            for g in guesses(row, 8, rng):  # what the demo's base model is primed to answer
                assert compute_score(row["data_source"], GUESS_TEMPLATE.format(g), gt, extra)["acc"] == 0.0
