"""The demo's two families of generated visual problems, chosen so that each half of Metis-RISE has a visible effect.

Metis-RISE (arXiv 2506.13056, section 2) splits the training prompts by the RL model's pass rate: GRPO can only
raise what the policy already solves sometimes, and expert trajectories (SFT) are what teaches the prompts it never
solves. The demo's tiny base model (:mod:`verl_rise.demo.base_model`: the answer format and a uniform guess) meets
two families, both about the picture, so the vision path is what learns:

* ``learnable``: "What colour is the picture?" with three options (A. red, B. green, C. blue, always in that order).
  The base model guesses a letter, right about 1 time in 3: pass rate strictly between 0 and 1, so GRPO gets a
  signal and can lift it, and the RL model's right answers are its self-distillation data.
* ``absent``: the same kind of picture, five colours, and an open answer: "one word in \\boxed{}". The base model
  answers with a number, never a colour word: pass rate 0, zero GRPO advantage in every group, "hard" in the sweep.
  Worked solutions exist (:func:`worked_solution`, the demo's expert), and SFT on them can teach the family.

Each picture is a small canvas filled with one shade of its colour (each RGB channel within
:data:`SHADE_JITTER` of the named colour), so the answer depends on the image only and every visual token carries
it. Colours are balanced (problem ``i`` of a family has colour ``i mod n``); the shade is drawn from
``random.Random("verl-rise-demo:<family>:<split>:<seed>:<i>")`` (stable across processes), so a seed's held-out
problems are fresh draws, never training rows (:func:`write_split` rejects a held-out row whose prompt id is a
training row's).

Each family has its own ``data_source`` (:data:`DATA_SOURCES`), so verl's validation reports one accuracy per family
(``val-core/verl-rise/demo/learnable/acc``) and the run report one column per family.

    python -m verl_rise.demo.families --split train --num 24 --seed 0 --out train.parquet
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from PIL import Image

from data_prep.atomic import atomic_path
from data_prep.generator import COLOURS, GeneratedProblem, _png
from data_prep.images import RawImage
from data_prep.prompts import METIS_RISE_SYSTEM_PROMPT
from data_prep.schema import IMAGE_PLACEHOLDER, LETTERS, Problem, finalize_problem

FAMILIES = ("learnable", "absent")
#: One data_source per family: verl's validation metrics and the report group by it.
DATA_SOURCES = {family: f"verl-rise/demo/{family}" for family in FAMILIES}
#: The learnable family's options, always in this order (the answer letter follows the colour).
CHOICE_COLOURS = ("red", "green", "blue")
#: The absent family's answers: one word each.
WORD_COLOURS = tuple(COLOURS)
#: Largest change of each RGB channel from the named colour (data_prep.generator.COLOURS are >= 80 apart).
SHADE_JITTER = 25
#: Canvas side: 112 px is 16 Qwen2.5-VL visual tokens (4 x 4 merged 28-px patches), plenty for one colour.
IMAGE_SIZE = 112
#: The smallest image data_prep may keep: the canvas, not its default of 128 visual tokens (upscaling would only
#: lengthen every prompt).
MIN_PIXELS = IMAGE_SIZE * IMAGE_SIZE

QUESTIONS = {
    "learnable": "What colour is the picture?",
    "absent": "What colour is the picture? Answer with one colour word, e.g. \\boxed{orange}.",
}


def family_of(data_source: str) -> str | None:
    """The family of a demo ``data_source`` (``"verl-rise/demo/absent"`` -> ``"absent"``), else None."""
    for family, ds in DATA_SOURCES.items():
        if ds == data_source:
            return family
    return None


def draw_problem(family: str, split: str, seed: int, index: int) -> GeneratedProblem:
    """Problem ``index`` of ``family`` in the ``split`` draw of ``seed`` (a pure function of its arguments).

    Returns:
        :class:`data_prep.generator.GeneratedProblem`: for ``learnable`` three options and a letter answer, for
        ``absent`` no options and a colour word; ``meta`` = ``{"family", "colour", "fill", "value"}`` (``fill``: the
        RGB shade, ``value``: the colour word).

    Raises:
        ValueError: an unknown family.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    palette = CHOICE_COLOURS if family == "learnable" else WORD_COLOURS
    colour = palette[index % len(palette)]
    rng = random.Random(f"verl-rise-demo:{family}:{split}:{seed}:{index}")
    # The whole canvas in a jittered shade of the colour: every visual token carries the answer, and no two
    # draws share an image.
    fill = tuple(max(0, min(255, c + rng.randint(-SHADE_JITTER, SHADE_JITTER))) for c in COLOURS[colour])
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), fill)
    meta = {"family": family, "colour": colour, "fill": list(fill), "value": colour}
    if family == "learnable":
        options, answer = list(CHOICE_COLOURS), LETTERS[CHOICE_COLOURS.index(colour)]
    else:
        options, answer = [], colour
    return GeneratedProblem(family, f"{IMAGE_PLACEHOLDER}\n{QUESTIONS[family]}", answer, options, _png(image), meta)


def iter_family_problems(family: str, split: str, seed: int, num: int) -> Iterator[GeneratedProblem]:
    """The first ``num`` distinct problems of a family's draw (an identical image and question is skipped)."""
    seen: set[bytes] = set()
    index = 0
    while len(seen) < num:
        p = draw_problem(family, split, seed, index)
        key = hashlib.sha256(p.image + p.answer.encode()).digest()
        if key not in seen:
            seen.add(key)
            yield p
        index += 1


def to_problem(p: GeneratedProblem) -> Problem:
    """:class:`GeneratedProblem` -> data_prep's :class:`Problem`."""
    return Problem(question=p.question, answer=p.answer, options=list(p.options), images=[RawImage(p.image, None)])


