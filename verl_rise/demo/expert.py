"""A demo-only expert for the problems of ``python -m data_prep.generator``: correct, worked, RISE-formatted solutions.

Metis-RISE gives the prompts the RL model never solves ("hard", pass rate 0) expert trajectories (arXiv 2506.13056,
"SFT Enhancement"; the paper samples a stronger model). ``verl-rise demo`` runs on a machine with no model and no
network, so its expert is the problem generator itself: every problem of :mod:`data_prep.generator` is drawn from
parameters (shape positions, bar values, angles, clock hands) from which the answer follows, and this module writes
out that derivation as the reasoning, in the layout of the Metis-RISE system prompt's example::

    <think> The angles of a triangle add up to 180 degrees ... = 55. </think><answer> The answer is $\\boxed{55}$ </answer>

The file has one JSON line per problem, ``{"prompt_id", "response", "task"}``, and is read by
``python -m verl_rise.sft_data build --expert-file FILE --expert-key prompt_id``, which verifies every response with
the RISE reward like any other expert source. It is a stand-in for a real expert: use it only with generated data.

    python -m verl_rise.demo.expert --num 16 --seed 0 --out expert.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from data_prep.atomic import atomic_path


def _count(meta: dict[str, Any], value: int) -> str:
    colour, kind = meta["colour"], meta["kind"]
    wanted = [s for s in meta["shapes"] if s["colour"] == colour and (kind is None or s["kind"] == kind)]
    what = f"{colour} {kind}s" if kind else f"{colour} shapes"
    where = ", ".join(f"a {s['colour']} {s['kind']} near ({(s['box'][0] + s['box'][2]) // 2}, "
                      f"{(s['box'][1] + s['box'][3]) // 2})" for s in wanted)
    return f"I go through the picture shape by shape and keep the {what}: {where}. That makes {value}."


def _bar(meta: dict[str, Any], value: int) -> str:
    values = {b["label"]: b["value"] for b in meta["bars"]}
    read = ", ".join(f"{k} = {v}" for k, v in values.items())
    op, (p, q) = meta["op"], meta["pair"]
    if op == "sum":
        calc = f"{p} + {q} = {values[p]} + {values[q]} = {value}"
    elif op == "difference":
        hi, lo = max(values[p], values[q]), min(values[p], values[q])
        calc = f"the difference between {p} and {q} is {hi} - {lo} = {value}"
    elif op == "total":
        calc = " + ".join(str(v) for v in values.values()) + f" = {value}"
    else:
        calc = f"the largest value is {max(values.values())} and the smallest is {min(values.values())}, so " \
               f"{max(values.values())} - {min(values.values())} = {value}"
    return f"Reading each bar against the grid lines: {read}. Then {calc}."


def _triangle(meta: dict[str, Any], value: int) -> str:
    known = [a for i, a in enumerate(meta["angles"]) if i != meta["unknown"]]
    return (f"The angles of a triangle add up to 180 degrees. The two marked angles are {known[0]} and {known[1]}, "
            f"so the angle with the question mark is 180 - {known[0]} - {known[1]} = {value}.")


def _clock(meta: dict[str, Any], value: int, question: str) -> str:
    hour, minute = meta["hour"], meta["minute"]
    mark = minute // 5 or 12
    text = (f"The long minute hand points at the {mark}, which is {minute} minutes; the short hour hand is at "
            f"{hour}{' and a bit past it' if minute else ''}, so the time is {hour}:{minute:02d}.")
    if "past the hour" in question:
        return text + f" That is {value} minutes past the hour."
    return text + f" From 12 o'clock that is {hour % 12} x 60 + {minute} = {value} minutes."


def worked_solution(task: str, question: str, meta: dict[str, Any], options: list[str], answer: str) -> str:
    """The RISE-formatted solution of one generated problem (see the module docstring).

    Args:
        task: generator task name; ``meta`` holds its drawing parameters and ``meta["value"]`` the integer answer.
        question, options, answer: the problem as generated (``answer`` is the option letter for choice problems).

    Returns:
        ``<think> reasoning </think><answer> The answer is $\\boxed{answer}$ </answer>``.

    Raises:
        ValueError: an unknown task.
    """
    value = int(meta["value"])
    if task == "count":
        reasoning = _count(meta, value)
    elif task == "bar":
        reasoning = _bar(meta, value)
    elif task == "triangle":
        reasoning = _triangle(meta, value)
    elif task == "clock":
        reasoning = _clock(meta, value, question)
    else:
        raise ValueError(f"no worked solution for task {task!r}")
    if options:
        reasoning += f" The value {value} is option {answer}."
    return f"<think> {reasoning} </think><answer> The answer is $\\boxed{{{answer}}}$ </answer>"


def iter_expert_records(num: int, seed: int, **generator_kwargs: Any) -> Iterator[dict]:
    """``{"prompt_id", "response", "task"}`` for the ``num`` problems ``python -m data_prep.generator --num num
    --seed seed`` writes (same prompt ids: data_prep's ``finalize_problem``)."""
    from data_prep.generator import iter_problems, to_problem
    from data_prep.schema import finalize_problem

    for _, p in iter_problems(num, seed, **generator_kwargs):
        prompt_id = finalize_problem(to_problem(p)).prompt_id
        yield {"prompt_id": prompt_id, "task": p.task,
               "response": worked_solution(p.task, p.question, p.meta, p.options, p.answer)}


def write_expert_jsonl(out: Path, records: Iterable[dict]) -> int:
    """Write expert records (one JSON object per line) atomically; returns the number of records."""
    n = 0
    with atomic_path(Path(out)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_expert_file(out: Path, num: int, seed: int, **generator_kwargs: Any) -> int:
    """Write the demo expert JSONL of ``python -m data_prep.generator --num num --seed seed``'s problems
    atomically; returns the number of records."""
    return write_expert_jsonl(out, iter_expert_records(num, seed, **generator_kwargs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.demo.expert", description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, required=True, help="problems, as given to python -m data_prep.generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    n = write_expert_file(args.out, args.num, args.seed)
    print(f"wrote {n} worked solutions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
