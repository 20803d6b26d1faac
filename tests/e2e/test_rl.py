"""End to end on a CPU, the RL stage of the schedule (fixture ``rise_schedule``, tests/e2e/schedule_run.py): verl's
main_ppo runs the Metis-RISE GRPO recipe (recipes/rise_grpo_cpu_tiny.yaml) with images, through the verl-rise plugin
(CPU platform + hf rollout), on real MATH-Vision rows converted by data_prep, scored by reward_fns.rise.

The stage runs twice: attempt 1 trains step 1 from the primed tiny Qwen2.5-VL, saves a checkpoint and is stopped
(the "first" run); attempt 2 resumes from that checkpoint, trains step 2 and validates on testmini rows (the
"resumed" run). DAPO dynamic sampling is on, so a step generates more groups than it trains on (the pass-rate side of
that is in tests/e2e/test_passrate.py). Evidence comes from verl's own outputs (file-logger metrics,
``trainer.rollout_data_dir`` dumps, checkpoints) and from the hf rollout's trace file (one line per generate batch /
weight sync). A weight version ``global_steps`` g in the trace is the policy after step g: step s samples with g = s-1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.schedule_run import e2e_marks, N_ROLLOUTS, TRAIN_BATCH

pytestmark = e2e_marks()


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for r in rows:
        groups[r["uid"].rsplit("_", 2)[0]].append(r)  # keys are {uid}_{rollout}_{output}
    return groups


def _events(trace: list[dict], kind: str, greedy: bool | None = None, version: int | None = None) -> list[dict]:
    out = [e for e in trace if e["event"] == kind]
    if greedy is not None:
        out = [e for e in out if (e["greedy"] > 0) == greedy]
    if version is not None:
        out = [e for e in out if e["global_steps"] == version]
    return out


def _checkpoint_state(ckpt_dir: Path, step: int) -> dict:
    import torch

    path = ckpt_dir / f"global_step_{step}" / "actor" / "model_world_size_1_rank_0.pt"
    state = torch.load(path, map_location="cpu", weights_only=False)
    return {k: (v.to_local() if hasattr(v, "to_local") else v).float() for k, v in state.items()}


def _checksum(state: dict) -> float:
    return sum(float(t.double().sum()) for t in state.values())


def generated_groups(m: dict) -> int:
    """GRPO groups a step generated, from verl's metrics: the trained batch plus the groups DAPO evicted and the
    surplus it discarded (replay_buffer.py:371-379, 486-491)."""
    return TRAIN_BATCH + int(m.get("training/filter_groups/evicted_samples", 0)) + int(
        m.get("training/filter_groups/discarded_surplus_samples", 0))


def _advantages(dump: list[dict]) -> list[float]:
    """verl's GRPO outcome advantage (norm_adv_by_std_in_grpo): (score - group mean) / (group std + 1e-6),
    unbiased std, one value per response."""
    advantages = []
    for g in _groups(dump).values():
        s = [r["score"] for r in g]
        mean = sum(s) / len(s)
        std = math.sqrt(sum((x - mean) ** 2 for x in s) / (len(s) - 1))
        advantages += [(x - mean) / (std + 1e-6) for x in s]
    return advantages


def test_rollouts_generated_with_images(rise_schedule):
    s = rise_schedule
    train_batches = _events(s.trace(1), "generate", greedy=False, version=0)  # step 1's sampling
    assert sum(e["requests"] for e in train_batches) == generated_groups(s.step_metrics(1, 1)) * N_ROLLOUTS
    assert all(e["with_images"] == e["requests"] for e in train_batches)
    # Each request carried its image into the model: pixel patches and <|image_pad|> runs of matching size
    # (4 patches merge into one visual token).
    assert all(e["pixel_rows"] == 4 * e["image_tokens"] > 0 for e in train_batches)
    # Batched generation: fewer generate calls than requests.
    assert len(train_batches) < sum(e["requests"] for e in train_batches)
    dump = s.rollout_dump(1)
    assert len(dump) == TRAIN_BATCH * N_ROLLOUTS
    assert all(r["output"].strip() for r in dump)


def test_rise_rewards_scored_in_the_loop(rise_schedule):
    from reward_fns.rise import compute_score

    s = rise_schedule
    data_source = s.train_rows[0]["data_source"]
    for step in (1, 2):
        dump = s.rollout_dump(step)
        for r in dump:
            expected = compute_score(data_source, r["output"], r["gts"])["score"]
            assert r["score"] == pytest.approx(expected, abs=1e-6), r
        scores = [r["score"] for r in dump]
        # DAPO trains only groups whose scores differ, so every trained batch has mixed rewards.
        assert min(scores) < max(scores)
        m = s.step_metrics(step, step)
        assert m["critic/score/mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)


def test_grpo_advantages_are_group_normalised_scores(rise_schedule):
    s = rise_schedule
    for step in (1, 2):
        dump = s.rollout_dump(step)
        groups = _groups(dump)
        assert len(groups) == TRAIN_BATCH and all(len(g) == N_ROLLOUTS for g in groups.values())
        # DAPO kept only groups with differing scores: their advantages are non-zero, of both signs.
        assert all(len({r["score"] for r in g}) > 1 for g in groups.values())
        advantages = _advantages(dump)
        m = s.step_metrics(step, step)
        assert m["critic/advantages/max"] == pytest.approx(max(advantages), rel=1e-3, abs=1e-4)
        assert m["critic/advantages/min"] == pytest.approx(min(advantages), rel=1e-3, abs=1e-4)
        assert m["critic/advantages/max"] > 0 > m["critic/advantages/min"]


def test_fsdp_actor_update_changes_weights_and_reaches_the_rollout(rise_schedule):
    import torch
    from transformers import AutoModelForImageTextToText

    s = rise_schedule
    m = s.step_metrics(1, 1)
    # The trained batch has non-zero advantages (test above, from the dump), so the policy gradient is non-zero.
    assert max(abs(a) for a in _advantages(s.rollout_dump(1))) > 0.5
    assert m["actor/grad_norm"] > 0
    # pg_loss itself may be exactly 0 (issue 14 item 16): on policy (one mini-batch per step, ratio 1) rise_grpo's
    # token-mean loss is minus the token-mean advantage, and each group's advantages sum to 0, so responses of equal
    # length (the primed template) give 0 with a non-zero gradient. What holds for every sample: pg_loss equals
    # minus verl's token-mean advantage (critic/advantages/mean), in both steps.
    for attempt, step in ((1, 1), (2, 2)):
        sm = s.step_metrics(attempt, step)
        assert sm["actor/pg_loss"] == pytest.approx(-sm["critic/advantages/mean"], abs=1e-5)
    # Loaded through the model class: transformers 5 stores Qwen2.5-VL under its legacy checkpoint key names.
    model = AutoModelForImageTextToText.from_pretrained(str(s.base_model), dtype=torch.float32)
    before = {k: v.detach().float() for k, v in model.state_dict().items()}
    after = _checkpoint_state(s.ckpt_dir, 1)
    assert set(before) == set(after)
    changed = [k for k in after if not bool((after[k] == before[k]).all())]
    assert "lm_head.weight" in changed and any(".layers." in k for k in changed)
    # On-policy: the weights the rollout received after step 1 are exactly the step-1 checkpoint.
    syncs = {e["global_steps"]: e for e in _events(s.trace(1), "weights")}
    assert syncs[1]["tensors"] == len(after)
    assert syncs[1]["checksum"] == pytest.approx(_checksum(after), rel=1e-9)
    assert syncs[0]["checksum"] == pytest.approx(_checksum(before), rel=1e-9)


def test_rollout_logprobs_match_the_actor(rise_schedule):
    for attempt, step in ((1, 1), (2, 2)):
        m = rise_schedule.step_metrics(attempt, step)
        assert m["training/rollout_probs_diff_valid"] == 1
        assert m["training/rollout_probs_diff_max"] < 1e-3, m["training/rollout_probs_diff_max"]


def test_checkpoint_saved(rise_schedule):
    for step in (1, 2):
        step_dir = rise_schedule.ckpt_dir / f"global_step_{step}"
        for name in ("model_world_size_1_rank_0.pt", "optim_world_size_1_rank_0.pt",
                     "extra_state_world_size_1_rank_0.pt"):
            assert (step_dir / "actor" / name).is_file(), (step, name)
        assert (step_dir / "data.pt").is_file()


def test_resumed_run_continues_from_the_checkpoint(rise_schedule):
    s = rise_schedule
    metrics = s.metrics(2)
    trained = sorted(step for step, m in metrics.items() if "critic/score/mean" in m)
    assert trained == [2], f"resumed run trained steps {trained}, expected only step 2"
    # Its only other line: the validation at the resume (val_before_train), at step 1.
    assert set(metrics) == {1, 2} and all(k.startswith("val-") for k in metrics[1])
    assert (s.ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    trace = s.trace(2)
    first_sync = _events(trace, "weights")[0]
    assert first_sync["global_steps"] == 1
    assert first_sync["checksum"] == pytest.approx(_checksum(_checkpoint_state(s.ckpt_dir, 1)), rel=1e-9)
    rollouts = _events(trace, "generate", greedy=False)
    assert rollouts and all(e["global_steps"] == 1 for e in rollouts)
    assert sum(e["requests"] for e in rollouts) == generated_groups(s.step_metrics(2, 2)) * N_ROLLOUTS
    assert _checksum(_checkpoint_state(s.ckpt_dir, 2)) != pytest.approx(first_sync["checksum"], rel=1e-12)


def test_validation_on_testmini_rows(rise_schedule):
    s = rise_schedule
    m = s.step_metrics(2, 2)
    source = s.held_out_rows[0]["data_source"]
    for key in (f"val-core/{source}/acc/mean@1", f"val-aux/{source}/format/mean@1", f"val-aux/{source}/score/mean@1"):
        assert key in m and 0.0 <= m[key] <= 1.0, key
    # Greedy validation of every held-out row, with its image: before training (attempt 1, weights 0), at the resume
    # (weights 1) and after step 2 (weights 2).
    for attempt, versions in ((1, [0]), (2, [1, 2])):
        validation = _events(s.trace(attempt), "generate", greedy=True)
        by_version = defaultdict(int)
        for e in validation:
            by_version[e["global_steps"]] += e["requests"]
        assert dict(by_version) == {v: len(s.held_out_rows) for v in versions}
        assert all(e["greedy"] == e["requests"] == e["with_images"] for e in validation)
    assert {r["extra_info"]["split"] for r in s.held_out_rows} == {"testmini"}
