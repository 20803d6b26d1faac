"""verl 0.9.1 hooks that feed the pass-rate recorder during RL (v1 trainer, every ``trainer.v1.trainer_mode``).

Where the records come from
    verl's replay buffer is the one driver-side object that sees every scored GRPO group, including the ones
    DAPO dynamic sampling throws away (all-correct and all-wrong groups: exactly the solved and hard prompts).
    Every group leaves the buffer through one of two methods, exactly once:

    * ``ReplayBuffer._materialize_batch`` (replay_buffer.py:394): the groups selected for training;
    * ``ReplayBuffer._clear_groups`` (replay_buffer.py:241): groups evicted by DAPO filtering
      (``_evict_terminal_groups``, replay_buffer.py:345-381), off-policy staleness or rollout failure, and the
      sync-DAPO surplus drained after selection (replay_buffer.py:495-500).

    The sampler below wraps both and reads ``extra_info`` (the dataset row's, with data_prep's stable
    ``prompt_id``), ``extra_fields.reward_extra_info["acc"]`` and ``rm_scores`` of the group's trajectories from
    TransferQueue before verl clears them. Trajectory values hold those fields because the agent loop stores
    the dataset row next to each output (``field.update(kwargs)``, agent_loop_tq.py:195) and the reward loop
    fills ``reward_extra_info`` before the trajectory is put (agent_loop.py:1027-1028). Reward workers
    (``reward.num_workers`` Ray actors) never see a group whole and would each need their own output, so the
    replay buffer on the driver is the single writer: nothing is lost or counted twice by construction.
    verl's ``uid`` is a fresh uuid4 per draw (trainer_base.py:1476), so it is never used as the prompt key.

How per-step metrics reach verl's logger
    ``sample()`` returns ``(batch, metrics)``; the trainer merges those metrics into the step's
    (trainer_base.py:569-572) and logs them with ``Tracking.log`` (trainer_base.py:514), so ``passrate/*`` shows up
    in console, wandb, tensorboard, file, ... like verl's own ``training/filter_groups/*`` metrics. When verl
    samples several mini-batches per step (``parameter_sync_step``, 4 by default in separate_async), the step's
    ``passrate/*`` metrics ride on the last one only, so verl's ``MetricsAggregator`` passes them through unchanged.

How the state is saved and restored
    ``trainer.checkpoint_callback_class`` is called on the driver after every checkpoint
    (trainer_base.py:1014, 1027; checkpoint_callback.py:49) and snapshots the recorder (atomic write). Restore is
    lazy: the first training-partition call of a run comes at step ``N + 1`` where ``N`` is the step verl resumed
    from (``fit`` increments ``global_steps`` before the loop, trainer_base.py:454; ``_load_checkpoint`` set
    it from ``global_step_N``, trainer_base.py:876), so the recorder restores to ``N`` whatever resume mode verl
    used. verl calls the callback *after* writing ``latest_checkpointed_iteration.txt`` (trainer_base.py:1021-1027);
    a kill in between is covered because the records of every step are on disk before its checkpoint starts.

Config keys (``recipes/rise_grpo.yaml`` sets them, so every rise_grpo profile tracks; docs/passrate.md)::

    trainer:
      checkpoint_callback_class: verl_rise.verl_ext.passrate_hooks.PassRateCheckpointCallback
      v1:
        sampler:
          custom_sampler:
            path: pkg://verl_rise.verl_ext.passrate_hooks
            name: build_passrate_replay_buffer
          sampler_kwargs:
            passrate:
              dir: ${trainer.default_local_dir}/passrate   # required
              window_steps: 1          # window pass rate over the prompt's latest N steps (steps/epoch: last epoch)
              basis: window            # window | overall: which pass rate the buckets use
              solved_threshold: 1.0
              hard_threshold: 0.0
              min_attempts: 1
              keep_snapshots: 2
              prompt_id_key: prompt_id
              histogram: true
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback
from verl.trainer.ppo.v1 import replay_buffer as _rb
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

from verl_rise.verl_ext.compat import require_attr
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.records import RecordBatch, RecordError

logger = logging.getLogger(__name__)

SAMPLER_PATH = "pkg://verl_rise.verl_ext.passrate_hooks"
SAMPLER_NAME = "build_passrate_replay_buffer"
CALLBACK_FQN = "verl_rise.verl_ext.passrate_hooks.PassRateCheckpointCallback"
_TRAIN = "train"
# verl methods this module wraps or calls; checked at construction so a verl upgrade fails loudly, not silently.
_REQUIRED_METHODS = ("_clear_groups", "_materialize_batch", "sample", "_sync_metadata_from_transfer_queue")


def _to_list(values: Any) -> list:
    """Python objects of one TensorDict field (NonTensorStack or tensordict's LinkedList)."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    return [getattr(v, "data", v) for v in values]


def _final_session_keys(keys: Iterable[str], uids: set[str]) -> list[str]:
    """Trajectory keys ``{uid}_{session}_{index}`` of ``uids``, keeping the last output of each session.

    Multi-output agent loops store one key per output of a session, all carrying the session's reward
    (agent_loop_tq.py:171-175); verl's validation counts a session once, by its highest index
    (trainer_base.py:1085-1099). One record per session, as there.
    """
    best: dict[str, tuple[int, str]] = {}
    for key in keys:
        uid, _, rest = key.partition("_")
        if uid not in uids:
            continue
        session, _, index = rest.rpartition("_")
        idx = int(index) if index.isdigit() else 0
        slot = f"{uid}_{session}"
        if slot not in best or idx > best[slot][0]:
            best[slot] = (idx, key)
    return sorted(key for _, key in best.values())


class _PassRateRecording:
    """Mixin over verl's ``ReplayBuffer`` / ``ReplayBufferAsync``: records every training group as it leaves.

    Args:
        passrate: tracker settings.
        **kwargs: verl's replay-buffer constructor arguments, passed through unchanged.
    """

    def __init__(self, *, passrate: PassRateConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        verl_buffer = super()
        for method in _REQUIRED_METHODS:
            require_attr(verl_buffer, method, "verl/trainer/ppo/v1/replay_buffer.py", "verl_rise/verl_ext/passrate_hooks.py")
        # Created at the first training sample(), not here: verl builds the sampler for validation-only runs
        # and config checks too, which must not create (or, with resume_mode=disable, clear) a tracker dir.
        self.passrate: PassRateRecorder | None = None
        self._passrate_cfg = passrate
        self._passrate_step: int | None = None
        self._passrate_restored = False
        self._passrate_pending: list[RecordBatch] = []
        self._passrate_counts = {"trained": 0, "discarded": 0}
        # verl samples parameter_sync_step mini-batches per global step (trainer_base.py:130, 549; separate_async
        # defaults to 4) and reduces their metrics with MetricsAggregator, which would sum "total" metrics and
        # average counts. The step's metrics are therefore reported once, with its last mini-batch.
        self._passrate_samples_per_step = max(1, int((self.trainer_config or {}).get("parameter_sync_step", 1)))
        self._passrate_samples_this_step = 0

    # -------------------------------------------------------------- lifecycle
    def _passrate_begin(self, global_steps: int) -> None:
        if not self._passrate_restored:
            self.passrate = PassRateRecorder(self._passrate_cfg, producer="sampler")
            report = self.passrate.restore(int(global_steps) - 1)
            logger.info("pass-rate tracker at %s: %s", self._passrate_cfg.dir, report)
            self._passrate_restored = True
        if self._passrate_step != int(global_steps):
            self._passrate_samples_this_step = 0
        self._passrate_step = int(global_steps)

    def _passrate_flush(self) -> None:
        if not self._passrate_pending:
            return
        batch = RecordBatch.concat(self._passrate_pending, source=f"train step {self._passrate_step}")
        self._passrate_pending = []
        self.passrate.record(batch)

    def passrate_save(self, global_step: int) -> None:
        """Snapshot the recorder after ``global_step`` (called by :class:`PassRateCheckpointCallback`).

        Raises:
            RuntimeError: no training step has run in this process yet (the state was never restored).
        """
        if not self._passrate_restored:
            raise RuntimeError("pass-rate sampler: checkpoint before the first training step; nothing restored")
        self._passrate_flush()
        self.passrate.save(int(global_step))

    # -------------------------------------------------------------- collection
    def _passrate_collect(self, partition_id: str, uids: set[str], snapshot: dict, reason: str) -> None:
        if partition_id != _TRAIN or not uids:
            return
        if self._passrate_step is None:
            raise RuntimeError("pass-rate sampler: a training group left the buffer outside sample()")
        keys = _final_session_keys(snapshot.keys(), uids)
        if not keys:
            return  # failed groups without any trajectory: nothing was scored
        data = _rb.tq.kv_batch_get(
            keys=keys, partition_id=partition_id, select_fields=["extra_info", "extra_fields", "rm_scores"]
        )
        extra_infos = _to_list(data["extra_info"])
        extra_fields = _to_list(data["extra_fields"])
        scores = [float(row.sum().item()) for row in data["rm_scores"]]
        source = f"train step {self._passrate_step}"
        pid_key = self._passrate_cfg.prompt_id_key
        prompt_ids, accs = [], []
        for key, info, fields in zip(keys, extra_infos, extra_fields, strict=True):
            pid = info.get(pid_key) if isinstance(info, dict) else None
            if isinstance(pid, (int,)) and not isinstance(pid, bool):
                pid = str(pid)
            if not isinstance(pid, str) or not pid:
                raise RecordError(
                    f"{source}: trajectory {key}: extra_info has no usable {pid_key!r} (got {pid!r}); build the "
                    "parquet with data_prep (it writes extra_info.prompt_id) or set passrate.prompt_id_key"
                )
            reward_info = fields.get("reward_extra_info", {}) if isinstance(fields, dict) else {}
            if "acc" not in reward_info:
                raise RecordError(
                    f"{source}: trajectory {key}: reward_extra_info has no 'acc' (keys {sorted(reward_info)}); the "
                    "reward function must return a dict with 'acc' (reward_fns.rise.compute_score does)"
                )
            prompt_ids.append(pid)
            accs.append(float(reward_info["acc"]))
        step = [self._passrate_step] * len(keys)
        labels = [f"trajectory {key}" for key in keys]
        self._passrate_pending.append(
            RecordBatch.from_columns(prompt_ids, step, accs, scores, source=source, labels=labels)
        )
        self._passrate_counts[reason] += len(keys)

    # -------------------------------------------------------------- verl overrides
    def _clear_groups(self, partition_id: str, uids: set[str]) -> None:
        self._passrate_collect(partition_id, set(uids), self.partitions[partition_id], "discarded")
        super()._clear_groups(partition_id, uids)

    def _materialize_batch(self, partition_id: str, selected_prompt_uids: list[str], partition_snapshot: dict):
        self._passrate_collect(partition_id, set(selected_prompt_uids), partition_snapshot, "trained")
        return super()._materialize_batch(partition_id, selected_prompt_uids, partition_snapshot)

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        if partition_id != _TRAIN:
            return super().sample(global_steps, partition_id, batch_size)
        self._passrate_begin(global_steps)
        try:
            batch, metrics = super().sample(global_steps, partition_id, batch_size)
        except BaseException:
            # The step fails; a resumed run replays it, so its unsaved records must not be kept.
            self._passrate_pending.clear()
            raise
        self._passrate_flush()
        self._passrate_samples_this_step += 1
        if self._passrate_samples_this_step < self._passrate_samples_per_step:
            return batch, metrics
        metrics = dict(metrics)
        metrics.update(self.passrate.step_metrics())
        metrics["passrate/step_records_trained"] = float(self._passrate_counts["trained"])
        metrics["passrate/step_records_discarded"] = float(self._passrate_counts["discarded"])
        self._passrate_counts = {"trained": 0, "discarded": 0}
        return batch, metrics


class PassRateReplayBuffer(_PassRateRecording, ReplayBuffer):
    """verl's sync ``ReplayBuffer`` (DAPO filtering included) that records every training group."""


class PassRateReplayBufferAsync(_PassRateRecording, ReplayBufferAsync):
    """verl's ``ReplayBufferAsync`` (colocate_async / separate_async) that records every training group."""

    def wait_for_sampleable(self, global_steps: int, partition_id: str, target_count: int):
        if partition_id != _TRAIN:
            return super().wait_for_sampleable(global_steps, partition_id, target_count)
        self._passrate_begin(global_steps)
        try:
            result = super().wait_for_sampleable(global_steps, partition_id, target_count)
        except BaseException:
            self._passrate_pending.clear()
            raise
        self._passrate_flush()
        return result


def _root_config(sampler_kwargs: Any) -> DictConfig:
    if isinstance(sampler_kwargs, DictConfig):
        root = sampler_kwargs._get_root()
        if isinstance(root, DictConfig) and "trainer" in root:
            return root
    raise TypeError(
        "build_passrate_replay_buffer needs trainer.v1.sampler.sampler_kwargs as a node of the full verl config "
        f"(got {type(sampler_kwargs).__name__}); it reads algorithm.filter_groups, data and reward from there"
    )


def builtin_sampler_kwargs(config: DictConfig, trainer_mode: str) -> dict[str, Any]:
    """The extra constructor arguments verl gives its *built-in* sampler but not a custom one.

    Mirrors trainer_base.py:163-185 (verl 0.9.1) so that DAPO dynamic sampling, failed-group refill and the
    in-flight bound behave exactly as without the tracker; the filter metric is resolved by verl's own
    ``PPOTrainer._resolve_filter_groups_metric`` (same validation and warnings).

    Args:
        config: the full trainer config.
        trainer_mode: ``trainer.v1.trainer_mode``.

    Returns:
        Keyword arguments for ``ReplayBuffer`` (sync) or ``ReplayBufferAsync``.
    """
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    sampler_config = config.trainer.v1.sampler
    filter_groups_metric = PPOTrainer._resolve_filter_groups_metric(SimpleNamespace(config=config))
    sync_refill_failed_groups = bool(sampler_config.get("sync_refill_failed_groups", False))
    out: dict[str, Any] = {
        "filter_groups_metric": filter_groups_metric,
        "sync_refill_failed_groups": sync_refill_failed_groups,
    }
    if trainer_mode == "sync":
        filter_groups = config.algorithm.get("filter_groups", None)
        max_inflight_gen_batches = 1
        if filter_groups_metric is not None:
            max_inflight_gen_batches = filter_groups.get("max_inflight_gen_batches", 1)
        train_batch_size = config.data.train_batch_size
        out.update(
            train_batch_size=train_batch_size,
            gen_batch_size=1
            if filter_groups_metric is not None or sync_refill_failed_groups
            else (config.data.get("gen_batch_size", None) or train_batch_size),
            max_inflight_gen_batches=max_inflight_gen_batches,
        )
    return out


def build_passrate_replay_buffer(
    *,
    trainer_mode: str,
    trainer_config: Any,
    max_off_policy_threshold: int | None,
    max_off_policy_strategy: str,
    sampler_kwargs: Any,
    refill_fn: Any = None,
    **kwargs: Any,
) -> ReplayBuffer:
    """``trainer.v1.sampler.custom_sampler`` factory: verl's own sampler for the trainer mode, plus recording.

    Called by ``PPOTrainer._build_replay_buffer`` (trainer_base.py:139-185) with the custom-sampler arguments.

    Args:
        trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy, refill_fn: verl's.
        sampler_kwargs: ``trainer.v1.sampler.sampler_kwargs``; its ``passrate`` block is the
            :class:`PassRateConfig` (``dir`` required).
        **kwargs: further arguments a later verl may pass; forwarded.

    Returns:
        :class:`PassRateReplayBuffer` (sync) or :class:`PassRateReplayBufferAsync` (async modes).

    Raises:
        ValueError: bad ``passrate`` block, or a colocated reward model (rewards would arrive after sampling).
        TypeError: ``sampler_kwargs`` is not part of the full config.
    """
    root = _root_config(sampler_kwargs)
    passrate_block = sampler_kwargs.get("passrate", None)
    if isinstance(passrate_block, DictConfig):
        passrate_block = OmegaConf.to_container(passrate_block, resolve=True)
    passrate = PassRateConfig.from_mapping(passrate_block)
    reward_model = root.reward.get("reward_model", None)
    if reward_model is not None and reward_model.get("enable", False) and not reward_model.get(
        "enable_resource_pool", False
    ):
        raise ValueError(
            "pass-rate tracking needs scores when groups leave the replay buffer; a colocated reward model scores "
            "after sampling. Use a rule-based reward or reward.reward_model.enable_resource_pool=True"
        )
    cls = PassRateReplayBuffer if trainer_mode == "sync" else PassRateReplayBufferAsync
    return cls(
        passrate=passrate,
        trainer_mode=trainer_mode,
        trainer_config=trainer_config,
        max_off_policy_threshold=max_off_policy_threshold,
        max_off_policy_strategy=max_off_policy_strategy,
        sampler_kwargs=sampler_kwargs,
        refill_fn=refill_fn,
        **builtin_sampler_kwargs(root, trainer_mode),
        **kwargs,
    )


class PassRateCheckpointCallback(CheckpointCallback):
    """``trainer.checkpoint_callback_class``: snapshot the pass-rate state (and histogram PNG) at every save.

    Args:
        config: the full trainer config (verl passes it).

    Raises:
        ValueError: at trainer construction, when ``trainer.v1.sampler.custom_sampler`` is not the pass-rate
            sampler (there would be nothing to save).
    """

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        if config is not None:
            custom = config.trainer.v1.sampler.get("custom_sampler", None) or {}
            path, name = custom.get("path"), custom.get("name")
            factory = None
            if path and name:
                from verl.utils.import_utils import load_extern_object

                factory = load_extern_object(path, name)  # resolved as verl resolves it (trainer_base.py:151)
            if factory is not build_passrate_replay_buffer:
                raise ValueError(
                    f"{CALLBACK_FQN} needs trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH} and "
                    f".name={SAMPLER_NAME} (got path={path!r}, name={name!r})"
                )

    def on_save(self, trainer: Any, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs):
        sampler = getattr(trainer, "replay_buffer", None)
        if not isinstance(sampler, _PassRateRecording):
            raise RuntimeError(
                f"{CALLBACK_FQN}: trainer.replay_buffer is {type(sampler).__name__}, not the pass-rate sampler"
            )
        sampler.passrate_save(global_step)
