"""Which half of the SFT set does what: the demo's effect table for several seeds, with two SFT ablations.

For each seed, ``verl-rise demo --seed N`` runs the whole schedule (RL -> sweep -> SFT set -> SFT -> eval; reused
when already done). Then, from the same RL model, sweep and SFT set, SFT is run twice more on half of the SFT set
(``extra_info.sft_source``):

* ``expert only``: the expert trajectories of the hard prompts (``expert_file`` / ``expert_endpoint`` rows);
* ``self-distilled only``: the RL model's own correct responses to the inconsistent prompts (``self_distilled``).

Each ablation is a copy of the seed's run directory whose ``sft_data/sft.parquet`` keeps only those rows, run with
``verl-rise run CONFIG --from sft`` (SFT, merge and evaluation again; the stages before are used as they are).
Metis-RISE (arXiv 2506.13056, section 2) expects the *absent* family to move only with the expert rows: the
self-distilled-only ablation should leave it within 0.05 of the RL model.

Prints one table (rows: seed x model, columns: the held-out families) and writes it to ``OUT/rise_effect.png`` and
``OUT/rise_effect.json``. CPU time: about 3 demo runs plus 6 SFT + evaluation runs (tens of minutes on 2 cores).

Usage::

    python benchmarks/bench_rise_effect.py [--seeds 0 1 2] [--out runs/bench_rise_effect]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from verl_rise.sft_data.records import EXPERT_ENDPOINT, EXPERT_FILE, SELF_DISTILLED

#: Ablation name -> the ``extra_info.sft_source`` values it keeps.
ABLATIONS = {"expert only": (EXPERT_FILE, EXPERT_ENDPOINT), "self-distilled only": (SELF_DISTILLED,)}
#: Table rows per seed: (label, run, model key in summary.json).
ROWS = [("base", None, "base"), ("RL", None, "rl"), ("RL + SFT (Metis-RISE)", None, "rise"),
        *[(f"RL + SFT, {name}", name, "rise") for name in ABLATIONS]]


def _run(argv: list[str]) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True)


def ablation_run(seed_dir: Path, name: str, keep: tuple[str, ...]) -> Path:
    """Copy the seed's run to ``seed_dir/ablation-<name>``, keep the SFT rows of ``keep``, run ``--from sft``.
    Returns the ablation's run directory. Skips the work when its summary exists."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from data_prep.atomic import atomic_path

    slug = name.replace(" ", "-")
    out = seed_dir / f"ablation-{slug}"
    summary = out / "run" / "report" / "summary.json"
    if summary.is_file():
        return out / "run"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(seed_dir / "run", out / "run", symlinks=True)
    for stage in ("sft", "merge_sft", "eval", "report"):
        shutil.rmtree(out / "run" / stage, ignore_errors=True)
    sft = out / "run" / "sft_data" / "sft.parquet"
    table = pq.read_table(sft)
    sources = pc.struct_field(table.column("extra_info"), "sft_source")
    kept = table.filter(pc.is_in(sources, value_set=pa.array(list(keep))))
    if kept.num_rows == 0:
        raise SystemExit(f"{sft}: no SFT rows of source {keep} for the ablation {name!r}")
    with atomic_path(sft) as tmp:
        pq.write_table(kept, tmp)
    config = yaml.safe_load((seed_dir / "demo.yaml").read_text())
    config["run_dir"] = str(out / "run")
    (out / "demo.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"{name}: {kept.num_rows} of {table.num_rows} SFT rows", flush=True)
    _run([sys.executable, "-m", "verl_rise.cli", "run", str(out / "demo.yaml"), "--from", "sft"])
    return out / "run"


def collect(seed: int, seed_dir: Path, runs: dict[str, Path]) -> list[dict]:
    """One table row per model: ``{"seed", "model", "learnable", "absent"}`` (fractions)."""
    rows = []
    for label, run, key in ROWS:
        summary = json.loads(((runs[run] if run else seed_dir / "run") / "report" / "summary.json").read_text())
        acc = summary["accuracy"].get(key, {})
        rows.append({"seed": seed, "model": label, "learnable": acc.get("demo_test/learnable"),
                     "absent": acc.get("demo_test/absent")})
    return rows


def plot(rows: list[dict], out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seeds = sorted({r["seed"] for r in rows})
    labels = [label for label, _, _ in ROWS]
    fig = Figure(figsize=(11, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    for i, family in enumerate(("learnable", "absent")):
        ax = fig.add_subplot(1, 2, i + 1)
        width = 0.8 / len(seeds)
        for j, seed in enumerate(seeds):
            vals = [100 * (next(r[family] for r in rows if r["seed"] == seed and r["model"] == m) or 0) for m in labels]
            ax.bar([k + (j - (len(seeds) - 1) / 2) * width for k in range(len(labels))], vals, width=width,
                   label=f"seed {seed}")
        ax.set_xticks(range(len(labels)), [m.replace("RL + SFT, ", "SFT: ") for m in labels], rotation=20,
                      fontsize=7, ha="right")
        ax.set_title(f"held-out {family}", fontsize=9)
        ax.set_ylabel("greedy accuracy (%)")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, format="png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_rise_effect"))
    args = parser.parse_args(argv)
    rows: list[dict] = []
    for seed in args.seeds:
        seed_dir = (args.out / f"seed{seed}").resolve()
        _run([sys.executable, "-m", "verl_rise.cli", "demo", "--cpu", "--out", str(seed_dir), "--seed", str(seed)])
        runs = {name: ablation_run(seed_dir, name, keep) for name, keep in ABLATIONS.items()}
        rows += collect(seed, seed_dir, runs)
    print(f"\n{'seed':>4}  {'model':<34} {'learnable':>9} {'absent':>7}")
    for r in rows:
        cells = ["–" if r[f] is None else f"{100 * r[f]:.1f}" for f in ("learnable", "absent")]
        print(f"{r['seed']:>4}  {r['model']:<34} {cells[0]:>9} {cells[1]:>7}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rise_effect.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, args.out / "rise_effect.png")
    print(f"wrote {args.out / 'rise_effect.png'} and {args.out / 'rise_effect.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
