"""`medreason report` on folders written by real `lm_eval` runs (a scripted OpenAI-compatible server),
checked against hand computations from the logged samples and lm-eval's own group results."""

import csv
import json
import shutil
import struct
import subprocess
import sys
from math import comb
from pathlib import Path

import pytest

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.resources import tasks_dir
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import run_lm_eval
from tests.support.synthetic import write_data_dir
from tests.support.report_runs import (FIGURES, HAS_MAJ, MEDREASON, MODELS, STRATEGIES, STUDY, group_result, mean, png_size, read_csv, report, samples,
                                       lookup, cases_by_question, scripted, voting, wrong_letter)  # noqa: F401

pytestmark = pytest.mark.slow
def test_table1_equals_samples_and_lm_eval_group_acc(out, reported):
    rep, stdout = reported
    for name in ("table1.md", "table1.csv", "comparisons.md", "comparisons.csv", "breakdowns.md", "breakdowns.csv", *FIGURES):
        assert f"wrote {name}: {rep / name}" in stdout
    table = {(r["model"], r["strategy"]): r for r in read_csv(rep / "table1.csv")}
    expected_rows = {(m, s) for m in MODELS for s in STRATEGIES} | ({("alpha", "cot maj@32")} if HAS_MAJ else set())
    assert set(table) == expected_rows
    markdown = (rep / "table1.md").read_text()
    for model in MODELS:
        for strategy in STRATEGIES:
            row = table[(model, strategy)]
            pooled, n_total = 0.0, 0
            for benchmark in STUDY:
                logged = samples(out, model, f"{benchmark}_{strategy}")
                acc = mean(s["acc"] for s in logged)
                assert float(row[f"{benchmark}_acc"]) == pytest.approx(100 * acc, abs=1e-3)
                assert float(row[f"{benchmark}_tokens"]) == pytest.approx(mean(s["output_tokens"] for s in logged), abs=0.01)
                assert int(row[f"{benchmark}_n"]) == len(logged)
                assert float(row[f"{benchmark}_acc_lo"]) <= 100 * acc <= float(row[f"{benchmark}_acc_hi"])
                pooled += sum(s["acc"] for s in logged)
                n_total += len(logged)
            assert float(row["mean_acc"]) == pytest.approx(100 * pooled / n_total, abs=1e-3)
            group = group_result(out, model, f"medreason_{strategy}", "acc")
            assert float(row["mean_acc"]) == pytest.approx(100 * group, abs=1e-3)
            assert float(row["mean_acc_lo"]) <= float(row["mean_acc"]) <= float(row["mean_acc_hi"])
            cell = f"{float(row['mean_acc']):.1f} [{float(row['mean_acc_lo']):.1f}, {float(row['mean_acc_hi']):.1f}]"
            assert f"| {model} | {strategy} | {cell} |" in markdown
    assert table[("alpha", "cot")]["mean_acc"] != table[("beta", "cot")]["mean_acc"]
    assert float(table[("alpha", "longmonolog")]["medqa_tokens"]) > float(table[("alpha", "cot")]["medqa_tokens"])
    if HAS_MAJ:
        row = table[("alpha", "cot maj@32")]
        logged = {b: samples(out, "alpha", f"{b}_cot_maj") for b in STUDY}
        pooled = mean(s["maj@32"] for b in STUDY for s in logged[b])
        assert float(row["mean_acc"]) == pytest.approx(100 * pooled, abs=1e-3)
        assert float(row["mean_acc"]) == pytest.approx(100 * group_result(out, "alpha", "medreason_cot_maj", "maj@32"), abs=1e-3)
        assert float(row["medqa_tokens"]) == pytest.approx(mean(s["output_tokens"] for s in logged["medqa"]), abs=0.01)


def test_figures_are_pngs_of_the_documented_size(reported):
    rep, _ = reported
    for name in FIGURES:
        assert png_size(rep / name) == (800, 500)


