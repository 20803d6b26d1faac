"""verl_rise.verl_ext.rl_dataset: verl's overlong-prompt filter, kept rows unchanged, without hashing the tokenizer."""

from __future__ import annotations

import pytest

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, REPO_ROOT, require


@pytest.fixture(scope="module")
def rows_and_config(tmp_path_factory):
    """12 real MATH-Vision rows (data_prep output) and the cpu_tiny recipe's data config, with a prompt-length limit
    between the shortest and the longest of those prompts (so the filter keeps some rows and drops others)."""
    require(MATHVISION)
    require(QWEN_PROCESSOR)
    from hydra import compose, initialize_config_dir

    from data_prep import mathvision

    root = tmp_path_factory.mktemp("rl_dataset")
    src = root / "train.jsonl"
    src.write_text("".join((MATHVISION / "train.jsonl").read_text().splitlines(keepends=True)[:12]))
    assert mathvision.main(["--input", str(src), "--root", str(MATHVISION), "--output",
                            str(root / "train.parquet"), "--split", "train", "--no-progress"]) == 0
    with initialize_config_dir(config_dir=str(REPO_ROOT / "recipes"), version_base=None):
        data = compose(config_name="rise_grpo_cpu_tiny").data
    data.max_prompt_length = 300
    data.filter_overlong_prompts_workers = None  # no process pool: a forked pool deadlocks in a pytest-xdist worker
    return root / "train.parquet", data


def _kept(dataset) -> list[str]:
    return [row["extra_info"]["prompt_id"] for row in dataset.dataframe]


def test_kept_rows_are_verls_and_the_tokenizer_is_never_pickled(rows_and_config, monkeypatch):
    import datasets.utils._dill as datasets_dill
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_rise.verl_ext.rl_dataset import RiseRLDataset

    parquet, config = rows_and_config
    processor = AutoProcessor.from_pretrained(str(QWEN_PROCESSOR))
    pickled = []
    original = datasets_dill._save_transformersPreTrainedTokenizerBase

    def probe(pickler, obj):  # datasets' fingerprint hasher pickles a tokenizer through this (the cost avoided)
        pickled.append(type(obj).__name__)
        return original(pickler, obj)

    monkeypatch.setitem(datasets_dill.Pickler.dispatch, type(processor.tokenizer), probe)
    verl_kept = _kept(RLHFDataset([str(parquet)], processor.tokenizer, config, processor=processor))
    assert 0 < len(verl_kept) < 12  # the limit splits the rows: the comparison below means something
    assert pickled  # the probe sees verl's filter hash the tokenizer
    pickled.clear()
    ours = RiseRLDataset([str(parquet)], processor.tokenizer, config, processor=processor)
    assert _kept(ours) == verl_kept
    assert pickled == []
    assert "filter" not in vars(ours.dataframe)  # the one-call override is gone


def test_the_fingerprint_follows_the_length_limit_and_the_data(rows_and_config):
    from transformers import AutoProcessor

    from verl_rise.verl_ext.rl_dataset import RiseRLDataset, filter_fingerprint

    parquet, config = rows_and_config
    processor = AutoProcessor.from_pretrained(str(QWEN_PROCESSOR))
    dataset = RiseRLDataset([str(parquet)], processor.tokenizer, config, processor=processor)
    frame = dataset.dataframe
    base = filter_fingerprint(dataset, frame)
    assert filter_fingerprint(dataset, frame) == base  # deterministic
    dataset.max_prompt_length += 1
    assert filter_fingerprint(dataset, frame) != base
    dataset.max_prompt_length -= 1
    assert filter_fingerprint(dataset, frame.select([0])) != base


def test_the_rl_recipes_use_it():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO_ROOT / "recipes"), version_base=None):
        for name in ("rise_grpo_cpu_tiny", "rise_grpo_7b", "rise_grpo_72b"):
            custom = compose(config_name=name).data.custom_cls
            assert (custom.path, custom.name) == ("pkg://verl_rise.verl_ext.rl_dataset", "RiseRLDataset"), name


def test_one_filter_worker_filters_in_this_process(rows_and_config, monkeypatch):
    import datasets.arrow_dataset
    from transformers import AutoProcessor

    from verl_rise.verl_ext.rl_dataset import RiseRLDataset

    parquet, config = rows_and_config
    config = config.copy()
    config.filter_overlong_prompts_workers = 1  # verl's default below 8 cores: datasets would start a pool

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("datasets started a process pool for the overlong-prompt filter")

    monkeypatch.setattr(datasets.arrow_dataset.mp, "Pool", NoPool)
    processor = AutoProcessor.from_pretrained(str(QWEN_PROCESSOR))
    dataset = RiseRLDataset([str(parquet)], processor.tokenizer, config, processor=processor)
    assert 0 < len(dataset) < 12
