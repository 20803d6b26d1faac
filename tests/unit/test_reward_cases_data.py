"""Checks of the labelled reward cases (benchmarks/reward_cases): the loader, the data's coverage and its provenance."""

import collections
import json

import pytest

from benchmarks.reward_cases import CATEGORIES, load_cases

from tests.support.paths import MATHVISION as SHARED

#: Minimum rows per category (the test set's brief); expert_traces must hold every one of the 179 real traces.
MINIMUMS = {category: 30 for category in CATEGORIES} | {"format": 60, "realistic": 80, "expert_traces": 179}


@pytest.fixture(scope="module")
def cases():
    return load_cases()


def test_every_category_present_with_its_minimum(cases):
    counts = collections.Counter(case["category"] for case in cases)
    assert set(counts) == set(CATEGORIES)
    short = {c: counts[c] for c in CATEGORIES if counts[c] < MINIMUMS[c]}
    assert not short, f"categories below their minimum: {short}"
    assert len(cases) >= 450


def test_ids_unique(cases):
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids))


def test_category_filter_returns_that_file_only(cases):
    numbers = load_cases("numbers")
    assert numbers and all(case["category"] == "numbers" for case in numbers)
    assert [c["id"] for c in numbers] == [c["id"] for c in cases if c["category"] == "numbers"]


def test_unknown_category_is_rejected():
    with pytest.raises(ValueError, match="unknown category 'number'"):
        load_cases("number")


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c not in ("adversarial", "format")])
def test_accuracy_categories_hold_both_labels(category):
    # A category with only 1s (or only 0s) would let a constant reward pass it.
    labels = {case["expected_acc"] for case in load_cases(category)}
    assert labels == {0, 1}


def test_format_cases_are_labelled_both_ways():
    labels = [case["expected_format"] for case in load_cases("format")]
    assert None not in labels and set(labels) == {0, 1}


def test_adversarial_cases_score_zero_and_stay_small():
    for case in load_cases("adversarial"):
        assert case["expected_acc"] == 0, case["id"]
        assert len(json.dumps(case, ensure_ascii=False).encode()) < 64 * 1024, case["id"]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared MATH-Vision data not present")
def test_expert_traces_are_the_real_responses_verbatim():
    traces = _jsonl(SHARED / "expert_traces.jsonl")
    cases = load_cases("expert_traces")

    def key(response, answer, options):
        return response, answer, json.dumps(options or None)

    # Several traces share a short response ("The answer is (D)."), so compare as multisets.
    assert collections.Counter(key(c["response"], c["ground_truth"], c["options"]) for c in cases) == collections.Counter(
        key(t["response"], t["answer"], t["options"]) for t in traces
    )
    assert {c["expected_format"] for c in cases} == {0}  # the traces carry no <think>/<answer> tags


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared MATH-Vision data not present")
def test_realistic_cases_use_real_problems():
    problems = {row["id"]: row for row in _jsonl(SHARED / "train.jsonl")}
    for case in load_cases("realistic"):
        problem = problems[case["id"].split("-")[1].removeprefix("p")]
        assert case["ground_truth"] == problem["answer"], case["id"]
        assert case["options"] == (problem["options"] or None), case["id"]


GOOD = {
    "id": "numbers-x-001", "category": "numbers", "ground_truth": "3",
    "response": "<think>1+2</think><answer>$\\boxed{3}$</answer>", "options": None,
    "expected_acc": 1, "expected_format": 1, "note": "ok",
}


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        (json.dumps({k: v for k, v in GOOD.items() if k != "note"} | {"id": "numbers-x-002"}), "note"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "expected_acc": "1"}), "expected_acc"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "expected_acc": True}), "expected_acc"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "expected_acc": 2}), "expected_acc"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "expected_format": 0.5}), "expected_format"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "options": []}), "options"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "options": "A,B"}), "options"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "ground_truth": " "}), "ground_truth"),
        (json.dumps(GOOD | {"id": "numbers-x-002", "expected acc": 1}), "expected acc"),
        (json.dumps(GOOD | {"id": "choice-x-002"}), "id"),
        (json.dumps(GOOD | {"id": "choice-x-002", "category": "choice"}), "category"),
        (json.dumps(GOOD), "id"),  # duplicate of line 1
        ('{"id": "numbers-x-002", ', "invalid JSON"),
    ],
)
def test_loader_rejects_malformed_row(tmp_path, bad_line, field):
    path = tmp_path / "numbers.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_cases(directory=tmp_path)
    message = str(err.value)
    assert f"{path}:2" in message and field in message


def test_loader_accepts_a_valid_file_and_skips_blank_lines(tmp_path):
    (tmp_path / "numbers.jsonl").write_text("\n" + json.dumps(GOOD) + "\n\n", encoding="utf-8")
    assert load_cases(directory=tmp_path) == [GOOD]
