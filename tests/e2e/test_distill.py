"""`medreason distill` against a scripted local teacher (tests/support/fake_teacher.py): selection, faults,
resume after SIGKILL, SIGINT, the API key never written, templates, inputs, dry run, o1-style requests."""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lm_eval_medreason.cli import main
from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.distillation import pipeline as distill
from lm_eval_medreason.distillation.selection import ContaminationGuard, judge_trace, normalise_final_line
from lm_eval_medreason.distillation.store import read_lines
from lm_eval_medreason.distillation.teacher import Teacher, TokenBucket
from lm_eval_medreason.errors import TeacherError, scrub
from lm_eval_medreason.prompts import render_case
from lm_eval_medreason.resources import prompts_dir
from tests.support.distill_cases import KEY, cases, distill_args, gold_of, outcomes
from tests.support.fake_teacher import Fault, correct_trace, fake_teacher
from tests.support.synthetic import write_data_dir, write_jsonl

REPO = Path(__file__).resolve().parents[2]


# --- selection -------------------------------------------------------------------------------------


def test_final_answer_line_is_normalised():
    options = {"A": "Aspirin", "B": "Heparin"}
    assert normalise_final_line("Reasoning.\n**Final answer: (B)**\n\n", "B", options) == "Reasoning.\nThe answer is (B).\n"
    # A last line that also reasons is kept whole, the normalised line appended: no reasoning is deleted.
    assert normalise_final_line("So heparin it is; the answer is B, clearly.", "B", options) == (
        "So heparin it is; the answer is B, clearly.\n\nThe answer is (B).\n")
    assert normalise_final_line("Step 3.\nB, because heparin acts at once.", "B", options) == (
        "Step 3.\nB, because heparin acts at once.\n\nThe answer is (B).\n")
    # A last line that only commits (letter, option text, commitment words, markup) is replaced.
    for bare in ("The answer is (B)", "Therefore, the final answer is **(B) Heparin**.", "Answer: B", "$\\boxed{B}$"):
        assert normalise_final_line(f"Step 3.\n{bare}", "B", options) == "Step 3.\nThe answer is (B).\n", bare
    case = {"options": options, "answer_idx": "B"}
    assert judge_trace("x " * 10 + "\nThe answer is (B)", "stop", case, 5).reason is None
    assert judge_trace("x\nThe answer is (B)", "stop", case, 50).reason == "too_short"
    assert judge_trace("The answer is (A)", "stop", case, 0).reason == "wrong_answer"
    assert judge_trace("I cannot tell.", "stop", case, 0).reason == "no_answer"
    assert judge_trace("", "stop", case, 0).reason == "empty"
    assert judge_trace("The answer is (B)", "length", case, 0).reason == "length"


def test_contamination_guard_exact_near_and_unrelated(tmp_path):
    data = write_data_dir(tmp_path / "data", n=8)
    eval_questions = [c["question"] for c in load_cases("medqa", {"data_dir": str(data["root"])})]
    guard = ContaminationGuard([(f"medqa:{i}", q) for i, q in enumerate(eval_questions)])
    q = eval_questions[3]
    assert guard.match(q) == ("medqa:3", 1.0)
    assert guard.match("  " + q.upper().replace(",", " ,") + " ")[0] == "medqa:3"  # normalised exact copy
    words = q.split()
    edited = " ".join(["An"] + words[1:6] + ["very"] + words[6:-3] + ["likely", "answer?"])  # small edits
    assert guard.match(edited)[0] == "medqa:3"
    for row in cases(20):
        assert guard.match(row["question"]) is None


def test_contamination_guard_is_fast():
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)] + ["which", "of", "the", "following", "is", "most", "likely"]
    def question():
        return " ".join(rng.choice(vocab) for _ in range(120)) + " which of the following is the most likely diagnosis"
    guard = ContaminationGuard([(str(i), question()) for i in range(2000)])
    started = time.monotonic()
    hits = sum(guard.match(question()) is not None for _ in range(2000))
    assert hits == 0 and time.monotonic() - started < 10  # 10k inputs: well under a minute


