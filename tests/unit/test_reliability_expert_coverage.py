"""Hard prompts with no expert trajectory kept stop the SFT build, saying why (issue 14, item 12).

The key matches no prompt, every record is rejected, the endpoint refuses every request, or no expert source is
given: the build fails (exit status 2) with a message naming the hard-prompt count and the reasons, unless
``--allow-no-expert`` is given; the schedule then stops before SFT.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.paths import MATHVISION, REPO_ROOT, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, write_export
from tests.unit.test_reliability_endpoint import ScriptedServer, endpoint_config
from verl_rise.schedule.plan import Stage, Step
from verl_rise.schedule.runner import StageFailed, run_plan
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, NoExpertCoverage, build
from verl_rise.sft_data.cli import main


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An export with two hard prompts (MATH-V 98 and 19) and one inconsistent prompt without responses."""
    tmp = tmp_path_factory.mktemp("coverage")
    rl = convert_train(tmp)
    pid = mathvision_prompt_ids(rl)
    write_export(rl, tmp / "export", {pid["98"]: "hard", pid["19"]: "hard"})
    return tmp / "export", pid


def _trace(trace_id: str) -> dict:
    lines = require(MATHVISION / "expert_traces.jsonl").read_text().splitlines()
    return next(json.loads(line) for line in lines if json.loads(line)["id"] == trace_id)


def _build(export_dir, out, **kw):
    return build(BuildConfig(export_dir=export_dir, out_dir=out, expert_image_root=MATHVISION, progress=False, **kw))


def test_an_expert_key_that_matches_no_prompt_stops_the_build(export, tmp_path):
    export_dir, _ = export
    expert = tmp_path / "expert.jsonl"
    expert.write_text(json.dumps(_trace("98")) + "\n")  # a MATH-V record read with the default key (prompt_id)
    with pytest.raises(NoExpertCoverage) as err:
        _build(export_dir, tmp_path / "out", expert_files=[expert])
    msg = str(err.value)
    assert "2 hard prompts" in msg and "no expert trajectory" in msg and "--allow-no-expert" in msg
    assert "bad_record" in msg and "--expert-key" in msg and str(expert) in msg
    out = tmp_path / "out"
    assert not (out / "stats.json").exists() and not (out / "sft.parquet").exists()
    assert [json.loads(x)["reason"] for x in (out / "rejects.jsonl").read_text().splitlines()] == [R.BAD_RECORD]
    # Key field present but naming no prompt of the export.
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt_id": "not-in-export", "response": "x"}) + "\n")
    with pytest.raises(NoExpertCoverage, match=r"prompt_not_found.*--expert-key"):
        _build(export_dir, tmp_path / "out2", expert_files=[other])


def test_every_record_rejected_stops_the_build_and_the_option_allows_it(export, tmp_path):
    export_dir, _ = export
    wrong = dict(_trace("98"), response="I think the answer is \\boxed{12345}.", model_answer="12345")
    expert = tmp_path / "expert.jsonl"
    expert.write_text(json.dumps(wrong) + "\n")
    with pytest.raises(NoExpertCoverage, match=r"wrong_answer"):
        _build(export_dir, tmp_path / "out", expert_files=[expert], expert_key="mathvision")
    stats = _build(export_dir, tmp_path / "out", expert_files=[expert], expert_key="mathvision",
                   allow_no_expert=True)
    assert stats["coverage"]["hard"] == {"prompts": 2, "covered": 0, "covered_by": {},
                                         "uncovered_reasons": {R.WRONG_ANSWER: 1, "no_expert_response": 1}}
    assert stats["settings"]["allow_no_expert"] is True
    # One kept trajectory is enough: coverage is not all-or-nothing.
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_trace("98")) + "\n")
    stats = _build(export_dir, tmp_path / "out3", expert_files=[good], expert_key="mathvision")
    assert stats["coverage"]["hard"]["covered"] == 1


def test_no_expert_source_at_all_stops_the_build(export, tmp_path):
    export_dir, _ = export
    with pytest.raises(NoExpertCoverage, match=r"no expert source was given"):
        _build(export_dir, tmp_path / "out")


def test_an_endpoint_refusing_every_request_stops_the_build(export, tmp_path):
    export_dir, _ = export
    with ScriptedServer(lambda n: (401, {"error": {"message": "invalid api key"}})) as server:
        with pytest.raises(NoExpertCoverage) as err:
            _build(export_dir, tmp_path / "out", endpoint=endpoint_config(server.base_url, samples_per_prompt=2))
    msg = str(err.value)
    assert "request_failed" in msg and "4 requests" in msg and "HTTP 401" in msg and "invalid api key" in msg


def test_command_line_exit_status_and_option(export, tmp_path, capsys):
    export_dir, _ = export
    args = ["build", "--export-dir", str(export_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no expert trajectory" in err and "Traceback" not in err
    assert main([*args, "--allow-no-expert"]) == 0
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["coverage"]["hard"]["covered"] == 0


def test_the_schedule_stops_before_sft(export, tmp_path):
    """The real runner running the real builder command: its failure keeps the next stage from starting."""
    export_dir, _ = export
    sft_data, sft = tmp_path / "sft_data", tmp_path / "sft"
    marker = sft / "started"
    stages = [
        Stage("sft_data", sft_data, [Step("build", [sys.executable, "-m", "verl_rise.sft_data", "build",
                                                    "--export-dir", str(export_dir), "--out", str(sft_data / "set"),
                                                    "--no-progress"],
                                          outputs=[sft_data / "set" / "stats.json"],
                                          env={"PYTHONPATH": str(REPO_ROOT)})], "build"),
        Stage("sft", sft, [Step("train", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], outputs=[marker],
                                upstream=["sft_data"])], "train"),
    ]
    with pytest.raises(StageFailed, match=r"(?s)sft_data step build failed.*no expert trajectory"):
        run_plan(tmp_path, stages)
    assert not marker.exists()
