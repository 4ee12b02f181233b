"""Adaptive voting end to end through the real `lm_eval` CLI: `--model medreason` wrapping
local-chat-completions on `_adaptive` tasks, against a server whose sampled answers follow a fixed sequence per
question (tests.support.vote_server). Every expectation comes from this module's own brute-force Beta rule
(scipy's Beta cdf) on those sequences, never from lm_eval_medreason.evaluation.adaptive."""

import json
import os
import subprocess
import sys

import pytest
from scipy import stats

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.evaluation.adaptive import NOT_DRAWN
from lm_eval_medreason.tokens import count_tokens
from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.synthetic import write_data_dir
from tests.support.vote_server import EASY, HARD, MEDIUM, SPREAD, UNSURE, VoteScript, sample_text, vote_server

pytestmark = pytest.mark.slow
BENCHMARKS = ("jama", "medbullets", "medqa")
PROFILES = (EASY, MEDIUM, HARD, UNSURE, SPREAD)
ROUND = 4
METRICS = ("acc", "samples", "output_tokens", "no_answer")


# --- the rule, by brute force -------------------------------------------------------------------------------


def stop_point(votes: list, threshold: float, round_size: int = ROUND, most: int = 32, runner_up: bool = True) -> int:
    """The first round end at which P(Beta(v1 + 1, v2 + 1) <= 1/2) <= threshold (v1, v2: the two leading letters'
    votes; no answer does not vote), or ``most``. ``runner_up=False`` counts every other vote as v2 instead."""
    for end in [*range(round_size, most, round_size), most]:
        counts = sorted((votes[:end].count(letter) for letter in set(votes[:end]) - {None}), reverse=True) + [0, 0]
        against = counts[1] if runner_up else sum(counts[1:])
        if counts[0] and stats.beta.cdf(0.5, counts[0] + 1, against + 1) <= threshold:
            return end
    return most


def plurality(votes: list, gold: str) -> float:
    counts = {letter: votes.count(letter) for letter in set(votes) - {None}}
    leaders = [letter for letter, c in counts.items() if c == max(counts.values(), default=0)]
    return 1 / len(leaders) if gold in leaders else 0.0


def expected(script: VoteScript, case_id: str, threshold: float) -> dict:
    sequence = script.sequences[case_id]
    n = stop_point(sequence, threshold)
    return {"samples": n, "acc": plurality(sequence[:n], script.cases[case_id]["answer_idx"]),
            "output_tokens": sum(count_tokens(sample_text(k + 1, v), "cl100k_base") for k, v in enumerate(sequence[:n])),
            "no_answer": sequence[:n].count(None) / n}


# --- the runs -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return write_data_dir(tmp_path_factory.mktemp("adaptive") / "data")


@pytest.fixture(scope="module")
def cases(data) -> dict[str, list[dict]]:
    return {b: load_cases(b, {"data_dir": str(data["root"])}) for b in BENCHMARKS}


def new_script(cases) -> VoteScript:
    """Easy, medium, hard, unsure and spread questions in turn (stop points 4 to 32 at the default threshold)."""
    return VoteScript([c for b in BENCHMARKS for c in cases[b]], lambda i, case: PROFILES[i % len(PROFILES)], seed=1)


def model_args(url: str, wrapped: bool, concurrent: int) -> list[str]:
    args = f"model=scripted,base_url={url},num_concurrent={concurrent},max_retries=1,tokenizer_backend=none"
    if wrapped:
        return ["--model", "medreason", "--model_args", f"base=local-chat-completions,{args}"]
    return ["--model", "local-chat-completions", "--model_args", args]


def lm_eval(cases, data, out, tasks: str, wrapped: bool = True, concurrent: int = 4, **settings):
    """One real run against a fresh scripted server: (script, results, samples per task)."""
    script = new_script(cases)
    with vote_server(script) as url:
        run_lm_eval([*model_args(url, wrapped, concurrent), "--apply_chat_template", "--tasks", tasks,
                     "--metadata", json.dumps({"data_dir": str(data["root"]), **settings})], out)
    return (script, *read_results(out))


