"""verl_rise.demo.priming: the one policy-priming implementation (demo base model and the e2e test's policy)."""

from __future__ import annotations

import pandas as pd
import pytest

from verl_rise.demo.priming import END_OF_TURN, prime_policy


@pytest.fixture(scope="module")
def tiny_and_row(tmp_path_factory):
    from data_prep import generator
    from verl_rise.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("priming")
    assert generator.main(["--num", "2", "--seed", "0", "--output", str(root / "train.parquet"), "--no-progress"]) == 0
    return build_tiny_model(root / "tiny"), pd.read_parquet(root / "train.parquet").to_dict("records")[0]


def test_responses_of_different_lengths_are_fitted_and_only_their_tokens_keep_lm_head_rows(tiny_and_row, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tiny, row = tiny_and_row
    short, long = "<think> a </think><answer> $\\boxed{1}$ </answer>", "<think> a b c </think><answer> $\\boxed{12}$ </answer>"
    info = prime_policy(tiny, [(row, [short, long])], tmp_path / "out", steps=5, seed=0)
    assert info["sequences"] == 2 and info["last_loss"] < info["first_loss"]
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    used = {t for text in (short, long) for t in tok(text + END_OF_TURN, add_special_tokens=False)["input_ids"]}
    head = AutoModelForImageTextToText.from_pretrained(str(tmp_path / "out")).lm_head.weight
    nonzero = {int(i) for i in torch.nonzero(head.abs().sum(dim=1)).flatten()}
    assert nonzero == used  # every other logit is exactly 0: the trick the loss relies on
    assert not list(tmp_path.glob(".out.tmp-*"))  # written to a temporary sibling, then renamed


def test_no_examples_or_an_empty_response_list_is_refused(tiny_and_row, tmp_path):
    tiny, row = tiny_and_row
    with pytest.raises(ValueError, match="at least one"):
        prime_policy(tiny, [], tmp_path / "out")
    with pytest.raises(ValueError, match="no responses"):
        prime_policy(tiny, [(row, [])], tmp_path / "out")
    assert not (tmp_path / "out").exists()
