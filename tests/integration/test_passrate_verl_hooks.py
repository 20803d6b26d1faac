"""The pass-rate sampler and checkpoint callback inside verl 0.9.1's real replay buffers and loaders.

verl's ReplayBuffer / ReplayBufferAsync (DAPO filtering, refill, selection), PPOTrainer._build_replay_buffer,
build_checkpoint_callback and AgentLoopOutput are the real classes; only TransferQueue is an in-memory fake
(see tests/support/_passrate_verl_harness.py). The config is composed from our recipe with Hydra.
"""

from __future__ import annotations

import copy
import pickle
from types import SimpleNamespace

import pytest
from omegaconf import open_dict

pytest.importorskip("verl")

from tests.support._passrate_verl_harness import (  # noqa: E402
    FakeRollout,
    FakeTransferQueue,
    build_sampler,
    compose_config,
    make_rows,
    run_steps,
    tracker_totals,
    with_dir,
)
from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback  # noqa: E402
from verl.trainer.ppo.v1 import replay_buffer as verl_replay_buffer  # noqa: E402
from verl.trainer.ppo.v1 import trainer_base  # noqa: E402

from verl_rise.passrate.records import RecordError  # noqa: E402
from verl_rise.verl_ext.passrate_hooks import (  # noqa: E402
    PassRateCheckpointCallback,
    PassRateReplayBuffer,
    PassRateReplayBufferAsync,
    builtin_sampler_kwargs,
)

N = 4  # rollouts per prompt (GRPO group size)
BATCH = 4


@pytest.fixture(scope="module")
def base_config(tmp_path_factory):
    return compose_config(tmp_path_factory.mktemp("cfg"))


@pytest.fixture
def fake_tq(monkeypatch):
    tq = FakeTransferQueue()
    monkeypatch.setattr(verl_replay_buffer, "tq", tq)
    return tq


def _config(base_config, tmp_path, **updates):
    cfg = with_dir(base_config, tmp_path)
    with open_dict(cfg):
        for dotted, value in updates.items():
            node = cfg
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
    return cfg


def _make(cfg, fake_tq, rows, position=0):
    rollout = FakeRollout(fake_tq, rows, N, position=position)
    sampler = build_sampler(cfg, refill=rollout.dispatch)
    callback = build_checkpoint_callback(cfg)
    return rollout, sampler, callback


def test_verl_builds_our_sampler_and_callback_from_the_documented_keys(base_config, tmp_path, fake_tq):
    cfg = _config(base_config, tmp_path)
    _, sampler, callback = _make(cfg, fake_tq, make_rows(8))
    assert type(sampler) is PassRateReplayBuffer and isinstance(sampler, verl_replay_buffer.ReplayBuffer)
    assert type(callback) is PassRateCheckpointCallback
    assert sampler._passrate_cfg.dir == str(tmp_path / "ckpt" / "passrate")
    assert sampler._passrate_cfg.window_steps == 2
    # verl also builds the sampler in validation-only runs: nothing may touch the tracker dir before training.
    assert sampler.passrate is None and not (tmp_path / "ckpt").exists()
    async_cfg = _config(base_config, tmp_path, **{"trainer.v1.trainer_mode": "colocate_async"})
    _, async_sampler, _ = _make(async_cfg, fake_tq, make_rows(8))
    assert type(async_sampler) is PassRateReplayBufferAsync


def test_config_survives_the_pickling_ray_does(base_config, tmp_path, fake_tq):
    # main_ppo hands the config to its TaskRunner actor through Ray (pickle); sampler_kwargs must still reach
    # the root config there for the factory to read algorithm.filter_groups and data.
    cfg = pickle.loads(pickle.dumps(_config(base_config, tmp_path, **{"algorithm.filter_groups.enable": True})))
    _, sampler, _ = _make(cfg, fake_tq, make_rows(8))
    assert sampler.filter_groups_metric == "acc" and sampler.gen_batch_size == 1


@pytest.mark.parametrize("dapo", [False, True])
def test_forwarded_kwargs_equal_what_verl_gives_its_builtin_sampler(base_config, tmp_path, monkeypatch, dapo):
    cfg = _config(base_config, tmp_path, **{"algorithm.filter_groups.enable": dapo})
    with open_dict(cfg):
        cfg.trainer.v1.sampler.custom_sampler.path = None
        cfg.trainer.v1.sampler.custom_sampler.name = None
    captured = {}

    class Capture(verl_replay_buffer.ReplayBuffer):
        def __init__(self, **kwargs):
            captured.update(kwargs)

    monkeypatch.setattr(trainer_base, "ReplayBuffer", Capture)
    shim = SimpleNamespace(config=cfg, trainer_mode="sync", _add_prompts_to_generate=lambda k: k)
    shim._resolve_filter_groups_metric = lambda: trainer_base.PPOTrainer._resolve_filter_groups_metric(shim)
    trainer_base.PPOTrainer._build_replay_buffer(shim)
    base = {"trainer_mode", "trainer_config", "max_off_policy_threshold", "max_off_policy_strategy",
            "sampler_kwargs", "refill_fn"}
    assert {k: v for k, v in captured.items() if k not in base} == builtin_sampler_kwargs(cfg, "sync")
    assert (captured["filter_groups_metric"] == "acc") is dapo


