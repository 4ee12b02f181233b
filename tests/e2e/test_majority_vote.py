"""Majority-vote tasks end to end through the real `lm_eval` CLI: 32 sampled responses per
question reach the metrics, and every maj@k / pass@k is reported, per task and per group."""

import json
from collections import defaultdict

import pytest

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.evaluation.answers import extract_choice
from lm_eval_medreason.evaluation.tasks import GROUP_MEMBERS, SAMPLING, VOTE_KS, VOTES
from lm_eval_medreason.evaluation.voting import vote_metrics
from lm_eval_medreason.tokens import count_tokens
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import read_results, run_lm_eval

pytestmark = pytest.mark.slow
CURVE = [f"{m}@{k}" for m in ("maj", "pass") for k in VOTE_KS]


def check_vote_samples(samples: list[dict]) -> None:
    """Each question's 32 responses are scored one by one and its curve is vote_metrics of their letters."""
    for sample in samples:
        responses = sample["resps"][0]
        assert len(responses) == VOTES and len(sample["filtered_resps"][0]) == VOTES
        scored = [json.loads(s) for s in sample["filtered_resps"][0]]
        options = {k: v for k, v in sample["doc"]["options"].items() if v is not None}
        votes = [extract_choice(r, options) for r in responses]
        assert [s["choice"] for s in scored] == votes
        expected = vote_metrics(votes, sample["target"])
        for name in CURVE:
            assert sample[name] == pytest.approx(expected[name])
        assert sample["output_tokens"] == pytest.approx(sum(count_tokens(r) for r in responses) / VOTES)
        assert sample["no_answer"] == pytest.approx(sum(v is None for v in votes) / VOTES)


def test_tiny_hf_model_samples_32_responses_per_question(tiny_model, synthetic_data, tmp_path):
    run_lm_eval(
        ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu",
         "--batch_size", "32", "--tasks", "medreason_longmonolog_maj", "--apply_chat_template",
         "--gen_kwargs", "max_gen_toks=6", "--metadata", json.dumps({"data_dir": str(synthetic_data["root"])})],
        tmp_path / "out",
    )
    results, samples = read_results(tmp_path / "out")
    for benchmark in GROUP_MEMBERS:
        task = f"{benchmark}_longmonolog_maj"
        assert [s["doc"]["id"] for s in samples[task]] == synthetic_data["ids"][benchmark]
        check_vote_samples(samples[task])
        assert all(len(set(s["resps"][0])) > 1 for s in samples[task]), "the 32 responses were not sampled"
        generation = samples[task][0]["arguments"]["gen_args_0"]["arg_1"]
        assert generation["do_sample"] is True and {k: generation[k] for k in SAMPLING} == SAMPLING
    for name in [*CURVE, "output_tokens", "no_answer"]:
        for task in [f"{b}_longmonolog_maj" for b in GROUP_MEMBERS] + ["medreason_longmonolog_maj"]:
            assert f"{name},final-answer" in results["results"][task], f"{name} missing for {task}"


def varied_votes(data_root: str):
    """answer(prompt) for the fake server: for each question, request i answers a letter from a fixed
    pattern mixing the gold letter, wrong letters and no answer, so the curves are not trivial."""
    patterns = {"medqa": "GGGWxGGWWG", "medbullets": "GWWxGWGWWx", "jama": "WGWxWGWWxG"}
    plan, seen = {}, defaultdict(int)
    for benchmark, pattern in patterns.items():
        for i, case in enumerate(load_cases(benchmark, {"data_dir": data_root})):
            wrong = [l for l in case["options"] if l != case["answer_idx"]]
            plan[case["question"].strip()] = (pattern[i % 3 :] + pattern[: i % 3], case["answer_idx"], wrong)

    def answer(prompt: str) -> str:
        question = next(q for q in plan if q in prompt)
        pattern, gold, wrong = plan[question]
        n = seen[question]
        seen[question] += 1
        kind = pattern[n % len(pattern)]
        if kind == "x":
            return "Hmm, I am not sure; several options fit."
        letter = gold if kind == "G" else wrong[n % len(wrong)]
        return f"Let me weigh the findings...\n\nThe answer is ({letter})."

    return answer


def test_scripted_votes_give_the_curve_and_the_weighted_group(synthetic_data, tmp_path):
    with fake_chat_server(varied_votes(str(synthetic_data["root"]))) as (url, requests):
        run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=4,max_retries=1,tokenizer_backend=none",
             "--tasks", "medreason_cot_maj", "--metadata", json.dumps({"data_dir": str(synthetic_data["root"])})],
            tmp_path / "out",
        )
    results, samples = read_results(tmp_path / "out")
    questions = sum(len(s) for s in samples.values())
    assert len(requests) == VOTES * questions  # one sampling run: 32 generations per question
    assert all(r["temperature"] == SAMPLING["temperature"] and r["top_p"] == SAMPLING["top_p"] for r in requests)
    sizes = {task: len(s) for task, s in samples.items()}
    for task, task_samples in samples.items():
        check_vote_samples(task_samples)
    curve = results["results"]["medreason_cot_maj"]
    for name in CURVE:
        by_hand = sum(s[name] for task_samples in samples.values() for s in task_samples) / questions
        assert curve[f"{name},final-answer"] == pytest.approx(by_hand)
    assert 0 < curve["maj@1,final-answer"] < curve["maj@32,final-answer"] <= curve["pass@32,final-answer"] == 1.0
    assert len(sizes) == 3
