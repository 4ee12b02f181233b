"""`medreason distill --batch` against the fake teacher's minimal Batch API: one batch per stage,
failures resubmitted, and a run killed while its batch is in flight resumes polling that batch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lm_eval_medreason.cli import main
from lm_eval_medreason.distillation.store import read_lines
from tests.support.distill_cases import KEY, cases, distill_args, gold_of, outcomes
from tests.support.fake_teacher import Fault, correct_trace, fake_teacher
from tests.support.synthetic import write_jsonl

REPO = Path(__file__).resolve().parents[2]


def test_batch_mode_selection_and_resubmission(tmp_path):
    rows = cases(6)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        if case == "c01" and attempt == 1:
            return Fault(500)  # in the error file: resubmitted in a second batch
        if case == "c02":
            return Fault(500)  # fails every time: an api_error drop after two resubmissions
        if case == "c03":
            return Fault(finish_reason="length", text="Step 1.")
        if case == "c04":
            return "The answer is (Z)"
        return correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--batch", "--batch-poll-interval", "0.05")
        assert main(args) == 0
        kept, dropped = outcomes(tmp_path / "o.jsonl")
        assert sorted(r["source_id"] for r in kept) == ["c00", "c01", "c05"]
        assert {r["source_id"]: r["reason"] for r in dropped} == {"c02": "api_error", "c03": "length", "c04": "no_answer"}
        assert server.calls["batches.create"] == 3 and server.calls["files.create"] == 3
        assert server.requests["c02"] == 3 and server.requests["c00"] == 1
        assert not server.bodies or all(b["model"] == "teacher" for b in server.bodies)
        assert json.loads((tmp_path / "o.jsonl.batches.json").read_text()) == {}  # no batch left in flight


def test_batch_mode_longmonolog_two_batches(tmp_path):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        if "Summarised reasoning:" in body["messages"][-1]["content"]:
            return correct_trace(gold[case], case)
        return f"- summary\nThe answer is ({gold[case]})"

    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--batch", "--batch-poll-interval",
                            "0.05", "--style", "longmonolog")
        assert main(args) == 0
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert len(kept) == 3 and not dropped and server.calls["batches.create"] == 2


def test_a_stage_above_the_batch_limit_goes_out_as_several_batches(tmp_path):
    rows = cases(5)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--batch", "--batch-poll-interval",
                            "0.05", "--batch-max-requests", "2")
        assert main(args) == 0
        assert server.calls["batches.create"] == 3 and server.calls["files.create"] == 3  # 2 + 2 + 1
        assert sorted(server.requests.values()) == [1] * 5
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert len(kept) == 5 and not dropped


def test_killed_batch_run_resumes_the_submitted_batches(tmp_path):
    rows = cases(4)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    output = tmp_path / "o.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(REPO)}
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        server.hold = True  # the batch stays in progress
        args = distill_args(tmp_path / "cases.jsonl", output, url, "--batch", "--batch-poll-interval", "0.05",
                            "--batch-max-requests", "3")  # two batches: 3 + 1
        proc = subprocess.Popen([sys.executable, "-m", "lm_eval_medreason.cli", *args], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        saved = tmp_path / "o.jsonl.batches.json"
        while not (saved.exists() and len(json.loads(saved.read_text())) == 2 and server.calls["batches.retrieve"] >= 3):
            assert time.monotonic() < deadline, "the two batches were not submitted"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        state = (tmp_path / "o.jsonl.batches.json").read_text()
        assert len(json.loads(state)) == 2 and "batch-0" in state and "batch-1" in state and KEY not in state
        server.hold = False
        assert main(args) == 0
        assert server.calls["batches.create"] == 2 and server.calls["files.create"] == 2  # nothing paid twice
    kept, dropped = outcomes(output)
    assert len(kept) == 4 and not dropped


def test_a_request_asked_while_a_batch_is_in_flight_goes_out_in_the_next_batch():
    import asyncio

    from lm_eval_medreason.distillation.batch import BatchTeacher

    async def ask_late(url, server):
        async with BatchTeacher("teacher", base_url=url, max_retries=0) as teacher:
            teacher.poll_interval = 0.05

            async def until_batches(n):
                for _ in range(400):
                    if server.calls["batches.create"] == n:
                        return
                    await asyncio.sleep(0.025)
                raise AssertionError(f"{dict(server.calls)}: expected {n} batches")

            first = asyncio.create_task(teacher.ask("[case c00] first"))
            await until_batches(1)  # the first batch has gathered its request and is polled (held in progress)
            second = asyncio.create_task(teacher.ask("[case c01] second"))
            await until_batches(2)
            assert not first.done()
            server.hold = False
            replies = await asyncio.wait_for(asyncio.gather(first, second), timeout=20)
            return [reply.text for reply in replies]

    with fake_teacher(lambda case, attempt, body: f"answer for {case}") as (url, server):
        server.hold = True
        assert asyncio.run(ask_late(url, server)) == ["answer for c00", "answer for c01"]