@pytest.mark.skipif(not HAS_MAJ, reason="no *_maj tasks in this checkout yet (tasks/*/*_maj.yaml)")
def test_figure3_curve_equals_hand_computation(out):
    from lm_eval_medreason.reporting.figures import figure3_data
    from lm_eval_medreason.reporting.logs import load_runs
    from lm_eval_medreason.reporting.report import build_rows

    rows, _ = build_rows(load_runs([out]))
    points = figure3_data(rows)
    curve = sorted((p for p in points if p["model"] == "alpha" and p["k"]), key=lambda p: p["k"])
    logged = [s for b in STUDY for s in samples(out, "alpha", f"{b}_cot_maj")]
    tokens = mean(s["output_tokens"] for s in logged)
    assert [p["k"] for p in curve] == [1, 2, 4, 8, 16, 32]
    for p in curve:
        assert p["strategy"] == "cot maj"
        assert p["tokens"] == pytest.approx(p["k"] * tokens)
        assert p["acc"] == pytest.approx(mean(s[f"maj@{p['k']}"] for s in logged))
        assert p["acc"] == pytest.approx(group_result(out, "alpha", "medreason_cot_maj", f"maj@{p['k']}"))
    assert len({round(p["acc"], 6) for p in curve}) > 2  # the scripted votes make a real curve
    singles = {(p["model"], p["strategy"]): p for p in points if p["k"] is None}
    assert set(singles) == {(m, s) for m in MODELS for s in STRATEGIES}
    beta = [s for b in STUDY for s in samples(out, "beta", f"{b}_longmonolog")]
    assert singles[("beta", "longmonolog")]["acc"] == pytest.approx(mean(s["acc"] for s in beta))
    assert singles[("beta", "longmonolog")]["tokens"] == pytest.approx(mean(s["output_tokens"] for s in beta))


def by_id(logged: list[dict], metric: str = "acc") -> dict[str, float]:
    return {s["doc"]["id"]: s[metric] for s in logged}


def test_compare_two_models_mcnemar_by_hand(out, tmp_path):
    rep = tmp_path / "rep"
    report(out / "alpha", out / "beta", "--output", rep, "--compare", "alpha/cot", "beta/cot")
    rows = {r["benchmark"]: r for r in read_csv(rep / "comparisons.csv")}
    assert set(rows) == {*STUDY, "pooled"}
    a_total = b_total = n_total = 0
    for benchmark in STUDY:
        a = by_id(samples(out, "alpha", f"{benchmark}_cot"))
        b = by_id(samples(out, "beta", f"{benchmark}_cot"))
        a_only = sum(a[i] == 1 and b[i] == 0 for i in a)
        b_only = sum(a[i] == 0 and b[i] == 1 for i in a)
        n = a_only + b_only
        p = min(1.0, 2 * sum(comb(n, j) for j in range(min(a_only, b_only) + 1)) / 2**n) if n else 1.0
        row = rows[benchmark]
        assert (row["a"], row["b"], int(row["n"])) == ("alpha/cot", "beta/cot", len(a))
        assert (int(row["a_only"]), int(row["b_only"])) == (a_only, b_only)
        assert float(row["mcnemar_p"]) == pytest.approx(p)
        diff = 100 * (mean(a.values()) - mean(b.values()))
        assert float(row["diff"]) == pytest.approx(diff, abs=1e-3)
        assert float(row["diff_lo"]) <= diff <= float(row["diff_hi"])
        a_total, b_total, n_total = a_total + a_only, b_total + b_only, n_total + len(a)
    assert (int(rows["pooled"]["a_only"]), int(rows["pooled"]["b_only"]), int(rows["pooled"]["n"])) == (a_total, b_total, n_total)
    assert "| alpha/cot | beta/cot | medqa |" in (rep / "comparisons.md").read_text()


def test_default_comparisons_pair_same_model_or_same_strategy(reported):
    rep, _ = reported
    pairs = {(r["a"], r["b"]) for r in read_csv(rep / "comparisons.csv")}
    expected = {("alpha/cot", "alpha/longmonolog"), ("alpha/cot", "beta/cot"),
                ("alpha/longmonolog", "beta/longmonolog"), ("beta/cot", "beta/longmonolog")}
    if HAS_MAJ:
        expected |= {("alpha/cot", "alpha/cot maj@32"), ("alpha/cot maj@32", "alpha/longmonolog")}  # rows in Table 1 order
    assert pairs == expected


