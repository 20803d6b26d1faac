"""Session-wide fixtures. The end-to-end run's fixture lives in tests/e2e/conftest.py."""

from __future__ import annotations

import os

import pytest

from tests.support.paths import QWEN_PROCESSOR, require


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The real Qwen2.5-VL tokenizer (transformers builds it from vocab.json + merges.txt)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(require(QWEN_PROCESSOR)))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` group tests again under pytest 9 (the README's ``-n auto --dist loadgroup``).

    pytest-xdist 3.8 (xdist/remote.py:242-255) tags a grouped test by assigning ``item._nodeid = nodeid@group``;
    pytest 9.2 reads a node's id from ``item._id`` instead, so the tag is lost, every e2e test is scheduled on its
    own, and each worker runs the whole e2e session fixture. This hook, run after xdist's, writes the tag where
    pytest 9 reads it. It does nothing without loadgroup or where the tag already took effect.
    """
    if not getattr(config.option, "loadgroup", False):  # set by pytest-xdist for --dist loadgroup only
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(groups)}")


#: Niceness of an xdist worker once it runs a test outside an xdist group (the unit and integration tests).
UNGROUPED_NICENESS = 10


def pytest_runtest_setup(item):
    """Under pytest-xdist, a worker that runs an ungrouped test lowers its CPU priority (once, for good).

    The e2e group (one worker, its trainer subprocesses inherit its priority) is the suite's critical path: the
    unit and integration tests on the other workers finish minutes earlier. On a 2-core CI machine the two compete
    for the same cores, so the short tests yield to the long chain and fill the cycles it leaves; the work done is
    the same, the suite ends sooner.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") and item.get_closest_marker("xdist_group") is None:
        try:
            if os.getpriority(os.PRIO_PROCESS, 0) < UNGROUPED_NICENESS:
                os.setpriority(os.PRIO_PROCESS, 0, UNGROUPED_NICENESS)  # inherited by the test's subprocesses
        except OSError:  # not permitted here: run at normal priority
            pass
