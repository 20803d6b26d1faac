"""The demo's base model: the tiny random Qwen2.5-VL taught the Metis-RISE answer format, with guessed answers.

Metis-RISE starts RL from an instruct model (Qwen2.5-VL-7B-Instruct) that already follows the system prompt's
``<think> ... </think><answer> ... \\boxed{} ... </answer>`` layout and is right some of the time. A randomly
initialised tiny model writes neither, so every RISE reward would be 0, every GRPO advantage 0, every prompt "hard",
and the demo would exercise neither the policy gradient nor self-distillation. This module stands in for the instruct
model: a few seconds of teacher forcing on the training prompts (images included) with responses of the form

    <think> I look at the picture and choose. </think><answer> The answer is $\\boxed{G}$ </answer>

where G is a guess: each option letter of a multiple-choice prompt equally often, or a random small integer for a
free-form prompt. The model learns the format and a uniform guess, not the task: sampled at temperature 1 it is right
on about 1/(number of options) of the choice prompts (pass rate between 0 and 1: self-distillation) and almost never
on the free-form ones (hard: expert trajectories). It is a demo fixture, not a stage of Metis-RISE.

    python -m verl_rise.demo.base_model --model tiny/ --data train.parquet --out base/
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

GUESS_TEMPLATE = "<think> I guess. </think><answer> $\\boxed{{{}}}$ </answer>"


def guesses(row: dict, per_prompt: int, rng: random.Random) -> list[str]:
    """The guessed answers trained for one RL parquet row: every option letter in turn, or random integers 0-20."""
    options = row["extra_info"].get("options")
    options = [] if options is None else list(options)  # parquet gives a numpy array
    if options:
        letters = [chr(ord("A") + i) for i in range(len(options))]
        return [letters[i % len(letters)] for i in range(max(per_prompt, len(letters)))]
    return [str(rng.randint(0, 20)) for _ in range(per_prompt)]


def warm_up(model_dir: Path, data: Path, out: Path, *, steps: int = 200, lr: float = 1e-2, per_prompt: int = 3,
            seed: int = 0, max_prompts: int = 6) -> dict:
    """Teach ``model_dir`` the answer format with guessed answers (module docstring); write the model to ``out``.

    The fitting is :func:`verl_rise.demo.priming.prime_policy` (the CPU end-to-end test primes its policy with the
    same function), at ``sharpen=1``: the guesses of a prompt are fitted as a uniform distribution, and a sharper
    head would turn it into one preferred letter; and with the input embeddings rescaled to std 1
    (``embedding_std``), without which GRPO's first steps break the format. 200 steps: at 60 a sampled response
    broke the format 3 times in 10 (measured on the demo's training prompts, temperature 1), at 150-200 never.

    Args:
        model_dir: HF model directory (the tiny model, processor files included).
        data: RL parquet (data_prep output); its first ``max_prompts`` rows are used.
        out: output directory (written to a temporary sibling, then renamed).
        steps: Adam steps over all (prompt, guess) pairs; lr: learning rate.
        per_prompt: guesses per prompt (at least one per option letter; a multiple of the number of options keeps
            the letters equally likely).

    Returns:
        ``{"steps", "sequences", "first_loss", "last_loss"}`` (mean token cross-entropy of the responses).
    """
    import pandas as pd

    from verl_rise.demo.priming import prime_policy

    rows = pd.read_parquet(data).head(max_prompts).to_dict("records")
    examples = []
    for row in rows:
        # One generator per prompt id: a prompt's guesses do not depend on which other rows are primed.
        key = hashlib.sha256(f"{seed}:{row['extra_info']['prompt_id']}".encode()).hexdigest()[:8]
        rng = random.Random(int(key, 16))
        examples.append((row, [GUESS_TEMPLATE.format(g) for g in guesses(row, per_prompt, rng)]))
    return prime_policy(model_dir, examples, out, steps=steps, lr=lr, seed=seed, sharpen=1.0, embedding_std=1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.demo.base_model", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="tiny model (python -m verl_rise.tiny_model)")
    parser.add_argument("--data", type=Path, required=True, help="RL parquet (python -m data_prep.generator)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--max-prompts", type=int, default=6, help="training rows used (the format is the same)")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = warm_up(args.model, args.data, args.out, steps=args.steps, lr=args.lr, seed=args.seed,
                   max_prompts=args.max_prompts)
    print(f"base model written to {args.out}: {info['sequences']} sequences, loss {info['first_loss']:.3f} -> "
          f"{info['last_loss']:.3f} in {info['steps']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
