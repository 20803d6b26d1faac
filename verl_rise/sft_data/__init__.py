"""Build the Metis-RISE SFT set (stage 2): self-distilled + verified expert trajectories (+ text-only), for verl's
``MultiTurnSFTDataset`` and LLaMA-Factory.

``python -m verl_rise.sft_data build --export-dir EXPORT --out OUT [--expert-file F.jsonl] [--endpoint-base-url URL
--endpoint-model M] [--text-only T.parquet --text-ratio R] [--tokenizer DIR]``; see :mod:`verl_rise.sft_data.build`
for the steps and outputs, :mod:`verl_rise.sft_data.cli` for the flags.

Modules: ``inputs`` (the pass-rate export), ``self_distill``, ``expert_file``, ``endpoint`` + ``cache``,
``rewrite`` + ``expert`` (RISE-format rewrite and verification), ``selection`` (choice among responses),
``text_only``, ``outputs`` (verl parquet, LLaMA-Factory), ``stats``, ``records`` (sources, reject reasons), ``build``.
"""
