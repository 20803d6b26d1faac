"""The SFT parquet through verl 0.9.1's REAL MultiTurnSFTDataset with the real Qwen2.5-VL processor, and the
LLaMA-Factory export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, rise, write_export, write_text_only
from data_prep.prompts import METIS_RISE_SYSTEM_PROMPT
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.stats import TokenCounter

TRACED = ("19", "87", "98", "326", "365")  # problems with real expert traces (choice and free-form)


@pytest.fixture(scope="module")
def sft(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verlsft")
    rl = convert_train(tmp)
    pid = mathvision_prompt_ids(rl)
    buckets = {pid[i]: "hard" for i in TRACED} | {pid["1"]: "inconsistent"}
    responses = {pid["1"]: [{"response": rise("Each number is ten less than the one before: 70 - 10 = 60.", "60"),
                             "score": 1.0, "step": 3}]}
    write_export(rl, tmp / "export", buckets, responses)
    text = write_text_only(tmp)
    out = tmp / "out"
    stats = build(BuildConfig(export_dir=tmp / "export", out_dir=out, expert_key="mathvision",
                              expert_files=[require(MATHVISION / "expert_traces.jsonl")], text_only=text,
                              tokenizer=require(QWEN_PROCESSOR), progress=False))
    return stats, out


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(require(QWEN_PROCESSOR)))


def test_all_sources_present(sft):
    stats, _ = sft
    by_source = stats["rows_by_source"]
    assert by_source[R.SELF_DISTILLED] == 1 and by_source[R.EXPERT_FILE] >= len(TRACED)
    assert by_source[R.TEXT_ONLY] == 5 and stats["candidates"][R.TEXT_ONLY]["reject_reasons"] == {R.NO_REASONING: 1}
    assert stats["tokens"]["by_source"][R.TEXT_ONLY]["image"]["max"] == 0


def test_multiturn_sft_dataset_reads_the_parquet(sft, processor):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    _, out = sft
    path = out / "sft.parquet"
    rows = pq.read_table(path).to_pylist()
    ds = MultiTurnSFTDataset(str(path), processor.tokenizer, OmegaConf.create({"max_length": 4096}),
                             processor=processor)
    assert len(ds) == len(rows)
    tok = processor.tokenizer
    pad_id = tok.convert_tokens_to_ids("<|image_pad|>")
    counter = TokenCounter(require(QWEN_PROCESSOR))
    merge = processor.image_processor.merge_size
    sources = set()
    for i, row in enumerate(rows):
        item = ds[i]
        ids, attn, loss = item["input_ids"], item["attention_mask"], item["loss_mask"]
        n = int(attn.sum())
        expected = counter.count(row)
        assert n == expected["total"], "stats token lengths must equal what verl feeds the model"
        n_pad = int((ids[:n] == pad_id).sum())
        if row["images"]:
            thw = item["multi_modal_inputs"]["image_grid_thw"]
            assert thw.shape[0] == len(row["images"])
            assert n_pad == int(thw.prod(-1).sum()) // merge**2 == expected["image"] > 0
            assert item["position_ids"].shape == (4, ids.shape[0])
        else:
            assert n_pad == 0
        # The loss covers exactly the assistant part: its content and the closing <|im_end|>.
        where = torch.nonzero(loss).flatten()
        assert int(where[0]) == expected["prompt"] and int(where[-1]) == n - 1
        assert int(loss.sum()) == expected["response"] == n - expected["prompt"]
        assert tok.decode(ids[loss.bool()]) == row["messages"][-1]["content"] + "<|im_end|>\n"
        assert tok.decode(ids[:n]).count("<|im_start|>system\n" + METIS_RISE_SYSTEM_PROMPT) == 1
        sources.add(row["extra_info"]["sft_source"])
    assert sources == {R.SELF_DISTILLED, R.EXPERT_FILE, R.TEXT_ONLY}


def test_mixed_text_and_image_batches_collate_with_the_mixed_modal_dataset(sft, processor):
    from omegaconf import OmegaConf
    from verl.utils.dataset.dataset_utils import DatasetPadMode, SFTTensorCollator
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    from verl.utils.import_utils import load_extern_object
    from verl.utils.model import extract_multi_modal_inputs

    _, out = sft
    path = str(out / "sft.parquet")
    rows = pq.read_table(path).to_pylist()
    text = next(i for i, r in enumerate(rows) if not r["images"])
    image = next(i for i, r in enumerate(rows) if r["images"])
    config = OmegaConf.create({"max_length": 4096, "pad_mode": "no_padding"})
    collate = SFTTensorCollator(DatasetPadMode.NO_PADDING)
    plain = MultiTurnSFTDataset(path, processor.tokenizer, config, processor=processor)
    with pytest.raises(KeyError, match="multi_modal_inputs"):  # verl 0.9.1: a text row first breaks the batch
        collate([plain[text], plain[image]])
    # The class verl's trainer loads from `data.custom_cls` (same loader, same arguments as sft_trainer.py).
    cls = load_extern_object("pkg://verl_rise.verl_ext.sft_dataset", "MixedModalSFTDataset")
    ds = cls(parquet_files=path, tokenizer=processor.tokenizer, config=config, processor=processor, max_samples=-1)
    grid = ds[image]["multi_modal_inputs"]["image_grid_thw"]
    for order in ([text, image], [image, text]):
        batch = collate([ds[i] for i in order])
        mm = extract_multi_modal_inputs([batch["multi_modal_inputs"][j] for j in range(len(order))])
        assert torch.equal(mm["image_grid_thw"], grid)  # the image row's inputs survive, the text row adds none
        assert mm["pixel_values"].shape[0] == int(grid.prod())
    assert ds[text]["multi_modal_inputs"] is None


def test_llamafactory_export(sft):
    import datasets

    stats, out = sft
    lf = out / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text())
    assert info == {"rise_sft": {"file_name": "rise_sft.json", "formatting": "sharegpt",
                                 "columns": {"messages": "messages", "images": "images"},
                                 "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                          "assistant_tag": "assistant", "system_tag": "system"}}}
    examples = json.loads((lf / "rise_sft.json").read_text())
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    assert len(examples) == len(rows) == stats["sft_rows"]
    for ex, row in zip(examples, rows):
        assert set(ex) == {"messages", "images"}
        assert [m["role"] for m in ex["messages"]] == ["system", "user", "assistant"]
        assert ex["messages"] == row["messages"]
        assert ex["messages"][1]["content"].count("<image>") == len(ex["images"]) == len(row["images"])
        for rel, image in zip(ex["images"], row["images"]):
            file = lf / rel
            assert not Path(rel).is_absolute() and file.is_file()  # relative to dataset_dir (= media_dir)
            assert file.read_bytes() == image["bytes"] and file.stem == hashlib.sha256(image["bytes"]).hexdigest()
    n_files = len(list((lf / "images").iterdir()))
    assert n_files == stats["llamafactory"]["images"] == len({r for ex in examples for r in ex["images"]})
    # LLaMA-Factory loads local files with `datasets` (json builder); the file must load as one table.
    loaded = datasets.load_dataset("json", data_files=str(lf / "rise_sft.json"), split="train")
    assert loaded.num_rows == len(examples) and set(loaded.column_names) == {"messages", "images"}


def _grid_pixels(item) -> list[int]:
    """Pixels of each image as the model sees it (grid of 14x14 patches)."""
    thw = item["multi_modal_inputs"]["image_grid_thw"]
    return [int(t * h * w) * 14 * 14 for t, h, w in thw.tolist()]


@pytest.mark.parametrize("lo, hi", [(3136, 100352), (200704, 401408)])
def test_rise_sft_dataset_resizes_images_into_the_pixel_range(sft, processor, lo, hi):
    """data.mm_processor_kwargs (the rise_sft recipes) reaches every image, shrinking and enlarging as needed."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    from verl.utils.import_utils import load_extern_object

    _, out = sft
    path = str(out / "sft.parquet")
    rows = pq.read_table(path).to_pylist()
    config = OmegaConf.create({"max_length": 4096, "mm_processor_kwargs": {"min_pixels": lo, "max_pixels": hi}})
    cls = load_extern_object("pkg://verl_rise.verl_ext.sft_dataset", "RiseSFTDataset")
    ds = cls(parquet_files=path, tokenizer=processor.tokenizer, config=config, processor=processor, max_samples=-1)
    plain = MultiTurnSFTDataset(path, processor.tokenizer, OmegaConf.create({"max_length": 4096}), processor=processor)
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    changed = 0
    for i, row in enumerate(rows):
        item = ds[i]
        if not row["images"]:
            assert item["multi_modal_inputs"] is None  # still the mixed-modality behaviour
            continue
        pixels = _grid_pixels(item)
        assert all(lo <= p <= hi for p in pixels), (i, pixels)
        # The prompt's visual tokens follow the resized image, and only the prompt changed: same loss tokens.
        assert int((item["input_ids"] == pad_id).sum()) == sum(pixels) // (28 * 28)
        reference = plain[i]
        assert torch.equal(item["input_ids"][item["loss_mask"].bool()],
                           reference["input_ids"][reference["loss_mask"].bool()])
        changed += pixels != _grid_pixels(reference)
    assert changed > 0
    # The parquet rows are not modified by the resizing (each image is copied into a fetch_image dict).
    assert pq.read_table(path).to_pylist() == rows