def test_breakdowns_by_step_and_field(out, reported):
    rep, _ = reported
    rows = read_csv(rep / "breakdowns.csv")
    logged = samples(out, "beta", "medqa_longmonolog")
    for step in ("step1", "step2&3"):
        mine = [s["acc"] for s in logged if s["doc"]["meta"]["step"] == step]
        (row,) = [r for r in rows if (r["model"], r["strategy"], r["benchmark"], r["group"]) == ("beta", "longmonolog", "medqa", step)]
        assert row["by"] == "step" and int(row["n"]) == len(mine)
        assert float(row["acc"]) == pytest.approx(100 * mean(mine), abs=1e-3)
    logged = samples(out, "alpha", "jama_cot")
    fields = {s["doc"]["meta"]["field"] or "(unknown)" for s in logged}
    jama = [r for r in rows if (r["model"], r["strategy"], r["benchmark"]) == ("alpha", "cot", "jama")]
    assert {r["group"] for r in jama} == fields and all(r["by"] == "field" for r in jama)
    assert sum(int(r["n"]) for r in jama) == len(logged)
    assert not [r for r in rows if r["benchmark"] == "medbullets"]


def test_model_subfolders_and_whole_output_give_the_same_table(out, reported, tmp_path):
    rep, _ = reported
    report(out / "beta", out / "alpha", out, "--output", tmp_path / "again")
    assert (tmp_path / "again" / "table1.csv").read_text() == (rep / "table1.csv").read_text()


def one_line_error(result, *needles):
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medreason: error: "), result.stderr
    for needle in needles:
        assert str(needle) in lines[0]


def test_folder_without_lm_eval_results_exits_1_naming_it(tmp_path):
    folder = tmp_path / "not-results"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    one_line_error(report(folder, "--output", tmp_path / "rep", check=False), folder, "results_*.json")
    assert not (tmp_path / "rep").exists()


def copy_run(out: Path, model: str, dest: Path, task_filter=lambda name: True) -> Path:
    dest.mkdir(parents=True)
    (results,) = [p for p in (out / model).glob("results_*.json")
                  if "medreason_cot" in json.loads(p.read_text())["results"]]
    stamp = results.stem[len("results_"):]
    for path in (out / model).glob(f"*{stamp}*"):
        if path.name.startswith("results_") or task_filter(path.name):
            shutil.copy(path, dest / path.name)
    return dest / results.name


def test_broken_inputs_exit_1_naming_the_file(out, tmp_path):
    results = copy_run(out, "alpha", tmp_path / "bad-json")
    results.write_text(results.read_text()[:100])
    one_line_error(report(tmp_path / "bad-json", "--output", tmp_path / "rep", check=False), results, "JSON")

    results = copy_run(out, "alpha", tmp_path / "no-samples", lambda name: "medqa_cot" not in name)
    one_line_error(report(tmp_path / "no-samples", "--output", tmp_path / "rep", check=False), results,
                   "medqa_cot", "--log_samples")

    results = copy_run(out, "alpha", tmp_path / "truncated")
    (log,) = results.parent.glob("samples_jama_cot_*.jsonl")
    log.write_text("".join(log.read_text().splitlines(True)[:-1]))
    one_line_error(report(tmp_path / "truncated", "--output", tmp_path / "rep", check=False), log, "truncated")


def test_compare_errors(out, tmp_path):
    one_line_error(report(out, "--output", tmp_path / "rep", "--compare", "alpha/cot", "gamma/cot", check=False),
                   "gamma/cot", "alpha/longmonolog")
    # beta's run as if it had been on other questions: same files, every question id changed
    other = tmp_path / "other"
    copy_run(out, "beta", other)
    for log in other.glob("samples_*.jsonl"):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        for sample in lines:
            sample["doc"]["id"] = "other-" + sample["doc"]["id"]
        log.write_text("".join(json.dumps(s) + "\n" for s in lines))
    one_line_error(report(out / "alpha", other, "--output", tmp_path / "rep", "--compare", "alpha/cot", "beta/cot",
                          check=False), "alpha/cot", "beta/cot", "share no question ids")


