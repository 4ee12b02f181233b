"""`medreason distill` never loses, repeats or silently drops a case: a refused key, URL or model stops the run
and records nothing; a case is kept at most once per output whatever the settings; two runs on one output
cannot interleave; a hand-edited last line counts; --dry-run writes nothing; numbers are checked at parse time."""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lm_eval_medreason import locks
from lm_eval_medreason.cli import build_parser, main
from lm_eval_medreason.distillation.store import read_lines
from lm_eval_medreason.distillation.teacher import Teacher
from lm_eval_medreason.errors import Busy
from tests.support.distill_cases import KEY, cases, distill_args, gold_of, outcomes
from tests.support.fake_teacher import Fault, correct_trace, fake_teacher
from tests.support.synthetic import write_jsonl

REPO = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- a refused key, permission, URL or model stops the run; nothing is recorded -----------------------

MODEL_GONE = json.dumps({"error": {"message": "The model `teacher` does not exist.", "type": "invalid_request_error",
                                   "code": "model_not_found"}})


@pytest.mark.parametrize(("fault", "names"), [
    (Fault(401), "OPENAI_API_KEY"),
    (Fault(403), "--model"),
    (Fault(404), "--base-url"),
    (Fault(404, body=MODEL_GONE), "--model"),
    (Fault(400, body=MODEL_GONE), "--model"),
])
def test_a_refused_key_url_or_model_stops_the_run_and_the_same_command_resumes_every_case(
        tmp_path, capsys, monkeypatch, fault, names):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rows = cases(12)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    refuse = {"on": True}

    def script(case, attempt, body):
        return fault if refuse["on"] else correct_trace(gold[case], case)

    output = tmp_path / "o.jsonl"
    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", output, url, "--concurrency", "2")
        started = time.monotonic()
        assert main(args) == 1
        assert time.monotonic() - started < 10  # at once, not after retries
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and names in err and "run the same command again" in err, err
        assert KEY not in err and "DISTINCTIVE" not in err
        assert sum(server.requests.values()) <= 2  # the requests in flight (--concurrency 2), none after
        assert outcomes(output) == ([], [])  # nothing recorded as done, neither kept nor dropped
        assert not output.with_name("o.jsonl.lock").exists()
        refuse["on"] = False
        assert main(args) == 0
    kept, dropped = outcomes(output)
    assert sorted(r["source_id"] for r in kept) == sorted(gold) and not dropped


def test_a_refused_key_stops_helper_processes_and_batches_too(tmp_path, capsys):
    rows = cases(6)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    refuse = {"on": True}

    def script(case, attempt, body):
        return Fault(401) if refuse["on"] else correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        for extra in (["--processes", "2"], ["--batch", "--batch-poll-interval", "0.05"]):
            output = tmp_path / f"{extra[0][2:]}.jsonl"
            args = distill_args(tmp_path / "cases.jsonl", output, url, *extra)
            refuse["on"] = True
            assert main(args) == 1, extra
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "OPENAI_API_KEY" in err, err
            assert outcomes(output) == ([], []), extra
        refuse["on"] = False
        assert main(args) == 0  # the batch run resumes every case (live requests: the test above)
    kept, dropped = outcomes(output)
    assert sorted(r["source_id"] for r in kept) == sorted(gold) and not dropped


def test_server_failures_after_the_retries_are_not_final_and_the_summary_says_so(tmp_path, capsys):
    rows = cases(4)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    failing = {"c01": Fault(500), "c02": Fault(400), "c03": Fault(sleep=2.5)}  # server, rejected, timeout
    def script(case, attempt, body):
        return failing.get(case) or correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--max-retries", "0")
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "3 failed and will be retried by the next run" in err and "dropped: 0" in err
        kept, dropped = outcomes(tmp_path / "o.jsonl")
        assert {r["source_id"]: (r["reason"], r["final"]) for r in dropped} == {
            "c01": ("api_error", False), "c02": ("api_error", False), "c03": ("api_error", False)}
        failing.clear()
        before = Counter(server.requests)
        assert main(args) == 0
        assert server.requests - before == Counter({"c01": 1, "c02": 1, "c03": 1})
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert sorted(r["source_id"] for r in kept) == sorted(gold) and not dropped


FILTERED = json.dumps({"error": {"message": "The prompt was filtered.", "type": "invalid_request_error",
                                 "code": "content_filter"}})


