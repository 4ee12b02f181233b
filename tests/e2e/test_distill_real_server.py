"""`medreason distill` end to end against a real OpenAI-compatible server: `transformers serve` of the tiny
local model (the judge tests' fixture). Its replies are random text, so selection drops every case, each
exactly once and with a reason; nothing is kept."""

import pytest

from lm_eval_medreason.cli import main
from lm_eval_medreason.distillation.store import read_lines
from tests.support.distill_cases import cases
from tests.support.synthetic import write_jsonl
from tests.support.transformers_server import transformers_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("style", ["longstep", "longmonolog"])
def test_tiny_model_teacher_every_case_dropped_with_a_reason(transformers_server, tmp_path, style, capsys):  # noqa: F811
    base_url, model = transformers_server
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    output = tmp_path / "out.jsonl"
    args = ["distill", "--input", str(tmp_path / "cases.jsonl"), "--output", str(output), "--model", model,
            "--base-url", base_url, "--style", style, "--max-tokens", "16", "--timeout", "120", "--max-retries", "0",
            "--no-contamination-check", "--no-progress", "--concurrency", "2"]
    assert main(args) == 0
    assert read_lines(output) == []
    dropped = read_lines(output.with_name(output.name + ".dropped.jsonl"))
    assert sorted(r["source_id"] for r in dropped) == [r["id"] for r in rows]
    allowed = {"length", "no_answer", "wrong_answer", "empty", "too_short"}
    assert all(r["reason"] in allowed and r["final"] for r in dropped), dropped
    assert all(r["completion_tokens"] > 0 for r in dropped)  # real usage came back from the server
    assert "kept: 0" in capsys.readouterr().err
