"""A driver for verl 0.9.1's real replay buffers without Ray or a GPU.

Only TransferQueue is replaced: :class:`FakeTransferQueue` keeps keys, tags and values in memory and answers
``kv_batch_get`` with :func:`verl.utils.tensordict_utils.list_of_dict_to_tensordict`, the function verl's agent
loop uses to build what it puts into TransferQueue (agent_loop_tq.py:222-227); a real TransferQueue round trip
returns the same field types (NestedTensor rows for ``rm_scores``, lists of dicts for ``extra_info`` /
``extra_fields``). Trajectories are built like ``AgentLoopWorkerTQ._agent_loop_postprocess``
(agent_loop_tq.py:153-227) from real ``AgentLoopOutput`` objects, and the step loop follows
``PPOTrainer.fit``/``step`` (trainer_base.py:475-520): dispatch a batch, ``sample``, clear the batch's keys,
checkpoint every ``save_freq`` steps through the checkpoint callback.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from omegaconf import open_dict

from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from tests.support.paths import REPO_ROOT


class FakeTransferQueue:
    """In-memory ``transfer_queue`` kv API: kv_list, kv_batch_put, kv_batch_get, kv_clear."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, dict]] = defaultdict(dict)
        self.values: dict[str, dict[str, dict]] = defaultdict(dict)

    def kv_list(self, partition_id: str | None = None) -> dict:
        return {
            p: {k: dict(t) for k, t in items.items()}
            for p, items in self.tags.items()
            if partition_id is None or p == partition_id
        }

    def kv_batch_put(self, keys, partition_id, tags=None, fields=None) -> None:
        for i, key in enumerate(keys):
            self.tags[partition_id].setdefault(key, {}).update(tags[i] if tags else {})
            if fields is not None:
                self.values[partition_id][key] = fields[i]

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        rows = []
        for key in keys:
            value = self.values[partition_id][key]
            rows.append({f: value[f] for f in (select_fields or value.keys())})
        return list_of_dict_to_tensordict(rows)

    def kv_clear(self, keys, partition_id) -> None:
        for key in [keys] if isinstance(keys, str) else keys:
            self.tags[partition_id].pop(key, None)
            self.values[partition_id].pop(key, None)


def deterministic_acc(prompt_id: str, step: int, session: int) -> float:
    """Per-prompt difficulty: ids ending in 0/1 are always wrong, 2/3 always right, the rest mixed."""
    last = int(prompt_id[-1])
    if last in (0, 1):
        return 0.0
    if last in (2, 3):
        return 1.0
    digest = hashlib.sha256(f"{prompt_id}/{step}/{session}".encode()).digest()
    return float(digest[0] % 2)


def make_rows(num_prompts: int) -> list[dict]:
    """Dataset rows as RLHFDataset yields them (the fields the agent loop forwards into TransferQueue)."""
    return [
        {
            "data_source": "mathvision",
            "reward_model": {"style": "rule", "ground_truth": "A"},
            "extra_info": {"prompt_id": f"pid-{i:04d}", "index": i, "split": "train"},
            "index": i,
            "raw_prompt": [{"role": "user", "content": f"question {i}"}],
        }
        for i in range(num_prompts)
    ]


@dataclass
class Ledger:
    """Every trajectory the fake rollout produced: prompt_id -> [(uid, acc, score), ...]."""

    trajectories: dict[str, list[tuple[str, float, float]]] = field(default_factory=lambda: defaultdict(list))

    def totals(self, exclude_uids: set[str] = frozenset()) -> dict[str, tuple[int, int]]:
        out = {}
        for pid, rows in self.trajectories.items():
            kept = [acc for uid, acc, _ in rows if uid not in exclude_uids]
            if kept:
                out[pid] = (len(kept), int(sum(kept)))
        return out