@pytest.mark.parametrize("dapo", [False, True])
def test_every_scored_rollout_is_recorded_including_dapo_filtered_groups(base_config, tmp_path, fake_tq, dapo):
    cfg = _config(base_config, tmp_path, **{"algorithm.filter_groups.enable": dapo})
    rows = make_rows(20)  # ids ending 0/1: always wrong, 2/3: always right (DAPO filters those groups)
    rollout, sampler, callback = _make(cfg, fake_tq, rows)
    metrics = run_steps(sampler, rollout, callback, range(1, 5), BATCH, save_freq=2, saved={})

    assert tracker_totals(sampler) == rollout.ledger.totals()
    assert not fake_tq.kv_list("train").get("train"), "sync mode leaves no group behind"
    hard = [p for p, (att, cor) in tracker_totals(sampler).items() if p[-1] in "01"]
    assert hard and all(tracker_totals(sampler)[p][1] == 0 for p in hard)
    assert metrics["passrate/step_records"] == metrics["passrate/step_records_trained"] + metrics[
        "passrate/step_records_discarded"]
    if dapo:
        # verl's own DAPO path ran (its metric is there) and the groups it threw away were recorded.
        assert sum(len(v) for v in rollout.ledger.trajectories.values()) > 4 * BATCH * N
        assert any(p[-1] in "0123" for p in tracker_totals(sampler))
        assert sampler.passrate.tracker.total_records == sum(a for a, _ in tracker_totals(sampler).values())
    else:
        assert sampler.passrate.tracker.total_records == 4 * BATCH * N
    assert "passrate/hard_frac" in metrics and "passrate/moved" in metrics
    assert sampler.passrate.store.snapshot_steps() == [2, 4]


def test_dapo_discarded_records_show_in_the_step_metrics(base_config, tmp_path, fake_tq):
    cfg = _config(base_config, tmp_path, **{"algorithm.filter_groups.enable": True})
    rollout, sampler, callback = _make(cfg, fake_tq, make_rows(20))
    rollout.step = 1
    rollout.dispatch(BATCH)
    _, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=BATCH)
    assert metrics["training/filter_groups/evicted_samples"] > 0  # verl's metric
    assert metrics["passrate/step_records_discarded"] >= metrics["training/filter_groups/evicted_samples"] * N
    assert metrics["passrate/step_records_trained"] == BATCH * N


def test_validation_groups_are_not_recorded(base_config, tmp_path, fake_tq):
    cfg = _config(base_config, tmp_path)
    rollout, sampler, callback = _make(cfg, fake_tq, make_rows(8))
    rollout.step = 0
    uids = rollout.dispatch(3, partition_id="val", n=2)
    batch, _ = sampler.sample(global_steps=0, partition_id="val", batch_size=3)
    assert {k.split("_")[0] for k in batch.keys} == set(uids)
    assert sampler.passrate is None and not (tmp_path / "ckpt").exists()


def test_killed_run_resumed_by_verl_ends_with_the_same_totals(base_config, tmp_path, fake_tq, monkeypatch):
    rows = make_rows(20)
    cfg_a = _config(base_config, tmp_path / "a", **{"algorithm.filter_groups.enable": True})
    rollout_a, sampler_a, callback_a = _make(cfg_a, fake_tq, rows)
    run_steps(sampler_a, rollout_a, callback_a, range(1, 7), BATCH, save_freq=2, saved={})

    # Run B is killed during step 5 (after its records were written), then resumed by verl from step 4:
    # a fresh process, a fresh TransferQueue (sync mode does not checkpoint it), the dataloader state of step 4.
    tq_b = FakeTransferQueue()
    monkeypatch.setattr(verl_replay_buffer, "tq", tq_b)
    cfg_b = _config(base_config, tmp_path / "b", **{"algorithm.filter_groups.enable": True})
    rollout_b, sampler_b, callback_b = _make(cfg_b, tq_b, rows)
    saved = {}
    run_steps(sampler_b, rollout_b, callback_b, range(1, 6), BATCH, save_freq=2, saved=saved)
    assert 5 in {s for s, _ in sampler_b.passrate.store.shard_keys()}

    tq_c = FakeTransferQueue()
    monkeypatch.setattr(verl_replay_buffer, "tq", tq_c)
    rollout_c, sampler_c, callback_c = _make(cfg_b, tq_c, rows, position=saved[4])
    run_steps(sampler_c, rollout_c, callback_c, range(5, 7), BATCH, save_freq=2, saved={})

    assert sampler_c.passrate.tracker.equals(sampler_a.passrate.tracker)
    assert tracker_totals(sampler_c) == rollout_a.ledger.totals()