def test_unknown_tasks_are_ignored_and_missing_benchmarks_left_blank(out, tmp_path):
    """A run with only MedQA and a task that is not ours: a note, a row with blank JAMA/Medbullets/mean cells."""
    results = copy_run(out, "beta", tmp_path / "partial", lambda name: "medqa_cot_" in name)
    content = json.loads(results.read_text())
    content["results"] = {"medqa_cot": content["results"]["medqa_cot"], "arc_easy": {"acc,none": 0.5}}
    content["group_subtasks"] = {}
    results.write_text(json.dumps(content))
    result = report(tmp_path / "partial", "--output", tmp_path / "rep")
    assert "note: ignored task arc_easy" in result.stdout
    assert "note: figure2_mean_accuracy_by_strategy.png: over MedQA only" in result.stdout  # the benchmark present
    (row,) = read_csv(tmp_path / "rep" / "table1.csv")
    assert row["mean_acc"] == "" and row["jama_acc"] == "" and row["medqa_acc"] != ""
    assert png_size(tmp_path / "rep" / "figure5_per_benchmark.png") == (800, 500)


def test_freeform_judge_errors_and_judge_matcher_agreement(out, tmp_path):
    """A free-form log in the harness's format (derived from a real one): a judge error leaves `acc` out of the
    sample (or logs it null) and is left out of accuracy; answers the judge graded give the agreement line."""
    results = copy_run(out, "alpha", tmp_path / "ff", lambda name: "medqa_cot_" in name)
    content = json.loads(results.read_text())
    content["results"] = {"medqa_freeform": {"acc,graded": 0.0}}
    content["group_subtasks"], content["n-samples"] = {}, {}
    results.write_text(json.dumps(content))
    (log,) = results.parent.glob("samples_medqa_cot_*.jsonl")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    judge_pairs = []
    for i, sample in enumerate(lines):
        answer = None if i == 5 else f"diagnosis {i}"
        correct = None if i in (0, 1) else (bool(i % 2) if answer else False)  # 0, 1: judge errors
        matcher = bool(i % 2) if i % 3 else not i % 2
        grader = "matcher" if i == 4 else "judge:gpt-4o"
        metrics = {"output_tokens": sample["output_tokens"], "no_answer": float(answer is None),
                   "judge_error": float(correct is None), "judged": float(grader != "matcher")}
        if correct is not None:
            metrics["acc"] = float(correct)
        elif i == 1:
            metrics["acc"] = None  # the other way a log may carry a missing grade
        for key in ("acc", "no_answer", "output_tokens"):
            sample.pop(key, None)
        sample.update(filter="graded", metrics=list(metrics), **metrics)
        sample["filtered_resps"] = [json.dumps({"answer": answer, "output_tokens": 9, "grader": grader, "correct": correct,
                                                "matcher_correct": matcher, "judge_error": correct is None})]
        if grader.startswith("judge") and correct is not None and answer is not None:
            judge_pairs.append((correct, matcher))
    log.unlink()
    log.with_name(log.name.replace("medqa_cot", "medqa_freeform")).write_text("".join(json.dumps(s) + "\n" for s in lines))
    result = report(tmp_path / "ff", "--output", tmp_path / "rep")
    assert "wrote freeform_agreement.md" in result.stdout
    (row,) = read_csv(tmp_path / "rep" / "table1.csv")
    graded = [s["acc"] for s in lines if s.get("acc") is not None]
    assert row["strategy"] == "freeform" and int(row["medqa_n"]) == len(graded) == len(lines) - 2
    assert float(row["medqa_acc"]) == pytest.approx(100 * mean(graded), abs=1e-3)
    agreement = (tmp_path / "rep" / "freeform_agreement.md").read_text()
    assert f"agreement {100 * mean(j == m for j, m in judge_pairs):.1f}% on {len(judge_pairs)} judged answers" in agreement


