"""Free-form tasks end to end through the real `lm_eval` CLI: a scripted model server
(local-chat-completions), graded once by the matcher and once by a scripted LLM judge on a second
local server, with a malformed verdict and an HTTP 500 among the judge's replies."""

import json
import re

import pytest

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.prompts import render
from lm_eval_medreason.tokens import count_tokens
from tests.support.fake_openai import Reply, fake_chat_server
from tests.support.lm_eval_run import printed_value, read_results, run_lm_eval

pytestmark = pytest.mark.slow
MEMBERS = ("jama", "medbullets", "medqa")
GROUP = "medreason_freeform"
FILTER = "graded"
WRONG = "Sarcoidosis"  # never a gold answer of the synthetic cases
MALFORMED_CASE = ("medqa", 1)  # the judge never gives a well-formed verdict on it
SERVER_ERROR_CASE = ("medbullets", 2)  # the judge's server answers HTTP 500 for it


def kind(benchmark: str, i: int) -> str:
    """The reply the scripted model gives to case i: right, wrong, hedge, reworded (right for the judge
    only), or a refusal (the first JAMA case: no final answer)."""
    if (benchmark, i) == ("jama", 0):
        return "refusal"
    return ("right", "wrong", "hedge", "reworded")[i % 4]


def reply(kind_: str, gold: str) -> str:
    reasoning = "The key findings point one way; the alternatives fit less well.\n\n"
    return {
        "right": reasoning + f"Final answer: {gold}",
        "wrong": reasoning + f"**Final answer:** {WRONG}",
        "hedge": reasoning + f"Final answer: {gold} or {WRONG.lower()}",
        "reworded": reasoning + f"Final answer: {gold}, classic presentation",
        "refusal": "I cannot determine this from the information given.",
    }[kind_]


@pytest.fixture
def cases(synthetic_data) -> dict:
    """{benchmark: cases in load order} of the synthetic data folder."""
    return {b: load_cases(b, {"data_dir": str(synthetic_data["root"])}) for b in MEMBERS}


def case_of(prompt: str, cases: dict) -> tuple[str, int, dict]:
    for benchmark, items in cases.items():
        for i, case in enumerate(items):
            if case["question"].strip() in prompt:
                return benchmark, i, case
    raise AssertionError(f"no case in prompt {prompt[:200]!r}")


def model_script(cases: dict):
    def answer(prompt: str) -> str:
        benchmark, i, case = case_of(prompt, cases)
        return reply(kind(benchmark, i), case["answer"])

    return answer


def judge_script(cases: dict):
    """CORRECT when the examinee's answer contains the gold text and is no hedge; a malformed verdict
    for MALFORMED_CASE (and its repair turns), HTTP 500 for SERVER_ERROR_CASE."""

    def answer(prompt: str):
        examinee = re.search(r"^Examinee's answer: (.*)$", prompt, re.M)
        if not examinee:
            return "Hmm."  # a repair turn: only MALFORMED_CASE gets one
        benchmark, i, case = case_of(prompt, cases)
        if (benchmark, i) == MALFORMED_CASE:
            return "The examinee seems to be right, or maybe not."
        if (benchmark, i) == SERVER_ERROR_CASE:
            return Reply(500)
        right = case["answer"].lower() in examinee.group(1).lower() and " or " not in examinee.group(1)
        return "Verdict: CORRECT" if right else "Verdict: INCORRECT"

    return answer


def expected_sample(benchmark: str, i: int, judge: bool) -> dict:
    """The per-sample metrics worked out by hand from the reply kind and the judge's script."""
    k = kind(benchmark, i)
    matcher = k == "right"
    out = {"no_answer": float(k == "refusal"), "judged": float(judge), "judge_error": 0.0}
    if not judge or k == "refusal":  # no final answer: wrong under either grader, no judge asked
        return {**out, "acc": float(matcher)}
    if (benchmark, i) in (MALFORMED_CASE, SERVER_ERROR_CASE):
        return {**out, "judge_error": 1.0}  # neither right nor wrong: no acc, no agreement
    verdict = k in ("right", "reworded")
    return {**out, "acc": float(verdict), "matcher_agreement": float(verdict == matcher)}


def run(cases, synthetic_data, tmp_path, metadata: dict):
    with fake_chat_server(model_script(cases)) as (url, model_requests):
        result = run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
             "--tasks", GROUP, "--metadata", json.dumps({"data_dir": str(synthetic_data["root"]), **metadata})],
            tmp_path / "out",
        )
    results, samples = read_results(tmp_path / "out")
    assert sorted(samples) == sorted(f"{b}_freeform" for b in MEMBERS)
    assert len(model_requests) == sum(len(s) for s in samples.values())
    return result, results, samples