@pytest.fixture(scope="module")
def wrapped(cases, data, tmp_path_factory):
    """The wrapper on the group medreason_cot_adaptive and, in the same run, the plain task medqa_cot."""
    return lm_eval(cases, data, tmp_path_factory.mktemp("wrapped"), "medreason_cot_adaptive,medqa_cot")


@pytest.fixture(scope="module")
def plain(cases, data, tmp_path_factory):
    """No wrapper: every sample is drawn. One request at a time, so the k-th sample logged is the k-th drawn."""
    return lm_eval(cases, data, tmp_path_factory.mktemp("plain"), "medqa_cot_adaptive,medqa_cot", wrapped=False,
                   concurrent=1)


def adaptive_ids(cases, benchmarks=BENCHMARKS) -> list[str]:
    return [c["id"] for b in benchmarks for c in cases[b]]


# --- the wrapper --------------------------------------------------------------------------------------------


def test_each_question_gets_requests_up_to_its_stop_point_and_none_after(wrapped, cases):
    script, _, _ = wrapped
    ids = adaptive_ids(cases)
    stops = {i: stop_point(script.sequences[i], 0.05) for i in ids}
    assert {4, 32} < set(stops.values()) and len(set(stops.values())) >= 4  # easy and hard questions both there
    # and some stop only because the third letter's votes do not count against the leader
    assert any(stop_point(script.sequences[i], 0.05, runner_up=False) > stops[i] for i in ids)
    assert {i: script.sampled[i] for i in ids} == stops
    assert sum(script.sampled.values()) / len(ids) < 32


