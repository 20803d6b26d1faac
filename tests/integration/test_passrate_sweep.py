"""The post-RL sweep's ingestion side: verl validation dumps (written by verl's own ``_write_generations``, with
the sweep reward's extra keys) -> tracker directory -> export, exactly once, with the responses."""

from __future__ import annotations

import json
import uuid

import pyarrow.parquet as pq
import pytest

from tests.support._passrate_data import mathvision_parquet
from verl_rise.passrate import cli
from verl_rise.passrate.dumps import ingest_dumps, iter_dump_records
from verl_rise.passrate.export import export
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.records import RecordError
from verl_rise.passrate import sweep_reward
from verl_rise.passrate.sweep_reward import echo_prompt_id

pytest.importorskip("verl")
from verl.trainer.ppo.v1.trainer_base import PPOTrainer  # noqa: E402

K = 4  # val_kwargs.n


def n_correct(i: int) -> int:
    """Correct responses of dataset row i: rows 0-2 none, 3-5 all, the rest 1..K-1."""
    return 0 if i < 3 else K if i < 6 else 1 + i % (K - 1)


def write_verl_dump(dump_dir, rows, step, outputs_per_session=1, reward=sweep_reward.compute_score):
    """Emulate PPOTrainer._validate's bookkeeping and let verl's _write_generations write the file.

    ``reward`` is called as verl's naive reward manager calls it (the RISE reward with prompt_id echoed, by
    default); its keys become dump columns as in trainer_base.py:1126-1139.
    """
    inputs, outputs, gts, scores, keys = [], [], [], [], []
    extra: dict[str, list] = {"reward": []}
    for i, row in enumerate(rows):
        uid = str(uuid.uuid4())
        gt = row["reward_model"]["ground_truth"]
        for session in range(K):
            text = f"<think>try {session}</think><answer>\\boxed{{{gt if session < n_correct(i) else 'zz'}}}</answer>"
            result = reward(row["data_source"], text, gt, extra_info=dict(row["extra_info"]))
            for index in range(outputs_per_session):  # multi-output agent loops: every output, session's reward
                inputs.append(f"prompt {i}")
                outputs.append(text if index == outputs_per_session - 1 else f"partial {index}")
                gts.append(gt)
                scores.append(result["score"])
                keys.append(f"{uid}_{session}_{index}")
                extra["reward"].append(result["score"])
                for k, v in result.items():
                    extra.setdefault(k, []).append(v)
    extra["uid"] = keys
    PPOTrainer._write_generations(inputs, outputs, gts, scores, extra, str(dump_dir), step)
    return dump_dir / f"{step}.jsonl"


@pytest.fixture
def sweep(tmp_path):
    dataset, rows = mathvision_parquet(tmp_path, 12)
    dump = write_verl_dump(tmp_path / "val_dumps", rows, step=20)
    return {"rows": rows, "dataset": dataset, "dump": dump, "tmp": tmp_path}


def test_dump_lines_carry_prompt_id_and_become_records_with_responses(sweep):
    first = json.loads(sweep["dump"].open().readline())
    verl_columns = {"input", "output", "gts", "score", "step", "reward", "uid"}
    assert verl_columns | {"acc", "format", "pred", "prompt_id"} <= set(first)
    batches = list(iter_dump_records(sweep["dump"]))
    total = sum(len(b) for b in batches)
    assert total == 12 * K
    pids = [r["extra_info"]["prompt_id"] for r in sweep["rows"]]
    got = {}
    for b in batches:
        for pid, acc, step, text in zip(b.prompt_id.to_pylist(), b.acc, b.step, b.response.to_pylist()):
            got.setdefault(pid, []).append((acc, step, text))
    for i, pid in enumerate(pids):
        assert sum(a for a, _, _ in got[pid]) == n_correct(i)
        assert {s for _, s, _ in got[pid]} == {20}


def test_multi_output_sessions_count_once(sweep):
    dump = write_verl_dump(sweep["tmp"] / "multi", sweep["rows"], step=20, outputs_per_session=3)
    records = [r for b in iter_dump_records(dump) for r in b.response.to_pylist()]
    assert len(records) == 12 * K and not any(r.startswith("partial") for r in records)


