"""Per-prompt pass rates for Metis-RISE: record scored rollouts during RL and in a post-RL sweep, then split the
prompts into hard / inconsistent / solved (arXiv 2506.13056, Sec. "SFT Enhancement").

Pieces (one concept per module):

* :mod:`.records` - the record schema and its validation,
* :mod:`.prompt_index`, :mod:`.tracker` - per-prompt statistics at millions of records per second,
* :mod:`.buckets` - bucket thresholds and per-step metrics, :mod:`.plots` - the histogram PNG,
* :mod:`.store`, :mod:`.recorder` - the tracker directory (record shards + snapshots), exactly-once resume,
* :mod:`verl_rise.verl_ext.passrate_hooks` - the verl 0.9.1 replay-buffer sampler and checkpoint callback that feed it during RL,
* :mod:`.dumps` - reading verl's validation JSONL dumps (the post-RL sweep), :mod:`.sweep_reward`,
* :mod:`.export` - ``python -m verl_rise.passrate export``: hard / inconsistent / solved / unseen parquet.

Importing this package does not import verl or torch.
"""

from verl_rise.passrate.buckets import BUCKET_NAMES, BucketThresholds, classify
from verl_rise.passrate.records import RecordBatch, RecordError
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.tracker import PassRateTracker

__all__ = [
    "BUCKET_NAMES",
    "BucketThresholds",
    "PassRateConfig",
    "PassRateRecorder",
    "PassRateTracker",
    "RecordBatch",
    "RecordError",
    "classify",
]