def test_async_sampler_records_every_group_that_left_the_buffer(base_config, tmp_path, fake_tq):
    cfg = _config(base_config, tmp_path, **{"trainer.v1.trainer_mode": "colocate_async",
                                             "algorithm.filter_groups.enable": True})
    rows = make_rows(20)
    rollout, sampler, callback = _make(cfg, fake_tq, rows)
    run_steps(sampler, rollout, callback, range(1, 4), BATCH, save_freq=0, saved={})
    still_buffered = {k.split("_")[0] for k in fake_tq.kv_list("train").get("train", {})}
    assert tracker_totals(sampler) == rollout.ledger.totals(exclude_uids=still_buffered)
    assert sampler.passrate.tracker.total_records > 0


def test_step_metrics_reported_once_per_step_with_several_mini_batches(base_config, tmp_path, fake_tq):
    """separate_async samples parameter_sync_step mini-batches per step and reduces their metrics with verl's
    MetricsAggregator (sums 'total' metrics, averages counts): the step's pass-rate metrics must come through it
    exactly as the tracker has them."""
    from verl.trainer.ppo.v1.utils import MetricsAggregator

    cfg = _config(base_config, tmp_path, **{"trainer.v1.trainer_mode": "separate_async",
                                             "trainer.v1.separate_async.parameter_sync_step": 4})
    rollout, sampler, _ = _make(cfg, fake_tq, make_rows(20))
    for step in (1, 2):
        rollout.step = step
        rollout.dispatch(BATCH)
        aggregator = MetricsAggregator()
        for mini in range(4):  # PPOTrainer.step: one sample() per local update, BATCH // 4 prompts each
            _, metrics = sampler.sample(global_steps=step, partition_id="train", batch_size=BATCH // 4)
            assert any(k.startswith("passrate/") for k in metrics) is (mini == 3)
            aggregator.add_step_metrics(metrics, sample_count=N)
        logged = aggregator.get_aggregated_metrics()
        assert logged["passrate/total_records"] == sampler.passrate.tracker.total_records == step * BATCH * N
        assert logged["passrate/step_records"] == logged["passrate/step_records_trained"] == BATCH * N


def test_missing_prompt_id_is_a_clear_error(base_config, tmp_path, fake_tq):
    rows = make_rows(4)
    for r in rows:
        del r["extra_info"]["prompt_id"]
    rollout, sampler, _ = _make(_config(base_config, tmp_path), fake_tq, rows)
    rollout.step = 1
    rollout.dispatch(BATCH)
    with pytest.raises(RecordError, match=r"train step 1: trajectory .* extra_info has no usable 'prompt_id'"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=BATCH)


def test_reward_without_acc_is_a_clear_error(base_config, tmp_path, fake_tq):
    rollout, sampler, _ = _make(_config(base_config, tmp_path), fake_tq, make_rows(4))
    rollout.step = 1
    rollout.dispatch(BATCH)
    for value in fake_tq.values["train"].values():
        value["extra_fields"] = {"reward_extra_info": {"score": 1.0}}
    with pytest.raises(RecordError, match="reward_extra_info has no 'acc'"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=BATCH)


def test_non_binary_acc_names_the_trajectory_and_keeps_nothing_of_the_failed_step(base_config, tmp_path, fake_tq):
    rollout, sampler, _ = _make(_config(base_config, tmp_path), fake_tq, make_rows(4))
    rollout.step = 1
    rollout.dispatch(BATCH)
    # A float reward makes verl's naive manager log acc = score (naive.py:93-95), e.g. 0.9.
    key = sorted(fake_tq.values["train"])[0]
    fake_tq.values["train"][key]["extra_fields"]["reward_extra_info"]["acc"] = 0.9
    with pytest.raises(RecordError, match=r"trajectory .*_\d_0: field 'acc' is not exactly 0 or 1 \(value 0\.9"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=BATCH)
    assert sampler.passrate.store.shard_keys() == [] and sampler.passrate.tracker.total_records == 0


def test_callback_refuses_a_config_without_the_sampler(base_config, tmp_path):
    cfg = copy.deepcopy(_config(base_config, tmp_path))
    with open_dict(cfg):
        cfg.trainer.v1.sampler.custom_sampler.path = None
    with pytest.raises(ValueError, match="custom_sampler.path=pkg://verl_rise.verl_ext.passrate_hooks"):
        build_checkpoint_callback(cfg)


def test_colocated_reward_model_is_refused(base_config, tmp_path, fake_tq):
    cfg = _config(base_config, tmp_path, **{"reward.reward_model.enable": True,
                                             "reward.reward_model.enable_resource_pool": False})
    with pytest.raises(ValueError, match="colocated reward model"):
        _make(cfg, fake_tq, make_rows(4))