def test_contaminated_inputs_are_dropped_end_to_end(tmp_path):
    data = write_data_dir(tmp_path / "data", n=6)
    evals = load_cases("medqa", {"data_dir": str(data["root"])})
    rows = cases(4)
    copy = dict(evals[0], id="copy", question="[case copy] " + evals[0]["question"])
    near = dict(evals[1], id="near", question="[case near] " + evals[1]["question"].replace("year-old", "yr old"))
    rows += [copy, near]
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    with fake_teacher(lambda case, attempt, body: correct_trace(gold[case], case)) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "out.jsonl", url, "--data-dir", str(data["root"]))
        args.remove("--no-contamination-check")
        assert main(args) == 0
    kept, dropped = outcomes(tmp_path / "out.jsonl")
    assert sorted(r["source_id"] for r in kept) == ["c00", "c01", "c02", "c03"]
    assert {r["source_id"]: r["reason"] for r in dropped} == {"copy": "contaminated", "near": "contaminated"}
    assert "copy" not in server.requests and "near" not in server.requests


def test_missing_eval_data_is_a_clear_error(tmp_path, capsys, clean_env):
    write_jsonl(tmp_path / "cases.jsonl", cases(2))
    (tmp_path / "empty").mkdir()
    args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", "http://127.0.0.1:9/v1", "--data-dir",
                        str(tmp_path / "empty"), "--eval-benchmarks", "jama")
    args.remove("--no-contamination-check")
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "contamination guard" in err and "--no-contamination-check" in err


# --- the pipeline against a scripted teacher with faults --------------------------------------------


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_faults_each_item_ends_up_exactly_once(tmp_path, http_client):
    """The same faults, retries, timeouts and outcomes through both of the SDK's HTTP transports."""
    rows = cases(14)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        first = attempt == 1
        faults = {
            "c01": Fault(429, headers={"Retry-After": "1"}) if first else None,
            "c02": Fault(500) if first else None,
            "c03": Fault(sleep=2.5) if first else None,  # longer than --timeout 1: the SDK retries
            "c04": Fault(body="{not json") if first else None,
            "c05": Fault(finish_reason="length", text="Step 1. The findings are"),
            "c06": Fault(finish_reason="content_filter"),
            "c07": "Step 1. I cannot decide between the options.",
            "c08": correct_trace("ABCD"[("ABCD".index(gold[case]) + 1) % 4], case),
            "c09": f"Short.\nThe answer is ({gold[case]})",
            "c10": "",
            "c11": Fault(500),  # persists past the retries: an API error, retried on the next run
            "c12": correct_trace(gold["c00"], "c00"),  # the same trace as c00 (same gold letter): a duplicate
        }
        fault = faults.get(case)
        return fault if fault is not None else correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "out.jsonl", url, "--http-client", http_client)
        assert main(args) == 0
        kept, dropped = outcomes(tmp_path / "out.jsonl")
        ids = [r["source_id"] for r in kept + dropped]
        assert sorted(ids) == sorted(gold) and len(set(ids)) == len(ids)
        reasons = {r["source_id"]: r["reason"] for r in dropped}
        assert reasons == {"c05": "length", "c06": "content_filter", "c07": "no_answer", "c08": "wrong_answer",
                           "c09": "too_short", "c11": "api_error", "c10": "empty",
                           "c12" if "c12" in reasons else "c00": "duplicate"}
        assert sorted(r["source_id"] for r in kept) in (
            ["c00", "c01", "c02", "c03", "c04", "c13"], ["c01", "c02", "c03", "c04", "c12", "c13"])
        times = [t for case, t in server.log if case == "c01"]
        assert len(times) == 2 and times[1] - times[0] >= 0.9  # Retry-After: 1 honoured
        assert server.requests["c03"] == 2 and server.requests["c04"] == 2 and server.requests["c11"] == 3
        for record in kept:
            assert record["messages"][0] == {"role": "user", "content": render_case("eval_longstep.j2", next(
                r for r in rows if r["id"] == record["source_id"]))}
            assert record["messages"][1]["content"].endswith(f"The answer is ({record['meta']['gold']}).\n")
            assert record["meta"]["answer"] == record["meta"]["gold"]
            assert record["meta"]["prompt_tokens"] == 100 and record["meta"]["finish_reason"] == "stop"
        before = Counter(server.requests)
        # Run again: only the non-final API error is asked again; it now fails again, still once in the files.
        assert main(args) == 0
        assert server.requests - before == Counter({"c11": 3})
        kept2, dropped2 = outcomes(tmp_path / "out.jsonl")
        assert len(kept2) == len(kept) and sorted(r["source_id"] for r in dropped2) == sorted(reasons)


