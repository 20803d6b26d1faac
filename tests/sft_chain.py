"""Helpers for the CPU end-to-end SFT chain (tests/test_sft_e2e.py, fixture ``e2e_sft`` in tests/conftest.py).

The chain starts from what the ``e2e_grpo`` fixture left behind (the tiny Qwen2.5-VL's GRPO checkpoint after two
steps on real MATH-Vision rows) and runs Metis-RISE stage 2 with the project's own commands, each in a subprocess
exactly as a user would type it:

1. ``python -m verl.model_merger merge --backend fsdp`` on the RL checkpoint (HF format, the SFT initialisation);
2. a pass-rate export of real MATH-Vision rows (``python -m verl_rise.passrate ingest-dumps`` + ``export``);
3. ``python -m verl_rise.sft_data build`` (self-distillation + the real expert traces);
4. ``examples/rise_sft_cpu_tiny.sh`` (torchrun -m verl.trainer.sft_trainer, recipe rise_sft_cpu_tiny);
5. ``python -m verl.model_merger merge`` on the SFT checkpoint.

INTERIM (step 2): the post-RL sweep with verl itself (a ``trainer.val_only`` main_ppo run from the checkpoint) is
being added as its own session fixture on another branch. Until it lands, :func:`sample_validation_dumps` stands in
for it without another trainer start: it samples k responses per prompt from the MERGED RL checkpoint with HF
transformers (the same chat template, images and pixel range as the cpu_tiny rollout), scores them with the sweep's
own reward (:func:`verl_rise.passrate.sweep_reward.compute_score`) and writes verl's validation-dump JSONL layout,
which ``python -m verl_rise.passrate ingest-dumps`` then reads like a real sweep dump. Pass rates are therefore the
RL model's real ones on real rows; only the sampler is not verl's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tests.e2e_support import CPU_TINY_MM_KWARGS, row_messages
from tests.paths import REPO_ROOT

#: MATH-Vision train problems (ids) with real expert traces the builder keeps (choice and free-form); swept as
#: candidates for the hard bucket. The tiny policy answers with an option letter, so free-form ones stay hard.
EXPERT_TRACED = ("19", "87", "98", "326", "365")


@dataclass
class Command:
    """One subprocess of the chain and what it printed."""

    args: list[str]
    returncode: int
    seconds: float
    log: Path

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def child_env(extra: dict | None = None) -> dict:
    """The environment of a chain subprocess: this checkout first on PYTHONPATH, no inherited platform choice."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["HYDRA_FULL_ERROR"] = "1"
    env.update(extra or {})
    return env


def run(args: Sequence[str], log: Path, *, timeout: float = 600, env: dict | None = None, cwd: Path | None = None
        ) -> Command:
    """Run ``args`` with stdout+stderr to ``log``; the whole process tree is killed after ``timeout`` seconds.

    Raises:
        subprocess.TimeoutExpired: the command ran longer than ``timeout``.
    """
    from tests.e2e_support import _kill_tree

    start = time.monotonic()
    with open(log, "w") as out:
        out.write(" ".join(map(str, args)) + "\n")
        out.flush()
        proc = subprocess.Popen(list(map(str, args)), stdout=out, stderr=subprocess.STDOUT,
                                env=env or child_env(), cwd=cwd or REPO_ROOT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            raise
    return Command(list(map(str, args)), proc.returncode, time.monotonic() - start, log)


def merge_fsdp_checkpoint(local_dir: Path, target_dir: Path, log: Path) -> Command:
    """verl's model merger: ``python -m verl.model_merger merge --backend fsdp --local_dir D --target_dir T``."""
    return run([sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                "--local_dir", local_dir, "--target_dir", target_dir], log)


def sweep_rows(train_rows: list[dict], rl_rows: list[dict]) -> list[dict]:
    """The prompts of the interim sweep: the RL run's training prompts, then the EXPERT_TRACED problems.

    Args:
        train_rows: MATH-V ``id`` -> data_prep row (tests.sft_export_fixture.train_rows), as a dict.
        rl_rows: the rows the RL run trained on (e2e_grpo.train_rows).
    """
    chosen = list(rl_rows)
    seen = {r["extra_info"]["prompt_id"] for r in chosen}
    for problem_id in EXPERT_TRACED:
        row = train_rows[problem_id]
        if row["extra_info"]["prompt_id"] not in seen:
            chosen.append(row)
            seen.add(row["extra_info"]["prompt_id"])
    return chosen


def sample_validation_dumps(model_dir: Path, rows: list[dict], out_dir: Path, *, k: int = 8,
                            max_new_tokens: int = 32, seed: int = 0, step: int = 1) -> Path:
    """INTERIM stand-in for the verl post-RL sweep (module docstring): k sampled responses per row -> a dump file.

    Each line has the layout of verl's validation dump (trainer_base.py ``_write_generations``): ``input``,
    ``output``, ``gts``, ``score``, ``reward``, ``step``, ``uid`` (``<prompt>_<sample>_0``, one session per sample)
    and the keys of :func:`verl_rise.passrate.sweep_reward.compute_score` (``acc``, ``format``, ``pred``,
    ``reason``, ``prompt_id``).

    Returns:
        ``out_dir / f"{step}.jsonl"``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from verl_rise.passrate.sweep_reward import compute_score

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tok = processor.tokenizer
    # As verl's vLLM server and the hf rollout do: vision placeholders can never be sampled.
    banned = [[tok.convert_tokens_to_ids(t)] for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>")]
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{step}.jsonl"
    lines = []
    for row in rows:
        messages, images = row_messages(row)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
        with torch.no_grad():
            generated = model.generate(**inputs, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                       max_new_tokens=max_new_tokens, num_return_sequences=k,
                                       bad_words_ids=banned, pad_token_id=tok.pad_token_id)
        prompt_len = inputs["input_ids"].shape[1]
        for i, ids in enumerate(generated[:, prompt_len:]):
            output = tok.decode(ids, skip_special_tokens=True)
            gt = row["reward_model"]["ground_truth"]
            scored = compute_score(row["data_source"], output, gt, extra_info=dict(row["extra_info"]))
            lines.append({"input": text, "output": output, "gts": gt, "score": scored["score"],
                          "reward": scored["score"], "step": step, **scored,
                          "uid": f"{row['extra_info']['prompt_id']}_{i}_0"})
    dest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return dest


def read_metrics(path: Path) -> dict[int, dict]:
    """verl's file-logger JSONL (``VERL_FILE_LOGGER_PATH``) -> {step: merged metrics}."""
    merged: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                merged.setdefault(item["step"], {}).update(item["data"])
    return merged