@pytest.mark.parametrize("batch", [False, True])
def test_a_content_filter_is_asked_again_and_final_after_the_retries(tmp_path, batch):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        if case == "c00" and attempt == 1 or case == "c01":
            return Fault(finish_reason="content_filter", text="Step 1.")
        if case == "c02":
            return Fault(400, body=FILTERED)  # a filtered prompt (Azure)
        return correct_trace(gold[case], case)

    extra = ["--batch", "--batch-poll-interval", "0.05"] if batch else ["--max-retries", "1"]
    with fake_teacher(script) as (url, server):
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, *extra)) == 0
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert [r["source_id"] for r in kept] == ["c00"]
    if batch:  # two resubmissions; the fake's batch error lines carry no error code: a plain 400, not final
        assert server.requests == Counter({"c00": 2, "c01": 3, "c02": 3})
        assert {r["source_id"]: (r["reason"], r["final"]) for r in dropped} == {
            "c01": ("content_filter", True), "c02": ("api_error", False)}
    else:
        assert server.requests == Counter({"c00": 2, "c01": 2, "c02": 2})
        assert {r["source_id"]: (r["reason"], r["final"]) for r in dropped} == {
            "c01": ("content_filter", True), "c02": ("content_filter", True)}


# --- a case is kept at most once per output, whatever the settings ------------------------------------


@pytest.mark.parametrize("change", ["max-tokens", "temperature", "template"])
def test_a_case_is_kept_once_whatever_the_settings(tmp_path, capsys, change):
    rows = cases(4)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    (tmp_path / "mine.j2").write_text('Think hard.\n{% include "question.j2" %}\n')
    changed = {"max-tokens": ["--max-tokens", "8192"], "temperature": ["--temperature", "0.7"],
               "template": ["--template", str(tmp_path / "mine.j2")]}[change]
    wrong = {"c02"}

    def script(case, attempt, body):
        if case in wrong:
            return correct_trace("ABCD"[("ABCD".index(gold[case]) + 1) % 4], case)
        return correct_trace(gold[case], case)

    output = tmp_path / "o.jsonl"
    files = [output, output.with_name("o.jsonl.dropped.jsonl")]
    with fake_teacher(script) as (url, server):
        first = distill_args(tmp_path / "cases.jsonl", output, url)
        assert main([*first, "--limit", "3"]) == 0  # c00, c01 kept; c02 a wrong answer
        assert {r["source_id"] for r in read_lines(files[1])} == {"c02"}
        capsys.readouterr()
        before, on_disk = Counter(server.requests), [f.read_bytes() for f in files]

        # Other settings on this output: refused in one line naming the two ways on; nothing sent or written.
        assert main([*first, *changed]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--retry-dropped" in err and "--output" in err, err
        assert (f"--{change}" if change != "template" else "teacher prompt") in err
        assert server.requests == before and [f.read_bytes() for f in files] == on_disk

        # --retry-dropped: only the dropped case and the new one are asked; no kept case is asked again.
        wrong.clear()
        assert main([*first, *changed, "--retry-dropped"]) == 0
        assert server.requests - before == Counter({"c02": 1, "c03": 1})
        # Either settings, without the flag: everything is done, nothing is asked.
        asked = Counter(server.requests)
        assert main([*first, *changed]) == 0 and main(first) == 0
        assert server.requests == asked
    kept, dropped = outcomes(output)
    assert sorted(r["source_id"] for r in kept) == ["c00", "c01", "c02", "c03"] and not dropped


def test_settings_changed_with_only_kept_cases_asks_nothing_again(tmp_path):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url)
        assert main(args) == 0
        assert main([*args, "--max-tokens", "100", "--temperature", "1.0"]) == 0
        assert sum(server.requests.values()) == 3
    assert sorted(r["source_id"] for r in read_lines(tmp_path / "o.jsonl")) == ["c00", "c01", "c02"]


