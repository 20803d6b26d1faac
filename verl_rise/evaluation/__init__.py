"""Evaluation on the six OpenCompass reasoning benchmarks, scored by each benchmark's own rules.

* :func:`score_row` (``verl_rise.evaluation.benchmarks``): one response, strict or lenient answer extraction;
* :func:`aggregate` (``verl_rise.evaluation.aggregate``): accuracy, DynaMath average/worst-case, WeMath's
  four dimensions and strict/loose scores;
* ``verl_rise.evaluation.judge``: answer extraction by a judge model behind an OpenAI-compatible endpoint;
* ``verl_rise.evaluation.reward``: the verl validation reward (``pkg://verl_rise.evaluation.reward``);
* ``verl_rise.evaluation.vlmeval_export``: predictions in VLMEvalKit's result layout.

Pure Python (no verl, no torch); ``verl-rise score --benchmark`` uses it.
"""

from verl_rise.evaluation.aggregate import HEADLINE, aggregate
from verl_rise.evaluation.benchmarks import BENCHMARKS, DATA_SOURCES, FieldError, benchmark_of, score_row
from verl_rise.evaluation.extract import EXTRACT_MODES

__all__ = ["BENCHMARKS", "DATA_SOURCES", "EXTRACT_MODES", "HEADLINE", "FieldError", "aggregate", "benchmark_of",
           "score_row"]
