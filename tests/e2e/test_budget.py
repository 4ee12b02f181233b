"""The budget curve end to end through the real `lm_eval` CLI: `--model medreason --model_args base=hf,...`
on `medqa_cot_budget` with a tiny local model. Every expectation is rebuilt here from the logged samples:
which budgets a response exceeds (counted with the model's tokenizer), the forced continuation (the model
re-run greedily on the forced prompt with transformers), the answer at each budget (the grader,
read_choice) and its tokens (the tiktoken count every task reports). Backends that cannot continue a
turn stop the run before it starts."""

import json
import os
import subprocess
import sys

import pytest

from lm_eval_medreason.evaluation.answers import read_choice
from lm_eval_medreason.tokens import count_tokens
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.synthetic import write_data_dir

pytestmark = pytest.mark.slow
BUDGETS = [2, 8, 24, 64]
# A suffix that states an answer, so that the answer at a budget visibly comes from the forced text
# (gold is C for some questions, not for others); answer tokens below the default, so that it is honoured.
SUFFIX = "\n\nI have to answer now. The answer is (C). "
ANSWER_TOKENS = 3
MAX_GEN_TOKS = 40
# --batch_size 1: no padding, so the model re-run here (one unpadded prompt) computes exactly what lm-eval's hf did.
HF = ["--device", "cpu", "--batch_size", "1", "--apply_chat_template", "--gen_kwargs", f"max_gen_toks={MAX_GEN_TOKS}"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return write_data_dir(tmp_path_factory.mktemp("budget") / "data")


@pytest.fixture(scope="module")
def wrapped(tiny_model, data, tmp_path_factory):
    """One wrapper run of medqa_cot_budget and the plain medqa_cot: (results, samples per task)."""
    out = tmp_path_factory.mktemp("wrapped")
    metadata = {"data_dir": str(data["root"]), "budgets": BUDGETS, "budget_suffix": SUFFIX,
                "budget_answer_tokens": ANSWER_TOKENS}
    run_lm_eval(["--model", "medreason", "--model_args", f"base=hf,pretrained={tiny_model},dtype=float32", *HF,
                 "--tasks", "medqa_cot_budget,medqa_cot", "--metadata", json.dumps(metadata)], out)
    return read_results(out)


@pytest.fixture(scope="module")
def model(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model).eval()


def envelopes(samples: list[dict]) -> list[dict]:
    return [json.loads(s["resps"][0][0]) for s in samples]


def test_every_budget_metric_is_reported_per_sample_and_in_the_results(wrapped, data):
    results, samples = wrapped
    task = samples["medqa_cot_budget"]
    assert [s["doc"]["id"] for s in task] == data["ids"]["medqa"]
    names = ["acc", "output_tokens", "no_answer"] + [f"{m}@{b}" for b in BUDGETS for m in ("acc", "tokens")]
    for name in names:
        mean = sum(s[name] for s in task) / len(task)
        assert results["results"]["medqa_cot_budget"][f"{name},final-answer"] == pytest.approx(mean), name
    for s in task:
        tokens = [s[f"tokens@{b}"] for b in BUDGETS]
        assert tokens == sorted(tokens), s["doc_id"]


def test_forced_continuations_exist_exactly_for_responses_that_reach_the_budget(wrapped, model):
    tokenizer, _ = model
    _, samples = wrapped
    forced_pairs = unforced_pairs = 0
    for envelope in envelopes(samples["medqa_cot_budget"]):
        length = len(tokenizer(envelope["response"], add_special_tokens=False)["input_ids"])
        assert sorted(int(b) for b in envelope["forced"]) == [b for b in BUDGETS if length >= b]
        forced_pairs += len(envelope["forced"])
        unforced_pairs += len(BUDGETS) - len(envelope["forced"])
    assert forced_pairs and unforced_pairs  # both cases are exercised


def test_the_forced_text_continues_the_cut_response(wrapped, model):
    """lm-eval's hf encodes a prompt with tokenizer(prompt) (no BOS here: the model has none and add_bos_token is
    unset) and generates greedily; the forced prompt is the logged prompt, the cut response and the suffix."""
    import torch

    tokenizer, lm = model
    _, samples = wrapped
    checked = 0
    for sample, envelope in zip(samples["medqa_cot_budget"], envelopes(samples["medqa_cot_budget"])):
        context = sample["arguments"]["gen_args_0"]["arg_0"]
        for b, forced in envelope["forced"].items():
            prompt = context + envelope["response"][:forced["cut"]] + SUFFIX
            encoded = tokenizer(prompt, return_tensors="pt")
            with torch.no_grad():
                ids = lm.generate(**encoded, max_new_tokens=ANSWER_TOKENS, do_sample=False,
                                  pad_token_id=tokenizer.pad_token_id)
            continuation = tokenizer.decode(ids[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
            assert forced["continuation"] == continuation, (sample["doc_id"], b)
            checked += 1
    assert checked


def test_the_answer_and_tokens_at_each_budget_are_read_from_the_text_kept_there(wrapped):
    _, samples = wrapped
    letters = set()
    for sample, envelope in zip(samples["medqa_cot_budget"], envelopes(samples["medqa_cot_budget"])):
        options, gold, response = sample["doc"]["options"], sample["target"], envelope["response"]
        assert sample["acc"] == float(read_choice(response, options).letter == gold)
        assert sample["output_tokens"] == count_tokens(response, "cl100k_base")
        for b in BUDGETS:
            forced = envelope["forced"].get(str(b))
            kept = response[:forced["cut"]] if forced else response
            text = kept + SUFFIX + forced["continuation"] if forced else response
            letter = read_choice(text, options).letter
            letters.add(letter)
            assert sample[f"acc@{b}"] == float(letter == gold), (sample["doc_id"], b)
            assert sample[f"tokens@{b}"] == count_tokens(kept, "cl100k_base"), (sample["doc_id"], b)
    assert "C" in letters and None in letters  # forced and unforced answers differ, so the test can tell them apart
    assert {s["target"] == "C" for s in samples["medqa_cot_budget"]} == {True, False}


def test_plain_tasks_pass_through_the_wrapper_unchanged(wrapped, tiny_model, data, tmp_path):
    """medqa_cot in the wrapper's run gives the responses `--model hf` alone gives; the budget task's full
    response is the same greedy generation."""
    _, samples = wrapped
    out = tmp_path / "plain"
    run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", *HF,
                 "--tasks", "medqa_cot", "--metadata", json.dumps({"data_dir": str(data["root"])})], out)
    _, plain = read_results(out)
    alone = [s["resps"][0][0] for s in plain["medqa_cot"]]
    assert [s["resps"][0][0] for s in samples["medqa_cot"]] == alone
    assert [e["response"] for e in envelopes(samples["medqa_cot_budget"])] == alone
    assert len(set(alone)) == len(alone)


def failed_run(args: list[str], tmp_path, before_requests: bool = True) -> str:
    """A `lm_eval run` that must fail, before its first request unless ``before_requests`` is False (a run whose
    responses all come from --use_cache fails when it scores them); returns its last stderr line."""
    command = [sys.executable, "-m", "lm_eval", "run", *args, "--output_path", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode != 0, result.stdout[-2000:]
    if before_requests:
        assert "Running generate_until requests" not in result.stderr
    assert not list(tmp_path.glob("out/**/results_*.json"))
    return result.stderr.strip().splitlines()[-1]


def test_a_chat_backend_is_refused_naming_the_backends_that_can(synthetic_data, tmp_path):
    with fake_chat_server(lambda prompt: "The answer is (A).") as (url, requests):
        last = failed_run(
            ["--model", "medreason", "--apply_chat_template", "--model_args",
             f"base=local-chat-completions,model=scripted,base_url={url},num_concurrent=1,max_retries=1,"
             "tokenizer_backend=none", "--tasks", "medqa_cot_budget",
             "--metadata", json.dumps({"data_dir": str(synthetic_data["root"]), "budgets": [8]})], tmp_path)
    assert requests == []
    assert "'local-chat-completions'" in last and "base= one of hf, vllm, local-completions" in last, last


def test_a_plain_backend_is_refused_naming_the_wrapper(tiny_model, synthetic_data, tmp_path):
    last = failed_run(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--device", "cpu",
                       "--tasks", "medqa_cot_budget", "--metadata",
                       json.dumps({"data_dir": str(synthetic_data["root"]), "budgets": [8]})], tmp_path)
    assert "lm_eval --model medreason --model_args base=BACKEND" in last, last


def test_use_cache_reuses_envelopes_of_the_same_settings_and_refuses_others(tiny_model, data, tmp_path):
    """lm-eval's --use_cache keys a greedy response by prompt and generation settings only: a rerun with the same
    budgets scores the cached envelopes the same; one with other budgets stops with one line naming the cache
    instead of scoring budgets that were never forced."""
    cache = tmp_path / "cache" / "lm"
    args = ["--model", "medreason", "--model_args", f"base=hf,pretrained={tiny_model},dtype=float32", *HF,
            "--tasks", "medqa_cot_budget", "--limit", "4", "--use_cache", str(cache)]
    metadata = {"data_dir": str(data["root"]), "budgets": [2, 24]}
    runs = []
    for n in range(2):
        logged = run_lm_eval([*args, "--metadata", json.dumps(metadata)], tmp_path / f"same{n}").stderr
        runs.append(read_results(tmp_path / f"same{n}")[1]["medqa_cot_budget"])
    assert "Cached requests: 4, Requests remaining: 0" in logged  # the second run read every envelope from the cache
    metrics = ["acc", "acc@2", "tokens@2", "acc@24", "tokens@24"]
    assert [[s[m] for m in metrics] for s in runs[1]] == [[s[m] for m in metrics] for s in runs[0]]
    assert any(json.loads(s["resps"][0][0])["forced"] for s in runs[0])

    last = failed_run([*args, "--metadata", json.dumps({**metadata, "budgets": [2, 8, 24]})], tmp_path,
                      before_requests=False)
    assert "forced with budgets [2, 24]" in last and "asks for [2, 8, 24]" in last and "--use_cache" in last, last