class FakeRollout:
    """Dispatches prompts and 'generates' n scored trajectories per prompt, putting them into the fake TQ."""

    def __init__(
        self,
        tq: FakeTransferQueue,
        rows: list[dict],
        n: int,
        acc_fn: Callable[[str, int, int], float] = deterministic_acc,
        position: int = 0,
    ) -> None:
        self.tq, self.rows, self.n, self.acc_fn = tq, rows, n, acc_fn
        self.position = position  # the dataloader state verl checkpoints as data.pt
        self.step = 0
        self.ledger = Ledger()

    def dispatch(self, num_prompts: int, partition_id: str = "train", n: int | None = None) -> list[str]:
        uids = []
        for _ in range(num_prompts):
            row = copy.deepcopy(self.rows[self.position % len(self.rows)])
            self.position += 1
            uid = str(uuid.uuid4())
            uids.append(uid)
            self.tq.kv_batch_put([uid], partition_id, tags=[{"is_prompt": True, "status": "pending",
                                                             "global_steps": self.step}])
            self._generate(uid, row, partition_id, n or self.n)
        return uids

    def _generate(self, uid: str, row: dict, partition_id: str, n: int) -> None:
        self.tq.kv_batch_put([uid], partition_id, tags=[{"status": "running"}])
        pid = row["extra_info"].get("prompt_id", f"row-{row['index']}")
        for session in range(n):
            acc = self.acc_fn(pid, self.step, session)
            score = 0.9 * acc + 0.1
            output = AgentLoopOutput(
                prompt_ids=[1, 2, 3],
                response_ids=[4, 5, 6, 7][: 2 + session % 3],
                response_mask=[1, 1, 1, 1][: 2 + session % 3],
                reward_score=score,
                num_turns=2,
                metrics=AgentLoopMetrics(),
                extra_fields={
                    "reward_extra_info": {"score": score, "acc": acc, "format": 1.0, "pred": "A", "reason": ""},
                    "min_global_steps": self.step,
                    "max_global_steps": self.step,
                },
            )
            value = output.as_dict()
            value.update(row, uid=uid, session_id=session, global_steps=self.step)
            self.tq.kv_batch_put(
                [f"{uid}_{session}_0"],
                partition_id,
                tags=[{"status": "success", "global_steps": self.step}],
                fields=[value],
            )
            if partition_id == "train":
                self.ledger.trajectories[pid].append((uid, acc, score))
        self.tq.kv_batch_put([uid], partition_id, tags=[{"status": "finished"}])


def compose_config(tmp_dir: Path, overrides: list[str] = ()):
    """verl's full config through our recipe (which turns the pass-rate tracker on), small windows, no PNGs."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO_ROOT / "recipes"), version_base=None):
        cfg = compose(
            config_name="rise_grpo",
            overrides=[
                # The base recipe leaves hydra.searchpath to the size profiles (see recipes/rise_grpo.yaml).
                "hydra.searchpath=[pkg://verl.trainer.config]",
                f"trainer.default_local_dir={tmp_dir}/ckpt",
                "trainer.v1.sampler.sampler_kwargs.passrate.window_steps=2",
                "trainer.v1.sampler.sampler_kwargs.passrate.histogram=false",
                "data.train_batch_size=4",
                *overrides,
            ],
        )
    return cfg


def with_dir(cfg, tmp_dir: Path):
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.default_local_dir = str(tmp_dir / "ckpt")
    return cfg


def build_sampler(cfg, refill: Callable[[int], int]):
    """The sampler exactly as verl's trainer builds it (trainer_base.py:139-185, our factory via custom_sampler)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    shim = SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode, _add_prompts_to_generate=refill)
    sampler = PPOTrainer._build_replay_buffer(shim)
    sampler.poll_interval = 0.0  # the fake rollout finishes instantly; verl's default 2 s poll would only wait
    return sampler


def run_steps(sampler, rollout: FakeRollout, callback, steps, train_batch_size: int, save_freq: int, saved: dict):
    """The v1 trainer's step loop around the sampler; returns the metrics of the last step.

    ``saved[step] = rollout.position`` records the dataloader state of every checkpoint (verl's data.pt).
    """
    metrics = {}
    for step in steps:
        rollout.step = step
        rollout.dispatch(train_batch_size)  # prepare_step -> _add_batch_to_generate
        batch, metrics = sampler.sample(global_steps=step, partition_id="train", batch_size=train_batch_size)
        rollout.tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)  # trainer_base.py:511
        if save_freq and step % save_freq == 0:
            saved[step] = rollout.position
            callback.on_save(trainer=SimpleNamespace(replay_buffer=sampler), global_step=step,
                             checkpoint_dir=f"global_step_{step}")
    return metrics


def tracker_totals(sampler) -> dict[str, tuple[int, int]]:
    table = sampler.passrate.tracker.stats_table().to_pydict()
    return {p: (a, c) for p, a, c in zip(table["prompt_id"], table["attempts"], table["correct"])}
