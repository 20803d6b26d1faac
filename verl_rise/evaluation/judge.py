"""Answer extraction by a judge model behind an OpenAI-compatible endpoint (optional).

As in the official MathVista/MathVerse evaluators and VLMEvalKit (gpt-4o-mini by default), the judge only
*extracts* the final answer from the response (a few in-context examples, then "Extracted answer:"); the
benchmark's own rule (:mod:`verl_rise.evaluation.rules`) then compares it with the ground truth, so a judge cannot
grade a wrong answer right by itself. Requests go through the SFT builder's client
(:mod:`verl_rise.sft_data.endpoint`: on-disk cache, retries with back-off, bounded concurrency, progress bar); a
request that fails after its retries scores 0 with ``method="judge_error: ..."``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from verl_rise.evaluation.benchmarks import check_benchmark, score_extracted
from verl_rise.evaluation.extract import JUDGE, Extraction
from verl_rise.evaluation.fields import cell
from verl_rise.sft_data.cache import ResponseCache
from verl_rise.sft_data.endpoint import EndpointConfig, query_endpoint_async
from verl_rise.sft_data.inputs import PromptRow

#: Longest response text sent to the judge (characters; the end is kept, where the answer is).
MAX_JUDGED_CHARS = 6000

_INSTRUCTION = (
    "Read the question and a model's response to it. Extract the model's final answer and write only that answer "
    "after 'Extracted answer:'. For a multiple-choice question write the option letter the model chose (several "
    "letters if it chose several). If the model gives no answer, write 'None'.\n\n"
)
_EXAMPLES = (
    "Question: How many bars have a value above 40?\n"
    "Model response: Counting the bars, three of them exceed 40, so the answer is 3.\nExtracted answer: 3\n\n"
    "Question: What fraction of the shape is blue?\nChoices: (A) 3/11 (B) 8/11 (C) 6/11 (D) 3/5\n"
    "Model response: Eight of the eleven parts are blue, which is 8/11.\nExtracted answer: B\n\n"
    "Question: Between which two years does the line peak?\n"
    "Model response: The peak lies between 2007 and 2008.\nExtracted answer: [2007, 2008]\n\n"
    "Question: Find the length of AB (one decimal place).\n"
    "Model response: I cannot see the figure, so I cannot tell.\nExtracted answer: None\n\n"
)


def judge_prompt(row: Mapping[str, Any], response: str) -> str:
    """The extraction prompt for one response (question and choices from the row's TSV columns)."""
    question = cell(row, "question_for_eval") or cell(row, "question") or ""
    choices = cell(row, "choices")
    if choices and choices not in ("[]",) and "Choices" not in question:
        question += f"\nChoices: {choices}"
    text = response if len(response) <= MAX_JUDGED_CHARS else "..." + response[-MAX_JUDGED_CHARS:]
    return f"{_INSTRUCTION}{_EXAMPLES}Question: {question}\nModel response: {text}\nExtracted answer:"


def parse_judge_reply(reply: str | None) -> str:
    """The answer in a judge's reply (the text after the last ``Extracted answer:``, first line); "" for None."""
    if not reply:
        return ""
    text = reply.rsplit("Extracted answer:", 1)[-1].strip().split("\n", 1)[0].strip()
    return "" if text.lower() in ("none", "null", "n/a", "") else text


def judge_config(base_url: str, model: str = "gpt-4o-mini", **overrides: Any) -> EndpointConfig:
    """An :class:`EndpointConfig` for extraction: one greedy sample per response, short replies."""
    settings = {"samples_per_prompt": 1, "temperature": 0.0, "max_tokens": 64, "max_concurrency": 8, "timeout_s": 60.0}
    settings.update(overrides)
    return EndpointConfig(base_url=base_url, model=model, **settings)



def judge_scores(
    benchmark: str,
    rows: Sequence[Mapping[str, Any]],
    responses: Sequence[str],
    cfg: EndpointConfig,
    cache_path: str | os.PathLike,
    *,
    progress: bool = True,
) -> list[dict]:
    """Score responses with judge extraction and the benchmark's rule.

    Args:
        benchmark: benchmark key.
        rows: the problems' TSV columns, one per response.
        responses: the model responses.
        cfg: the endpoint (see :func:`judge_config`).
        cache_path: SQLite cache of judge replies (a rerun asks only for what is missing).

    Returns:
        one result per response, as :func:`verl_rise.evaluation.benchmarks.score_row` returns with
        ``extract="judge"``.
    """
    key = check_benchmark(benchmark)
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses")
    prompts = []
    for i, (row, response) in enumerate(zip(rows, responses, strict=True)):
        content = judge_prompt(row, response or "")
        pid = f"{key}:{i}:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
        prompts.append(PromptRow(prompt_id=pid, bucket="judge", file="", row=i, data_source=key,
                                 messages=[{"role": "user", "content": content}], images=[], ground_truth="",
                                 options=[], passrate=None, responses=[]))
    cache = ResponseCache(cache_path)
    try:
        results = asyncio.run(query_endpoint_async(prompts, cfg, cache, progress=progress))
    finally:
        cache.close()
    out = []
    for row, res in zip(rows, results, strict=True):
        if res.error:
            out.append({"acc": 0, "pred": "", "extracted": "", "method": f"judge_error: {res.error[:200]}",
                        "extract": JUDGE})
            continue
        answer = parse_judge_reply(res.content)
        extraction = Extraction(answer, "judge" if answer else "judge_none")
        out.append(score_extracted(key, row, extraction, JUDGE))
    return out