def test_helper_processes_give_the_same_outcomes(tmp_path):
    rows = cases(8)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        if case == "c01" and attempt == 1:
            return Fault(429, headers={"Retry-After": "1"})
        if case == "c02":
            return Fault(500)
        if case == "c03":
            return Fault(400)  # a rejected request: not a verdict on a trace, so not final either
        return correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--processes", "2")) == 0
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert sorted(r["source_id"] for r in kept) == ["c00", "c01", "c04", "c05", "c06", "c07"]
    assert {r["source_id"]: (r["reason"], r["final"]) for r in dropped} == {
        "c02": ("api_error", False), "c03": ("api_error", False)}
    assert server.requests["c02"] == 3 and server.requests["c03"] == 1  # the SDK does not retry a 400


def run_cli(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "lm_eval_medreason.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def line_count(paths):
    return sum(p.read_bytes().count(b"\n") for p in paths if p.exists())


def test_sigkill_then_resume_loses_and_repeats_nothing_and_never_writes_the_key(tmp_path):
    rows = cases(40)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    output = tmp_path / "out" / "traces.jsonl"
    files = [output, output.with_name(output.name + ".dropped.jsonl")]

    def script(case, attempt, body):
        time.sleep(0.05)
        n = int(case[1:])
        if n % 10 == 3:
            return Fault(429, headers={"Retry-After": "1"}) if attempt == 1 else correct_trace(gold[case], case)
        return correct_trace(gold[case], case) if n % 5 else "Not sure.\nThe answer is (Z)"

    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(REPO)}
    with fake_teacher(script) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", output, url, "--concurrency", "2")
        proc = run_cli(args, env)
        deadline = time.monotonic() + 60
        while line_count(files) < 6 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        out1, err1 = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        with output.open("ab") as handle:  # the worst a kill can leave: a torn last line
            handle.write(b'{"id": "torn", "source_id": "c')
        done_at_kill = {r["source_id"] for f in files for r in read_lines(f)}
        assert 6 <= len(done_at_kill) < 40
        assert output.read_bytes().endswith(b'"source_id": "c')  # reading changed nothing; the next run repairs
        at_kill = Counter(server.requests)
        proc = run_cli(args, env)
        out2, err2 = proc.communicate(timeout=120)
        assert proc.returncode == 0, err2
    kept, dropped = outcomes(output)
    assert b'"torn"' not in output.read_bytes()  # the torn line was cut off before appending
    ids = [r["source_id"] for r in kept + dropped]
    assert sorted(ids) == sorted(gold) and len(ids) == len(set(ids)) == 40
    assert len({r["id"] for r in kept + dropped}) == 40
    assert {r["reason"] for r in dropped} == {"no_answer"}
    for case in done_at_kill:
        assert server.requests[case] == at_kill[case], case  # finished items were not asked again
    for text in [out1, err1, out2, err2, *(p.read_text() for p in (output.parent).rglob("*") if p.is_file())]:
        assert KEY not in text and "DISTINCTIVE" not in text
    assert "kept: 32" in err2


