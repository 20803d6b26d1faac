"""End to end on a CPU: verl's main_ppo runs the Metis-RISE GRPO recipe (recipes/rise_grpo_cpu_tiny.yaml) with
images, through the verl-rise plugin (CPU platform + hf rollout), on real MATH-Vision rows converted by data_prep,
scored by reward_fns.rise.

All tests read one session fixture (tests/conftest.py::e2e_grpo): a first run of 1 GRPO step from a primed tiny
Qwen2.5-VL that saves a checkpoint, then a second run that resumes from it, trains step 2 and validates on
testmini rows. DAPO dynamic sampling is on, so a step generates more groups than it trains on (the pass-rate
side of that is in tests/test_passrate_e2e.py). Evidence comes from verl's own outputs (file-logger metrics, ``trainer.rollout_data_dir`` dumps,
checkpoints) and from the hf rollout's trace file (one line per generate batch / weight sync).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

N_ROLLOUTS = 8  # rise_grpo: actor_rollout_ref.rollout.n
TRAIN_BATCH = 2  # rise_grpo_cpu_tiny: data.train_batch_size


def _dump(rollout_dir: Path, step: int) -> list[dict]:
    path = rollout_dir / f"{step}.jsonl"
    assert path.is_file(), f"verl wrote no rollout dump {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for r in rows:
        groups[r["uid"].rsplit("_", 2)[0]].append(r)  # keys are {uid}_{rollout}_{output}
    return groups


def _events(run, kind: str, greedy: bool | None = None) -> list[dict]:
    out = [e for e in run.trace if e["event"] == kind]
    if greedy is not None:
        out = [e for e in out if (e["greedy"] > 0) == greedy]
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


def test_rollouts_generated_with_images(e2e_grpo):
    train_batches = _events(e2e_grpo.first, "generate", greedy=False)
    assert sum(e["requests"] for e in train_batches) == generated_groups(e2e_grpo.first.step_metrics(1)) * N_ROLLOUTS
    assert all(e["with_images"] == e["requests"] for e in train_batches)
    # Each request carried its image into the model: pixel patches and <|image_pad|> runs of matching size
    # (4 patches merge into one visual token).
    assert all(e["pixel_rows"] == 4 * e["image_tokens"] > 0 for e in train_batches)
    # Batched generation: fewer generate calls than requests.
    assert len(train_batches) < TRAIN_BATCH * N_ROLLOUTS
    dump = _dump(e2e_grpo.rollout_dir_first, 1)
    assert len(dump) == TRAIN_BATCH * N_ROLLOUTS
    assert all(r["output"].strip() for r in dump)


def test_rise_rewards_scored_in_the_loop(e2e_grpo):
    from reward_fns.rise import compute_score

    dump = _dump(e2e_grpo.rollout_dir_first, 1)
    data_source = e2e_grpo.train_rows[0]["data_source"]
    for r in dump:
        expected = compute_score(data_source, r["output"], r["gts"])["score"]
        assert r["score"] == pytest.approx(expected, abs=1e-6), r
    scores = [r["score"] for r in dump]
    assert min(scores) < max(scores), "the primed policy should get mixed rewards"
    m = e2e_grpo.first.step_metrics(1)
    assert m["critic/score/mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)


def test_grpo_advantages_are_group_normalised_scores(e2e_grpo):
    dump = _dump(e2e_grpo.rollout_dir_first, 1)
    groups = _groups(dump)
    assert len(groups) == TRAIN_BATCH and all(len(g) == N_ROLLOUTS for g in groups.values())
    # verl's GRPO outcome advantage (norm_adv_by_std_in_grpo): (score - group mean) / (group std + 1e-6), unbiased std.
    advantages = []
    for g in groups.values():
        s = [r["score"] for r in g]
        mean = sum(s) / len(s)
        std = math.sqrt(sum((x - mean) ** 2 for x in s) / (len(s) - 1))
        advantages += [(x - mean) / (std + 1e-6) for x in s]
    m = e2e_grpo.first.step_metrics(1)
    assert m["critic/advantages/max"] == pytest.approx(max(advantages), rel=1e-3, abs=1e-4)
    assert m["critic/advantages/min"] == pytest.approx(min(advantages), rel=1e-3, abs=1e-4)
    assert m["critic/advantages/max"] > 0 > m["critic/advantages/min"]


def test_fsdp_actor_update_changes_weights_and_reaches_the_rollout(e2e_grpo):
    import torch
    from transformers import AutoModelForImageTextToText

    m = e2e_grpo.first.step_metrics(1)
    assert m["actor/grad_norm"] > 0 and m["actor/pg_loss"] != 0
    # Loaded through the model class: transformers 5 stores Qwen2.5-VL under its legacy checkpoint key names.
    model = AutoModelForImageTextToText.from_pretrained(str(e2e_grpo.initial_policy), dtype=torch.float32)
    before = {k: v.detach().float() for k, v in model.state_dict().items()}
    after = _checkpoint_state(e2e_grpo.ckpt_dir, 1)
    assert set(before) == set(after)
    changed = [k for k in after if not bool((after[k] == before[k]).all())]
    assert "lm_head.weight" in changed and any(".layers." in k for k in changed)
    # On-policy: the weights the rollout received after step 1 are exactly the step-1 checkpoint.
    syncs = {e["global_steps"]: e for e in _events(e2e_grpo.first, "weights")}
    assert syncs[1]["tensors"] == len(after)
    assert syncs[1]["checksum"] == pytest.approx(_checksum(after), rel=1e-9)
    assert syncs[0]["checksum"] == pytest.approx(_checksum(before), rel=1e-9)


def test_rollout_logprobs_match_the_actor(e2e_grpo):
    for run, step in ((e2e_grpo.first, 1), (e2e_grpo.resumed, 2)):
        m = run.step_metrics(step)
        assert m["training/rollout_probs_diff_valid"] == 1
        assert m["training/rollout_probs_diff_max"] < 1e-3, m["training/rollout_probs_diff_max"]


def test_checkpoint_saved(e2e_grpo):
    step1 = e2e_grpo.ckpt_dir / "global_step_1"
    for name in ("model_world_size_1_rank_0.pt", "optim_world_size_1_rank_0.pt", "extra_state_world_size_1_rank_0.pt"):
        assert (step1 / "actor" / name).is_file(), name
    assert (step1 / "data.pt").is_file()


def test_resumed_run_continues_from_the_checkpoint(e2e_grpo):
    steps = sorted({line["step"] for line in e2e_grpo.resumed.metrics})
    assert steps == [2], f"resumed run logged steps {steps}, expected only step 2"
    assert (e2e_grpo.ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    first_sync = _events(e2e_grpo.resumed, "weights")[0]
    assert first_sync["global_steps"] == 1
    assert first_sync["checksum"] == pytest.approx(_checksum(_checkpoint_state(e2e_grpo.ckpt_dir, 1)), rel=1e-9)
    rollouts = _events(e2e_grpo.resumed, "generate", greedy=False)
    assert rollouts and all(e["global_steps"] == 1 for e in rollouts)
    assert sum(e["requests"] for e in rollouts) == generated_groups(e2e_grpo.resumed.step_metrics(2)) * N_ROLLOUTS
    assert _checksum(_checkpoint_state(e2e_grpo.ckpt_dir, 2)) != pytest.approx(first_sync["checksum"], rel=1e-12)


def test_validation_on_testmini_rows(e2e_grpo):
    m = e2e_grpo.resumed.step_metrics(2)
    source = e2e_grpo.val_rows[0]["data_source"]
    for key in (f"val-core/{source}/acc/mean@1", f"val-aux/{source}/format/mean@1", f"val-aux/{source}/score/mean@1"):
        assert key in m and 0.0 <= m[key] <= 1.0, key
    validation = _events(e2e_grpo.resumed, "generate", greedy=True)
    assert sum(e["requests"] for e in validation) == len(e2e_grpo.val_rows)
    assert all(e["greedy"] == e["requests"] == e["with_images"] for e in validation)
    assert {r["extra_info"]["split"] for r in e2e_grpo.val_rows} == {"testmini"}