def test_each_round_is_one_batch_of_every_undecided_question(wrapped, cases):
    """Round r + 1 starts only when round r is back: the samples arrive in round order across all questions."""
    script, _, _ = wrapped
    rounds = [(k - 1) // ROUND for _, k in script.arrivals]
    assert rounds == sorted(rounds) and max(rounds) == 32 // ROUND - 1


def test_logged_metrics_are_the_rule_on_the_scripted_sequences(wrapped, cases):
    script, results, samples = wrapped
    for benchmark in BENCHMARKS:
        task = f"{benchmark}_cot_adaptive"
        assert [s["doc"]["id"] for s in samples[task]] == [c["id"] for c in cases[benchmark]]
        for sample in samples[task]:
            want = expected(script, sample["doc"]["id"], 0.05)
            for metric in METRICS:
                assert sample[metric] == pytest.approx(want[metric]), (task, sample["doc"]["id"], metric)
            n, sequence = want["samples"], script.sequences[sample["doc"]["id"]]
            responses = sample["resps"][0]
            assert responses[n:] == [NOT_DRAWN] * (32 - n)
            for start in range(0, n, ROUND):  # within a round the concurrent requests may come back in any order
                assert sorted(responses[start:start + ROUND]) == sorted(
                    sample_text(k + 1, sequence[k]) for k in range(start, start + ROUND))
        for metric in METRICS:
            by_hand = sum(s[metric] for s in samples[task]) / len(samples[task])
            assert results["results"][task][f"{metric},final-answer"] == pytest.approx(by_hand)


def test_the_group_reports_every_metric_over_all_questions(wrapped, cases):
    script, results, _ = wrapped
    group = results["results"]["medreason_cot_adaptive"]
    wants = [expected(script, i, 0.05) for i in adaptive_ids(cases)]
    for metric in METRICS:
        assert group[f"{metric},final-answer"] == pytest.approx(sum(w[metric] for w in wants) / len(wants)), metric
    assert 0 < group["acc,final-answer"] < 1 and 0 < group["no_answer,final-answer"]


def test_a_lower_threshold_draws_more(cases, data, tmp_path):
    script, results, samples = lm_eval(cases, data, tmp_path / "out", "medqa_cot_adaptive", adaptive_threshold=0.01)
    ids = adaptive_ids(cases, ["medqa"])
    stops = {i: stop_point(script.sequences[i], 0.01) for i in ids}
    assert {i: script.sampled[i] for i in ids} == stops
    assert sum(stops.values()) > sum(stop_point(script.sequences[i], 0.05) for i in ids)
    assert samples["medqa_cot_adaptive"][0]["doc"]["medreason_scaling"]["threshold"] == 0.01
    for sample in samples["medqa_cot_adaptive"]:
        want = expected(script, sample["doc"]["id"], 0.01)
        assert {m: sample[m] for m in METRICS} == pytest.approx(want)


# --- without the wrapper, and tasks the wrapper passes through ------------------------------------------------


def test_a_plain_backend_draws_all_32_and_scores_like_the_wrapper(plain, wrapped, cases):
    script, results, samples = plain
    ids = adaptive_ids(cases, ["medqa"])
    assert {i: script.sampled[i] for i in ids} == {i: 32 for i in ids}
    wrapped_samples = {s["doc"]["id"]: s for s in wrapped[2]["medqa_cot_adaptive"]}
    for sample in samples["medqa_cot_adaptive"]:
        assert sample["resps"][0] == [sample_text(k + 1, v) for k, v in enumerate(script.sequences[sample["doc"]["id"]])]
        want = expected(script, sample["doc"]["id"], 0.05)
        assert {m: sample[m] for m in METRICS} == pytest.approx(want)
        assert {m: sample[m] for m in METRICS} == {m: wrapped_samples[sample["doc"]["id"]][m] for m in METRICS}
    for metric in METRICS:
        assert results["results"]["medqa_cot_adaptive"][f"{metric},final-answer"] == pytest.approx(
            wrapped[1]["results"]["medqa_cot_adaptive"][f"{metric},final-answer"])


def test_a_plain_task_in_the_same_run_passes_through_unchanged(wrapped, plain, cases):
    script, results, samples = wrapped
    ids = adaptive_ids(cases, ["medqa"])
    assert script.greedy_requests == {i: 1 for i in ids}
    by_hand = sum(script.greedy[c["id"]] == c["answer_idx"] for c in cases["medqa"]) / len(ids)
    assert 0 < by_hand < 1
    for run in (wrapped, plain):
        assert run[1]["results"]["medqa_cot"]["acc,final-answer"] == pytest.approx(by_hand)
    assert [s["resps"] for s in samples["medqa_cot"]] == [s["resps"] for s in plain[2]["medqa_cot"]]


def refused_run(cases, data, tmp_path, *args: str, **settings) -> str:
    """A wrapper run of medqa_cot_adaptive that must stop before any request: its last stderr line."""
    script = new_script(cases)
    with vote_server(script) as url:
        command = [sys.executable, "-m", "lm_eval", "run", *model_args(url, True, 1), "--apply_chat_template",
                   "--tasks", "medqa_cot_adaptive", "--output_path", str(tmp_path / "out"), *args,
                   "--metadata", json.dumps({"data_dir": str(data["root"]), **settings})]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode != 0, result.stdout[-2000:]
    assert script.received == 0
    return result.stderr.strip().splitlines()[-1]


def test_a_bad_threshold_stops_lm_eval_before_any_request(cases, data, tmp_path):
    last = refused_run(cases, data, tmp_path, adaptive_threshold=1.5)
    assert "adaptive_threshold" in last and "1.5" in last, last


@pytest.mark.parametrize("gen_kwargs", ["do_sample=false", "temperature=0"])
def test_greedy_decoding_stops_the_wrapper_before_any_request(cases, data, tmp_path, gen_kwargs):
    """Greedy samples are all alike, and lm-eval's --use_cache (which keeps greedy responses) would hand the slots
    of a stopped question, never drawn, back to a later run as if they were its samples."""
    last = refused_run(cases, data, tmp_path, "--gen_kwargs", gen_kwargs)
    assert "vote over sampled responses" in last and "medqa_cot_adaptive" in last and "--gen_kwargs" in last, last
