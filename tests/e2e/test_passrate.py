"""Pass rates inside the schedule's RL stage (verl's real CPU main_ppo, fixture ``rise_schedule``), then the post-RL
sweep and export on its final checkpoint (the schedule's merge_rl, sweep and export stages).

The RL stage uses recipes/rise_grpo_cpu_tiny.yaml as a user would, so tracking is on through rise_grpo's defaults
(the pass-rate sampler and checkpoint callback); DAPO dynamic sampling is switched on (tests/e2e/schedule_run.py).
The training rows have roles (tests/e2e_support.py ROLES): two prompts the primed policy gets right about half the
time (the groups verl trains on), one it always gets right and one it never does (the all-correct / all-wrong groups
DAPO throws away), one longer than data.max_prompt_length (verl's dataset drops it). Attempt 1 of the stage trains
step 1 and is stopped during step 2; attempt 2 resumes and trains step 2. Evidence comes from verl's own outputs
(file logger, rollout dumps, checkpoints), from the hf rollout trace (every generate call) and from the tracker
directory on disk.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.schedule_run import e2e_marks, N_ROLLOUTS, SWEEP_K, TRAIN_BATCH

pytestmark = e2e_marks()

#: (attempt, step): the step each RL attempt trained (attempt 1 = the first run, attempt 2 = the resumed run).
RUNS = ((1, 1), (2, 2))


def _tracker_dir(s) -> Path:
    return s.ckpt_dir / "passrate"  # rise_grpo: ${trainer.default_local_dir}/passrate


def _shard_records(s, step: int) -> list[dict]:
    """Every record the tracker wrote for ``step`` (all producers), straight from the shard files."""
    step_dir = _tracker_dir(s) / "records" / f"step_{step:010d}"
    return [row for path in sorted(step_dir.glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def _sampled(s, attempt: int, step: int) -> int:
    """Responses the rollout sampled for training step ``step`` in RL attempt ``attempt`` (weights of step-1)."""
    return sum(e["requests"] for e in s.trace(attempt)
               if e["event"] == "generate" and not e["greedy"] and e["global_steps"] == step - 1)


def test_every_scored_rollout_of_every_step_is_recorded(rise_schedule):
    s = rise_schedule
    for attempt, step in RUNS:
        m = s.step_metrics(attempt, step)
        records = _shard_records(s, step)
        # What the tracker counted = what it wrote = trained + discarded.
        assert m["passrate/step_records"] == len(records) > 0
        assert m["passrate/step_records"] == m["passrate/step_records_trained"] + m["passrate/step_records_discarded"]
        assert m["passrate/step_records_trained"] == TRAIN_BATCH * N_ROLLOUTS
        # The discarded records are exactly the groups verl's DAPO evicted plus the surplus it drained.
        thrown_away = m.get("training/filter_groups/evicted_samples", 0) + m.get(
            "training/filter_groups/discarded_surplus_samples", 0)
        assert m["passrate/step_records_discarded"] == thrown_away * N_ROLLOUTS
        # Every response the rollout engine sampled in the step was recorded (the hf rollout traces every call).
        assert _sampled(s, attempt, step) == len(records)
        assert {r["step"] for r in records} == {step}


def test_all_correct_and_all_wrong_groups_dapo_threw_away_are_recorded(rise_schedule):
    s = rise_schedule
    roles = s.roles
    for attempt, step in RUNS:
        m = s.step_metrics(attempt, step)
        by_prompt = defaultdict(list)
        for r in _shard_records(s, step):
            by_prompt[r["prompt_id"]].append(r["acc"])
        solved = [p for p in by_prompt if roles[p] == "solved"]
        hard = [p for p in by_prompt if roles[p] == "hard"]
        assert m["training/filter_groups/evicted_samples"] >= bool(solved) + bool(hard) >= 1
        if step == 1:
            # The dataloader is sequential (mixed, solved, hard, mixed): step 1 draws mixed + solved, DAPO evicts
            # the all-correct group and the refills must pass the hard prompt to reach the second mixed one.
            assert solved and hard, f"groups by role: {[(roles[p], len(a)) for p, a in by_prompt.items()]}"
        for p in solved:
            assert len(by_prompt[p]) % N_ROLLOUTS == 0 and set(by_prompt[p]) == {1.0}
        for p in hard:
            assert len(by_prompt[p]) % N_ROLLOUTS == 0 and set(by_prompt[p]) == {0.0}
        assert not any(roles[p] == "overlong" for p in by_prompt), "verl's dataset drops the overlong prompt"
        # verl trained on neither: the step's rollout dump (trainer.rollout_data_dir) holds the trained groups only.
        trained_gts = {r["gts"] for r in s.rollout_dump(step)}
        gt = {r["extra_info"]["prompt_id"]: r["reward_model"]["ground_truth"] for r in s.train_rows}
        mixed_gts = {gt[p] for p, role in roles.items() if role == "mixed"}
        assert {gt[p] for p in solved + hard}.isdisjoint(mixed_gts)  # so ground truths tell the groups apart
        assert trained_gts <= mixed_gts


def test_passrate_metrics_reach_verls_file_logger(rise_schedule):
    s = rise_schedule
    roles = s.roles
    for attempt, step in RUNS:
        m = s.step_metrics(attempt, step)  # the lines verl's file logger wrote (trainer.logger=[console,file])
        buckets = [m[f"passrate/num_{b}"] for b in ("unseen", "hard", "inconsistent", "solved")]
        assert sum(buckets) == m["passrate/num_prompts"] <= sum(r != "overlong" for r in roles.values())
        assert m["passrate/num_hard"] >= 1 and m["passrate/num_solved"] >= 1
        classified = m["passrate/num_prompts"] - m["passrate/num_unseen"]
        assert m["passrate/hard_frac"] == pytest.approx(m["passrate/num_hard"] / classified)
        assert m["passrate/solved_frac"] == pytest.approx(m["passrate/num_solved"] / classified)
        assert 0.0 <= m["passrate/mean_pass_rate"] <= 1.0 and m["passrate/moved"] >= 0
    # A prompt is counted once however often it was drawn: step 1 saw every trainable prompt.
    assert s.step_metrics(1, 1)["passrate/num_prompts"] == len({r["prompt_id"] for r in _shard_records(s, 1)})


def test_a_snapshot_and_a_histogram_per_checkpoint(rise_schedule):
    from PIL import Image

    from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder

    s = rise_schedule
    tracker = _tracker_dir(s)
    config = PassRateConfig(dir=str(tracker), histogram=False)
    for attempt, step in RUNS:  # save_freq 1: a checkpoint after each step
        assert (s.ckpt_dir / f"global_step_{step}").is_dir()
        assert (tracker / "snapshots" / f"step_{step:010d}.parquet").is_file()
        with Image.open(tracker / "plots" / f"pass_rate_step_{step:010d}.png") as png:
            assert png.format == "PNG" and png.size[0] > 100 and png.size[1] > 100
        # The snapshot holds exactly the totals the run logged at that step.
        at_step = PassRateRecorder.open_readonly(config, upto_step=step)
        assert at_step.tracker.total_records == s.step_metrics(attempt, step)["passrate/total_records"]


def test_resumed_run_continues_the_totals_without_double_counting(rise_schedule):
    from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder

    s = rise_schedule
    first = s.step_metrics(1, 1)
    resumed = s.step_metrics(2, 2)
    assert resumed["passrate/total_records"] == first["passrate/total_records"] + resumed["passrate/step_records"]
    assert first["passrate/total_records"] == first["passrate/step_records"]  # the first run started empty
    # On disk: the records of both steps, once each, and nothing else. Attempt 1 was stopped while sampling step 2;
    # what it recorded of step 2 was discarded when attempt 2 resumed at the step-1 checkpoint.
    tracker = _tracker_dir(s)
    steps = sorted(int(p.name.removeprefix("step_")) for p in (tracker / "records").iterdir())
    assert steps == [1, 2]
    on_disk = len(_shard_records(s, 1)) + len(_shard_records(s, 2))
    final = PassRateRecorder.open_readonly(PassRateConfig(dir=str(tracker), histogram=False))
    assert final.tracker.total_records == on_disk == resumed["passrate/total_records"]
    attempts = dict(zip(*[final.tracker.stats_table().column(c).to_pylist() for c in ("prompt_id", "attempts")]))
    per_prompt = defaultdict(int)
    for step in (1, 2):
        for r in _shard_records(s, step):
            per_prompt[r["prompt_id"]] += 1
    assert attempts == dict(per_prompt)


# ---------------------------------------------------------------------------------------------------------------
# After RL: the schedule merges the final checkpoint, sweeps the training rows with verl (validation only), ingests
# the dumps and exports the split.
# ---------------------------------------------------------------------------------------------------------------

BUCKETS = ("hard", "inconsistent", "solved", "unseen")


def _swept(s) -> list[str]:
    return [p for p, role in s.roles.items() if role != "overlong"]  # verl's dataset drops the overlong row


def _sweep_dump(s) -> list[dict]:
    files = sorted((s.stage("sweep") / "dumps").glob("*.jsonl"))
    assert [p.name for p in files] == ["0.jsonl"], "one validation at global step 0 (no checkpoint is loaded)"
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def _export_rows(s) -> dict[str, list[dict]]:
    return {b: pq.read_table(s.stage("export") / f"{b}.parquet").to_pylist() for b in BUCKETS}


def test_merged_checkpoint_is_the_trained_policy(rise_schedule):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText

    s = rise_schedule
    merged = s.stage("merge_rl") / "hf"
    for name in ("config.json", "tokenizer.json", "processor_config.json", "chat_template.jinja"):
        assert (merged / name).is_file(), name
    # verl's FSDP merger always writes bfloat16 (fsdp_model_merger.py:187-199), whatever the training dtype.
    assert {t.dtype for t in load_file(str(merged / "model.safetensors")).values()} == {torch.bfloat16}
    # Loaded through the model class: transformers 5 stores Qwen2.5-VL under its legacy checkpoint key names.
    model = AutoModelForImageTextToText.from_pretrained(str(merged), dtype=torch.bfloat16)
    tensors = model.state_dict()
    step = int((s.ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())
    assert step == 2
    ckpt = torch.load(s.ckpt_dir / f"global_step_{step}" / "actor" / "model_world_size_1_rank_0.pt",
                      map_location="cpu", weights_only=False)
    ckpt = {k: v.to_local() if hasattr(v, "to_local") else v for k, v in ckpt.items()}
    assert set(tensors) == set(ckpt)
    for key, value in ckpt.items():
        assert torch.equal(tensors[key], value.to(torch.bfloat16)), key


def test_sweep_samples_k_responses_per_prompt_with_verl(rise_schedule):
    from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
    from verl_rise.file_logger import read_step_metrics

    s = rise_schedule
    swept = _swept(s)
    # verl's own rollout sampled (temperature > 0: no greedy request) k responses for every prompt it kept.
    generate = [e for e in s.sweep_trace if e["event"] == "generate"]
    assert generate and all(e["greedy"] == 0 for e in generate)
    assert sum(e["requests"] for e in generate) == SWEEP_K * len(swept)
    dump = _sweep_dump(s)
    per_prompt = defaultdict(list)
    for line in dump:  # the sweep reward echoes prompt_id; verl dumps every reward key
        per_prompt[line["prompt_id"]].append(line)
    assert sorted(per_prompt) == sorted(swept) and all(len(v) == SWEEP_K for v in per_prompt.values())
    # The ingested statistics (the sweep's stats tracker) hold every sampled response once, per prompt.
    stats = PassRateRecorder.open_readonly(PassRateConfig(dir=str(s.stage("sweep") / "stats"), histogram=False))
    assert stats.tracker.total_records == len(dump) == SWEEP_K * len(swept)
    attempts = dict(zip(*[stats.tracker.stats_table().column(c).to_pylist() for c in ("prompt_id", "attempts")]))
    assert attempts == {p: SWEEP_K for p in swept}
    # verl's validation metrics for the same responses came back through its file logger.
    source = s.train_rows[0]["data_source"]
    mean_acc = sum(line["acc"] for line in dump) / len(dump)
    [metrics] = read_step_metrics(s.stage("sweep") / "metrics.jsonl").values()
    assert metrics[f"val-core/{source}/acc/mean@{SWEEP_K}"] == pytest.approx(mean_acc)


def test_export_buckets_match_the_recorded_pass_rates(rise_schedule):
    s = rise_schedule
    exported = _export_rows(s)
    summary = json.loads((s.stage("export") / "summary.json").read_text())
    # Every dataset row in exactly one file; the counts add up.
    counts = {b: len(rows) for b, rows in exported.items()}
    assert counts == summary["rows_per_bucket"]
    assert sum(counts.values()) == summary["rows"] == len(s.train_rows)
    ids = [r["extra_info"]["prompt_id"] for rows in exported.values() for r in rows]
    assert sorted(ids) == sorted(r["extra_info"]["prompt_id"] for r in s.train_rows)
    # Each prompt's bucket is what its sampled responses say (thresholds: 0 hard, 1 solved, >= 1 attempt).
    acc = defaultdict(list)
    for line in _sweep_dump(s):
        acc[line["prompt_id"]].append(line["acc"])
    for bucket, rows in exported.items():
        for row in rows:
            a = acc.get(row["extra_info"]["prompt_id"], [])
            if not a:
                expected = "unseen"
            else:
                expected = "hard" if sum(a) == 0 else "solved" if sum(a) == len(a) else "inconsistent"
            assert bucket == row["passrate_bucket"] == expected
            assert row["passrate_attempts"] == len(a) and row["passrate_correct"] == sum(a)
            if a:
                assert row["passrate"] == pytest.approx(sum(a) / SWEEP_K)
    # The roles the policy was primed for: the always-wrong prompt is hard, the always-right one solved, the
    # overlong one (never sampled) unseen. The coin-flip prompts land where their k samples say (checked above):
    # inconsistent unless all k agree, which is a matter of the sampled responses, so no count is asserted for it.
    bucket_of = {r["extra_info"]["prompt_id"]: b for b, rows in exported.items() for r in rows}
    roles = s.roles
    assert {bucket_of[p] for p, role in roles.items() if role == "hard"} == {"hard"}
    assert {bucket_of[p] for p, role in roles.items() if role == "solved"} == {"solved"}
    assert {bucket_of[p] for p, role in roles.items() if role == "overlong"} == {"unseen"}
    assert counts["hard"] >= 1 and counts["solved"] >= 1


def test_inconsistent_rows_carry_reverifiable_correct_responses(rise_schedule):
    from reward_fns.rise import compute_score

    s = rise_schedule
    correct_in_dump, acc = defaultdict(set), defaultdict(list)
    for line in _sweep_dump(s):
        acc[line["prompt_id"]].append(line["acc"])
        if line["acc"] == 1:
            correct_in_dump[line["prompt_id"]].add(line["output"])
    rows = _export_rows(s)["inconsistent"]
    # Exactly the prompts the sweep got right sometimes (0 < correct < k) carry responses: however the sampling went.
    assert {r["extra_info"]["prompt_id"] for r in rows} == {p for p, a in acc.items() if 0 < sum(a) < len(a)}
    for row in rows:
        responses = row["correct_responses"]
        assert responses, row["extra_info"]["prompt_id"]
        # Distinct texts: exactly the prompt's correct responses in verl's dump.
        assert {c["response"] for c in responses} == correct_in_dump[row["extra_info"]["prompt_id"]]
        for c in responses:
            again = compute_score(row["data_source"], c["response"], row["reward_model"]["ground_truth"],
                                  row["extra_info"])
            assert again["acc"] == 1.0 and c["score"] == pytest.approx(again["score"]) and c["step"] == 0
