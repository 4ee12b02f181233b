"""The LLM judge through the real openai SDK: a scripted local server (verdicts, malformed replies,
HTTP 429/500, caching, concurrency in GradeFreeform) and a real `transformers serve` of the tiny model."""

import json
import logging
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lm_eval_medreason.evaluation.freeform import GradeFreeform, medqa_dataset, process_results
from lm_eval_medreason.evaluation.judge import PING, REPAIR, Judge, Verdict, parse_verdict, resolve_api_key
from tests.support.fake_openai import Reply, fake_chat_server
from tests.support.transformers_server import transformers_server  # noqa: F401 - the fixture

QUESTION = "A 30-year-old woman has a malar rash and anti-dsDNA antibodies. Which of the following is the most likely diagnosis?"
GOLD = "Systemic lupus erythematosus"


def examinee_answer(prompt: str) -> str | None:
    """The examinee's answer as rendered in the judge prompt (None for a repair turn)."""
    m = re.search(r"^Examinee's answer: (.*)$", prompt, re.M)
    return m.group(1) if m else None


def sdk_url(url: str) -> str:
    return url.removesuffix("/chat/completions")


def make_judge(url: str, tmp_path: Path, **kwargs) -> Judge:
    options = {"cache_dir": tmp_path / "cache", "max_retries": 2, "timeout": 10, **kwargs}
    return Judge("judge", base_url=sdk_url(url), **options)


# --- strict verdict parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Verdict: CORRECT", True),
        ("Verdict: INCORRECT", False),
        ("**Verdict:** INCORRECT", False),
        ("verdict: correct.", True),
        ("CORRECT", True),
        ("INCORRECT.", False),
        ("The answer names the same disease.\nVerdict: CORRECT\n", True),
        ("The examinee is correct: SLE is the same disease.\nVerdict: CORRECT", True),
        ("It is not incorrect to abbreviate.\nVerdict: CORRECT", True),
        ("<think>\nMaybe INCORRECT? No, same disease.\n</think>\nVerdict: CORRECT", True),
    ],
)
def test_parse_well_formed_verdicts(reply, expected):
    assert parse_verdict(reply) is expected


@pytest.mark.parametrize(
    "reply",
    [
        None,
        "",
        "   \n",
        "Verdict: CORRECT or INCORRECT",
        "CORRECT INCORRECT",
        "Verdict: INCORRECT\nOn reflection, Verdict: CORRECT",  # contradicts itself
        "Verdict: CORRECT\nVerdict: INCORRECT",
        "INCORRECT\nVerdict: CORRECT",  # both words
        "CORRECT? No: INCORRECT",
        "The examinee's answer is correct.",
        "Verdict: PARTIALLY CORRECT",
        "Verdict: CORRECT\nBecause both name lupus.",  # the verdict must be the last line
        "<think>\nVerdict: CORRECT",  # reasoning cut off
        "Verdict: YES",
    ],
)
def test_parse_malformed_verdicts(reply):
    assert parse_verdict(reply) is None


# --- the judge against a scripted server ------------------------------------------------------


