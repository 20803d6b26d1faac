"""``verl-rise demo``: the whole Metis-RISE schedule on a CPU, from nothing, in minutes.

On a machine with no GPU, no dataset and no model files:

1. generate the demo's two problem families (:mod:`verl_rise.demo.families`: *learnable*, which the base model
   solves sometimes, and *absent*, which it never solves), training prompts and fresh held-out draws;
2. build the tiny Qwen2.5-VL with its self-trained tokenizer (``python -m verl_rise.tiny_model --no-files``) and
   teach it the answer format with guessed answers (:mod:`verl_rise.demo.base_model`: the stand-in for an
   instruct model);
3. write the demo expert's worked solutions of the training problems (:func:`verl_rise.demo.families.worked_solution`);
4. run ``verl-rise run`` on ``<out>/demo.yaml``: RL (GRPO, verl main_ppo on the CPU backend) -> merge -> pass-rate
   sweep -> export -> SFT set -> SFT (verl sft_trainer) -> merge -> evaluation -> report, with the ``cpu_tiny``
   profiles;
5. print where the report is, its accuracy table (one column per family) and the effect targets
   (:mod:`verl_rise.demo.targets`).

``--seed N`` draws the problems, the held-out set, the tiny model's weights and every stage's sampling seed from N.
Rerunning the same command skips what is done (inputs and stages). On a machine with a GPU the demo only says what
it would do and how to run the real recipes (``--cpu`` runs it anyway).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import yaml
from rich.console import Console

#: Demo sizes: training and held-out problems per family (verl_rise.demo.families).
TRAIN_PER_FAMILY, TEST_PER_FAMILY = 24, 16
#: RL (GRPO): 6 prompts x 8 rollouts per step, one update per step. The training file alternates the families, so
#: every batch has three learnable prompts (one per colour: the colours cycle), whose groups carry the signal, and
#: three absent ones, whose groups are all wrong (advantage 0). Adam at 1e-4: at 1e-3 the answer format broke for
#: steps 3-9 (entropy 0.05 -> 0.45) and the policy ended answering "A" to every learnable prompt; at 5e-4 and above
#: it broke for good. Prompts are ~60 tokens (question, options, 16 visual tokens; no system prompt, see
#: prepare_inputs); responses up to 96 tokens: a guessed answer is ~25 tokens of the demo's 526-token BPE, a worked
#: solution ~70.
DEMO_RL_OVERRIDES = [
    "trainer.total_training_steps=30", "trainer.save_freq=30", "trainer.test_freq=10",
    "data.train_batch_size=6", "actor_rollout_ref.rollout.n=8", "actor_rollout_ref.actor.ppo_mini_batch_size=6",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=48",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=48",
    "data.max_prompt_length=128", "data.max_response_length=96", "data.val_batch_size=32",
    "actor_rollout_ref.actor.optim.lr=1e-4",
]
#: SFT: the settings measured to teach a colour word to the demo's model (issue 11's probe: lr 3e-3, batch 8).
DEMO_SFT_OVERRIDES = ["optim.lr=3e-3", "data.train_batch_size=8", "data.micro_batch_size_per_gpu=8",
                      "trainer.total_training_steps=120", "trainer.total_epochs=1000"]
#: The default ``--seed``: it draws the problems, the held-out sets, the model's initial weights and the run seeds.
DEFAULT_SEED = 0


def gpu_count() -> int:
    """Visible CUDA devices (0 when torch cannot see any)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA install counts as none
        return 0


def gpu_message(n: int) -> str:
    """What the demo would do, and how to run the real recipes, on a GPU machine."""
    return f"""This machine has {n} GPU(s). `verl-rise demo` is the CPU demo (a tiny random model, generated problems,
the cpu_tiny profiles); it would: generate {2 * TRAIN_PER_FAMILY} training and {2 * TEST_PER_FAMILY} held-out problems, build the
tiny model, and run RL -> merge -> pass-rate sweep -> export -> SFT set -> SFT -> merge -> eval -> report on the CPU.

On a GPU node run the real thing instead (README, "Run the real thing"):
  python -m data_prep.mathvision --input MATH-V/train.jsonl --output data/train.parquet
  python -m data_prep.mathvision --input MATH-V/testmini.jsonl --output data/testmini.parquet --split testmini
  cp examples/rise_7b.yaml my_run.yaml      # set model, data, expert source
  verl-rise run my_run.yaml --dry-run       # every command, for Slurm/Ray users
  verl-rise run my_run.yaml                 # 1 node x 8 GPUs, Qwen2.5-VL-7B (rise_grpo_7b / rise_sft_7b)

To run the CPU demo here anyway: verl-rise demo --cpu"""