def test_a_changed_case_under_a_kept_id_is_a_one_line_error(tmp_path, capsys):
    rows = cases(2)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url)
        assert main(args) == 0
        rows[1]["question"] += " Another sentence."
        write_jsonl(tmp_path / "cases.jsonl", rows)
        assert main(args) == 1
        assert sum(server.requests.values()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "'c01'" in err[-1] and "another question" in err[-1] and "--output" in err[-1]


# --- two runs on one output -----------------------------------------------------------------------


def test_a_second_run_on_the_same_output_refuses_at_once(tmp_path, capsys):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    release = threading.Event()

    def script(case, attempt, body):
        release.wait(30)  # the first run holds its requests until the second has been refused
        return correct_trace(gold[case], case)

    output = tmp_path / "o.jsonl"
    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", output, url, "--timeout", "60")
        first = subprocess.Popen([sys.executable, "-m", "lm_eval_medreason.cli", *args], cwd=REPO,
                                 env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while sum(server.requests.values()) < 3:
            assert time.monotonic() < deadline and first.poll() is None, "the first run did not start"
            time.sleep(0.02)
        started = time.monotonic()
        assert main(args) == 1
        assert time.monotonic() - started < 5
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"process {first.pid}" in err and "--output" in err, err
        assert sum(server.requests.values()) == 3  # the second run sent nothing
        release.set()
        assert first.wait(60) == 0, first.stderr.read()
        first.stderr.close()
    kept, dropped = outcomes(output)
    assert sorted(r["source_id"] for r in kept) == ["c00", "c01", "c02"] and not dropped
    assert not output.with_name("o.jsonl.lock").exists()


def test_lock_is_exclusive_names_its_holder_and_survives_removal(tmp_path):
    path = tmp_path / "sub" / "x.lock"
    held = locks.hold(path)
    with pytest.raises(Busy) as busy:
        locks.hold(path)
    assert busy.value.owner == str(os.getpid())
    held.close(remove=True)
    assert not path.exists()
    with locks.hold(path):
        assert path.exists()


# --- last line without a newline; --dry-run writes nothing ---------------------------------------------


def test_a_last_line_without_its_newline_is_kept(tmp_path):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    output = tmp_path / "o.jsonl"
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", output, url)
        assert main([*args, "--limit", "2"]) == 0
        output.write_bytes(output.read_bytes().rstrip(b"\n"))  # as an editor may save it
        assert len(read_lines(output)) == 2
        assert main(args) == 0
        assert server.requests == Counter({"c00": 1, "c01": 1, "c02": 1})
    assert sorted(r["source_id"] for r in read_lines(output)) == ["c00", "c01", "c02"]
    assert output.read_bytes().count(b"\n") == 3 and output.read_bytes().endswith(b"\n")


def test_dry_run_writes_and_truncates_nothing(tmp_path, capsys):
    rows = cases(4)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    output = tmp_path / "out" / "o.jsonl"
    output.parent.mkdir()
    record = {"id": "x", "source_id": "c00", "messages": [], "meta": {}}
    output.write_text(json.dumps(record))  # a complete last line without its newline
    output.with_name("o.jsonl.dropped.jsonl").write_text(
        json.dumps({"id": "y", "source_id": "c01", "reason": "api_error", "final": False}) + '\n{"id": "torn", "sou')
    before = snapshot(tmp_path)
    with fake_teacher(lambda case, attempt, body: "x") as (url, server):
        assert main(distill_args(tmp_path / "cases.jsonl", output, url, "--dry-run")) == 0
        assert main(distill_args(tmp_path / "cases.jsonl", output, url, "--dry-run", "--batch")) == 0
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "new" / "o.jsonl", url, "--dry-run")) == 0
        assert not server.bodies
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()
    assert "cases: 4 (1 done or contaminated, 3 to send)" in capsys.readouterr().out  # c00 is kept


# --- numbers are checked at parse time --------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value"), [
    ("--concurrency", "0"), ("--concurrency", "-1"), ("--processes", "0"), ("--rpm", "-1"), ("--tpm", "-0.5"),
    ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"), ("--rpm", "inf"), ("--max-tokens", "0"),
    ("--limit", "0"), ("--limit", "-1"), ("--max-retries", "-1"), ("--min-tokens", "-1"),
    ("--contamination-threshold", "1.5"), ("--contamination-threshold", "0"), ("--contamination-threshold", "-0.1"),
    ("--batch-poll-interval", "0"), ("--batch-max-requests", "0"), ("--price-input", "-1"),
    ("--price-output", "-2"), ("--temperature", "-0.5"), ("--concurrency", "two"),
])
def test_every_number_is_checked_at_parse_time(flag, value, capsys):
    argv = ["distill", "--input", "x.jsonl", "--output", "o.jsonl", "--model", "m", flag, value]
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(argv)
    assert exit.value.code == 2
    (error,) = capsys.readouterr().err.strip().splitlines()  # one line, no usage block
    assert error.startswith(f"medreason distill: error: argument {flag}: ") and value in error, error


def test_teacher_refuses_settings_that_would_hang():
    for bad in ({"concurrency": 0}, {"rpm": -1}, {"tpm": -1}, {"timeout": 0}, {"max_retries": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Teacher("m", **bad)
