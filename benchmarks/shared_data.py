"""Where the benchmarks find the project's read-only inputs: ``../shared`` beside the repository root (real
MATH-Vision problems and images, the Qwen2.5-VL processor files), or the folder named by ``VERL_RISE_SHARED``.

Benchmarks run on the main install (no test extra), so they must not import the tests package.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VERL_RISE_SHARED", REPO_ROOT.parent / "shared"))
MATHVISION = SHARED / "data" / "mathvision"
QWEN_PROCESSOR = SHARED / "models" / "qwen2.5-vl-7b-instruct-processor"


def require(path: Path) -> Path:
    """``path``, or SystemExit naming it when ../shared (or ``VERL_RISE_SHARED``) lacks it."""
    if not path.exists():
        raise SystemExit(f"{path} not found: put the project's shared/ folder beside the repository "
                         f"or set VERL_RISE_SHARED to it")
    return path
