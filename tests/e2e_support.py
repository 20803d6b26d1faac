"""Helpers for the CPU end-to-end GRPO test (tests/test_e2e_grpo_cpu.py): policy priming, trainer runs, log parsing.

Why prime: a randomly initialised policy never writes ``<think>..</think><answer>..\\boxed{..}</answer>``, so every
RISE reward is 0, every GRPO advantage is 0 and the actor update is a no-op. :func:`prime_policy` fits the tiny
model for a few seconds (teacher forcing on the training prompts, images included) to answer in the Metis-RISE
format with a random option letter, the right one half of the time. Its rollouts then get rewards that differ
within a group, so the e2e run exercises non-zero advantages and a real policy-gradient step.

Speed tricks: all lm_head rows outside the few tokens of the answer template are set to zero, so their logits are
exactly 0 for any hidden state and the full-vocabulary softmax is exactly ``logsumexp(template logits, log N_rest)``:
training costs the template's 20-odd rows instead of Qwen's 152k. Only the decoder layers and those rows are
trained (embeddings and vision tower stay random), and each prompt's KV cache is shared by its answers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tests.paths import REPO_ROOT

RECIPES_DIR = REPO_ROOT / "recipes"

#: Image pixel range of the cpu_tiny recipe (data.mm_processor_kwargs).
CPU_TINY_MM_KWARGS = {"min_pixels": 3136, "max_pixels": 100352}


def answer_template(letter: str) -> str:
    """A Metis-RISE formatted answer (format reward 1) choosing ``letter``."""
    return f"<think> ok </think><answer> $\\boxed{{{letter}}}$ </answer>"


def row_messages(row: dict) -> tuple[list[dict], list[Any]]:
    """Chat messages and PIL images of an RL parquet row, as verl's RLHFDataset builds them (``<image>`` -> image
    content item, in order)."""
    from PIL import Image

    images = [Image.open(io.BytesIO(img["bytes"])).convert("RGB") for img in row["images"]]
    messages = []
    for msg in row["prompt"]:
        content = msg["content"]
        if "<image>" not in content:
            messages.append({"role": msg["role"], "content": content})
            continue
        parts = []
        for i, piece in enumerate(content.split("<image>")):
            if i > 0:
                parts.append({"type": "image"})
            if piece:
                parts.append({"type": "text", "text": piece})
        messages.append({"role": msg["role"], "content": parts})
    return messages, images


def prime_policy(model_dir: Path, rows: list[dict], out_dir: Path, steps: int = 100, seed: int = 0,
                 lr: float = 1e-2) -> Path:
    """Fit the tiny model to answer each multiple-choice row in the Metis-RISE format (see module docstring).

    Args:
        model_dir: tiny Qwen2.5-VL (HF format).
        rows: RL parquet rows (dicts) whose ground truth is an option letter A-E.
        out_dir: where the primed model (and the processor files) are written.
        steps: Adam steps over all rows.

    Returns:
        ``out_dir``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(str(model_dir))
    tok = processor.tokenizer
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32)
    letters = "ABCDE"
    responses = {c: tok(answer_template(c) + "<|im_end|>", add_special_tokens=False)["input_ids"] for c in letters}
    subset = sorted({t for ids in responses.values() for t in ids})
    sub = torch.tensor(subset)
    remap = {t: i for i, t in enumerate(subset)}
    lm = model.lm_head.weight
    rest = torch.ones(lm.shape[0], dtype=torch.bool)
    rest[sub] = False
    log_rest = torch.log(torch.tensor(float(rest.sum())))
    # Train only the decoder layers and the template's lm_head rows (a separate small parameter, written back at the
    # end): the 152k-row embedding/lm_head and the vision tower stay as initialised, which keeps a step cheap.
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.model.language_model.layers.parameters():
        p.requires_grad_(True)
    head = torch.nn.Parameter(lm[sub].detach().clone())

    batches = []
    for row in rows:
        answer = row["reward_model"]["ground_truth"]
        if answer not in letters:
            raise ValueError(f"prime_policy needs option-letter rows, got ground truth {answer!r}")
        messages, images = row_messages(row)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        x = processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
        choices = [answer] * 4 + [c for c in letters if c != answer]  # right half of the time
        batches.append(dict(
            prompt={k: x[k] for k in ("input_ids", "mm_token_type_ids", "pixel_values", "image_grid_thw")},
            responses=torch.tensor([responses[c] for c in choices]),
            targets=torch.tensor([[remap[t] for t in responses[c]] for c in choices]),
        ))
    optimizer = torch.optim.Adam([head, *model.model.language_model.layers.parameters()], lr=lr)
    for _ in range(steps):
        loss = 0.0
        for b in batches:
            # The prompt (image included) runs once; its KV cache is shared by all answers of the row.
            pre = model.model(**b["prompt"], use_cache=True)
            n = b["responses"].shape[0]
            cache = pre.past_key_values
            cache.batch_repeat_interleave(n)
            post = model.model(input_ids=b["responses"][:, :-1], past_key_values=cache, use_cache=True)
            hidden = torch.cat([pre.last_hidden_state[:, -1:].expand(n, -1, -1), post.last_hidden_state], dim=1)
            logits = hidden @ head.T
            full = torch.cat([logits, log_rest.expand(*logits.shape[:-1], 1)], dim=-1)
            loss = loss + torch.nn.functional.cross_entropy(full.reshape(-1, full.shape[-1]), b["targets"].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        lm[rest] = 0.0
        lm[sub] = head
    for p in model.parameters():
        p.requires_grad_(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    processor.save_pretrained(str(out_dir))
    model.generation_config.save_pretrained(str(out_dir))
    return out_dir


@dataclass
class TrainerRun:
    """One ``python -m verl.trainer.main_ppo`` subprocess and what it left behind."""

    returncode: int
    seconds: float
    log_path: Path
    metrics: list[dict] = field(default_factory=list)  # verl file-logger lines: {"step": int, "data": {...}}
    trace: list[dict] = field(default_factory=list)  # hf rollout trace events

    def log_tail(self, n: int = 80) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def step_metrics(self, step: int) -> dict:
        merged: dict = {}
        for line in self.metrics:
            if line["step"] == step:
                merged.update(line["data"])
        return merged


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the trainer and every process it started (Ray's GCS, raylet and workers are its descendants)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.kill()
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def run_main_ppo(config_name: str, overrides: list[str], workdir: Path, tag: str, timeout: float = 900,
                 extra_env: Optional[dict] = None, on_poll: Optional[Callable[[int], None]] = None,
                 poll_seconds: float = 0.5) -> TrainerRun:
    """Run verl's trainer with a recipe from recipes/ and collect its file-logger metrics and hf rollout trace.

    The verl file logger writes to ``workdir/<tag>.metrics.jsonl`` and the hf rollout to ``workdir/<tag>.trace.jsonl``.
    ``on_poll(pid)`` is called every ``poll_seconds`` while the trainer runs (benchmarks sample memory with it).

    Raises:
        subprocess.TimeoutExpired: the trainer ran longer than ``timeout`` seconds (it is killed first).
    """
    metrics_path = workdir / f"{tag}.metrics.jsonl"
    trace_path = workdir / f"{tag}.trace.jsonl"
    log_path = workdir / f"{tag}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["VERL_FILE_LOGGER_PATH"] = str(metrics_path)
    env["HYDRA_FULL_ERROR"] = "1"
    env.update(extra_env or {})
    cmd = [
        sys.executable, "-m", "verl.trainer.main_ppo",
        "--config-path", str(RECIPES_DIR), "--config-name", config_name,
        "trainer.logger=[console,file]",
        f"+actor_rollout_ref.rollout.engine_kwargs.hf.trace_path={trace_path}",
        *overrides,
    ]
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    raise subprocess.TimeoutExpired(cmd, timeout)
                if on_poll is not None:
                    on_poll(proc.pid)
                time.sleep(poll_seconds)
        finally:
            if proc.poll() is None:
                _kill_tree(proc)
    return TrainerRun(proc.returncode, time.monotonic() - start, log_path, read_jsonl(metrics_path),
                      read_jsonl(trace_path))


def choice_rows(rows: list[dict], n: int) -> list[dict]:
    """The first ``n`` rows whose ground truth is an option letter."""
    picked = [r for r in rows if r["reward_model"]["ground_truth"] in list("ABCDE")][:n]
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} multiple-choice rows, need {n}")
    return picked