def test_ingest_then_export_gives_the_split_and_the_self_distillation_candidates(sweep):
    tracker_dir = sweep["tmp"] / "sweep_stats"
    config = PassRateConfig(dir=str(tracker_dir))
    report = ingest_dumps([sweep["dump"].parent], config, progress=False)
    assert report["records"] == 12 * K and report["snapshot_step"] == 20
    again = ingest_dumps([sweep["dump"]], config, progress=False)
    assert again["files"][0]["status"] == "already ingested" and again["records"] == 12 * K

    out = sweep["tmp"] / "export"
    summary = export(tracker_dir, sweep["dataset"], out, progress=False)
    assert summary["rows_per_bucket"] == {"hard": 3, "inconsistent": 6, "solved": 3, "unseen": 0}
    inconsistent = pq.read_table(out / "inconsistent.parquet").to_pylist()
    for row in inconsistent:
        i = row["extra_info"]["index"]
        gt = row["reward_model"]["ground_truth"]
        assert row["passrate"] == pytest.approx(n_correct(i) / K)
        texts = sorted(c["response"] for c in row["correct_responses"])
        assert texts == sorted(f"<think>try {s}</think><answer>\\boxed{{{gt}}}</answer>" for s in range(n_correct(i)))


def test_a_killed_import_is_redone_without_double_counting(sweep):
    tracker_dir = sweep["tmp"] / "sweep_stats"
    config = PassRateConfig(dir=str(tracker_dir))
    ingest_dumps([sweep["dump"]], config, progress=False)
    marker = next((tracker_dir / "imports").glob("*.json"))
    marker.unlink()  # as if killed after the shards but before the marker
    ingest_dumps([sweep["dump"]], config, progress=False)
    assert PassRateRecorder.open_readonly(config).tracker.total_records == 12 * K


def test_nan_score_in_a_dump_names_file_and_line(sweep):
    @echo_prompt_id
    def nan_reward(*args, **kwargs):
        from reward_fns import compute_score

        return {**compute_score(*args, **kwargs), "score": float("nan")}

    dump = write_verl_dump(sweep["tmp"] / "nan", sweep["rows"][:2], step=3, reward=nan_reward)
    assert "NaN" in dump.read_text()
    with pytest.raises(RecordError, match=r"3\.jsonl: line 1: field 'score' is NaN"):
        list(iter_dump_records(dump))
    tracker_dir = sweep["tmp"] / "nan_stats"
    with pytest.raises(RecordError):
        ingest_dumps([dump], PassRateConfig(dir=str(tracker_dir)), progress=False)
    assert not list((tracker_dir / "records").rglob("*.parquet")), "nothing of a rejected file is kept"


def test_rollout_dumps_and_plain_reward_dumps_are_rejected_with_the_reason(sweep, capsys):
    # trainer.rollout_data_dir: _log_rollout_data passes only {"uid": ...} as extra columns.
    PPOTrainer._write_generations(["p"], ["o"], ["A"], [1.0], {"uid": ["u_0_0"]}, str(sweep["tmp"] / "roll"), 5)
    code = cli.main(["ingest-dumps", str(sweep["tmp"] / "roll" / "5.jsonl"), "--dir", str(sweep["tmp"] / "s"),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "line 1: missing field(s) ['prompt_id', 'acc']" in err and "rollout_data_dir" in err
    assert "pkg://verl_rise.passrate.sweep_reward" in err


def test_sweep_reward_requires_a_prompt_id_and_passes_float_rewards_through():
    wrapped = echo_prompt_id(lambda *a, **k: 1.0)
    assert wrapped("ds", "x", "A", extra_info={"prompt_id": "p1"}) == {"score": 1.0, "acc": 1.0, "prompt_id": "p1"}
    with pytest.raises(ValueError, match="extra_info has no 'prompt_id'"):
        wrapped("ds", "x", "A", extra_info={"index": 3})
