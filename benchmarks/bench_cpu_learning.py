"""Learning sanity of the CPU backend: GRPO through verl's main_ppo must learn a trivially learnable task.

Task ("answer with digits only", verifiable by a rule): every prompt is a tiny picture plus "Reply with digits
only."; the reward is the fraction of the response's non-space characters that are digits (0 for an empty
response). A freshly initialised tiny Qwen2.5-VL (``verl_rise.tiny_model --no-files``: 512-token byte-level BPE, so a
random policy writes a few digit tokens by chance) starts near the digit share of its vocabulary; a working loop
(rollouts -> rewards -> GRPO advantages -> policy-gradient update -> weights back into the rollout) drives the mean
reward to >= 0.8. A sign error or a broken weight sync leaves it flat. This is a check of the plumbing, not of
Metis-RISE.

Everything but the task runs as the cpu_tiny profile does (recipes/rise_grpo_cpu_tiny.yaml: hf rollout, CPU
platform, FSDP2, GRPO with clip-higher and token-mean loss, n=8); the overrides only size the task (short prompts
and responses, 8 prompts per step) and raise the learning rate to 1e-2 for a 0.4M-parameter model.

Prints the reward curve, the starting level, the first step at >= 0.8, and writes the curve as PNG.
Exit code 1 when the target is not reached within ``--steps``.

Usage::

    python benchmarks/bench_cpu_learning.py [--steps 30] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

TARGET = 0.8
DATA_SOURCE = "bench/digits_only"


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """Reward of the task: share of digit characters among the response's non-space characters.

    Returns ``{"score": float in [0, 1], "acc": 1.0 if the response is all digits else 0.0}``.
    """
    chars = [c for c in solution_str if not c.isspace()]
    share = sum(c.isdigit() for c in chars) / len(chars) if chars else 0.0
    return {"score": share, "acc": float(bool(chars) and share == 1.0)}


def _write_prompts(path: Path, n: int, seed: int) -> None:
    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        buf = io.BytesIO()
        side = int(rng.choice([56, 84, 112]))  # 4, 9 or 16 visual tokens
        Image.fromarray(rng.integers(0, 255, (side, 56, 3), dtype=np.uint8)).save(buf, format="PNG")
        rows.append({
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": "<image>Reply with digits only."}],
            "images": [{"bytes": buf.getvalue(), "path": f"bench_{i}.png"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": ""},
            # prompt_id: the recipe records pass rates per prompt (rise_grpo's tracker keys on it).
            "extra_info": {"index": i, "split": "train", "prompt_id": f"bench-digits-{i}"},
        })
    pd.DataFrame(rows).to_parquet(path)


def _plot(curve: list[tuple[int, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s for s, _ in curve], [r for _, r in curve], marker="o")
    ax.axhline(TARGET, color="gray", linestyle="--", label=f"target {TARGET}")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward (digit share)")
    ax.set_ylim(0, 1.02)
    ax.set_title("CPU backend learning sanity: verl main_ppo + hf rollout")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="GRPO steps (the bound for reaching the target)")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (model, data, logs)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vr-learn-"))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, work: Path) -> int:
    from verl_rise.recipes import RECIPES_DIR
    from verl_rise.tiny_model import build_tiny_model
    from verl_rise.verl_commands import run_main_ppo

    model = build_tiny_model(work / "tiny", processor_dir=None, seed=args.seed)
    _write_prompts(work / "prompts.parquet", 64, args.seed)
    run = run_main_ppo(
        RECIPES_DIR, "rise_grpo_cpu_tiny",
        [
            f"data.train_files={work / 'prompts.parquet'}",
            f"data.val_files={work / 'prompts.parquet'}",
            f"actor_rollout_ref.model.path={model}",
            f"trainer.default_local_dir={work / 'ckpt'}",
            f"reward.custom_reward_function.path={Path(__file__).resolve()}",
            "reward.custom_reward_function.name=compute_score",
            "data.max_prompt_length=96",
            "data.max_response_length=8",
            "data.train_batch_size=8",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            f"actor_rollout_ref.actor.optim.lr={args.lr}",
            f"trainer.total_training_steps={args.steps}",
            "trainer.save_freq=-1",
            "trainer.test_freq=-1",
        ],
        work,
        "learning",
        timeout=3600,
    )
    if run.returncode != 0:
        print(run.log_tail(60))
        print(f"trainer failed (rc={run.returncode}), log: {run.log_path}")
        return 2
    curve = [(step, data["critic/score/mean"]) for step, data in run.metrics.items() if "critic/score/mean" in data]
    seconds = [data["timing_s/step"] for data in run.metrics.values() if "timing_s/step" in data]
    print("step  mean_reward")
    for step, reward in curve:
        print(f"{step:4d}  {reward:.3f}  {'#' * round(40 * reward)}")
    reached = next((s for s, r in curve if r >= TARGET), None)
    start = curve[0][1]
    best = max(r for _, r in curve)
    png = args.out / "cpu_learning_curve.png"
    _plot(curve, png)
    print(f"start reward {start:.3f}; best {best:.3f}; target {TARGET} first reached at step "
          f"{reached if reached is not None else 'never'} of {args.steps}; "
          f"{sum(seconds) / len(seconds):.1f} s/step; trainer wall {run.seconds:.0f} s; curve: {png}")
    return 0 if reached is not None else 1


if __name__ == "__main__":
    sys.exit(main())