def demo_config(out: Path, inputs: Path, recipes_dir: Optional[Path], seed: int = DEFAULT_SEED) -> dict:
    """The run configuration of the demo (written to ``<out>/demo.yaml``); ``seed`` seeds every stage's sampling."""
    config = {
        "run_dir": str(out / "run"),
        "model": str(inputs / "base_model"),
        "data": {"train": str(inputs / "train.parquet"), "held_out": {"demo_test": str(inputs / "test.parquet")}},
        "expert": {"files": [str(inputs / "expert.jsonl")], "key": "prompt_id"},
        "profiles": {"rl": "rise_grpo_cpu_tiny", "sft": "rise_sft_cpu_tiny"},
        # 8 samples per prompt: a prompt solved 1 time in 3 lands in "hard" with probability (2/3)^8 = 4 %.
        "sweep": {"k": 8},
        "launch": {"sft_nproc_per_node": 1},
        "overrides": {
            # The sweep's and evaluation's validation-only runs start from the RL overrides too (same response cap
            # and seed), and with no overrides of their own the RL run's validation gives the base and RL rows.
            "rl": DEMO_RL_OVERRIDES + [f"actor_rollout_ref.rollout.seed={seed}", f"data.seed={seed}"],
            "sft": DEMO_SFT_OVERRIDES + [f"trainer.seed={seed}"],
        },
    }
    if recipes_dir is not None:
        config["recipes_dir"] = str(recipes_dir)
    return config


def _step(console: Console, what: str, target: Path, make: Callable[[], object]) -> None:
    if target.exists():
        console.print(f"[dim]= {what}: {target} exists[/]")
        return
    start = time.monotonic()
    make()
    console.print(f"[green]✓[/] {what} ({time.monotonic() - start:.0f}s): {target}")


def prepare_inputs(inputs: Path, console: Console, seed: int = DEFAULT_SEED) -> None:
    """Generate the problems, the base model and the demo expert file under ``inputs`` (skipping what exists).

    The demo's rows have no system prompt. The Metis-RISE prompt is ~250 tokens of the demo's BPE, 85 % of each
    prompt, which a 2-layer model with 64-wide states cannot read; it only dilutes the 16 visual tokens that GRPO's
    signal at the answer position has to come from (measured on the demo's model: held-out learnable accuracy
    stayed at 0.31-0.38 for 30-40 GRPO steps with it, and rose 0.25 -> 0.69 in 20 without it). The answer format is
    the base model's (:mod:`verl_rise.demo.base_model`), as an instruct model's would be. Real runs keep the prompt
    (``python -m data_prep.mathvision`` writes it by default).
    """
    import pandas as pd

    from verl_rise.demo import families
    from verl_rise.demo.base_model import warm_up
    from verl_rise.tiny_model import build_tiny_model

    inputs.mkdir(parents=True, exist_ok=True)
    train_counts = {f: TRAIN_PER_FAMILY for f in families.FAMILIES}
    test_counts = {f: TEST_PER_FAMILY for f in families.FAMILIES}

    def held_out() -> None:
        train_ids = frozenset(r["prompt_id"] for r in pd.read_parquet(inputs / "train.parquet").extra_info)
        families.write_split(inputs / "test.parquet", test_counts, "test", seed, exclude_prompt_ids=train_ids,
                             system_prompt=None)

    _step(console, f"{2 * TRAIN_PER_FAMILY} training problems, learnable and absent (python -m "
          f"verl_rise.demo.families --seed {seed})", inputs / "train.parquet",
          lambda: families.write_split(inputs / "train.parquet", train_counts, "train", seed, system_prompt=None))
    _step(console, f"{2 * TEST_PER_FAMILY} held-out problems (fresh draws of both families)", inputs / "test.parquet",
          held_out)
    _step(console, "tiny Qwen2.5-VL with a self-trained tokenizer (python -m verl_rise.tiny_model --no-files)",
          inputs / "tiny_model", lambda: build_tiny_model(inputs / "tiny_model", seed=seed))
    _step(console, "base model: the tiny model taught the answer format with guessed answers",
          inputs / "base_model", lambda: warm_up(inputs / "tiny_model", inputs / "train.parquet",
                                                 inputs / "base_model", seed=seed))
    _step(console, "demo expert: worked solutions of the training problems", inputs / "expert.jsonl",
          lambda: families.write_expert_file(inputs / "expert.jsonl", train_counts, seed))


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    parser.add_argument("--cpu", action="store_true", help="run the CPU demo even when a GPU is visible")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="draws the problems, held-out sets, model weights and run seeds (default 0)")
    parser.add_argument("--recipes-dir", type=Path, default=None,
                        help="recipes to use (default: the installed verl_rise.recipes)")


def cmd_demo(args: argparse.Namespace) -> int:
    """Entry of ``verl-rise demo``; returns the exit status of the schedule (0 done)."""
    from verl_rise.schedule.command import execute
    from verl_rise.schedule.config import load_config

    console = Console(stderr=True, soft_wrap=True)
    n = gpu_count()
    if n and not args.cpu:
        print(gpu_message(n))
        return 0
    out = args.out.resolve()
    if args.fresh and out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    inputs = out / "inputs"
    prepare_inputs(inputs, console, args.seed)
    config_path = out / "demo.yaml"
    config_path.write_text(yaml.safe_dump(demo_config(out, inputs, args.recipes_dir, args.seed), sort_keys=False))
    console.print(f"run configuration: {config_path}  (the same as `verl-rise run {config_path}`)")
    code = execute(load_config(config_path), console=console)
    summary_path = out / "run" / "report" / "summary.json"
    if code == 0 and summary_path.is_file():
        import json

        from verl_rise.demo.targets import check_targets

        console.print("effect targets (verl_rise/demo/targets.py) on the held-out families:")
        for target in check_targets(json.loads(summary_path.read_text())):
            console.print(f"  {target.line()}")
    console.print(f"demo wall time {time.monotonic() - start:.0f}s")
    return code
