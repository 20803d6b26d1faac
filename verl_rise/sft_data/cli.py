"""Command line: ``python -m verl_rise.sft_data build ...``.

Example (hard prompts covered from the MATH-V expert traces, then from a local vLLM server of a stronger model)::

    python -m verl_rise.sft_data build --export-dir runs/export --out runs/sft \\
        --expert-file ../shared/data/mathvision/expert_traces.jsonl --expert-key mathvision \\
        --endpoint-base-url http://127.0.0.1:8000/v1 --endpoint-model Qwen/Qwen2.5-VL-72B-Instruct \\
        --samples-per-prompt 4 --max-concurrency 16 \\
        --tokenizer ../shared/models/qwen2.5-vl-7b-instruct-processor

Exit codes: 0 done, 2 bad input (the message names the file, row and field), or hard prompts without a single kept
expert trajectory (the message says why; ``--allow-no-expert`` builds anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.endpoint import EndpointConfig
from verl_rise.sft_data.inputs import SFTInputError
from verl_rise.sft_data.rewrite import MIN_REASONING_CHARS
from verl_rise.sft_data.selection import NEAR_DUP_THRESHOLD
from verl_rise.sft_data.self_distill import MAX_PER_PROMPT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.sft_data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the SFT set from a pass-rate export")
    b.add_argument("--export-dir", required=True, type=Path,
                   help="output dir of `python -m verl_rise.passrate export` (hard/inconsistent/solved/unseen.parquet)")
    b.add_argument("--out", required=True, type=Path, help="output directory")
    b.add_argument("--self-distill-max", type=int, default=MAX_PER_PROMPT,
                   help=f"m: most self-distilled responses per inconsistent prompt, 0 = all (default {MAX_PER_PROMPT})")
    b.add_argument("--seed", type=int, default=0, help="seed of the selection order and the text-only sample")
    b.add_argument("--near-dup-threshold", type=float, default=NEAR_DUP_THRESHOLD,
                   help=f"word 3-gram Jaccard from which responses are near-duplicates; >1 disables "
                        f"(default {NEAR_DUP_THRESHOLD})")
    e = b.add_argument_group("expert file")
    e.add_argument("--expert-file", action="append", type=Path, default=[], help="expert JSONL (repeatable)")
    e.add_argument("--expert-key", default="prompt_id",
                   help="field holding our prompt id, or 'mathvision' to rebuild it from MATH-V fields "
                        "(question, options, answer, image) (default prompt_id)")
    e.add_argument("--expert-image-root", type=Path, default=None,
                   help="root of MATH-V image paths (default: the expert file's directory)")
    e.add_argument("--expert-response-field", default="response")
    e.add_argument("--expert-model-answer-field", default="model_answer", help="'' to ignore it")
    e.add_argument("--expert-max-per-prompt", type=int, default=0,
                   help="most expert trajectories per hard prompt and source, 0 = all distinct (default 0)")
    e.add_argument("--allow-no-expert", action="store_true",
                   help="build even when hard prompts exist and no expert trajectory was kept (default: exit 2, "
                        "saying why)")
    e.add_argument("--min-reasoning-chars", type=int, default=MIN_REASONING_CHARS,
                   help=f"least reasoning besides the answer sentence (default {MIN_REASONING_CHARS})")
    p = b.add_argument_group("OpenAI-compatible endpoint")
    p.add_argument("--endpoint-base-url", default=None, help="e.g. http://127.0.0.1:8000/v1 (enables the endpoint)")
    p.add_argument("--endpoint-model", default=None)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="env var with the API key (default OPENAI_API_KEY)")
    p.add_argument("--samples-per-prompt", type=int, default=4, help="k (default 4)")
    p.add_argument("--max-concurrency", type=int, default=8)
    p.add_argument("--request-timeout", type=float, default=300.0, help="seconds per attempt (default 300)")
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per request (default 6)")
    p.add_argument("--backoff-initial", type=float, default=1.0)
    p.add_argument("--backoff-max", type=float, default=60.0)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--endpoint-seed", type=int, default=None, help="send seed + sample index with each request")
    p.add_argument("--endpoint-system-prompt", default=None,
                   help="system message for the endpoint: default keeps the prompt's (Metis-RISE) one, '' drops it")
    p.add_argument("--endpoint-extra-body", default="{}",
                   help='JSON object of more request fields, e.g. \'{"top_k": 20}\'')
    p.add_argument("--endpoint-cache", type=Path, default=None, help="SQLite cache (default OUT/endpoint_cache.sqlite)")
    p.add_argument("--endpoint-prompts", choices=("uncovered", "hard"), default="uncovered",
                   help="ask for hard prompts without a verified expert-file trajectory (default) or all hard ones")
    t = b.add_argument_group("text-only mix")
    t.add_argument("--text-only", type=Path, default=None, help="text-only RL parquet with a solution column")
    t.add_argument("--text-response-column", default="response")
    t.add_argument("--text-ratio", type=float, default=None, help="text rows per multimodal row (default: all)")
    o = b.add_argument_group("outputs")
    o.add_argument("--tokenizer", type=Path, default=None, help="Qwen2.5-VL processor/tokenizer dir for token lengths")
    o.add_argument("--llamafactory-name", default="rise_sft")
    o.add_argument("--no-progress", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """The :class:`BuildConfig` of parsed ``build`` arguments.

    Raises:
        ValueError: ``--endpoint-base-url`` without ``--endpoint-model`` (or the reverse), bad extra body JSON.
    """
    endpoint = None
    if args.endpoint_base_url or args.endpoint_model:
        if not (args.endpoint_base_url and args.endpoint_model):
            raise ValueError("--endpoint-base-url and --endpoint-model go together")
        extra = json.loads(args.endpoint_extra_body)
        if not isinstance(extra, dict):
            raise ValueError("--endpoint-extra-body must be a JSON object")
        endpoint = EndpointConfig(
            base_url=args.endpoint_base_url, model=args.endpoint_model, api_key_env=args.api_key_env,
            samples_per_prompt=args.samples_per_prompt, max_concurrency=args.max_concurrency,
            timeout_s=args.request_timeout, max_attempts=args.max_attempts, backoff_initial_s=args.backoff_initial,
            backoff_max_s=args.backoff_max, temperature=args.temperature, top_p=args.top_p,
            max_tokens=args.max_tokens, seed=args.endpoint_seed, system_prompt=args.endpoint_system_prompt,
            extra_body=extra)
    return BuildConfig(
        export_dir=args.export_dir, out_dir=args.out, self_distill_max=args.self_distill_max, seed=args.seed,
        near_dup_threshold=args.near_dup_threshold, expert_files=list(args.expert_file), expert_key=args.expert_key,
        expert_image_root=args.expert_image_root, expert_response_field=args.expert_response_field,
        expert_model_answer_field=args.expert_model_answer_field or None,
        expert_max_per_prompt=args.expert_max_per_prompt, min_reasoning_chars=args.min_reasoning_chars,
        endpoint=endpoint, endpoint_cache=args.endpoint_cache, endpoint_prompts=args.endpoint_prompts,
        text_only=args.text_only, text_response_column=args.text_response_column, text_ratio=args.text_ratio,
        tokenizer=args.tokenizer, llamafactory_name=args.llamafactory_name, progress=not args.no_progress,
        allow_no_expert=args.allow_no_expert)


def _summary(stats: dict) -> str:
    cov = stats["coverage"]
    lines = [f"SFT rows: {stats['sft_rows']}  by source: {stats['rows_by_source']}"]
    for source, c in stats["candidates"].items():
        if c["in"]:
            lines.append(f"  {source}: {c['in']} candidates = {c['kept']} kept + {c['rejected']} rejected "
                         f"{c['reject_reasons']}")
    lines.append(f"hard prompts covered: {cov['hard']['covered']}/{cov['hard']['prompts']} "
                 f"(uncovered: {cov['hard']['uncovered_reasons']})")
    if cov["hard"]["prompts"] and not cov["hard"]["covered"]:
        lines.append("warning: no hard prompt has an expert trajectory (--allow-no-expert)")
    lines.append(f"inconsistent prompts covered: {cov['inconsistent']['covered']}/{cov['inconsistent']['prompts']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        stats = build(config)
    except (FileNotFoundError, SFTInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_summary(stats))
    print(f"outputs: {args.out}")
    return 0