def test_sigint_stops_cleanly_with_exit_130(tmp_path):
    rows = cases(30)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    output = tmp_path / "out.jsonl"

    def script(case, attempt, body):
        time.sleep(0.1)
        return correct_trace(gold[case], case)

    with fake_teacher(script) as (url, server):
        proc = run_cli(distill_args(tmp_path / "cases.jsonl", output, url, "--concurrency", "1"),
                       {**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 60
        while line_count([output]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err
    kept = read_lines(output)
    assert 2 <= len(kept) < 30 and output.read_bytes().endswith(b"\n")


def test_longmonolog_two_stages(tmp_path):
    rows = cases(3)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)

    def script(case, attempt, body):
        prompt = body["messages"][-1]["content"]
        if "Summarised reasoning:" in prompt:
            assert f"SUMMARY-{case}" in prompt
            return "Hmm, wait... " + correct_trace(gold[case], case)
        if case == "c02":
            return "- summary\nThe answer is (Z)"  # stage 1 without a valid answer: no stage 2
        return f"- SUMMARY-{case}\nThe answer is ({gold[case]})"

    with fake_teacher(script) as (url, server):
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--style", "longmonolog")) == 0
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert sorted(r["source_id"] for r in kept) == ["c00", "c01"]
    assert [(r["source_id"], r["reason"], r["stage"]) for r in dropped] == [("c02", "no_answer", 1)]
    assert server.requests == Counter({"c00": 2, "c01": 2, "c02": 1})
    assert kept[0]["messages"][0]["content"] == render_case("eval_longmonolog.j2", rows[int(kept[0]["source_id"][1:])])
    assert kept[0]["meta"]["prompt_tokens"] == 200 and kept[0]["meta"]["style"] == "longmonolog"


def test_cot_style_user_turn_is_the_cot_evaluation_prompt(tmp_path):
    rows = cases(2)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    teacher_prompts = []

    def script(case, attempt, body):
        teacher_prompts.append(body["messages"][-1]["content"])
        return f"Short reasoning for {case}.\nThe answer is ({gold[case]})."

    with fake_teacher(script) as (url, server):
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--style", "cot")) == 0
    kept, dropped = outcomes(tmp_path / "o.jsonl")
    assert not dropped and sorted(r["source_id"] for r in kept) == ["c00", "c01"]  # no minimum length for CoT
    for record in kept:
        case = rows[int(record["source_id"][1:])]
        assert record["messages"][0]["content"] == render_case("eval_cot.j2", case)
        assert record["meta"]["style"] == "cot"
    assert len(teacher_prompts) == 2 and all("Keep the reasoning brief" in p for p in teacher_prompts)


def test_reasoning_model_requests(tmp_path):
    rows = cases(2)
    write_jsonl(tmp_path / "cases.jsonl", rows)
    gold = gold_of(rows)
    with fake_teacher(lambda c, a, b: correct_trace(gold[c], c), reasoning_tokens=700) as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--system", "Be careful.",
                            "--temperature", "0.7")
        args[args.index("teacher")] = "o1-mini"
        assert main(args) == 0
        body = server.bodies[0]
        assert [m["role"] for m in body["messages"]] == ["user"] and body["messages"][0]["content"].startswith("Be careful.")
        assert "temperature" not in body and "max_tokens" not in body and body["max_completion_tokens"] == 32768
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "p.jsonl", url, "--system", "Be careful.",
                                 "--temperature", "0.7")) == 0
        body = server.bodies[-1]
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["temperature"] == 0.7 and body["max_tokens"] == 4096
    assert {r["meta"]["reasoning_tokens"] for r in read_lines(tmp_path / "o.jsonl")} == {700}


def test_dry_run_sends_nothing(tmp_path, capsys):
    write_jsonl(tmp_path / "cases.jsonl", cases(5))
    with fake_teacher(lambda c, a, b: "x") as (url, server):
        args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--dry-run", "--style", "longmonolog")
        args[args.index("teacher")] = "gpt-4o-mini"
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "requests: 10" in out and "prompt tokens:" in out and "cost: ~$" in out
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--dry-run")) == 0
        out = capsys.readouterr().out
        assert "requests: 5" in out and "completion tokens: ~3,645" in out and "cost: unknown" in out
        assert main(distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", url, "--dry-run", "--price-input",
                                 "1", "--price-output", "2")) == 0
        assert "cost: ~$0.01" in capsys.readouterr().out
        assert not server.bodies and not (tmp_path / "o.jsonl").exists()


# --- templates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("style", "name"), [(s, n) for s, names in distill.STYLES.items() for n in names])
def test_builtin_teacher_templates_include_the_question_template(style, name):
    assert '{% include "question.j2" %}' in (prompts_dir() / name).read_text()
    templates = distill.Templates(style)
    case = cases(1)[0]
    stage = distill.STYLES[style].index(name)
    text = templates.render(stage, case, summary="S")
    assert render_case("question.j2", case) in text and "The answer is (X)." in text


def test_user_template_undefined_variable_is_one_line(tmp_path, capsys):
    write_jsonl(tmp_path / "cases.jsonl", cases(1))
    (tmp_path / "mine.j2").write_text('Think.\n{% include "question.j2" %}\n{{ patient_age }}\n')
    args = distill_args(tmp_path / "cases.jsonl", tmp_path / "o.jsonl", "http://127.0.0.1:9/v1", "--template",
                        str(tmp_path / "mine.j2"))
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "patient_age" in err and "mine.j2" in err


