"""MATH-Vision converter on the real files in ../shared, and loading the result through verl's RLHFDataset."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import mathvision
from data_prep.images import RawImage
from data_prep.schema import IMAGE_PLACEHOLDER, LETTERS, compute_prompt_id, finalize_problem
from data_prep.prompts import MAX_PIXELS, METIS_RISE_SYSTEM_PROMPT, MIN_PIXELS

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MV = SHARED / "data" / "mathvision"
PROCESSOR_DIR = SHARED / "models" / "qwen2.5-vl-7b-instruct-processor"


def _raw(name: str) -> list[dict]:
    return [json.loads(line) for line in (MV / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("mv")
    results = {}
    for split, name in (("train", "train.jsonl"), ("test", "testmini.jsonl")):
        dest = out / f"{split}.parquet"
        code = mathvision.main(["-i", str(MV / name), "-o", str(dest), "--split", split, "--no-progress"])
        results[split] = (code, dest, out / f"{split}.rejects.jsonl")
    return results


@pytest.mark.parametrize("split,name,n", [("train", "train.jsonl", 400), ("test", "testmini.jsonl", 304)])
def test_real_files_convert_without_rejects(converted, split, name, n):
    code, dest, rejects = converted[split]
    assert code == 0
    assert rejects.read_text() == ""
    rows = pq.read_table(dest).to_pylist()
    raw = _raw(name)
    assert len(rows) == len(raw) == n
    assert [r["extra_info"]["index"] for r in rows] == list(range(n))
    assert len({r["extra_info"]["prompt_id"] for r in rows}) == n
    for r, src in zip(rows, raw):
        info = r["extra_info"]
        assert r["prompt"][0] == {"role": "system", "content": METIS_RISE_SYSTEM_PROMPT}
        assert r["prompt"][1]["role"] == "user"
        user = r["prompt"][1]["content"]
        assert user.count(IMAGE_PLACEHOLDER) == len(r["images"]) == 1
        assert r["ability"] == "math" and r["data_source"] == "MathLLMs/MathVision" and info["split"] == split
        assert r["reward_model"] == {"style": "rule", "ground_truth": src["answer"]}
        assert info["answer"] == src["answer"]
        if src["options"]:
            assert info["answer_type"] == "choice"
            assert info["answer"] in LETTERS[: len(src["options"])]
            assert "Options:" in user
        else:
            assert info["answer_type"] == "free_form" and info["options"] == [] and "Options:" not in user


def test_answer_type_counts_match_the_dataset_card(converted):
    # ../shared/README.md: train 221 free-form / 179 choice; testmini 114 free-form / 190 choice.
    for split, free, choice in (("train", 221, 179), ("test", 114, 190)):
        types = [r["answer_type"] for r in pq.read_table(converted[split][1], columns=["extra_info"]).column(0).to_pylist()]
        assert (types.count("free_form"), types.count("choice")) == (free, choice)


def test_markers_become_one_placeholder_at_the_first_marker(converted):
    rows = {r["extra_info"]["index"]: r for r in pq.read_table(converted["test"][1]).to_pylist()}
    raw = _raw("testmini.jsonl")
    by_id = {src["id"]: i for i, src in enumerate(raw)}
    cube = rows[by_id["59"]]["extra_info"]["question"]  # "<image1>\nIn the picture above ... <image2> ... <image3>?"
    assert cube.startswith(IMAGE_PLACEHOLDER + "\nIn the picture above")
    assert cube.count(IMAGE_PLACEHOLDER) == 1 and "<image2>" in cube and "<image4>" in cube
    ant = rows[by_id["33"]]["extra_info"]["question"]  # <image1> appears twice: only the first becomes <image>
    assert ant.startswith("When the ant <image> walks from home <image2>") and ant.count("<image1>") == 1
    # Options that are only picture markers become letter options; the marker-less question gets the image first.
    jorge = rows[by_id["2673"]]
    assert jorge["extra_info"]["options"] == list("ABCDE")
    assert jorge["prompt"][1]["content"].startswith(IMAGE_PLACEHOLDER + "\nJorge")
    plain = rows[by_id["4"]]["prompt"][1]["content"]
    assert plain == "How many different digits can you find in this picture?\n<image>"


def test_images_in_pixel_range_and_untouched_when_already_in_range(converted):
    rows = pq.read_table(converted["train"][1]).to_pylist()
    raw = _raw("train.jsonl")
    resized = 0
    for r, src in zip(rows, raw):
        data = r["images"][0]["bytes"]
        with Image.open(io.BytesIO(data)) as im:
            area = im.width * im.height
        assert MIN_PIXELS <= area <= MAX_PIXELS
        original = (MV / src["image"]).read_bytes()
        with Image.open(io.BytesIO(original)) as im:
            in_range = MIN_PIXELS <= im.width * im.height <= MAX_PIXELS
        assert (data == original) == in_range
        resized += not in_range
    assert resized > 0  # the real set has small images: the resize path really ran


def test_prompt_id_is_a_content_hash_stable_across_runs(converted, tmp_path):
    first = pq.read_table(converted["train"][1], columns=["extra_info"]).column(0).to_pylist()
    # A second run on a shuffled subset in another file gives every problem the same id.
    raw_lines = (MV / "train.jsonl").read_text(encoding="utf-8").splitlines()
    subset = tmp_path / "subset.jsonl"
    subset.write_text("\n".join(reversed(raw_lines[:25])) + "\n", encoding="utf-8")
    out = tmp_path / "subset.parquet"
    assert mathvision.main(["-i", str(subset), "--root", str(MV), "-o", str(out), "--no-progress"]) == 0
    again = pq.read_table(out, columns=["extra_info"]).column(0).to_pylist()
    assert [r["prompt_id"] for r in again] == [r["prompt_id"] for r in reversed(first[:25])]
    # And it is the documented hash of question, options, answer and the input image bytes.
    src = _raw("train.jsonl")[0]
    expected = compute_prompt_id(
        first[0]["question"], first[0]["options"], first[0]["answer"], [(MV / src["image"]).read_bytes()]
    )
    assert first[0]["prompt_id"] == expected
    recomputed = finalize_problem(mathvision.problem_from_record(src, MV)).prompt_id
    assert recomputed == expected


def test_prompt_id_changes_with_each_component():
    img = RawImage((MV / "images" / "1.jpg").read_bytes(), None)
    other = RawImage((MV / "images" / "2.jpg").read_bytes(), None)
    base = compute_prompt_id("Q <image>", ["x", "y"], "A", [img.data])
    assert base != compute_prompt_id("Q2 <image>", ["x", "y"], "A", [img.data])
    assert base != compute_prompt_id("Q <image>", ["x", "z"], "A", [img.data])
    assert base != compute_prompt_id("Q <image>", ["x", "y"], "B", [img.data])
    assert base != compute_prompt_id("Q <image>", ["x", "y"], "A", [other.data])


# ---- verl's real RLHFDataset with the real Qwen2.5-VL processor files ----


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(PROCESSOR_DIR))


@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_through_rlhf_dataset_with_matching_image_pad_tokens(converted, processor, split, tmp_path):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    dest = converted[split][1]
    config = OmegaConf.create(
        {"cache_dir": str(tmp_path / "cache"), "max_prompt_length": 16384, "filter_overlong_prompts": False}
    )
    ds = RLHFDataset(str(dest), processor.tokenizer, config, processor=processor)
    n = pq.ParquetFile(dest).metadata.num_rows
    assert len(ds) == n
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size
    # Every row builds its messages; a spread of rows (plus every multi-marker one) goes through the processor.
    multi = [i for i, src in enumerate(_raw("testmini.jsonl" if split == "test" else "train.jsonl"))
             if src["question"].count("<image") != 1]
    multi = set(multi[:8])  # the processor costs ~0.1 s a row: a sample of the multi-marker rows suffices
    checked = 0
    for i in range(n):
        item = ds[i]
        assert item["extra_info"]["prompt_id"] and item["index"] == i
        if i % 25 and i not in multi:
            continue
        messages = item["raw_prompt"]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        images, videos, audios = RLHFDataset._process_multi_modal_info(messages, ds.image_patch_size, config)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios)
        n_pad = int((inputs["input_ids"][0] == pad_id).sum())
        grid = inputs["image_grid_thw"]
        assert len(images) == 1 and grid.shape == (1, 3)
        assert n_pad == int(grid.prod(-1).sum()) // merge**2 > 0
        assert text.count("<|vision_start|>") == 1
        assert METIS_RISE_SYSTEM_PROMPT in text
        checked += 1
    assert checked >= 16


def test_generated_and_text_only_rows_load_through_rlhf_dataset(processor, tmp_path):
    """The generator's output (the main job's default input) and text-only rows work with the same processor."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    from data_prep import generator, text_only

    gen = tmp_path / "gen.parquet"
    assert generator.main(["--num", "8", "--seed", "11", "-o", str(gen), "--no-progress"]) == 0
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"problem": "What is 6 times 7?", "answer": "42"}) + "\n")
    txt = tmp_path / "t.parquet"
    assert text_only.main(["-i", str(src), "-o", str(txt), "--no-progress"]) == 0
    # filter_overlong_prompts=True runs verl's own length filter, which renders every row with the processor.
    config = OmegaConf.create({"cache_dir": str(tmp_path / "cache"), "max_prompt_length": 1024,
                               "filter_overlong_prompts": True,
                               # None: filter in-process. A worker pool forks after torch and the tokenizer
                               # have started threads, which can deadlock the children.
                               "filter_overlong_prompts_workers": None})
    ds = RLHFDataset([str(gen), str(txt)], processor.tokenizer, config, processor=processor)
    assert len(ds) == 9  # nothing was dropped as unreadable or too long
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for i in range(len(ds)):
        messages = ds[i]["raw_prompt"]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        images, videos, audios = RLHFDataset._process_multi_modal_info(messages, ds.image_patch_size, config)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios)
        n_pad = int((inputs["input_ids"][0] == pad_id).sum())
        if i < 8:
            assert n_pad == int(inputs["image_grid_thw"].prod(-1).sum()) // processor.image_processor.merge_size**2
            assert n_pad == 144  # a 336x336 canvas is 12x12 merged patches
        else:
            assert images is None and n_pad == 0 and "6 times 7" in text
