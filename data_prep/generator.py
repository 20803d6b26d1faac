"""A deterministic, seedable generator of small visual math problems with exact answers (the default RL input).

A fresh machine has no dataset; these problems give the RL stage something real to learn on and the tests a small
input. Four tasks, each drawn with PIL on a small canvas (default 336x336 px, 144 Qwen2.5-VL visual tokens):

* ``count``    - coloured circles/squares/triangles on a grid: "How many red shapes ...?"
* ``bar``      - a bar chart with integer values on a labelled grid: sum / difference / total / range of bars.
* ``triangle`` - a triangle with two angles labelled in degrees: the third angle.
* ``clock``    - an analogue clock at a multiple of 5 minutes: minutes past the hour or minutes after 12 o'clock.

Every answer is a plain integer; with probability ``choice_fraction`` a problem becomes multiple choice (four
options A-D, integer distractors near the answer) and its answer is the letter. Problem ``i`` of seed ``s`` depends
only on ``(s, i)`` (``random.Random`` seeded with a string, which CPython hashes with SHA-512, so it is stable
across processes and ``PYTHONHASHSEED``): the same seed gives byte-identical images and the same prompt ids.

Usage::

    python -m data_prep.generator --num 2000 --seed 0 --output data/gen_train.parquet
    python -m data_prep.generator --num 200 --seed 1 --split test --output data/gen_test.parquet
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from PIL import Image, ImageDraw, ImageFont

from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.images import RawImage
from data_prep.pipeline import SourceRow, convert
from data_prep.schema import IMAGE_PLACEHOLDER, LETTERS, Problem

DATA_SOURCE = "verl-rise/visual-math-gen"
TASKS = ("count", "bar", "triangle", "clock")
NUM_CHOICES = 4

#: Named colours, far apart in RGB so a colour is unambiguous to the eye and exact in pixels.
COLOURS = {
    "red": (220, 30, 30),
    "blue": (30, 80, 220),
    "green": (20, 160, 60),
    "yellow": (240, 200, 0),
    "purple": (140, 50, 180),
}
SHAPES = ("circle", "square", "triangle")
BAR_LABELS = ("P", "Q", "R", "S", "T")
BAR_MAX = 10  # y axis 0..BAR_MAX, one grid line per unit


@dataclass
class GeneratedProblem:
    """One generated problem.

    Attributes:
        task: one of :data:`TASKS`.
        question: question text, starting with the ``<image>`` placeholder.
        answer: the integer answer as text, or the option letter for choice problems.
        options: option texts (A first); empty for free-form.
        image: PNG bytes.
        meta: the drawing parameters (pixel coordinates, values) from which the answer follows; lets tests check
            answers against the picture.
    """

    task: str
    question: str
    answer: str
    options: list[str]
    image: bytes
    meta: dict[str, Any] = field(default_factory=dict)


def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's bundled scalable font: no system font needed, same glyphs on every machine with this Pillow.
    return ImageFont.load_default(size=size)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], colour) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)


def _task_count(rng: random.Random, size: int):
    grid = 4
    cell = size // grid
    n = rng.randint(5, 12)
    cells = rng.sample(range(grid * grid), n)
    names = rng.sample(list(COLOURS), rng.randint(2, 4))
    shapes = []
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for c in cells:
        r, col = divmod(c, grid)
        side = rng.randint(cell // 2, cell - 16)
        x0 = col * cell + rng.randint(4, cell - side - 4)
        y0 = r * cell + rng.randint(4, cell - side - 4)
        kind, colour = rng.choice(SHAPES), rng.choice(names)
        _draw_shape(draw, kind, (x0, y0, x0 + side, y0 + side), COLOURS[colour])
        shapes.append({"kind": kind, "colour": colour, "box": [x0, y0, x0 + side, y0 + side]})
    target = rng.choice([s["colour"] for s in shapes])  # a colour that is present: the answer is >= 1
    if rng.random() < 0.5:
        answer = sum(s["colour"] == target for s in shapes)
        question = f"How many {target} shapes are there in the picture?"
        by_kind = None
    else:
        by_kind = rng.choice([s["kind"] for s in shapes if s["colour"] == target])
        answer = sum(s["colour"] == target and s["kind"] == by_kind for s in shapes)
        question = f"How many {target} {by_kind}s are there in the picture?"
    meta = {"shapes": shapes, "colour": target, "kind": by_kind}
    return question, answer, image, meta, (1, 2, 3)


def _task_bar(rng: random.Random, size: int):
    k = rng.randint(3, 5)
    labels = list(BAR_LABELS[:k])
    values = [rng.randint(1, BAR_MAX - 1) for _ in labels]
    colour = COLOURS[rng.choice(list(COLOURS))]
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    font = _font(max(10, size // 24))
    left, right, top, bottom = size * 0.14, size - size * 0.04, size * 0.06, size - size * 0.1
    unit = (bottom - top) / BAR_MAX
    for v in range(BAR_MAX + 1):
        y = round(bottom - v * unit)
        draw.line([(left, y), (right, y)], fill=(200, 200, 200), width=1)
        draw.text((left - 6, y), str(v), fill="black", font=font, anchor="rm")
    slot = (right - left) / k
    bar_w = slot * 0.55
    bars = []
    for i, (label, v) in enumerate(zip(labels, values)):
        cx = left + slot * (i + 0.5)
        x0, x1 = round(cx - bar_w / 2), round(cx + bar_w / 2)
        y_top = round(bottom - v * unit)
        draw.rectangle([x0, y_top, x1, round(bottom)], fill=colour)
        draw.text((cx, bottom + 4), label, fill="black", font=font, anchor="mt")
        bars.append({"label": label, "value": v, "x0": x0, "x1": x1, "y_top": y_top})
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
    op = rng.choice(["sum", "difference", "total", "range"])
    i, j = rng.sample(range(k), 2)
    if op == "sum":
        answer = values[i] + values[j]
        question = f"Read the bar chart. What is the value of bar {labels[i]} plus the value of bar {labels[j]}?"
    elif op == "difference":
        answer = abs(values[i] - values[j])
        question = f"Read the bar chart. By how much do the values of bars {labels[i]} and {labels[j]} differ?"
    elif op == "total":
        answer = sum(values)
        question = "Read the bar chart. What is the sum of the values of all the bars?"
    else:
        answer = max(values) - min(values)
        question = "Read the bar chart. What is the difference between the largest and the smallest value?"
    meta = {"bars": bars, "op": op, "pair": [labels[i], labels[j]], "bottom": round(bottom), "unit": unit,
            "colour": list(colour)}
    return question, answer, image, meta, (1, 2, 3)


def _angle_at(p, q, r) -> float:
    """Interior angle at ``p`` (degrees) of the triangle ``p, q, r``."""
    v1, v2 = (q[0] - p[0], q[1] - p[1]), (r[0] - p[0], r[1] - p[1])
    cos = (v1[0] * v2[0] + v1[1] * v2[1]) / (math.hypot(*v1) * math.hypot(*v2))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _task_triangle(rng: random.Random, size: int):
    while True:
        a, b = rng.randint(25, 110), rng.randint(25, 110)
        if 180 - a - b >= 25:
            break
    c = 180 - a - b
    # Base AB on the x axis, C above it: tan(a) = y/x and tan(b) = y/(1-x) (law of sines, unit base).
    ta, tb = math.tan(math.radians(a)), math.tan(math.radians(b))
    cx = tb / (ta + tb)
    pts = [(0.0, 0.0), (1.0, 0.0), (cx, cx * ta)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    margin = size * 0.14
    scale = min((size - 2 * margin) / (max(xs) - min(xs)), (size - 2 * margin) / (max(ys) - min(ys)))
    ox = (size - scale * (max(xs) - min(xs))) / 2 - scale * min(xs)
    oy = (size + scale * (max(ys) - min(ys))) / 2
    flip = rng.random() < 0.5  # mirror left-right so the unknown angle is not always at the same corner
    px = [((size - (ox + scale * x)) if flip else (ox + scale * x), oy - scale * y) for x, y in pts]
    px = [(round(x), round(y)) for x, y in px]
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.polygon(px, outline=(0, 0, 0), width=3)
    font = _font(max(12, size // 20))
    unknown = rng.randrange(3)
    angles = [a, b, c]
    centroid = (sum(p[0] for p in px) / 3, sum(p[1] for p in px) / 3)
    for idx, (p, ang) in enumerate(zip(px, angles)):
        # Label inside the corner: a fixed distance from the vertex toward the centroid.
        d = math.hypot(centroid[0] - p[0], centroid[1] - p[1])
        t = min(0.45, (size * 0.11) / d)
        lx, ly = p[0] + (centroid[0] - p[0]) * t, p[1] + (centroid[1] - p[1]) * t
        draw.text((lx, ly), "?" if idx == unknown else f"{ang}°", fill=(200, 0, 0), font=font, anchor="mm")
    known = [ang for i, ang in enumerate(angles) if i != unknown]
    question = (
        f"Two angles of the triangle are marked: {known[0]}° and {known[1]}°. "
        "What is the size, in degrees, of the angle marked with a question mark?"
        if rng.random() < 0.3
        else "What is the size, in degrees, of the angle of the triangle marked with a question mark?"
    )
    meta = {"vertices": px, "angles": angles, "unknown": unknown}
    return question, angles[unknown], image, meta, (5, 10, 15, 20)


def _task_clock(rng: random.Random, size: int):
    hour, minute = rng.randint(1, 12), 5 * rng.randint(0, 11)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    cx = cy = size / 2
    radius = size * rng.uniform(0.40, 0.46)
    face = rng.choice([(255, 255, 255), (250, 245, 225), (230, 240, 250)])
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=face, outline=(0, 0, 0), width=4)
    font = _font(max(12, size // 18))
    all_numbers = rng.random() < 0.7
    for k in range(60):
        ang = math.radians(k * 6)
        r0 = radius * (0.86 if k % 5 == 0 else 0.92)
        draw.line(
            [(cx + r0 * math.sin(ang), cy - r0 * math.cos(ang)),
             (cx + radius * 0.97 * math.sin(ang), cy - radius * 0.97 * math.cos(ang))],
            fill=(0, 0, 0), width=3 if k % 5 == 0 else 1,
        )
        if k % 5 == 0 and (all_numbers or k % 15 == 0):
            n = k // 5 or 12
            draw.text((cx + radius * 0.72 * math.sin(ang), cy - radius * 0.72 * math.cos(ang)), str(n),
                      fill=(0, 0, 0), font=font, anchor="mm")
    hands = {}
    for name, turns, length, width in (
        ("hour", (hour % 12 + minute / 60) / 12, 0.5, 8),
        ("minute", minute / 60, 0.8, 4),
    ):
        ang = 2 * math.pi * turns
        end = (cx + radius * length * math.sin(ang), cy - radius * length * math.cos(ang))
        draw.line([(cx, cy), end], fill=rng.choice([(0, 0, 0), (40, 40, 120)]), width=width)
        hands[name] = [round(end[0], 2), round(end[1], 2)]
    draw.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill=(0, 0, 0))
    if rng.random() < 0.5:
        answer = minute
        question = "How many minutes past the hour does the clock show?"
        near = (5, 10, 15)
    else:
        answer = (hour % 12) * 60 + minute
        question = (
            "How many minutes after 12 o'clock is the time shown on the clock? "
            "(For example, 3:45 is 225 minutes after 12 o'clock.)"
        )
        near = (60, 120, 5, 30)
    meta = {"hour": hour, "minute": minute, "center": [cx, cy], "hands": hands}
    return question, answer, image, meta, near


_TASK_FNS: dict[str, Callable] = {"count": _task_count, "bar": _task_bar, "triangle": _task_triangle, "clock": _task_clock}


def _choices(rng: random.Random, answer: int, near: tuple[int, ...]) -> tuple[list[str], str]:
    """Four distinct non-negative integer options around ``answer``; returns (options, correct letter)."""
    values = {answer}
    while len(values) < NUM_CHOICES:
        cand = answer + rng.choice((-1, 1)) * rng.choice(near) * rng.randint(1, 2)
        if cand >= 0:
            values.add(cand)
    options = sorted(values)
    return [str(v) for v in options], LETTERS[options.index(answer)]


def generate_problem(
    seed: int, index: int, *, tasks: tuple[str, ...] = TASKS, choice_fraction: float = 0.5, image_size: int = 336
) -> GeneratedProblem:
    """Problem ``index`` of generator ``seed`` (a pure function of its arguments).

    Args:
        seed, index: select the problem; any integers.
        tasks: task names to draw from (:data:`TASKS`), picked uniformly at random per problem.
        choice_fraction: probability that the problem is multiple choice.
        image_size: canvas side in pixels (>= 224).

    Returns:
        :class:`GeneratedProblem`.

    Raises:
        ValueError: an unknown task, ``image_size < 224``, or ``choice_fraction`` outside [0, 1].
    """
    unknown = [t for t in tasks if t not in _TASK_FNS]
    if unknown or not tasks:
        raise ValueError(f"unknown task(s) {unknown}; choose from {TASKS}")
    if image_size < 224:
        raise ValueError(f"image_size must be >= 224, got {image_size}")
    if not 0.0 <= choice_fraction <= 1.0:
        raise ValueError(f"choice_fraction must be in [0, 1], got {choice_fraction}")
    rng = random.Random(f"verl-rise-gen:{seed}:{index}")
    task = rng.choice(tasks)
    question, answer, image, meta, near = _TASK_FNS[task](rng, image_size)
    meta["value"] = answer
    options: list[str] = []
    answer_text = str(answer)
    if rng.random() < choice_fraction:
        options, answer_text = _choices(rng, answer, near)
    return GeneratedProblem(task, f"{IMAGE_PLACEHOLDER}\n{question}", answer_text, options, _png(image), meta)


def iter_problems(num: int, seed: int, **kwargs: Any) -> Iterator[tuple[int, GeneratedProblem]]:
    """Yield ``(index, problem)`` until ``num`` distinct problems were produced.

    A problem identical to an earlier one (same question, options and image bytes: possible for small clocks)
    is skipped, so a conversion of the stream never rejects duplicates and writes exactly ``num`` rows.
    """
    seen: set[bytes] = set()
    index = 0
    while len(seen) < num:
        p = generate_problem(seed, index, **kwargs)
        key = hashlib.sha256(repr((p.question, p.options, p.answer)).encode() + p.image).digest()
        if key not in seen:
            seen.add(key)
            yield index, p
        index += 1


def to_problem(p: GeneratedProblem) -> Problem:
    """:class:`GeneratedProblem` -> the converters' :class:`Problem`."""
    return Problem(question=p.question, answer=p.answer, options=list(p.options), images=[RawImage(p.image, None)])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", "-n", type=int, required=True, help="number of problems")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (use different seeds for train/test)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--choice-fraction", type=float, default=0.5, help="share of multiple-choice problems")
    parser.add_argument("--image-size", type=int, default=336, help="image side in pixels (default 336)")
    add_common_args(parser, data_source=DATA_SOURCE)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    kwargs = {"tasks": tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
              "choice_fraction": args.choice_fraction, "image_size": args.image_size}
    generate_problem(args.seed, 0, **kwargs)  # validate the options before opening any output
    label = f"generator(seed={args.seed})"
    rows = (SourceRow(label, i, p) for i, p in iter_problems(args.num, args.seed, **kwargs))
    stats = convert(rows, to_problem, config, total=args.num, desc="generate")
    return finish(stats, config, args.max_reject_fraction)


if __name__ == "__main__":
    sys.exit(main())
