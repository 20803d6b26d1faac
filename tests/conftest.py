"""Session-wide fixtures. The end-to-end run's fixture lives in tests/e2e/conftest.py."""

from __future__ import annotations

import pytest

from tests.support.paths import QWEN_PROCESSOR, require


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The real Qwen2.5-VL tokenizer (transformers builds it from vocab.json + merges.txt)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(require(QWEN_PROCESSOR)))
