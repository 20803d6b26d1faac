"""``verl-rise demo``: the whole Metis-RISE schedule on a CPU, from nothing, in minutes.

On a machine with no GPU, no dataset and no model files:

1. generate the built-in visual math problems (``python -m data_prep.generator``): training prompts and a held-out
   test set (different seeds);
2. build the tiny Qwen2.5-VL with its self-trained tokenizer (``python -m verl_rise.tiny_model --no-files``) and
   teach it the answer format with guessed answers (:mod:`verl_rise.demo.base_model`: the stand-in for an
   instruct model);
3. write the demo expert's worked solutions (:mod:`verl_rise.demo.expert`, generated data only);
4. run ``verl-rise run`` on ``<out>/demo.yaml``: RL (GRPO, verl main_ppo on the CPU backend) -> merge -> pass-rate
   sweep -> export -> SFT set -> SFT (verl sft_trainer) -> merge -> evaluation -> report, with the ``cpu_tiny``
   profiles;
5. print where the report is and its accuracy table.

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

#: Demo sizes: 16 training prompts (8 GRPO steps would see each once; the demo runs 4), 8 held-out prompts.
TRAIN_PROMPTS, TEST_PROMPTS, TRAIN_SEED, TEST_SEED = 16, 8, 0, 1


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
the cpu_tiny profiles); it would: generate {TRAIN_PROMPTS} training and {TEST_PROMPTS} held-out problems, build the
tiny model, and run RL -> merge -> pass-rate sweep -> export -> SFT set -> SFT -> merge -> eval -> report on the CPU.

On a GPU node run the real thing instead (README, "Run the real thing"):
  python -m data_prep.mathvision --input MATH-V/train.jsonl --output data/train.parquet
  python -m data_prep.mathvision --input MATH-V/testmini.jsonl --output data/testmini.parquet --split testmini
  cp examples/rise_7b.yaml my_run.yaml      # set model, data, expert source
  verl-rise run my_run.yaml --dry-run       # every command, for Slurm/Ray users
  verl-rise run my_run.yaml                 # 1 node x 8 GPUs, Qwen2.5-VL-7B (rise_grpo_7b / rise_sft_7b)

To run the CPU demo here anyway: verl-rise demo --cpu"""


def demo_config(out: Path, inputs: Path, recipes_dir: Optional[Path]) -> dict:
    """The run configuration of the demo (written to ``<out>/demo.yaml``)."""
    config = {
        "run_dir": str(out / "run"),
        "model": str(inputs / "base_model"),
        "data": {"train": str(inputs / "train.parquet"), "held_out": {"gen_test": str(inputs / "test.parquet")}},
        "expert": {"files": [str(inputs / "expert.jsonl")], "key": "prompt_id"},
        "profiles": {"rl": "rise_grpo_cpu_tiny", "sft": "rise_sft_cpu_tiny"},
        "sweep": {"k": 4},
        "launch": {"sft_nproc_per_node": 1},
        "overrides": {
            # 4 GRPO steps of 2 prompts x 8 rollouts. The self-trained 526-token BPE spends more tokens than Qwen's:
            # generated prompts are 360-450 tokens with their image (cpu_tiny's 384 would drop half of them, and a
            # dropped prompt gets no pass rate), a guessed answer ~30 and a worked solution ~80. A learning rate a
            # 64-wide model notices in 4 steps.
            "rl": ["trainer.total_training_steps=4", "trainer.save_freq=4", "trainer.test_freq=4",
                   "data.max_prompt_length=512", "data.max_response_length=96",
                   "actor_rollout_ref.actor.optim.lr=1e-4"],
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


def prepare_inputs(inputs: Path, console: Console) -> None:
    """Generate the problems, the base model and the demo expert file under ``inputs`` (skipping what exists)."""
    from data_prep import generator
    from verl_rise.demo.base_model import warm_up
    from verl_rise.demo.expert import write_expert_file
    from verl_rise.tiny_model import build_tiny_model

    inputs.mkdir(parents=True, exist_ok=True)

    def gen(num: int, seed: int, split: str, out: Path) -> None:
        code = generator.main(["--num", str(num), "--seed", str(seed), "--split", split, "--output", str(out),
                               "--no-progress"])
        if code != 0:
            raise RuntimeError(f"python -m data_prep.generator exited with {code}")

    _step(console, f"{TRAIN_PROMPTS} training problems (python -m data_prep.generator --seed {TRAIN_SEED})",
          inputs / "train.parquet", lambda: gen(TRAIN_PROMPTS, TRAIN_SEED, "train", inputs / "train.parquet"))
    _step(console, f"{TEST_PROMPTS} held-out problems (--seed {TEST_SEED})", inputs / "test.parquet",
          lambda: gen(TEST_PROMPTS, TEST_SEED, "test", inputs / "test.parquet"))
    _step(console, "tiny Qwen2.5-VL with a self-trained tokenizer (python -m verl_rise.tiny_model --no-files)",
          inputs / "tiny_model", lambda: build_tiny_model(inputs / "tiny_model"))
    _step(console, "base model: the tiny model taught the answer format with guessed answers",
          inputs / "base_model", lambda: warm_up(inputs / "tiny_model", inputs / "train.parquet",
                                                 inputs / "base_model"))
    _step(console, "demo expert: worked solutions of the generated problems", inputs / "expert.jsonl",
          lambda: write_expert_file(inputs / "expert.jsonl", TRAIN_PROMPTS, TRAIN_SEED))


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    parser.add_argument("--cpu", action="store_true", help="run the CPU demo even when a GPU is visible")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")
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
    prepare_inputs(inputs, console)
    config_path = out / "demo.yaml"
    config_path.write_text(yaml.safe_dump(demo_config(out, inputs, args.recipes_dir), sort_keys=False))
    console.print(f"run configuration: {config_path}  (the same as `verl-rise run {config_path}`)")
    code = execute(load_config(config_path), console=console)
    console.print(f"demo wall time {time.monotonic() - start:.0f}s")
    return code
