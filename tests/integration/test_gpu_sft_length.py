"""Issue 13 row 2: an SFT row longer than the SFT profile's ``max_length`` never reaches verl's SFT trainer.

The SFT recipe sets ``truncation: error``, so one over-long row (expert files have no length cap) would stop a GPU
run when the data loader reaches it. The builder counts each row's tokens with the real Qwen2.5-VL processor files
(chat template + image tokens in the profile's pixel range) and rejects rows over ``max_length`` with a reason.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, write_export
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.cli import main
from verl_rise.sft_data.stats import TokenCounter

#: rise_sft.yaml's data.mm_processor_kwargs (the Metis-RISE range, 128..16384 x 28 x 28 pixels).
PIXELS = (100352, 12845056)
TRACED = ("19", "87", "98", "326", "365")  # MATH-Vision problems with real expert traces in ../shared


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sftlen")
    rl = convert_train(tmp)
    pid = mathvision_prompt_ids(rl)
    write_export(rl, tmp / "export", {pid[i]: "hard" for i in TRACED})
    return tmp


def _build(tmp, name, **kw):
    return build(BuildConfig(export_dir=tmp / "export", out_dir=tmp / name, expert_key="mathvision",
                             expert_files=[require(MATHVISION / "expert_traces.jsonl")], expert_image_root=MATHVISION,
                             tokenizer=require(QWEN_PROCESSOR), pixels=PIXELS, progress=False, **kw))


def test_over_long_expert_row_is_rejected_with_its_reason(export):
    full = _build(export, "full")
    longest = full["tokens"]["max_total"]
    assert full["sft_rows"] >= 2 and longest > 0
    rows = pq.read_table(export / "full" / "sft.parquet").to_pylist()
    counter = TokenCounter(QWEN_PROCESSOR, PIXELS)
    totals = [counter.count(r)["total"] for r in rows]
    assert max(totals) == longest
    over = sum(t > longest - 1 for t in totals)

    cut = _build(export, "cut", max_length=longest - 1)
    assert cut["sft_rows"] == full["sft_rows"] - over
    assert cut["tokens"]["max_total"] <= longest - 1 and cut["tokens"]["max_length"] == longest - 1
    c = cut["candidates"][R.EXPERT_FILE]
    assert c["reject_reasons"].get(R.OVER_MAX_LENGTH) == over and c["in"] == c["kept"] + c["rejected"]
    rejects = [json.loads(line) for line in (export / "cut" / "rejects.jsonl").read_text().splitlines()]
    too_long = [r for r in rejects if r["reason"] == R.OVER_MAX_LENGTH]
    assert len(too_long) == over
    assert f"{longest} tokens" in too_long[0]["detail"] and f"max_length {longest - 1}" in too_long[0]["detail"]



def test_llamafactory_settings_match_the_recipe_beside_the_export(export):
    """LLaMA-Factory's defaults (32x32..768x768 pixels, cutoff_len 2048) differ from the recipe: the matching settings
    are written next to the export."""
    import yaml

    _build(export, "lf", max_length=21504)
    folder = export / "lf" / "llamafactory"
    lf = yaml.safe_load((folder / "rise_sft_train.yaml").read_text())
    assert (lf["image_min_pixels"], lf["image_max_pixels"]) == PIXELS
    assert (lf["cutoff_len"], lf["template"], lf["dataset"]) == (21504, "qwen2_vl", "rise_sft")
    assert lf["dataset_dir"] == str(folder.resolve()) and (folder / "dataset_info.json").is_file()
    assert (lf["freeze_vision_tower"], lf["freeze_multi_modal_projector"], lf["freeze_language_model"]) == (
        True, True, False)


def test_token_count_is_what_verls_sft_dataset_feeds_the_model(export):
    """The count (image tokens in the profile's pixel range included) equals the sequence RiseSFTDataset builds."""
    from omegaconf import OmegaConf
    from transformers import AutoProcessor

    from verl_rise.verl_ext.sft_dataset import RiseSFTDataset

    _build(export, "ds")
    path = export / "ds" / "sft.parquet"
    rows = pq.read_table(path).to_pylist()
    processor = AutoProcessor.from_pretrained(str(QWEN_PROCESSOR))
    config = OmegaConf.create({"max_length": 32768, "mm_processor_kwargs": {"min_pixels": PIXELS[0],
                                                                            "max_pixels": PIXELS[1]}})
    ds = RiseSFTDataset(str(path), processor.tokenizer, config, processor=processor)
    counter = TokenCounter(QWEN_PROCESSOR, PIXELS)
    checked = 0
    for i, row in enumerate(rows[:3]):
        if not row["images"]:
            continue
        assert int(ds[i]["attention_mask"].sum()) == counter.count(row)["total"]
        checked += 1
    assert checked


def test_command_line_needs_a_tokenizer_for_max_length(export, capsys):
    assert main(["build", "--export-dir", str(export / "export"), "--out", str(export / "cli"), "--max-length",
                 "100", "--no-progress"]) == 2
    assert "max_length needs a tokenizer" in capsys.readouterr().err
