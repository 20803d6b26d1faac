"""verl Hydra recipes for Metis-RISE, installed as ``verl_rise.recipes``.

``RECIPES_DIR`` is the absolute path to hand to ``--config-path``.
"""

from pathlib import Path

RECIPES_DIR = str(Path(__file__).resolve().parent)
