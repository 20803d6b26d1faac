"""verl Hydra recipes for Metis-RISE, installed as ``verl_rise.recipes``.

``RECIPES_DIR`` is the absolute path to hand to ``--config-path``.
"""

from pathlib import Path

RECIPES_DIR = str(Path(__file__).resolve().parent)


def cpu_tiny_pixel_range() -> dict[str, int]:
    """``{"min_pixels", "max_pixels"}`` of the CPU profile (``rise_grpo_cpu_tiny.yaml`` ``data.mm_processor_kwargs``).

    The recipe is the one home of the CPU pixel range: the demo's warm-up, the tests and the benchmarks that process
    images outside verl read it from here, so they see images exactly as the CPU runs do.
    """
    import yaml

    with open(Path(RECIPES_DIR) / "rise_grpo_cpu_tiny.yaml", encoding="utf-8") as f:
        kwargs = yaml.safe_load(f)["data"]["mm_processor_kwargs"]
    return {"min_pixels": int(kwargs["min_pixels"]), "max_pixels": int(kwargs["max_pixels"])}
