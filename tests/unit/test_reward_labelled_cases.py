"""The reward against the independent labelled set in benchmarks/reward_cases (855 cases, 10 categories).

Every case must get its labelled accuracy and, where labelled, its format score. Plain math-verify's
verdicts on the same cases are compared in benchmarks/compare_labelled_cases.py.
"""

import pytest

from reward_fns import format_check, score_accuracy
from benchmarks.reward_cases import load_cases

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_labelled_case(case):
    result = score_accuracy(case["response"], case["ground_truth"], case["options"], timeout_s=10)
    assert result.acc == case["expected_acc"], f"{case['note']} (pred={result.pred!r}, reason={result.reason})"
    if case["expected_format"] is not None:
        assert format_check(case["response"])[0] == case["expected_format"], case["note"]


def test_every_category_is_exercised():
    categories = {c["category"] for c in CASES}
    assert {"numbers", "choice", "units_percent", "structures", "symbolic", "extraction", "format",
            "realistic", "expert_traces", "adversarial"} <= categories
