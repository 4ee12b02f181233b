"""End to end through the real `lm_eval` CLI: every task and group of the package, a tiny
local model (HF backend) and a scripted OpenAI-compatible server (local-chat-completions)."""

import json

import pytest

from lm_eval_medreason.evaluation.answers import read_choice
from lm_eval_medreason.evaluation.tasks import FOLDERS, GROUP_MEMBERS, STRATEGIES
from lm_eval_medreason.prompts import render_case
from lm_eval_medreason.tokens import count_tokens
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import printed_value, read_results, run_lm_eval
from tests.support.synthetic import write_data_dir

pytestmark = pytest.mark.slow
ALL_BENCHMARKS = [b for benchmarks in FOLDERS.values() for b in benchmarks]
METRICS = ("acc", "output_tokens", "no_answer")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data_dir(tmp_path_factory.mktemp("data"), n=6)


def weighted_mean(values: dict[str, float], sizes: dict[str, int]) -> float:
    return sum(values[t] * sizes[t] for t in values) / sum(sizes[t] for t in values)


def check_samples(task: str, samples: list[dict], data: dict) -> dict[str, float]:
    """Each logged sample is right by hand; returns the task's metric means computed from them."""
    benchmark, strategy = task.rsplit("_", 1)
    assert [s["doc"]["id"] for s in samples] == data["ids"][benchmark]
    assert [s["target"] for s in samples] == data["gold"][benchmark]
    for sample in samples:
        raw = sample["resps"][0][0]
        scored = json.loads(sample["filtered_resps"][0])
        options = {k: v for k, v in sample["doc"]["options"].items() if v is not None}
        reading = read_choice(raw, options)
        assert scored == {"choice": reading.letter, "output_tokens": count_tokens(raw), "rule": reading.rule,
                          "span": [reading.start, reading.end]}
        assert sample["output_tokens"] == count_tokens(raw)
        assert sample["acc"] == float(scored["choice"] == sample["target"])
        assert sample["no_answer"] == float(scored["choice"] is None)
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        if isinstance(prompt, list):  # chat-completions backends log the messages, as JSON
            prompt = json.loads(prompt[0])[-1]["content"]
        assert render_case(f"eval_{strategy}.j2", sample["doc"]) in prompt
    return {m: sum(s[m] for s in samples) / len(samples) for m in METRICS}


def test_every_task_and_group_with_a_tiny_hf_model(tiny_model, data, tmp_path):
    groups = [f"medreason_{s}" for s in STRATEGIES]
    variants = [f"{b}_{s}" for b in ALL_BENCHMARKS if b not in GROUP_MEMBERS for s in STRATEGIES]
    run = run_lm_eval(
        ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu",
         "--tasks", ",".join(groups + variants), "--apply_chat_template",
         "--gen_kwargs", "max_gen_toks=12", "--metadata", json.dumps({"data_dir": str(data["root"])})],
        tmp_path / "out",
    )
    results, samples = read_results(tmp_path / "out")
    tasks = [f"{b}_{s}" for b in ALL_BENCHMARKS for s in STRATEGIES]
    assert sorted(samples) == sorted(tasks)
    for task in tasks:
        by_hand = check_samples(task, samples[task], data)
        for metric in METRICS:
            assert results["results"][task][f"{metric},final-answer"] == pytest.approx(by_hand[metric])
        generation = samples[task][0]["arguments"]["gen_args_0"]["arg_1"]
        assert generation["until"] == [] and generation["max_gen_toks"] == 12
    sizes = {t: len(s) for t, s in samples.items()}
    for strategy in STRATEGIES:
        members = {f"{b}_{strategy}": results["results"][f"{b}_{strategy}"]["acc,final-answer"] for b in GROUP_MEMBERS}
        expected = weighted_mean(members, sizes)
        group = f"medreason_{strategy}"
        assert results["results"][group]["acc,final-answer"] == pytest.approx(expected)
        assert printed_value(run.stdout, group, "acc") == pytest.approx(expected, abs=5e-5)
        tokens = {t: results["results"][t]["output_tokens,final-answer"] for t in members}
        assert results["results"][group]["output_tokens,final-answer"] == pytest.approx(weighted_mean(tokens, sizes))


REPLIES = (
    "Hmm, the findings suggest several options. Wait, let me reconsider.\n\nThe answer is ({0}).",
    "<think>\nMaybe A? No.\n\nOn reflection it fits better with {0}.\n</think>\n\n**Final Answer: {0}**",
    "Step 1. Key findings...\n\nStep 5. Conclusion.\n\nAnswer: {0}",
)


def scripted_answers(data: dict):
    """Replies in the forms models emit: all right on MedQA, every 2nd on Medbullets, one in four on
    JAMA, whose first case gets a refusal. Returns answer(prompt) for the fake server."""
    from lm_eval_medreason.data.loaders import load_cases

    replies = {}
    for benchmark, is_right in (("medqa", lambda i: True), ("medbullets", lambda i: i % 2 == 0), ("jama", lambda i: i % 3 == 1)):
        for i, case in enumerate(load_cases(benchmark, {"data_dir": str(data["root"])})):
            wrong = next(letter for letter in case["options"] if letter != case["answer_idx"])
            letter = case["answer_idx"] if is_right(i) else wrong
            replies[case["question"].strip()] = REPLIES[i % len(REPLIES)].format(letter)
            if benchmark == "jama" and i == 0:
                replies[case["question"].strip()] = "I cannot determine this from the information given."
    return lambda prompt: next(reply for question, reply in replies.items() if question in prompt)


def test_group_weighted_mean_with_scripted_server(data, tmp_path):
    """Accuracies differ by benchmark and sizes differ, so the size-weighted mean is not the plain mean."""
    with fake_chat_server(scripted_answers(data)) as (url, requests):
        run = run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
             "--tasks", "medreason_longmonolog", "--metadata", json.dumps({"data_dir": str(data["root"])})],
            tmp_path / "out",
        )
    results, samples = read_results(tmp_path / "out")
    assert len(requests) == sum(len(s) for s in samples.values())
    assert all(r["max_tokens"] == 8192 and r["temperature"] == 0 for r in requests)
    accs, sizes = {}, {}
    for task, task_samples in samples.items():
        by_hand = check_samples(task, task_samples, data)
        accs[task], sizes[task] = by_hand["acc"], len(task_samples)
    assert accs["medqa_longmonolog"] == 1.0
    assert 0.0 < accs["jama_longmonolog"] < accs["medbullets_longmonolog"] < 1.0
    assert results["results"]["jama_longmonolog"]["no_answer,final-answer"] == pytest.approx(1 / sizes["jama_longmonolog"])
    expected = weighted_mean(accs, sizes)
    assert expected != pytest.approx(sum(accs.values()) / len(accs))
    assert results["results"]["medreason_longmonolog"]["acc,final-answer"] == pytest.approx(expected)
    assert printed_value(run.stdout, "medreason_longmonolog", "acc") == pytest.approx(expected, abs=5e-5)


def test_missing_jama_file_stops_the_run_with_instructions(tiny_model, tmp_path, clean_env):
    """No scraped JAMA file: lm_eval exits non-zero and its last line says how to get one and where to put it."""
    import subprocess
    import sys

    empty = tmp_path / "no-data"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={tiny_model}",
         "--device", "cpu", "--tasks", "jama_cot", "--metadata", json.dumps({"data_dir": str(empty)})],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "DataError" in last and "jama_scraper.py" in last and "jama_path" in last and "MEDREASON_JAMA_PATH" in last
