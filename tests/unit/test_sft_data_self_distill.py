"""Self-distillation: re-verification with the RISE reward (the export's scores are not trusted) and selection."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest

from reward_fns import compute_score
from tests.support.sft_export_fixture import convert_train, rise, train_rows, write_export
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import NO_RESPONSES_IN_EXPORT, NO_VERIFIED_RESPONSE, BuildConfig, build
from verl_rise.sft_data.inputs import row_from_dict
from verl_rise.sft_data.selection import order_key
from verl_rise.sft_data.self_distill import self_distill

LONG = ("Reading the picture from left to right the numbers are 100, 90, 80 and 70 before the question mark. "
        "The difference between consecutive numbers is always 10: 100 - 90 = 10, 90 - 80 = 10 and 80 - 70 = 10. "
        "So the rule is to subtract 10 each time, and the number after 70 must be 70 - 10 = 60. "
        "Checking: 60 keeps the constant difference of 10, so the next one is 60.")
CORRECT = [
    rise(LONG, "60"),
    rise("Each number is ten less than the previous one, hence after 70 comes 60.", "60"),
    rise("Differences are all -10; continuing the pattern from 70 gives 70 - 10 = 60.", "60"),
    rise("The sequence decreases by 10 per step. 70 minus 10 equals 60.", "60"),
]
NEAR_COPY = CORRECT[0].replace("Checking:", "Check:")  # one word of 70 differs
WRONG_CLAIMED_CORRECT = rise("The numbers drop by ten each time, so the missing one is 50.", "50")
BAD_FORMAT = "The numbers drop by ten each time, so the missing one is \\boxed{60}."


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    out = tmp_path_factory.mktemp("sd")
    rl = convert_train(out)
    return out, rl, train_rows(rl)


def _row(train, mv_id, responses):
    _, _, rows = train
    d = dict(rows[mv_id], passrate=0.5,
             correct_responses=[{"response": r, "score": 1.0, "step": 10 + i} for i, r in enumerate(responses)])
    return row_from_dict(d, "inconsistent", "inconsistent.parquet", 0)


def test_reverification_drops_what_the_export_called_correct(train):
    responses = [CORRECT[0], WRONG_CLAIMED_CORRECT, BAD_FORMAT, None, CORRECT[0] + "  ", NEAR_COPY, CORRECT[1]]
    row = _row(train, "1", responses)
    assert row.ground_truth == "60"
    # The export scored every one of them 1.0; the RISE reward disagrees for two.
    assert compute_score("", WRONG_CLAIMED_CORRECT, "60")["acc"] == 0.0
    kept, rejects = self_distill(row, max_per_prompt=0, seed=0)
    assert len(kept) + len(rejects) == len(responses)
    by_text = {r.candidate.response: r.reason for r in rejects}
    assert by_text[WRONG_CLAIMED_CORRECT] == R.NOT_CORRECT
    assert by_text[BAD_FORMAT] == R.BAD_FORMAT and by_text[None] == R.EMPTY_RESPONSE
    kept_texts = [c.text for c in kept]
    # Of the three copies exactly one is kept (which one depends on the seeded order); the others are
    # (near-)duplicates of it: the whitespace twin of a kept CORRECT[0] is an exact duplicate.
    copies = [CORRECT[0], CORRECT[0] + "  ", NEAR_COPY]
    assert sorted(kept_texts) == sorted([CORRECT[1]] + [t for t in copies if t in kept_texts])
    assert sum(t in kept_texts for t in copies) == 1
    assert all(by_text[t] in (R.DUPLICATE, R.NEAR_DUPLICATE) for t in copies if t not in kept_texts)
    if NEAR_COPY not in kept_texts:
        assert by_text[NEAR_COPY] == R.NEAR_DUPLICATE
    not_correct = next(r for r in rejects if r.reason == R.NOT_CORRECT)
    assert "export score 1.0" in not_correct.detail and not_correct.candidate.origin["step"] == 11
    for c in kept:  # kept unchanged, and each passes the reward
        s = compute_score(row.data_source, c.text, row.ground_truth, {"options": row.options})
        assert (s["acc"], s["format"], c.method) == (1.0, 1.0, "as_is")


def test_exact_and_near_duplicates_of_the_first_kept_response(train):
    copies = [CORRECT[0], CORRECT[0] + "  ", NEAR_COPY]
    row = _row(train, "1", copies)
    # A seed under which CORRECT[0] comes first in the selection order.
    seed = next(s for s in range(1000)
                if min(copies, key=lambda t: order_key(s, row.prompt_id, t)) == CORRECT[0])
    kept, rejects = self_distill(row, max_per_prompt=0, seed=seed)
    assert [c.text for c in kept] == [CORRECT[0]]
    assert {r.candidate.response: r.reason for r in rejects} == {CORRECT[0] + "  ": R.DUPLICATE,
                                                                  NEAR_COPY: R.NEAR_DUPLICATE}
    # With the near-duplicate check off, the near copy is kept as a distinct response.
    kept, _ = self_distill(row, max_per_prompt=0, seed=seed, near_dup_threshold=1.01)
    assert [c.text for c in kept] == [CORRECT[0], NEAR_COPY]


def test_choice_prompt_needs_the_right_letter(train):
    row = _row(train, "19", [rise("2 bananas, 4 apples each, 3 mandarins each: $2 \\cdot 4 \\cdot 3$.", "D"),
                             rise("2 bananas, 4 apples each, 3 mandarins each: $2 \\cdot 4 \\cdot 3$.", "B")])
    assert row.options and row.ground_truth == "D"
    kept, rejects = self_distill(row, max_per_prompt=0)
    assert [c.pred for c in kept] == ["D"] and [r.reason for r in rejects] == [R.NOT_CORRECT]


def test_selection_is_capped_deterministic_and_order_independent(train):
    row = _row(train, "1", CORRECT)
    kept, rejects = self_distill(row, max_per_prompt=2, seed=3)
    assert len(kept) == 2 and [r.reason for r in rejects] == [R.OVER_CAP, R.OVER_CAP]
    shuffled = list(CORRECT)
    random.Random(1).shuffle(shuffled)
    again, _ = self_distill(_row(train, "1", shuffled), max_per_prompt=2, seed=3)
    assert [c.text for c in again] == [c.text for c in kept]
    picks = {tuple(sorted(c.text for c in self_distill(row, max_per_prompt=2, seed=s)[0])) for s in range(8)}
    assert len(picks) > 1, "the seed must change which responses are chosen"


def test_build_accounts_for_inconsistent_prompts(train, tmp_path):
    _, rl, rows = train
    pid = {k: v["extra_info"]["prompt_id"] for k, v in rows.items()}
    responses = {pid["1"]: [CORRECT[0], WRONG_CLAIMED_CORRECT, CORRECT[1]],
                 pid["12"]: [WRONG_CLAIMED_CORRECT],  # answer 10: the export's only "correct" one is wrong
                 pid["17"]: []}
    buckets = {p: "inconsistent" for p in responses} | {pid["2"]: "hard", pid["3"]: "unseen"}
    export = tmp_path / "export"
    counts = write_export(rl, export, buckets,
                          {p: [{"response": r, "score": 1.0, "step": 5} for r in rs] for p, rs in responses.items()})
    assert counts["inconsistent"] == 3
    stats = build(BuildConfig(export_dir=export, out_dir=tmp_path / "out", self_distill_max=1, progress=False,
                              allow_no_expert=True))  # its hard prompt has no expert source here
    sd = stats["candidates"]["self_distilled"]
    assert (sd["in"], sd["kept"], sd["rejected"]) == (4, 1, 3)
    assert sd["reject_reasons"] == {R.NOT_CORRECT: 2, R.OVER_CAP: 1}
    assert stats["coverage"]["inconsistent"] == {
        "prompts": 3, "covered": 1, "uncovered_reasons": {NO_VERIFIED_RESPONSE: 1, NO_RESPONSES_IN_EXPORT: 1}}
    sft = pq.read_table(tmp_path / "out" / "sft.parquet").to_pylist()
    assert [r["extra_info"]["prompt_id"] for r in sft] == [pid["1"]]
    assert sft[0]["messages"][-1]["content"] in CORRECT[:2]
    assert sft[0]["extra_info"]["passrate_bucket"] == "inconsistent"
