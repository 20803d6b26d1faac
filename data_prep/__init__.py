"""Converters that write verl-ready RL parquet (row contract: :mod:`data_prep.schema`).

Scripts (each ``python -m data_prep.<name> --help``):

* :mod:`data_prep.generator`     - built-in visual math problems (the default input; no dataset needed)
* :mod:`data_prep.mathvision`    - MATH-Vision raw jsonl + images
* :mod:`data_prep.hf_parquet`    - Hugging Face ``datasets`` parquet (``{"bytes","path"}`` image columns)
* :mod:`data_prep.jsonl`         - generic JSONL with a field mapping (images by path or base64)
* :mod:`data_prep.text_only`     - text-only math problems
* :mod:`data_prep.benchmarks`    - the six evaluation benchmarks (VLMEvalKit TSV or release layouts)
* :mod:`data_prep.contamination` - flag/drop training rows that leak held-out problems

Shared pieces: :mod:`~data_prep.schema` (rows, prompt ids), :mod:`~data_prep.images` (decode/check/resize),
:mod:`~data_prep.pipeline` (the conversion loop and counts), :mod:`~data_prep.image_pool` (image decoding in
worker processes), :mod:`~data_prep.writer` (atomic streaming output),
:mod:`~data_prep.records` (input readers), :mod:`~data_prep.fields` (field mapping), :mod:`~data_prep.cli`
(common flags, exit codes), :mod:`~data_prep.errors` (reject reasons).
"""
