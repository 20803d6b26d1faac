"""The post-RL pass-rate sweep: k sampled responses per prompt from a model, scored, into a tracker directory.

Metis-RISE (arXiv 2506.13056, Sec. "SFT Enhancement") splits the RL prompts by the RL model's pass rate. The
sweep samples ``k`` responses for every row of a parquet file with verl itself (``main_ppo`` validation-only,
:mod:`verl_rise.validation_run`) at temperature > 0, scores them with the RISE reward plus the prompt id
(:mod:`verl_rise.passrate.sweep_reward`), and ingests verl's dumps with the response texts
(:mod:`verl_rise.passrate.dumps`), so ``python -m verl_rise.passrate export --stats OUT/stats`` can write the
hard / inconsistent / solved split with each inconsistent prompt's correct responses (the self-distillation
candidates).

Layout of ``out``::

    out/dumps/0.jsonl        verl's validation dump (one line per response; global step 0)
    out/stats/               tracker directory (records with responses, snapshot of step 0)
    out/validation.log       main_ppo's output;  out/metrics.jsonl  verl's validation metrics
    out/hydra/               the composed main_ppo config (Hydra's run dir)
    out/sweep.json           summary: settings, records, prompts per bucket, files (written last, atomically)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from data_prep.atomic import write_text_atomic
from verl_rise.passrate.dumps import ingest_dumps
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.validation_run import DEFAULT_RECIPE, ValidationRunConfig, run_validation
from verl_rise.verl_commands import SWEEP_REWARD

DEFAULT_K = 8


def run_sweep(
    model: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    k: int = DEFAULT_K,
    temperature: float = 1.0,
    top_p: float = 1.0,
    recipe: str = DEFAULT_RECIPE,
    config_path: Optional[str | os.PathLike] = None,
    overrides: Sequence[str] = (),
    timeout_s: Optional[float] = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample ``k`` responses per row of ``data`` from ``model`` with verl, score them, ingest them into ``out/stats``.

    Args:
        model: HF-format model directory (merge an RL checkpoint first: ``python -m verl.model_merger merge
            --backend fsdp --local_dir CKPT/global_step_N/actor --target_dir DIR``).
        data: RL parquet written by data_prep (``extra_info.prompt_id`` on every row).
        out: output directory (layout in the module docstring); must not hold a previous sweep.
        k: responses per prompt (``val_kwargs.n``). temperature, top_p: sampling; temperature must be > 0.
        recipe, config_path: the verl-rise profile to run (e.g. ``rise_grpo_7b``, ``rise_grpo_cpu_tiny``).
        overrides: further Hydra overrides for main_ppo (sizes, rollout engine settings, ...).
        timeout_s: kill main_ppo after this long. progress: spinner / progress bars on a terminal.

    Returns:
        The ``sweep.json`` document: ``{"records", "prompts", "buckets", "k", "temperature", "top_p", "seconds",
        "dump_files", "stats_dir", "log", "metrics", "command"}`` (``buckets`` with the default thresholds; the
        export applies its own).

    Raises:
        ValueError: ``temperature <= 0`` (all k responses would be the one greedy response) or ``k < 1``.
        FileExistsError: ``out`` holds a previous sweep (dumps or records would be mixed).
        FileNotFoundError: model or data missing.
        verl_rise.validation_run.ValidationRunError: main_ppo failed (the message names its log).
        verl_rise.passrate.records.RecordError: a dump line without prompt id / acc, or with a NaN score.
    """
    if temperature <= 0:
        raise ValueError(f"the sweep samples k responses per prompt: temperature must be > 0, got {temperature}")
    out = Path(out).resolve()
    stats_dir = out / "stats"
    if stats_dir.exists() and any(stats_dir.iterdir()):
        raise FileExistsError(f"{stats_dir} is not empty: a previous sweep is there; use a new --out directory")
    cfg = ValidationRunConfig(
        model=Path(model), data=Path(data), out_dir=out, n=k, temperature=temperature, top_p=top_p,
        recipe=recipe, config_path=Path(config_path) if config_path else None, reward=SWEEP_REWARD,
        overrides=tuple(overrides),
    )
    result = run_validation(cfg, timeout_s=timeout_s, progress=progress)
    config = PassRateConfig(dir=str(stats_dir))
    ingest_dumps(result.dump_files, config, progress=progress)
    summary = PassRateRecorder.open_readonly(config).summary()
    doc = {
        "records": summary["records"],
        "prompts": summary["prompts"],
        "buckets": summary["buckets"],
        "k": k,
        "temperature": temperature,
        "top_p": top_p,
        "model": str(Path(model).resolve()),
        "data": str(Path(data).resolve()),
        "seconds": round(result.seconds, 1),
        "dump_files": [str(p) for p in result.dump_files],
        "stats_dir": str(stats_dir),
        "log": str(result.log_path),
        "metrics": {k_: v for k_, v in result.metrics.items() if isinstance(v, (int, float))},
        "command": result.command,
    }
    write_text_atomic(out / "sweep.json", json.dumps(doc, indent=2) + "\n")
    return doc