def check(results: dict, samples: dict, cases: dict, stdout: str, judge: bool) -> None:
    """Every sample against the hand computation; task metrics are the means over the samples that
    have them; the group's are the size-weighted means of its tasks."""
    metrics = ("acc", "output_tokens", "no_answer", "judge_error", "judged", "matcher_agreement")
    task_values, sizes = {}, {}
    for benchmark in MEMBERS:
        task = f"{benchmark}_freeform"
        ids = [case["id"] for case in cases[benchmark]]
        by_index = {ids.index(s["doc"]["id"]): s for s in samples[task]}
        assert sorted(by_index) == list(range(len(ids)))
        for i, sample in by_index.items():
            raw = sample["resps"][0][0]
            graded = json.loads(sample["filtered_resps"][0])
            expected = expected_sample(benchmark, i, judge)
            assert {m: sample[m] for m in metrics if m in sample and m != "output_tokens"} == expected, (task, i)
            assert sample["output_tokens"] == graded["output_tokens"] == count_tokens(raw)
            assert graded["grader"] == ("judge:judge" if judge else "matcher")
            assert sample["target"] == sample["doc"]["answer"]
            prompt = json.loads(sample["arguments"]["gen_args_0"]["arg_0"][0])[-1]["content"]
            assert render("eval_freeform.j2", question=sample["doc"]["question"]) == prompt
            distractors = [t for t in sample["doc"]["options"].values() if t and t != sample["doc"]["answer"]]
            assert distractors and not any(t in prompt for t in distractors)  # the options are withheld
        sizes[task] = len(by_index)
        for metric in metrics:
            values = [s[metric] for s in by_index.values() if metric in s]
            key = f"{metric},{FILTER}"
            if values:
                task_values.setdefault(metric, {})[task] = sum(values) / len(values)
                assert results["results"][task][key] == pytest.approx(task_values[metric][task]), (task, metric)
            else:
                assert key not in results["results"][task]
    group = results["results"][GROUP]
    for metric, per_task in task_values.items():
        expected = sum(per_task[t] * sizes[t] for t in per_task) / sum(sizes[t] for t in per_task)
        assert group[f"{metric},{FILTER}"] == pytest.approx(expected), metric
    assert printed_value(stdout, GROUP, "acc") == pytest.approx(group[f"acc,{FILTER}"], abs=5e-5)


def test_freeform_group_graded_by_the_matcher(cases, synthetic_data, tmp_path, clean_env):
    result, results, samples = run(cases, synthetic_data, tmp_path, {})
    check(results, samples, cases, result.stdout, judge=False)
    group = results["results"][GROUP]
    assert group[f"judged,{FILTER}"] == 0.0 and group[f"judge_error,{FILTER}"] == 0.0
    assert f"matcher_agreement,{FILTER}" not in group  # no judge, nothing to agree with
    assert results["results"]["medqa_freeform"][f"acc,{FILTER}"] == pytest.approx(2 / 6)  # cases 0 and 4


def test_freeform_group_graded_by_a_judge(cases, synthetic_data, tmp_path, clean_env):
    with fake_chat_server(judge_script(cases)) as (judge_url, judge_requests):
        metadata = {"judge_model": "judge", "judge_base_url": judge_url.removesuffix("/chat/completions"),
                    "judge_cache_dir": str(tmp_path / "judge-cache"), "judge_max_retries": 1}
        result, results, samples = run(cases, synthetic_data, tmp_path, metadata)
    check(results, samples, cases, result.stdout, judge=True)
    answered = sum(kind(b, i) != "refusal" for b in MEMBERS for i in range(len(samples[f"{b}_freeform"])))
    # the preflight's one-token request; malformed: 1 + 2 repairs; HTTP 500: 1 + 1 retry
    assert len(judge_requests) == 1 + answered - 2 + 3 + 2
    assert all(r["model"] == "judge" and r["temperature"] == 0 for r in judge_requests)
    # Judge errors are left out of acc, never counted as wrong: MedQA has 6 cases, case 1 is a judge
    # error, and the judge accepts cases 0, 3 and 4 (right, reworded, right): 3 of the 5 graded.
    medqa = results["results"]["medqa_freeform"]
    assert medqa[f"acc,{FILTER}"] == pytest.approx(3 / 5) and medqa[f"judge_error,{FILTER}"] == pytest.approx(1 / 6)
    assert results["results"][GROUP][f"judged,{FILTER}"] == 1.0
    logged = json.dumps([s for task in samples.values() for s in task])
    assert "judge_api_key" not in logged and "EMPTY" not in logged
