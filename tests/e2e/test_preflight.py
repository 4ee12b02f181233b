"""Everything scoring needs is checked when lm-eval builds the tasks, before the first request: the token
encoding loads, and a configured judge has a writable cache folder and answers a one-token request. A failed
check is one line naming the setting and the fix; the real `lm_eval` CLI stops with it, no request sent."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lm_eval_medreason.errors import JudgeSetupError
from lm_eval_medreason.evaluation.freeform import medqa_dataset
from lm_eval_medreason.evaluation.judge import PING
from tests.support.fake_openai import Reply, fake_chat_server

pytestmark = pytest.mark.usefixtures("clean_env")
KEY = "sk-test-0123456789abcdefSECRET"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def build_task(data: dict, tmp_path, **judge) -> None:
    """What lm-eval does when it builds medqa_freeform: call its dataset hook with the task's metadata."""
    settings = {"judge_model": "judge", "judge_cache_dir": str(tmp_path / "cache"), "judge_max_retries": 0, **judge}
    medqa_dataset(data_dir=str(data["root"]), **settings)


# --- the judge's preflight, as the task hook runs it ----------------------------------------------


def test_a_working_judge_costs_one_one_token_request_per_run(synthetic_data, tmp_path):
    with fake_chat_server(lambda prompt: "OK") as (url, requests):
        base_url = url.removesuffix("/chat/completions")
        build_task(synthetic_data, tmp_path, judge_base_url=base_url)
        build_task(synthetic_data, tmp_path, judge_base_url=base_url)  # a second task of the group: no new check
    assert len(requests) == 1
    assert requests[0]["messages"] == [{"role": "user", "content": PING}] and requests[0]["max_completion_tokens"] == 1
    assert (tmp_path / "cache").is_dir() and not list((tmp_path / "cache").iterdir())  # the probe file is gone


@pytest.mark.parametrize(
    "reply,fragments",
    [
        (Reply(401, body=json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}})),
         ("Error code: 401", "AuthenticationError", "check the API key (MEDREASON_JUDGE_API_KEY or OPENAI_API_KEY)")),
        (Reply(403), ("PermissionDeniedError", "MEDREASON_JUDGE_API_KEY", "access to this model")),
        (Reply(404, body=json.dumps({"error": {"message": "The model `judge` does not exist."}})),
         ("NotFoundError", "does not exist", "check judge_model (--metadata) or MEDREASON_JUDGE_MODEL")),
        (Reply(429), ("RateLimitError", "rate limit or quota", "judge_concurrency")),
        (Reply(500), ("InternalServerError", "judge server is failing", "MEDREASON_JUDGE_BASE_URL")),
    ],
    ids=["bad-key", "forbidden", "unknown-model", "rate-limited", "server-error"],
)
def test_a_judge_answering_an_error_stops_the_task_build(reply, fragments, synthetic_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", KEY)
    with fake_chat_server(lambda prompt: reply) as (url, requests):
        with pytest.raises(JudgeSetupError) as err:
            build_task(synthetic_data, tmp_path, judge_base_url=url.removesuffix("/chat/completions"))
    assert len(requests) == 1  # judge_max_retries 0: one request, no retry
    message = str(err.value)
    assert_one_line(message, "the LLM judge 'judge' at http://127.0.0.1:", "did not answer a test request", *fragments)
    assert KEY not in message and "SECRET" not in message


def test_an_unreachable_judge_stops_the_task_build(synthetic_data, tmp_path):
    with pytest.raises(JudgeSetupError) as err:
        build_task(synthetic_data, tmp_path, judge_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    assert_one_line(str(err.value), "APIConnectionError", "check judge_base_url (--metadata) or MEDREASON_JUDGE_BASE_URL")


def test_an_unwritable_cache_folder_stops_the_task_build_before_any_request(synthetic_data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # tests run as root: a path under a file is unwritable even so
    with fake_chat_server(lambda prompt: "OK") as (url, requests):
        with pytest.raises(JudgeSetupError) as err:
            build_task(synthetic_data, tmp_path, judge_base_url=url.removesuffix("/chat/completions"),
                       judge_cache_dir=str(blocker / "cache"))
    assert requests == []
    assert_one_line(str(err.value), f"judge_cache_dir {blocker / 'cache'} is not writable",
                    "MEDREASON_JUDGE_CACHE_DIR", "or to 'off'")


def test_no_judge_configured_sends_nothing(synthetic_data, tmp_path):
    with fake_chat_server(lambda prompt: "OK") as (url, requests):
        docs = medqa_dataset(data_dir=str(synthetic_data["root"]))["test"]
    assert requests == [] and docs[0]["judge"]["model"] is None


# --- through the real lm_eval CLI: the run stops before its first request ---------------------------


def run_lm_eval_expecting_failure(url: str, tasks: str, metadata: dict, tmp_path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "local-chat-completions", "--apply_chat_template",
               "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
               "--tasks", tasks, "--metadata", json.dumps(metadata), "--output_path", str(tmp_path / "out")]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert result.returncode != 0, result.stdout[-2000:]
    assert not list(tmp_path.glob("out/**/results_*.json"))
    return result


@pytest.mark.slow
def test_lm_eval_with_a_bad_token_encoding_stops_before_generating(synthetic_data, tmp_path):
    with fake_chat_server(lambda prompt: "The answer is (A).") as (url, requests):
        result = run_lm_eval_expecting_failure(
            url, "medqa_vanilla", {"data_dir": str(synthetic_data["root"]), "token_encoding": "no_such_encoding"}, tmp_path)
    assert requests == []  # nothing generated, so nothing lost
    last = result.stderr.strip().splitlines()[-1]
    assert_one_line(last, "TokenEncodingError: --metadata token_encoding: 'no_such_encoding' is not a tiktoken encoding",
                    "MEDREASON_TOKEN_ENCODING", "cl100k_base")


@pytest.mark.slow
def test_lm_eval_with_an_unreachable_judge_stops_before_generating(synthetic_data, tmp_path):
    judge_url = f"http://127.0.0.1:{closed_port()}/v1"
    metadata = {"data_dir": str(synthetic_data["root"]), "judge_model": "judge", "judge_base_url": judge_url,
                "judge_max_retries": 0, "judge_cache_dir": str(tmp_path / "cache")}
    with fake_chat_server(lambda prompt: "Final answer: Gout") as (url, requests):
        result = run_lm_eval_expecting_failure(url, "medqa_freeform", metadata, tmp_path)
    assert requests == []
    last = result.stderr.strip().splitlines()[-1]
    assert_one_line(last, "JudgeSetupError: the LLM judge 'judge' at " + judge_url,
                    "check judge_base_url (--metadata) or MEDREASON_JUDGE_BASE_URL")
