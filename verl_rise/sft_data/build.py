"""Build the Metis-RISE SFT set from a pass-rate export: self-distillation + expert trajectories (+ text-only).

Steps (Metis-RISE, arXiv 2506.13056, SFT stage):

1. inconsistent prompts (0 < pass rate < 1): self-distillation (:mod:`verl_rise.sft_data.self_distill`);
2. hard prompts (pass rate 0): expert trajectories from JSONL files (:mod:`verl_rise.sft_data.expert_file`), then
   from an OpenAI-compatible endpoint (:mod:`verl_rise.sft_data.endpoint`) for the hard prompts still uncovered
   (or all hard prompts), each rewritten into the RISE format and verified (:mod:`verl_rise.sft_data.rewrite`);
   hard prompts with not one expert trajectory kept stop the build (:class:`NoExpertCoverage`, saying why) unless
   ``allow_no_expert`` is set;
3. solved prompts (pass rate 1) and unseen prompts are dropped;
4. optional text-only rows at a ratio (:mod:`verl_rise.sft_data.text_only`);
5. exact duplicates (same prompt, same response text) across sources are removed;
6. with a tokenizer, each row's tokens are counted as verl's SFT dataset will see them (image tokens in the profile's
   pixel range included) and rows over ``max_length`` are rejected (:mod:`verl_rise.sft_data.length_check`).

Outputs in ``out_dir`` (all written atomically; ``stats.json`` last, so its presence marks a complete build):

* ``sft.parquet``: the SFT set for verl's ``MultiTurnSFTDataset`` (:mod:`verl_rise.sft_data.outputs`);
* ``llamafactory/``: the same set for LLaMA-Factory, with ``<name>_train.yaml``: the LLaMA-Factory settings that
  match the RISE SFT recipe (template, pixel range, cutoff_len; :mod:`verl_rise.sft_data.llamafactory_settings`);
* ``rejects.jsonl``: every candidate response that was not kept, with its reason;
* ``coverage.jsonl``: every row of the four bucket files, with what became of it;
* ``stats.json`` / ``stats.png``: counts by source and bucket, candidates, coverage, token lengths.

Accounting (checked before ``stats.json`` is written; a mismatch is a bug and raises): per source,
``candidates == kept + rejected``; SFT rows == kept; coverage lines == rows of the four bucket files.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data_prep.atomic import write_text_atomic
from data_prep.writer import write_jsonl
from verl_rise.sft_data import records as R
from verl_rise.sft_data.endpoint import EndpointConfig, query_endpoint
from verl_rise.sft_data.expert import verify_candidate
from verl_rise.sft_data.expert_file import read_expert_file
from verl_rise.sft_data.inputs import BUCKETS, HARD, INCONSISTENT, ExportTables, PromptRow, SFTInputError
from verl_rise.sft_data.length_check import count_and_filter
from verl_rise.sft_data.llamafactory_settings import write_llamafactory_settings
from verl_rise.sft_data.outputs import write_llamafactory, write_sft_parquet
from verl_rise.sft_data.rewrite import MIN_REASONING_CHARS
from verl_rise.sft_data.selection import NEAR_DUP_THRESHOLD, normalized, select
from verl_rise.sft_data.self_distill import MAX_PER_PROMPT, self_distill
from verl_rise.sft_data.stats import TokenCounter, counts_by, summarize, write_png
from verl_rise.sft_data.text_only import apply_ratio, read_text_only

# Why an uncovered hard prompt failed: the reason of the candidate that got furthest through the gate.
FAILURE_PRIORITY = (
    R.OVER_MAX_LENGTH,
    R.NO_REASONING,
    R.BAD_FORMAT,
    R.WRONG_ANSWER,
    R.TRUNCATED,
    R.NO_FINAL_ANSWER,
    R.EMPTY_RESPONSE,
    R.REQUEST_FAILED,
)
NO_EXPERT_RESPONSE = "no_expert_response"
NO_RESPONSES_IN_EXPORT = "no_responses_in_export"
NO_VERIFIED_RESPONSE = "no_verified_response"
DUPLICATE_PROMPT_ROW = "duplicate_prompt_row"


@dataclass
class BuildConfig:
    """Everything :func:`build` needs (the ``build`` command's flags).

    Attributes:
        export_dir: output directory of ``python -m verl_rise.passrate export``.
        out_dir: where the SFT set and reports go.
        self_distill_max: m, most self-distilled responses per inconsistent prompt (0: all distinct).
        seed: seed of every choice (selection order, text-only sampling).
        near_dup_threshold: word 3-gram Jaccard from which two responses of one prompt are near-duplicates.
        expert_files: expert JSONL files.
        expert_key: ``prompt_id`` (or another field name holding our prompt id) or ``mathvision``.
        expert_image_root: image root for ``mathvision`` keys (default: each file's directory).
        expert_response_field, expert_model_answer_field: field names in the expert records.
        expert_max_per_prompt: most expert trajectories per hard prompt and source (0: all distinct verified).
        min_reasoning_chars: least reasoning (non-space characters besides the answer sentence) of an expert one.
        endpoint: endpoint settings, or None for no endpoint.
        endpoint_cache: SQLite cache file (default ``<out_dir>/endpoint_cache.sqlite``).
        endpoint_prompts: ``uncovered`` (hard prompts without a verified expert-file trajectory) or ``hard`` (all).
        text_only: text-only parquet, or None.
        text_response_column: its solution column.
        text_ratio: text rows per multimodal row (None: keep all verified text rows).
        tokenizer: tokenizer/processor directory for token lengths (None: lengths in characters).
        max_length: the SFT profile's ``data.max_length``: longer rows (tokens, images included) are rejected with
            reason ``over_max_length`` (needs ``tokenizer``). None: no limit.
        pixels: ``(min_pixels, max_pixels)`` images are resized into for training (the SFT profile's
            ``data.mm_processor_kwargs``); None: qwen-vl-utils' default range.
        llamafactory_name: dataset name of the LLaMA-Factory export.
        progress: show progress bars.
        allow_no_expert: build even when hard prompts exist and no expert trajectory was kept (otherwise
            :class:`NoExpertCoverage` is raised).
    """

    export_dir: Path
    out_dir: Path
    self_distill_max: int = MAX_PER_PROMPT
    seed: int = 0
    near_dup_threshold: float = NEAR_DUP_THRESHOLD
    expert_files: list[Path] = field(default_factory=list)
    expert_key: str = "prompt_id"
    expert_image_root: Path | None = None
    expert_response_field: str = "response"
    expert_model_answer_field: str | None = "model_answer"
    expert_max_per_prompt: int = 0
    min_reasoning_chars: int = MIN_REASONING_CHARS
    endpoint: EndpointConfig | None = None
    endpoint_cache: Path | None = None
    endpoint_prompts: str = "uncovered"
    text_only: Path | None = None
    text_response_column: str = "response"
    text_ratio: float | None = None
    tokenizer: Path | None = None
    max_length: int | None = None
    pixels: tuple[int, int] | None = None
    llamafactory_name: str = "rise_sft"
    progress: bool = True
    allow_no_expert: bool = False

    def __post_init__(self) -> None:
        if self.endpoint_prompts not in ("uncovered", "hard"):
            raise ValueError(f"endpoint_prompts must be 'uncovered' or 'hard', got {self.endpoint_prompts!r}")
        for name in ("self_distill_max", "expert_max_per_prompt", "min_reasoning_chars"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_length is not None and self.tokenizer is None:
            raise ValueError("max_length needs a tokenizer (token lengths are counted with it)")


class NoExpertCoverage(SFTInputError):
    """Hard prompts exist and not one expert trajectory was kept; the message says why and how to proceed."""


class _Ledger:
    """Kept candidates and rejects, per source, with the prompt rows they belong to."""

    def __init__(self) -> None:
        self.kept: dict[str, list[tuple[R.Candidate, PromptRow]]] = {s: [] for s in R.SOURCES}
        self.rejects: list[R.Reject] = []
        self.candidates: Counter = Counter()

    def add_candidates(self, source: str, n: int) -> None:
        self.candidates[source] += n

    def keep(self, cand: R.Candidate, row: PromptRow) -> None:
        self.kept[cand.source].append((cand, row))

    def reject(self, rejects: list[R.Reject]) -> None:
        self.rejects.extend(rejects)


def _select_and_keep(ledger: _Ledger, verified: dict[str, list[R.Candidate]], rows: dict[str, PromptRow],
                     cap: int, cfg: BuildConfig) -> None:
    for pid, cands in verified.items():
        kept, dropped = select(cands, max_per_prompt=cap, seed=cfg.seed, near_dup_threshold=cfg.near_dup_threshold)
        for cand in kept:
            ledger.keep(cand, rows[pid])
        ledger.reject(dropped)


def _expert_files(cfg: BuildConfig, ledger: _Ledger, index: dict[str, tuple[str, int]], tables: ExportTables,
                  rows: dict[str, PromptRow]) -> Counter:
    """Expert-file candidates: map, verify, select. Returns the recovery methods of verified candidates."""
    verified: dict[str, list[R.Candidate]] = defaultdict(list)
    methods: Counter = Counter()
    for path in cfg.expert_files:
        items = read_expert_file(path, key=cfg.expert_key, image_root=cfg.expert_image_root,
                                 response_field=cfg.expert_response_field,
                                 model_answer_field=cfg.expert_model_answer_field)
        for item in tqdm(items, desc=f"expert file {Path(path).name}", unit="rec", disable=not cfg.progress):
            ledger.add_candidates(R.EXPERT_FILE, 1)
            if isinstance(item, R.Reject):
                ledger.reject([item])
                continue
            cand, model_answer = item
            where = index.get(cand.prompt_id)
            if where is None:
                ledger.reject([R.Reject(cand, R.PROMPT_NOT_FOUND, "no row of the export has this prompt id")])
                continue
            if where[0] != HARD:
                ledger.reject([R.Reject(cand, R.PROMPT_NOT_HARD, f"prompt is in the {where[0]} bucket")])
                continue
            if cand.prompt_id not in rows:
                rows[cand.prompt_id] = tables.row(*where)
            row = rows[cand.prompt_id]
            reject = verify_candidate(cand, row, model_answer=model_answer,
                                      min_reasoning_chars=cfg.min_reasoning_chars)
            if reject is not None:
                ledger.reject([reject])
                continue
            methods[cand.method] += 1
            verified[cand.prompt_id].append(cand)
    _select_and_keep(ledger, verified, rows, cfg.expert_max_per_prompt, cfg)
    return methods


def _endpoint(cfg: BuildConfig, ledger: _Ledger, hard_rows: list[PromptRow], rows: dict[str, PromptRow]) -> dict:
    """Endpoint candidates for hard prompts. Returns request statistics."""
    assert cfg.endpoint is not None
    covered = {c.prompt_id for c, _ in ledger.kept[R.EXPERT_FILE]}
    targets = [r for r in hard_rows if cfg.endpoint_prompts == "hard" or r.prompt_id not in covered]
    cache = cfg.endpoint_cache or cfg.out_dir / "endpoint_cache.sqlite"
    results = query_endpoint(targets, cfg.endpoint, cache, progress=cfg.progress)
    verified: dict[str, list[R.Candidate]] = defaultdict(list)
    methods: Counter = Counter()
    for res in results:
        ledger.add_candidates(R.EXPERT_ENDPOINT, 1)
        cand = R.Candidate(R.EXPERT_ENDPOINT, res.prompt_id, res.content,
                           origin={"model": cfg.endpoint.model, "sample": res.sample, "cached": res.cached,
                                   "attempts": res.attempts, "finish_reason": res.finish_reason})
        if res.error:
            ledger.reject([R.Reject(cand, R.REQUEST_FAILED, res.error)])
            continue
        if res.finish_reason == "length":
            ledger.reject([R.Reject(cand, R.TRUNCATED, f"cut at max_tokens={cfg.endpoint.max_tokens}")])
            continue
        reject = verify_candidate(cand, rows[res.prompt_id], reasoning=res.reasoning,
                                  min_reasoning_chars=cfg.min_reasoning_chars)
        if reject is not None:
            ledger.reject([reject])
            continue
        methods[cand.method] += 1
        verified[res.prompt_id].append(cand)
    _select_and_keep(ledger, verified, rows, cfg.expert_max_per_prompt, cfg)
    return {
        "prompts_asked": len(targets),
        "requests": len(results),
        "from_cache": sum(r.cached for r in results),
        "sent": sum(not r.cached and r.attempts > 0 for r in results),
        "attempts": sum(r.attempts for r in results),
        "failed": sum(bool(r.error) for r in results),
        "methods": dict(methods),
        "cache": str(cache),
    }


def _reasons(ledger: _Ledger, source: str) -> tuple[Counter, dict[str, str]]:
    """Reject reasons of ``source`` with their counts, and the first detail given for each."""
    counts: Counter = Counter()
    first: dict[str, str] = {}
    for rej in ledger.rejects:
        if rej.candidate.source == source:
            counts[rej.reason] += 1
            first.setdefault(rej.reason, rej.detail)
    return counts, first


def expert_coverage_problem(cfg: BuildConfig, ledger: _Ledger, n_hard: int) -> str | None:
    """Why no expert trajectory was kept although ``n_hard`` prompts are hard; None when some was (or none needed).

    Without expert rows the SFT stage silently loses the half of Metis-RISE (arXiv 2506.13056) that teaches the
    prompts the RL model never solves, so an empty result must be a decision, not an accident.
    """
    if n_hard == 0 or ledger.kept[R.EXPERT_FILE] or ledger.kept[R.EXPERT_ENDPOINT]:
        return None
    parts = []
    if not cfg.expert_files and cfg.endpoint is None:
        parts.append("no expert source was given (--expert-file, --endpoint-base-url)")
    if cfg.expert_files:
        counts, first = _reasons(ledger, R.EXPERT_FILE)
        part = (f"expert file(s) {', '.join(str(p) for p in cfg.expert_files)}: "
                f"{ledger.candidates[R.EXPERT_FILE]} records, none kept ({dict(counts.most_common())})")
        if counts[R.BAD_RECORD] or counts[R.PROMPT_NOT_FOUND]:
            part += (f"; records are mapped to prompts by --expert-key (now {cfg.expert_key!r}): a field holding our "
                     f"extra_info.prompt_id, or 'mathvision' for MATH-V records")
        if counts[R.BAD_RECORD]:
            part += f"; first bad record: {first[R.BAD_RECORD]}"
        parts.append(part)
    if cfg.endpoint is not None:
        counts, first = _reasons(ledger, R.EXPERT_ENDPOINT)
        part = (f"endpoint {cfg.endpoint.model} at {cfg.endpoint.base_url}: {ledger.candidates[R.EXPERT_ENDPOINT]} "
                f"requests, none kept ({dict(counts.most_common())})")
        if counts[R.REQUEST_FAILED]:
            part += f"; first failure: {first[R.REQUEST_FAILED]}"
        parts.append(part)
    return (f"{n_hard} hard prompts (pass rate 0) and no expert trajectory was kept: {'; '.join(parts)}. "
            f"Every rejected record is in {Path(cfg.out_dir) / 'rejects.jsonl'}. Fix the source, or pass "
            f"--allow-no-expert to build the SFT set without expert trajectories.")


def _sft_row(cand: R.Candidate, row: PromptRow) -> dict[str, Any]:
    # The RL prompt exactly as RL trained and evaluation asks it: a system message added here (this used to add the
    # Metis-RISE one to prompts without) would teach the responses under a prompt the model is never given.
    messages = [dict(m) for m in row.messages]
    messages.append({"role": "assistant", "content": cand.text})
    return {
        "messages": messages,
        "images": row.images,
        "data_source": row.data_source,
        "extra_info": {
            "prompt_id": row.prompt_id,
            "sft_source": cand.source,
            "passrate_bucket": row.bucket,
            "passrate": row.passrate,
            "method": cand.method,
            "pred": cand.pred,
            "origin": json.dumps(cand.origin, ensure_ascii=False, default=str),
        },
    }


def _coverage(tables: ExportTables, ledger: _Ledger, first_row: dict[str, tuple[str, int]],
              sft_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept_by_pid: dict[str, Counter] = defaultdict(Counter)
    for r in sft_rows:
        info = r["extra_info"]
        if info["sft_source"] != R.TEXT_ONLY:
            kept_by_pid[info["prompt_id"]][info["sft_source"]] += 1
    rejects_by_pid: dict[str, Counter] = defaultdict(Counter)
    for rej in ledger.rejects:
        if rej.candidate.source != R.TEXT_ONLY and rej.candidate.prompt_id:
            rejects_by_pid[rej.candidate.prompt_id][rej.reason] += 1
    lines = []
    for bucket in BUCKETS:
        for i, pid in enumerate(tables.prompt_ids(bucket)):
            kept, rejected = kept_by_pid.get(pid, Counter()), rejects_by_pid.get(pid, Counter())
            line = {"file": str(tables.paths[bucket]), "row": i, "prompt_id": pid, "bucket": bucket,
                    "sft_rows": 0, "by_source": {}, "rejects": dict(rejected)}
            if first_row.get(pid) != (bucket, i):
                line.update(status="dropped", reason=DUPLICATE_PROMPT_ROW)
            elif bucket in (HARD, INCONSISTENT) and kept:
                line.update(status="in_sft", reason="covered", sft_rows=sum(kept.values()), by_source=dict(kept))
            elif bucket == HARD:
                failed = [r for r in FAILURE_PRIORITY if rejected.get(r)]
                line.update(status="dropped", reason=failed[0] if failed else NO_EXPERT_RESPONSE)
            elif bucket == INCONSISTENT:
                line.update(status="dropped", reason=NO_VERIFIED_RESPONSE if rejected else NO_RESPONSES_IN_EXPORT)
            else:
                line.update(status="dropped", reason=f"{bucket}_dropped")
            lines.append(line)
    return lines


def _self_distillation(cfg: BuildConfig, tables: ExportTables, index: dict[str, tuple[str, int]], ledger: "_Ledger",
                       rows: dict[str, PromptRow]) -> None:
    """Step 1: the RL model's own verified responses of every inconsistent prompt, deduplicated and capped."""
    for (bucket, i) in tqdm([w for w in index.values() if w[0] == INCONSISTENT], desc="self-distillation",
                            unit="prompt", disable=not cfg.progress):
        row = tables.row(bucket, i)
        rows[row.prompt_id] = row
        ledger.add_candidates(R.SELF_DISTILLED, len(row.responses))
        kept, rejects = self_distill(row, max_per_prompt=cfg.self_distill_max, seed=cfg.seed,
                                     near_dup_threshold=cfg.near_dup_threshold)
        for cand in kept:
            ledger.keep(cand, row)
        ledger.reject(rejects)


def _text_only_mix(cfg: BuildConfig, ledger: "_Ledger") -> dict[str, Any] | None:
    """Step 4: verified text-only rows, at ``cfg.text_ratio`` of the multimodal rows when set. Returns their stats."""
    if cfg.text_only is None:
        return None
    multimodal = sum(len(ledger.kept[s]) for s in (R.SELF_DISTILLED, R.EXPERT_FILE, R.EXPERT_ENDPOINT))
    verified, rejects, n_read = read_text_only(cfg.text_only, response_column=cfg.text_response_column,
                                               min_reasoning_chars=cfg.min_reasoning_chars)
    ledger.add_candidates(R.TEXT_ONLY, n_read)
    ledger.reject(rejects)
    n_verified, target = len(verified), None
    if cfg.text_ratio is not None:
        verified, over, target = apply_ratio(verified, cfg.text_ratio, multimodal, cfg.seed)
        ledger.reject(over)
    for cand, row in verified:
        ledger.keep(cand, row)
    return {"rows": n_read, "verified": n_verified, "ratio": cfg.text_ratio, "multimodal_rows": multimodal,
            "target": target, "kept": len(verified), "shortfall": max(0, (target or 0) - len(verified))}


def _dedupe_across_sources(ledger: "_Ledger") -> tuple[list[dict[str, Any]], list[R.Candidate]]:
    """Step 5: exact duplicates (same prompt, same normalised text) across sources removed, in source order."""
    sft_rows: list[dict[str, Any]] = []
    sft_cands: list[R.Candidate] = []
    seen: dict[tuple[str, str], str] = {}
    for source in R.SOURCES:
        for cand, row in ledger.kept[source]:
            key = (cand.prompt_id, normalized(cand.text))
            if key in seen:
                ledger.reject([R.Reject(cand, R.DUPLICATE, f"same prompt and text as a kept {seen[key]} row")])
                continue
            seen[key] = source
            sft_rows.append(_sft_row(cand, row))
            sft_cands.append(cand)
    return sft_rows, sft_cands


def _check_accounting(ledger: "_Ledger", sft_rows: list[dict[str, Any]], coverage: list[dict], input_rows: dict,
                      n_written: int) -> tuple[Counter, Counter]:
    """Every candidate kept or rejected, every input row in the coverage file, every SFT row written.

    Returns:
        (kept, rejected) counts per source.

    Raises:
        RuntimeError: the counts do not add up (a bug).
    """
    kept_by_source = Counter(r["extra_info"]["sft_source"] for r in sft_rows)
    rejected_by_source = Counter(r.candidate.source for r in ledger.rejects)
    for source in R.SOURCES:
        if ledger.candidates[source] != kept_by_source[source] + rejected_by_source[source]:
            raise RuntimeError(f"accounting: {source}: {ledger.candidates[source]} candidates != "
                               f"{kept_by_source[source]} kept + {rejected_by_source[source]} rejected")
    if len(coverage) != sum(input_rows.values()) or n_written != len(sft_rows):
        raise RuntimeError(f"accounting: {len(coverage)} coverage lines for {input_rows} rows, "
                           f"{n_written} written of {len(sft_rows)} SFT rows")
    return kept_by_source, rejected_by_source


def _token_stats(cfg: BuildConfig, sft_rows: list[dict[str, Any]], row_counts: list[dict[str, int]],
                 lengths: dict[str, list[int]]) -> dict[str, Any] | None:
    """Token counts per source (and the longest row, which the SFT step's precheck compares with the profile's
    ``max_length``); fills ``lengths`` per source for the plot (characters when no tokenizer was given)."""
    if cfg.tokenizer is None:
        for r in sft_rows:
            lengths[r["extra_info"]["sft_source"]].append(len(r["messages"][-1]["content"]))
        return None
    per_source: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r, c in zip(sft_rows, row_counts):
        for k, v in c.items():
            per_source[r["extra_info"]["sft_source"]][k].append(v)
        lengths[r["extra_info"]["sft_source"]].append(c["total"])
    return {"tokenizer": str(cfg.tokenizer), "max_length": cfg.max_length,
            "pixels": list(cfg.pixels) if cfg.pixels else None,
            "max_total": max((c["total"] for c in row_counts), default=0),
            "by_source": {s: {k: summarize(v) for k, v in d.items()} for s, d in per_source.items()}}


def _coverage_stats(coverage: list[dict]) -> dict[str, Any]:
    hard_lines = [c for c in coverage if c["bucket"] == HARD and c["reason"] != DUPLICATE_PROMPT_ROW]
    inc_lines = [c for c in coverage if c["bucket"] == INCONSISTENT and c["reason"] != DUPLICATE_PROMPT_ROW]
    return {
        "hard": {"prompts": len(hard_lines), "covered": sum(c["status"] == "in_sft" for c in hard_lines),
                 "covered_by": dict(Counter(s for c in hard_lines for s in c["by_source"])),
                 "uncovered_reasons": dict(Counter(c["reason"] for c in hard_lines if c["status"] != "in_sft"))},
        "inconsistent": {"prompts": len(inc_lines), "covered": sum(c["status"] == "in_sft" for c in inc_lines),
                         "uncovered_reasons": dict(Counter(c["reason"] for c in inc_lines
                                                           if c["status"] != "in_sft"))},
        "rows_by_reason": dict(Counter(c["reason"] for c in coverage)),
    }


def build(cfg: BuildConfig) -> dict[str, Any]:
    """Build the SFT set (see the module docstring). Returns the stats written to ``stats.json``.

    Raises:
        FileNotFoundError: a missing input file.
        SFTInputError: an input file breaks its contract (message names file, row, field).
        NoExpertCoverage: hard prompts exist, no expert trajectory was kept and ``cfg.allow_no_expert`` is off
            (``rejects.jsonl`` is written; ``sft.parquet`` and ``stats.json`` are not, and stale ones are removed).
        RuntimeError: the accounting does not add up (a bug).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = ExportTables(cfg.export_dir)
    index: dict[str, tuple[str, int]] = {}
    for bucket in BUCKETS:
        for i, pid in enumerate(tables.prompt_ids(bucket)):
            index.setdefault(pid, (bucket, i))
    ledger = _Ledger()
    rows: dict[str, PromptRow] = {}

    _self_distillation(cfg, tables, index, ledger, rows)  # 1.

    # 2. Expert trajectories for hard prompts: files first, then the endpoint for what is still uncovered.
    expert_methods = _expert_files(cfg, ledger, index, tables, rows)
    endpoint_stats = None
    if cfg.endpoint is not None:
        for pid, w in index.items():
            if w[0] == HARD and pid not in rows:
                rows[pid] = tables.row(*w)
        hard_rows = [rows[pid] for pid, w in index.items() if w[0] == HARD]
        endpoint_stats = _endpoint(cfg, ledger, hard_rows, rows)

    # 3. Solved and unseen prompts are not in the index's inconsistent/hard work: dropped.
    text_stats = _text_only_mix(cfg, ledger)  # 4.
    sft_rows, sft_cands = _dedupe_across_sources(ledger)  # 5.

    # 6. Token lengths; rows longer than the SFT profile's max_length are rejected (verl would stop at them).
    row_counts: list[dict[str, int]] = []
    if cfg.tokenizer is not None:
        sft_rows, row_counts, too_long = count_and_filter(sft_rows, sft_cands, TokenCounter(cfg.tokenizer, cfg.pixels),
                                                          cfg.max_length, progress=cfg.progress)
        ledger.reject(too_long)

    # (Step 2's check, after every source and filter) Hard prompts with not one expert trajectory kept stop the build.
    problem = expert_coverage_problem(cfg, ledger, sum(w[0] == HARD for w in index.values()))
    if problem and not cfg.allow_no_expert:
        write_jsonl(out / "rejects.jsonl", (r.to_json() for r in ledger.rejects))
        for stale in ("stats.json", "sft.parquet"):  # an earlier build's set must not pass for this one
            (out / stale).unlink(missing_ok=True)
        raise NoExpertCoverage(problem)

    # 7. Outputs, accounting and stats.
    n_written = write_sft_parquet(out / "sft.parquet", sft_rows)
    lf = write_llamafactory(out / "llamafactory", sft_rows, cfg.llamafactory_name)
    lf["settings"] = str(write_llamafactory_settings(out / "llamafactory", cfg.llamafactory_name, cfg.pixels,
                                                     cfg.max_length))
    write_jsonl(out / "rejects.jsonl", (r.to_json() for r in ledger.rejects))
    coverage = _coverage(tables, ledger, index, sft_rows)
    write_jsonl(out / "coverage.jsonl", coverage)
    input_rows = {b: tables.num_rows(b) for b in BUCKETS}
    kept_by_source, rejected_by_source = _check_accounting(ledger, sft_rows, coverage, input_rows, n_written)

    lengths: dict[str, list[int]] = defaultdict(list)
    tokens = _token_stats(cfg, sft_rows, row_counts, lengths)
    rejects_by = defaultdict(Counter)
    for r in ledger.rejects:
        rejects_by[r.candidate.source][r.reason] += 1
    by_source_bucket = counts_by(sft_rows, "sft_source", "passrate_bucket")
    stats = {
        "sft_rows": len(sft_rows),
        "rows_by_source": {s: kept_by_source.get(s, 0) for s in R.SOURCES},
        "rows_by_source_and_bucket": by_source_bucket,
        "candidates": {s: {"in": ledger.candidates[s], "kept": kept_by_source.get(s, 0),
                           "rejected": rejected_by_source.get(s, 0), "reject_reasons": dict(rejects_by[s])}
                       for s in R.SOURCES},
        "input_rows": input_rows,
        "coverage": _coverage_stats(coverage),
        "expert_file": {"files": [str(p) for p in cfg.expert_files], "methods": dict(expert_methods)},
        "endpoint": endpoint_stats,
        "text_only": text_stats,
        "tokens": tokens,
        "llamafactory": lf,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
                     if k != "expert_files"},
        "files": {"sft": "sft.parquet", "llamafactory": "llamafactory/", "rejects": "rejects.jsonl",
                  "coverage": "coverage.jsonl", "plot": "stats.png"},
    }
    write_png(out / "stats.png", by_source_bucket, lengths,
              "total tokens per row" if tokens else "response characters",
              f"SFT set: {len(sft_rows)} rows")
    write_text_atomic(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False, default=str) + "\n")
    return stats