def prompt_id(p: GeneratedProblem) -> str:
    """The prompt id data_prep gives the problem's row (:func:`data_prep.schema.finalize_problem`)."""
    return finalize_problem(to_problem(p)).prompt_id


def worked_solution(p: GeneratedProblem) -> str:
    """The demo expert's RISE-formatted solution of a family problem.

    Returns:
        ``<think> ... </think><answer> The answer is $\\boxed{X}$ </answer>`` with X the option letter
        (``learnable``) or the colour word (``absent``).
    """
    colour = p.meta["colour"]
    r, g, b = p.meta["fill"]
    reasoning = f"The whole picture is one colour, about RGB ({r}, {g}, {b}). The nearest named colour is {colour}."
    if p.options:
        reasoning += f" {colour} is option {p.answer}."
    return f"<think> {reasoning} </think><answer> The answer is $\\boxed{{{p.answer}}}$ </answer>"


def interleaved(counts: Mapping[str, int], split: str, seed: int) -> list[GeneratedProblem]:
    """The problems of every family, alternating (learnable, absent, learnable, ...) while both last: a training
    batch or a priming prefix of the file holds both families."""
    streams = [list(iter_family_problems(f, split, seed, counts.get(f, 0))) for f in FAMILIES]
    out = []
    for i in range(max((len(s) for s in streams), default=0)):
        out += [s[i] for s in streams if i < len(s)]
    return out


def write_split(out: Path, counts: Mapping[str, int], split: str, seed: int, *,
                exclude_prompt_ids: frozenset[str] = frozenset(), progress: bool = False,
                system_prompt: str | None = METIS_RISE_SYSTEM_PROMPT) -> dict[str, Any]:
    """Write one RL parquet file with ``counts[family]`` problems of each family, interleaved (data_prep rows).

    The rows go through data_prep's converter (:func:`data_prep.pipeline.convert`), once per family with that
    family's ``data_source``, into temporary files that are then joined and renamed into place. Rejected rows
    (none are expected) land in ``<out stem>.rejects.jsonl`` with their reason.

    Args:
        out: destination ``.parquet``.
        counts: problems per family, e.g. ``{"learnable": 24, "absent": 24}``.
        split: ``extra_info.split`` and part of the draw (``train`` and ``test`` draws differ).
        exclude_prompt_ids: prompt ids that must not appear (a held-out split passes the training ids).
        system_prompt: the rows' system message (default: the Metis-RISE prompt; None: no system message).

    Returns:
        ``{"rows", "rejected", "by_family": {family: rows}}``.

    Raises:
        ValueError: a drawn problem's prompt id is in ``exclude_prompt_ids`` (a held-out row equal to a training
            row), or the converter rejected rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_prep.pipeline import ConvertConfig, SourceRow, convert

    problems = interleaved(counts, split, seed)
    ids = [prompt_id(p) for p in problems]
    leaked = [p for p, pid in zip(problems, ids) if pid in exclude_prompt_ids]
    if leaked:
        raise ValueError(f"{out}: {len(leaked)} {split} problem(s) equal training rows (first: {leaked[0].question!r},"
                         f" colour {leaked[0].meta['colour']}); draw with another seed")
    out = Path(out)
    tables, rejected, rejects_text = [], 0, []
    for family in FAMILIES:
        rows = [SourceRow(f"demo-{family}({split},{seed})", i, p) for i, p in enumerate(problems)
                if p.task == family]
        if not rows:
            continue
        part = out.with_name(f".{out.stem}.{family}.parquet")
        config = ConvertConfig(output=part, split=split, data_source=DATA_SOURCES[family], min_pixels=MIN_PIXELS,
                               progress=progress, system_prompt=system_prompt)
        stats = convert(rows, lambda p: to_problem(p), config, total=len(rows), desc=f"{split}/{family}")
        rejected += stats.rejected
        tables.append(pq.read_table(part))
        rejects_text.append(config.rejects_path().read_text())
        part.unlink()
        config.rejects_path().unlink()
    if rejected:
        raise ValueError(f"{out}: data_prep rejected {rejected} generated row(s): {''.join(rejects_text)[:500]}")
    table = pa.concat_tables(tables)
    order = {pid: i for i, pid in enumerate(ids)}
    written = table.column("extra_info").combine_chunks().field("prompt_id").to_pylist()
    table = table.take(sorted(range(len(written)), key=lambda r: order[written[r]]))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    by_family = {f: sum(p.task == f for p in problems) for f in FAMILIES}
    return {"rows": table.num_rows, "rejected": rejected, "by_family": by_family}


def write_expert_file(out: Path, counts: Mapping[str, int], seed: int, split: str = "train") -> int:
    """Write the demo expert's JSONL (``{"prompt_id", "response", "task"}`` per problem of the split) atomically,
    for ``python -m verl_rise.sft_data build --expert-file FILE --expert-key prompt_id``; returns the record count."""
    from verl_rise.demo.expert import write_expert_jsonl

    return write_expert_jsonl(out, ({"prompt_id": prompt_id(p), "task": p.task, "response": worked_solution(p)}
                                    for p in interleaved(counts, split, seed)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.demo.families", description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="train")
    parser.add_argument("--num", type=int, required=True, help="problems per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--expert-out", type=Path, default=None, help="also write the demo expert's JSONL")
    args = parser.parse_args(argv)
    counts = {f: args.num for f in FAMILIES}
    info = write_split(args.out, counts, args.split, args.seed)
    print(f"wrote {info['rows']} rows to {args.out}: {info['by_family']}")
    if args.expert_out:
        print(f"wrote {write_expert_file(args.expert_out, counts, args.seed, args.split)} solutions to "
              f"{args.expert_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
