"""The whole Metis-RISE schedule as one resumable command: ``verl-rise run CONFIG``.

Stages (arXiv 2506.13056: RL incentivization, then SFT enhancement), each a real verl run or one of our commands:

    rl -> merge_rl -> sweep -> export -> sft_data -> sft -> merge_sft -> eval -> report

Modules: :mod:`.config` (the YAML config, pydantic), :mod:`.plan` (the stages' commands), :mod:`.fingerprint`
(content hashes), :mod:`.manifest` (per-stage manifests), :mod:`.preflight` (checks before any GPU time),
:mod:`.runner` (skip / resume / rerun logic, logs, progress), :mod:`.evaluate` (the accuracy table's numbers),
:mod:`.report` (markdown + PNG report). The demo (``verl-rise demo``) lives in :mod:`verl_rise.demo`.
"""

#: Stage names in schedule order.
STAGES = ("rl", "merge_rl", "sweep", "export", "sft_data", "sft", "merge_sft", "eval", "report")