def test_user_template_is_sandboxed(tmp_path):
    (tmp_path / "evil.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    templates = distill.Templates("longstep", tmp_path / "evil.j2")
    with pytest.raises(distill.DataError, match="sandbox"):
        templates.render(0, cases(1)[0])
    (tmp_path / "ok.j2").write_text('Mine.\n{% include "question.j2" %}')
    assert distill.Templates("longstep", tmp_path / "ok.j2").render(0, cases(1)[0]).startswith("Mine.\n[case c00]")


def test_changing_the_template_changes_the_ids(tmp_path):
    (tmp_path / "a.j2").write_text('A\n{% include "question.j2" %}')
    (tmp_path / "b.j2").write_text('B\n{% include "question.j2" %}')
    teacher = Teacher("m", base_url="http://127.0.0.1:9/v1")
    case = cases(1)[0]
    ids = {distill.item_id(distill.Templates("longstep", tmp_path / p), teacher, "longstep", case) for p in ("a.j2", "b.j2")}
    assert len(ids) == 2
    assert distill.item_id(distill.Templates("longstep"), teacher, "longstep", case) == distill.item_id(
        distill.Templates("longstep"), teacher, "longstep", dict(case))


# --- inputs ----------------------------------------------------------------------------------------


def test_case_file_rows_are_validated_with_one_line_errors(tmp_path, capsys):
    rows = cases(3)
    rows[1] = {**rows[1], "answer_idx": "Q"}
    write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(distill_args(tmp_path / "bad.jsonl", tmp_path / "o.jsonl", "http://127.0.0.1:9/v1")) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.jsonl line 2" in err and "answer_idx" in err
    write_jsonl(tmp_path / "noid.jsonl", [{k: v for k, v in cases(1)[0].items() if k != "id"}])
    with pytest.raises(distill.DataError, match=r"noid.jsonl line 1: missing key\(s\) id"):
        distill.load_inputs(str(tmp_path / "noid.jsonl"))
    with pytest.raises(distill.DataError, match="no such file"):
        distill.load_inputs(str(tmp_path / "absent.jsonl"))


def test_named_train_inputs(tmp_path, clean_env):
    data = write_data_dir(tmp_path / "data", n=9)
    write_jsonl(tmp_path / "data" / "medqa" / "medqa_us_train_4options.jsonl",
                [{"question": r["question"], "options": r["options"], "answer_idx": r["answer_idx"]} for r in cases(5)])
    assert len(distill.load_inputs("medqa-train", {"data_dir": str(data["root"])})) == 5
    jama_train = distill.load_inputs("jama-train", {"data_dir": str(data["root"])})
    assert {c["id"] for c in jama_train} == set(data["ids"]["jama_full"]) - set(data["ids"]["jama"])
    assert jama_train and not {c["id"] for c in jama_train} & set(data["ids"]["jama"])


def test_token_bucket_waits_for_refill():
    import asyncio

    async def go():
        bucket = TokenBucket(600)  # 10 per second
        await bucket.take(600)
        started = time.monotonic()
        await bucket.take(5)
        return time.monotonic() - started

    assert 0.4 <= asyncio.run(go()) < 1.5


def test_http_transport_is_aiohttp_unless_asked_and_honours_a_proxy(monkeypatch):
    """aiohttp by default, httpx on request; both send through ``HTTP_PROXY`` (a local socket stands in)."""
    import openai

    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    proxy.settimeout(10)
    for name in ("http_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)  # lower case would win over HTTP_PROXY
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")

    def request_line() -> bytes:
        """The first line the proxy receives (on a thread: the client sends on the event loop)."""
        connection, _ = proxy.accept()
        with connection:
            data = b""
            while b"\r\n" not in data:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n")[0]

    async def ask(http_client):
        async with Teacher("m", base_url="http://teacher.invalid/v1", http_client=http_client, max_retries=0,
                           timeout=2) as teacher:
            aiohttp = isinstance(teacher.client._client, openai.DefaultAioHttpClient)
            call = asyncio.create_task(teacher.call({"model": "m", "messages": []}))
            first_line = await asyncio.to_thread(request_line)
            with pytest.raises(TeacherError):
                await call
            return aiohttp, first_line

    for http_client, is_aiohttp in (("aiohttp", True), ("httpx", False)):
        assert asyncio.run(ask(http_client)) == (is_aiohttp, b"POST http://teacher.invalid/v1/chat/completions HTTP/1.1")
    proxy.close()
    with pytest.raises(ValueError, match="http_client must be aiohttp or httpx"):
        Teacher("m", http_client="requests")


def test_scrub_removes_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert KEY not in scrub(f"Incorrect API key provided: {KEY}.")
    assert "sk-abcd1234efgh5678" not in scrub("key sk-abcd1234efgh5678 rejected")
