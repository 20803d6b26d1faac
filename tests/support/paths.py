"""Locations the tests read. ../shared is resolved beside the repository root and never copied."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
MATHVISION = SHARED / "data" / "mathvision"
QWEN_PROCESSOR = SHARED / "models" / "qwen2.5-vl-7b-instruct-processor"


def require(path: Path) -> Path:
    """Skip (naming the path) when a ../shared resource is absent on this machine."""
    if not path.exists():
        pytest.skip(f"{path} not found: the tests expect ../shared beside the repository")
    return path
