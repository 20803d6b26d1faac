"""The six benchmarks of the Metis-RISE table as verl validation parquet, from VLMEvalKit's TSV files or from each
benchmark's own release layout.

* :mod:`~data_prep.benchmarks.specs`   - per-benchmark fields: TSV columns -> prompt, ground truth, ``extra_info``
* :mod:`~data_prep.benchmarks.tsv`     - the one VLMEvalKit TSV reader (base64 images, shared-image references)
* :mod:`~data_prep.benchmarks.native`  - MathVista / MathVerse / DynaMath / WeMath / LogicVista / MATH-V releases
* :mod:`~data_prep.benchmarks.convert` - the command line (``python -m data_prep.benchmarks.convert --help``)

Rows go through :func:`data_prep.pipeline.convert` like every other converter (checks, rejects file, atomic writes).
"""

from data_prep.benchmarks.specs import BENCHMARKS, DATA_SOURCES, BenchmarkRecord, get_spec

__all__ = ["BENCHMARKS", "DATA_SOURCES", "BenchmarkRecord", "get_spec"]