@pytest.mark.skipif(not any(tasks_dir().glob("*/*_freeform.yaml")), reason="no *_freeform tasks in this checkout yet")
def test_freeform_run_through_lm_eval(tmp_path):
    """A real medreason_freeform run graded by the matcher: the freeform row equals the logged samples."""
    data = write_data_dir(tmp_path / "data", n=8)
    cases = cases_by_question(data)

    def answer(prompt: str) -> str:
        i, case = lookup(cases, prompt)
        return f"Final answer: {case['answer'] if i % 2 == 0 else 'Sarcoidosis of the left ventricle'}"

    out = tmp_path / "out"
    with fake_chat_server(answer) as (url, _):
        run_lm_eval(["--model", "local-chat-completions", "--apply_chat_template", "--model_args",
                     f"model=free,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
                     "--tasks", "medreason_freeform", "--metadata", json.dumps({"data_dir": str(data["root"])})], out)
    result = report(out, "--output", tmp_path / "rep")
    assert "freeform_agreement.md" not in result.stdout  # matcher only: nothing to agree with
    (row,) = read_csv(tmp_path / "rep" / "table1.csv")
    assert (row["model"], row["strategy"]) == ("free", "freeform")
    logged = {b: [s for s in samples(out, "free", f"{b}_freeform")] for b in STUDY}
    for benchmark in STUDY:
        graded = [s["acc"] for s in logged[benchmark] if s.get("acc") is not None]
        assert float(row[f"{benchmark}_acc"]) == pytest.approx(100 * mean(graded), abs=1e-3)
    pooled = [s["acc"] for b in STUDY for s in logged[b] if s.get("acc") is not None]
    assert 0 < float(row["mean_acc"]) == pytest.approx(100 * mean(pooled), abs=1e-3)
    (results_file,) = (out / "free").glob("results_*.json")
    group = json.loads(results_file.read_text())["results"]["medreason_freeform"]
    assert float(row["mean_acc"]) == pytest.approx(100 * group["acc,graded"], abs=1e-3)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--bootstrap", "0"), ("--bootstrap", "-5"), ("--bootstrap", "2.5"), ("--bootstrap", "many"),
     ("--seed", "-1"), ("--seed", "0.5")],
)
def test_nonsense_numbers_are_one_line_errors_before_anything_is_read(option, value, tmp_path, capsys):
    """At parse time: the results folder (absent here) is never looked at, nothing is written."""
    from lm_eval_medreason import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["report", str(tmp_path / "absent"), "--output", str(tmp_path / "rep"), option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"medreason report: error: argument {option}: ") and value in err
    assert not (tmp_path / "rep").exists()


def test_make_report_refuses_bootstrap_settings_before_reading(tmp_path):
    from lm_eval_medreason.errors import ReportError
    from lm_eval_medreason.reporting.report import make_report

    with pytest.raises(ReportError, match=r"^bootstrap settings: n_resamples must be a whole number of at least 1, "
                                          r"got 0$"):
        make_report([tmp_path / "absent"], tmp_path / "rep", n_resamples=0)
    with pytest.raises(ReportError, match=r"^bootstrap settings: expected non-negative integer$"):
        make_report([tmp_path / "absent"], tmp_path / "rep", seed=-1)
    assert not (tmp_path / "rep").exists()


def test_model_name_from_model_args():
    from lm_eval_medreason.reporting.logs import model_name

    folder = Path("/out/some__folder")
    assert model_name({"config": {"model_args": {"pretrained": "Qwen/Qwen2.5-7B-Instruct", "dtype": "bf16"}}}, folder) == "Qwen/Qwen2.5-7B-Instruct"
    assert model_name({"config": {"model_args": "pretrained=Qwen/Q,peft=runs/adapter,dtype=bf16"}}, folder) == "Qwen/Q+runs/adapter"
    assert model_name({"config": {"model_args": {"model": "gpt-4o", "base_url": "http://x"}}}, folder) == "gpt-4o"
    assert model_name({"model_name": "from-lm-eval"}, folder) == "from-lm-eval"
    assert model_name({}, folder) == "some__folder"


def test_sample_lines_are_read_without_their_responses_but_exactly():
    """The fast path (cutting out `arguments` and `resps`) gives what a full parse gives, even when a response
    quotes the key names and the doc has a nested key called `arguments`."""
    from lm_eval_medreason.reporting.logs import _parse_sample

    tricky = 'text with , "filtered_resps": [] and , "arguments": {} and \\"quotes\\" inside'
    for doc in ({"id": "1", "meta": {"step": "step1"}}, {"id": "2", "meta": {"field": "Neurology", "arguments": {"x": 1}}}):
        sample = {"doc_id": 0, "doc": doc, "target": "A", "arguments": {"gen_args_0": {"arg_0": tricky}},
                  "resps": [[tricky, "The answer is (A)."]], "filtered_resps": ['{"choice": "A"}'], "filter": "final-answer",
                  "metrics": ["acc"], "acc": 1.0}
        line = json.dumps(sample).encode()
        parsed = _parse_sample(line, 0, len(line), ("doc", "filter"))
        full = json.loads(line)
        assert {k: v for k, v in parsed.items() if k not in ("arguments", "resps")} == \
               {k: v for k, v in full.items() if k not in ("arguments", "resps")}