@pytest.mark.parametrize("kwargs, match", [
    ({"max_pixels": 100352}, "missing"),
    ({"min_pixels": 200, "max_pixels": 100}, "min_pixels <= max_pixels"),
    ({"min_pixels": 3136, "max_pixels": 100352, "do_resize": False}, "applies only"),
])
def test_rise_sft_dataset_rejects_a_bad_pixel_range(sft, processor, kwargs, match):
    from omegaconf import OmegaConf

    from verl_rise.verl_ext.sft_dataset import RiseSFTDataset

    _, out = sft
    config = OmegaConf.create({"max_length": 4096, "mm_processor_kwargs": kwargs})
    with pytest.raises(ValueError, match=match):
        RiseSFTDataset(str(out / "sft.parquet"), processor.tokenizer, config, processor=processor)


def test_rise_sft_dataset_without_a_range_is_verls_dataset(sft, processor):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from verl_rise.verl_ext.sft_dataset import RiseSFTDataset

    _, out = sft
    path = str(out / "sft.parquet")
    config = OmegaConf.create({"max_length": 4096})
    ours = RiseSFTDataset(path, processor.tokenizer, config, processor=processor)
    theirs = MultiTurnSFTDataset(path, processor.tokenizer, config, processor=processor)
    image = next(i for i, r in enumerate(pq.read_table(path).to_pylist()) if r["images"])
    assert ours.pixel_range is None
    assert torch.equal(ours[image]["input_ids"], theirs[image]["input_ids"])
    assert torch.equal(ours[image]["multi_modal_inputs"]["pixel_values"],
                       theirs[image]["multi_modal_inputs"]["pixel_values"])