def test_correct_and_incorrect_verdicts(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", "sk-judge-test")
    script = {"SLE": "Verdict: CORRECT", "Discoid lupus": "Reasoning: a different disease.\nVerdict: INCORRECT"}
    with fake_chat_server(lambda prompt: script[examinee_answer(prompt)]) as (url, requests):
        judge = make_judge(url, tmp_path)
        assert judge.grade(QUESTION, GOLD, "SLE") == Verdict(True)
        assert judge.grade(QUESTION, GOLD, "Discoid lupus") == Verdict(False)
    assert [r["model"] for r in requests] == ["judge", "judge"]
    assert all(r["temperature"] == 0 and "max_tokens" not in r for r in requests)
    prompt = requests[0]["messages"][0]["content"]
    assert QUESTION in prompt and f"Reference answer: {GOLD}" in prompt and "Examinee's answer: SLE" in prompt
    assert prompt.rstrip().endswith("Verdict: INCORRECT")
    assert all(h["authorization"] == "Bearer sk-judge-test" for h in requests.headers)


def test_api_key_order(monkeypatch):
    monkeypatch.delenv("MEDREASON_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resolve_api_key() == "EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert resolve_api_key() == "sk-openai"
    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", "sk-medreason")
    assert resolve_api_key() == "sk-medreason"


def test_malformed_verdict_is_repaired_once(tmp_path):
    replies = iter(["The answer looks right to me.", "Verdict: CORRECT"])
    with fake_chat_server(lambda prompt: next(replies)) as (url, requests):
        assert make_judge(url, tmp_path).grade(QUESTION, GOLD, "SLE") == Verdict(True)
    assert len(requests) == 2
    retry = requests[1]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == "The answer looks right to me." and retry[2]["content"] == REPAIR


def test_persistently_malformed_verdict_is_a_judge_error(tmp_path):
    with fake_chat_server(lambda prompt: "Verdict: CORRECT or INCORRECT") as (url, requests):
        verdict = make_judge(url, tmp_path, malformed_retries=2).grade(QUESTION, GOLD, "SLE")
    assert verdict.correct is None and verdict.error.startswith("MalformedVerdict")
    assert len(requests) == 3  # the first try and two repairs, then no guess


@pytest.mark.parametrize("status,error", [(429, "RateLimitError"), (500, "InternalServerError"), (503, "InternalServerError")])
def test_transient_http_errors_are_retried_by_the_sdk(tmp_path, status, error):
    replies = iter([Reply(status), Reply(status), "Verdict: INCORRECT"])
    with fake_chat_server(lambda prompt: next(replies)) as (url, requests):
        started = time.monotonic()
        assert make_judge(url, tmp_path, max_retries=2).grade(QUESTION, GOLD, "Gout") == Verdict(False)
    assert len(requests) == 3 and time.monotonic() - started < 5


@pytest.mark.parametrize("status,error", [(429, "RateLimitError"), (500, "InternalServerError")])
def test_persistent_http_errors_are_judge_errors(tmp_path, status, error):
    with fake_chat_server(lambda prompt: Reply(status)) as (url, requests):
        verdict = make_judge(url, tmp_path, max_retries=2).grade(QUESTION, GOLD, "SLE")
    assert verdict.correct is None and verdict.error.startswith(f"{error}:")
    assert len(requests) == 3  # one request and the SDK's two retries


def test_unreachable_server_and_garbage_replies_are_judge_errors(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verdict = Judge("judge", base_url=f"http://127.0.0.1:{port}/v1", cache_dir="off", max_retries=0).grade(QUESTION, GOLD, "SLE")
    assert verdict.correct is None and verdict.error.startswith("APIConnectionError")
    with fake_chat_server(lambda prompt: Reply(200, body="<html>not json</html>")) as (url, _):
        verdict = make_judge(url, tmp_path, max_retries=0).grade(QUESTION, GOLD, "SLE")
    assert verdict.correct is None and verdict.error


def test_verdicts_are_cached_on_disk_and_errors_are_not(tmp_path):
    cache = tmp_path / "cache"
    with fake_chat_server(lambda prompt: "Verdict: CORRECT") as (url, requests):
        assert make_judge(url, tmp_path).grade(QUESTION, GOLD, "SLE") == Verdict(True)
        assert len(requests) == 1
        again = make_judge(url, tmp_path)  # a new run: a new client, the same cache folder
        assert again.grade(QUESTION, GOLD, "SLE") == Verdict(True, cached=True)
        assert len(requests) == 1
        other_model = Judge("judge-2", base_url=sdk_url(url), cache_dir=cache, max_retries=0)
        assert other_model.grade(QUESTION, GOLD, "SLE") == Verdict(True)  # the key includes the model
        assert len(requests) == 2
        assert Judge("judge", base_url=sdk_url(url), cache_dir="off").grade(QUESTION, GOLD, "SLE") == Verdict(True)
        assert len(requests) == 3
    files = sorted(cache.rglob("*.json"))
    assert len(files) == 2 and json.loads(files[0].read_text())["correct"] is True
    assert not list(cache.rglob(".tmp-*"))
    with fake_chat_server(lambda prompt: Reply(500)) as (url, requests):
        assert make_judge(url, tmp_path, max_retries=0).grade(QUESTION, GOLD, "Gout").error
    with fake_chat_server(lambda prompt: "Verdict: INCORRECT") as (url, requests):
        assert make_judge(url, tmp_path).grade(QUESTION, GOLD, "Gout") == Verdict(False)  # asked again
        assert len(requests) == 1


def test_default_cache_location(monkeypatch, tmp_path):
    from lm_eval_medreason.evaluation.judge import default_cache_dir

    monkeypatch.delenv("MEDREASON_JUDGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "lm_eval_medreason" / "judge"
    monkeypatch.setenv("MEDREASON_JUDGE_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


# --- after generation nothing raises: an unwritable cache, and no key in any error text -----------


def unwritable(path: Path) -> Path:
    """A folder path that cannot be created, even by root: its parent is a regular file (mkdir fails)."""
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    path.parent.write_text("a file, not a folder")
    return path


def test_cache_write_failure_is_warned_once_and_verdicts_are_kept_in_memory(tmp_path, caplog):
    with fake_chat_server(lambda prompt: "Verdict: CORRECT") as (url, requests):
        judge = Judge("judge", base_url=sdk_url(url), cache_dir=unwritable(tmp_path / "full" / "cache"), max_retries=0)
        with caplog.at_level(logging.WARNING, logger="lm_eval_medreason.evaluation.judge"):
            verdicts = [judge.grade(QUESTION, GOLD, answer) for answer in ("SLE", "Lupus", "Systemic lupus")]
            again = judge.grade(QUESTION, GOLD, "SLE")
    assert verdicts == [Verdict(True)] * 3
    assert again == Verdict(True, cached=True) and len(requests) == 3  # kept in memory: not asked twice
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(tmp_path / "full" / "cache") in warnings[0] and "MEDREASON_JUDGE_CACHE_DIR" in warnings[0]
    assert "in memory" in warnings[0]


def test_cache_that_breaks_after_the_preflight_never_stops_the_filter(synthetic_data, clean_env, tmp_path, caplog):
    """The folder was writable when the task was built, then is not (disk replaced, quota): grading goes on."""
    with fake_chat_server(lambda prompt: "Verdict: INCORRECT") as (url, requests):
        docs = judged_docs(synthetic_data, url, requests, tmp_path, 4)
        cache = tmp_path / "cache"
        shutil.rmtree(cache)
        cache.write_text("no longer a folder")
        with caplog.at_level(logging.WARNING, logger="lm_eval_medreason.evaluation.judge"):
            graded = [json.loads(f[0]) for f in GradeFreeform().apply([[f"Final answer: Gout {i}"] for i in range(4)], docs)]
    assert [g["correct"] for g in graded] == [False] * 4 and not any(g["judge_error"] for g in graded)
    assert len([r for r in caplog.records if r.name == "lm_eval_medreason.evaluation.judge"]) == 1


KEY = "sk-test-0123456789abcdefSECRET"


def echoes_key(prompt):
    """An auth failure whose body quotes the key back, as some servers and proxies do."""
    return Reply(401, body=json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}", "code": 401}}))


def test_judge_errors_never_contain_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", KEY)
    with fake_chat_server(echoes_key) as (url, requests):
        verdict = make_judge(url, tmp_path).grade(QUESTION, GOLD, "SLE")
    assert requests.headers[0]["authorization"] == f"Bearer {KEY}"  # the server did get the key
    assert verdict.correct is None and verdict.error.startswith("AuthenticationError")
    assert "Incorrect API key provided" in verdict.error and KEY not in verdict.error and "SECRET" not in verdict.error


# --- GradeFreeform with a judge -----------------------------------------------------------------


def judged_docs(data: dict, url: str, requests: list, tmp_path: Path, n: int, **settings) -> list[dict]:
    """n docs of the free-form hook with this judge; the hook's preflight request is checked, then forgotten."""
    metadata = {"data_dir": str(data["root"]), "judge_model": "judge", "judge_base_url": sdk_url(url),
                "judge_cache_dir": str(tmp_path / "cache"), "judge_max_retries": 1, **settings}
    docs = medqa_dataset(**metadata)["test"].to_list()
    assert [(r["messages"][0]["content"], r["max_completion_tokens"]) for r in requests] == [(PING, 1)]
    requests.clear()
    return (docs * (n // len(docs) + 1))[:n]


def test_grade_freeform_with_the_judge(synthetic_data, clean_env, tmp_path):
    """Judge verdicts become acc; a judge error is neither right nor wrong; no answer asks no judge."""

    def script(prompt):
        answer = examinee_answer(prompt)
        if answer in ("Mystery syndrome", None):  # None: the repair turn, only ever asked for this one
            return "I would say so."  # malformed, every time
        if answer == "Broken server":
            return Reply(500)
        return "Verdict: CORRECT" if answer.startswith("Phrased") else "Verdict: INCORRECT"

    with fake_chat_server(script) as (url, requests):
        docs = judged_docs(synthetic_data, url, requests, tmp_path, 5)
        responses = [
            [f"Reasoning.\nFinal answer: {docs[0]['answer']}"],  # the matcher says right, the judge wrong
            ["Reasoning.\nFinal answer: Phrased differently but right"],  # judge CORRECT, matcher no
            ["Reasoning.\nFinal answer: Mystery syndrome"],  # malformed verdict: judge error
            ["Reasoning.\nFinal answer: Broken server"],  # HTTP 500 after retries: judge error
            ["Reasoning without any commitment at all, I am afraid, and it goes on for a while."],
        ]
        filtered = GradeFreeform().apply(responses, docs)
    graded = [json.loads(f[0]) for f in filtered]
    assert {g["grader"] for g in graded} == {"judge:judge"}
    assert [g["correct"] for g in graded] == [False, True, None, None, False]
    assert [g["matcher_correct"] for g in graded] == [True, False, False, False, False]
    assert [g["judge_error"] for g in graded] == [False, False, True, True, False]
    assert graded[2]["error"].startswith("MalformedVerdict") and graded[3]["error"].startswith("InternalServerError")
    assert graded[4]["answer"] is None
    asked = {examinee_answer(r["messages"][0]["content"]) for r in requests}
    assert asked == {docs[0]["answer"], "Phrased differently but right", "Mystery syndrome", "Broken server"}
    metrics = [process_results(doc, f) for doc, f in zip(docs, filtered)]
    assert [m.get("acc") for m in metrics] == [0.0, 1.0, None, None, 0.0]  # errors are not wrong answers
    assert [m["judge_error"] for m in metrics] == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert [m["judged"] for m in metrics] == [1.0] * 5
    assert [m.get("matcher_agreement") for m in metrics] == [0.0, 0.0, None, None, None]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_judge_calls_run_concurrently(synthetic_data, clean_env, tmp_path, concurrency):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(prompt):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.15)
        with lock:
            in_flight[0] -= 1
        return "Verdict: CORRECT"

    with fake_chat_server(slow) as (url, requests):
        docs = judged_docs(synthetic_data, url, requests, tmp_path, 16, judge_concurrency=concurrency, judge_cache_dir="off")
        responses = [[f"Final answer: answer number {i}"] for i in range(16)]
        started = time.monotonic()
        graded = [json.loads(f[0]) for f in GradeFreeform().apply(responses, docs)]
        elapsed = time.monotonic() - started
    assert len(requests) == 16 and all(g["correct"] is True for g in graded)
    assert [g["answer"] for g in graded] == [f"answer number {i}" for i in range(16)]  # order kept
    if concurrency == 1:
        assert peak[0] == 1
    else:
        assert peak[0] >= 4 and elapsed < 16 * 0.15 / 2


# --- a real OpenAI-compatible server: `transformers serve` with the tiny model -----------------


@pytest.mark.slow
def test_real_server_round_trip_and_a_random_verdict_is_a_judge_error(transformers_server, tmp_path):  # noqa: F811
    """The tiny model's reply is random text: the call round-trips, and the malformed verdict becomes a
    judge error (after one repair turn), never a wrong answer."""
    base_url, model = transformers_server
    judge = Judge(model, base_url=base_url, cache_dir=tmp_path / "cache", max_retries=0, timeout=120,
                  malformed_retries=1, max_tokens=16)
    reply = judge._ask([{"role": "user", "content": judge.prompt(QUESTION, GOLD, "SLE")}])
    assert isinstance(reply, str) and reply  # a real completion came back through the SDK
    verdict = judge.grade(QUESTION, GOLD, "SLE")
    assert verdict.correct is None and verdict.error.startswith("MalformedVerdict"), verdict
    assert not list((tmp_path / "cache").rglob("*.json"))  # errors are not cached
    graded = {"answer": "SLE", "output_tokens": 3, "grader": f"judge:{model}", "correct": verdict.correct,
              "matcher_correct": True, "judge_error": True}
    assert "acc" not in process_results({}, [json.dumps(graded)])
