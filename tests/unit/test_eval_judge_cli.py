"""Judge extraction against a real HTTP server on 127.0.0.1, the ``verl-rise score --benchmark`` command, and the
``verl_rise.evaluation.reward`` validation reward."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

import pytest

from tests.support.chat_server import LocalChatServer, read_json, send_json
from verl_rise.evaluation.reward import compute_score
from verl_rise.cli import main as cli_main
from verl_rise.evaluation.judge import judge_config, judge_prompt, judge_scores, parse_judge_reply

MC_ROW = {"question": "What fraction of the shape is blue?", "question_type": "multi_choice", "answer_type": "text",
          "answer": "8/11", "choices": "['3/11', '8/11', '6/11', '3/5']"}
INT_ROW = {"question": "Which number is missing?", "question_type": "free_form", "answer_type": "integer",
           "answer": "14", "precision": None}


class JudgeServer(LocalChatServer):
    """Chat-completions server answering ``Extracted answer: X`` where X is what it was told for a response text;
    the response containing ``FLAKY`` fails with 503 once first, ``BROKEN`` always gets a 400."""

    def __init__(self, answers: dict[str, str]):
        super().__init__()
        self.answers, self.calls, self.lock = answers, Counter(), threading.Lock()

    def handle(self, request):
        body = read_json(request)
        text = body["messages"][-1]["content"][-1]["text"]
        response = text.rsplit("Model response: ", 1)[1]
        with self.lock:
            self.calls[response] += 1
            n = self.calls[response]
        if "BROKEN" in response:
            return send_json(request, 400, {"error": {"message": "bad"}})
        if "FLAKY" in response and n == 1:
            return send_json(request, 503, {"error": {"message": "busy"}})
        answer = next((a for k, a in self.answers.items() if k in response), "None")
        send_json(request, 200, {"choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": answer}}]})


def test_judge_extracts_then_the_benchmark_rule_decides(tmp_path):
    responses = [
        "Eight of the eleven parts are coloured blue.",     # judge says B -> right
        "Three parts of eleven are blue, FLAKY.",           # 503 once, then judge says A -> wrong
        "I think the missing value is fourteen.",           # judge says 14 -> right
        "I think it is 13, BROKEN request.",                # judge unreachable (400): scored 0 with the reason
    ]
    rows = [MC_ROW, MC_ROW, INT_ROW, INT_ROW]
    answers = {"Eight of the eleven": "B", "Three parts": "Extracted answer: A", "fourteen": "14"}
    with JudgeServer(answers) as server:
        cfg = judge_config(server.base_url, "judge-model", backoff_initial_s=0.01, max_attempts=3)
        got = judge_scores("mathvista", rows, responses, cfg, tmp_path / "cache.sqlite", progress=False)
        assert [g["acc"] for g in got] == [1, 0, 1, 0]
        assert [g["pred"] for g in got[:3]] == ["B", "A", "14"]
        assert got[3]["method"].startswith("judge_error") and "400" in got[3]["method"]
        assert sum(n for k, n in server.calls.items() if "FLAKY" in k) == 2  # retried after the 503
        # a rerun is served from the cache (only the failed request is asked again)
        before = sum(server.calls.values())
        again = judge_scores("mathvista", rows, responses, cfg, tmp_path / "cache.sqlite", progress=False)
        assert [g["acc"] for g in again] == [1, 0, 1, 0]
        assert sum(server.calls.values()) - before == 1


def test_judge_prompt_and_reply_parsing():
    prompt = judge_prompt(MC_ROW, "x" * 10_000 + " so B")
    assert "Choices: ['3/11', '8/11', '6/11', '3/5']" in prompt and prompt.endswith("so B\nExtracted answer:")
    assert len(prompt) < 8000  # long responses keep only their end
    assert parse_judge_reply("Extracted answer: 0.6\nbecause") == "0.6"
    assert parse_judge_reply("None") == "" and parse_judge_reply(None) == ""


def test_score_command_with_benchmark(tmp_path, capsys):
    rows = [
        {**INT_ROW, "index": 1, "response": "The sequence adds 4 each time: 2, 6, 10, 14. The answer is 14."},
        {**INT_ROW, "index": 2, "prediction": "<think>...</think><answer>\\boxed{14}</answer>"},
        {**MC_ROW, "index": 3, "response": "The answer is (C) 6/11."},
        {**INT_ROW, "index": 4},                                            # no response -> reject
        {**MC_ROW, "index": 5, "choices": "oops", "response": "B"},         # unparsable field -> reject
    ]
    src = tmp_path / "responses.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    for mode, accs in (("lenient", [1, 1, 0]), ("strict", [0, 1, 0])):
        assert cli_main(["score", str(src), "--benchmark", "mathvista", "--extract", mode, "--out", str(out)]) == 0
        scored = [json.loads(x) for x in out.read_text().splitlines()]
        assert [r["acc"] for r in scored] == accs
        assert all(r["extract"] == mode for r in scored)
    rejects = [json.loads(x) for x in out.with_suffix(".rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in rejects] == [(3, "response"), (4, "choices")]
    printed = capsys.readouterr().out
    assert "read 5 = scored 3 + rejected 2" in printed
    assert re.search(r"acc 0\.3333", printed)


def test_score_command_judge_needs_an_endpoint(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps({**INT_ROW, "response": "14"}) + "\n")
    with pytest.raises(SystemExit, match="judge-endpoint"):
        cli_main(["score", str(src), "--benchmark", "mathvista", "--extract", "judge", "--out", str(tmp_path / "o")])


def test_validation_reward_dispatches_on_data_source():
    info = {"vlmeval": MC_ROW}
    prose = "Eight of the eleven parts are blue, so the answer is 8/11."
    lenient = compute_score("MathVista_MINI", prose, "8/11", info)
    assert (lenient["score"], lenient["acc_strict"], lenient["acc_lenient"], lenient["pred"]) == (1.0, 0.0, 1.0, "B")
    strict = compute_score("MathVista_MINI", prose, "8/11", info, extract="strict")
    assert strict["score"] == 0.0
    # another data_source: the RISE reward, same keys
    rise = compute_score("hiyouga/geometry3k", "<think>x</think><answer>\\boxed{3}</answer>", "3", {})
    assert rise["score"] == 1.0 and set(rise) == set(lenient)
    with pytest.raises(ValueError, match="vlmeval"):
        compute_score("WeMath", "B", "B", {})
    with pytest.raises(ValueError, match="extract"):
        compute_score("WeMath", "B", "B", {"vlmeval": {}}, extract="judge")


def test_score_command_reads_parquet_rows_with_extra_info_vlmeval(tmp_path, capsys):
    import pandas as pd

    # Our converted parquet keeps the TSV columns in extra_info["vlmeval"] (str or None); a DynaMath seed question
    # with two variants, one answered wrongly: average 0.5, worst case 0.
    def row(varid, response):
        fields = {"index": str(varid), "qid": "12", "varid": str(varid), "answer": "2.5", "answer_type": "float",
                  "question": "Find the length.", "subject": "PG", "knowledge_level": "high school"}
        return {"data_source": "DynaMath", "response": response,
                "extra_info": {"benchmark": "dynamath", "index": varid, "vlmeval": fields}}

    src = tmp_path / "dyn.parquet"
    pd.DataFrame([row(1, '{"short answer": "2.500"}'), row(2, "So the length is 3.1 units.")]).to_parquet(src)
    out = tmp_path / "scored.jsonl"
    assert cli_main(["score", str(src), "--benchmark", "dynamath", "--out", str(out)]) == 0
    assert [json.loads(x)["acc"] for x in out.read_text().splitlines()] == [1, 0]
    printed = capsys.readouterr().out
    assert "average_acc 0.5000" in printed and "worst_case_acc 0.0000" in printed
