"""`medreason report` and `medreason audit` on the scaling tasks, from real `lm_eval` runs (see
tests.support.report_runs.make_scaling_runs): _maj and _adaptive on a server that answers by fixed vote patterns,
_budget (and a plain medqa_cot) on the tiny model. The scaling figure's points and tooltips are checked against
the sample logs and lm-eval's results, the adaptive-voting replay against an exact computation over every order."""

import html
import json
import re
import shutil
import subprocess
from functools import lru_cache
from itertools import product
from math import comb, sqrt
from pathlib import Path

import pytest
from scipy.stats import beta

from lm_eval_medreason.evaluation.adaptive import NOT_DRAWN
from tests.support.report_runs import (BUDGETS, CHROMIUM, MEDREASON, SCALING_BENCHMARKS, make_scaling_runs, mean,
                                       page_dom, png_size, read_csv, report)

pytestmark = pytest.mark.slow
THRESHOLDS = (0.2, 0.1, 0.05, 0.01, 0.001)
KS = (1, 2, 4, 8, 16, 32)
TITLES = {"medbullets": "Medbullets", "medqa": "MedQA"}
FIGURE = "figure3b_scaling_curves.png"


@pytest.fixture(scope="module")
def out(tmp_path_factory, tiny_model) -> Path:
    return make_scaling_runs(tmp_path_factory.mktemp("scaling"), tiny_model)


@pytest.fixture(scope="module")
def reported(out, tmp_path_factory) -> tuple[Path, str]:
    rep = tmp_path_factory.mktemp("rep") / "report"
    return rep, report(out, "--output", rep).stdout


def tiny_name(out: Path) -> str:
    """The tiny model's name in the report: its folder (model_args pretrained)."""
    (results,) = (p for p in out.glob("*/results_*.json") if "medqa_cot_budget" in json.loads(p.read_text())["results"])
    return json.loads(results.read_text())["config"]["model_args"]["pretrained"]


def logged(out: Path, task: str) -> list[dict]:
    (path,) = out.glob(f"*/samples_{task}_2*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def aggregated(out: Path, task: str) -> dict:
    for path in out.glob("*/results_*.json"):
        results = json.loads(path.read_text())["results"]
        if task in results:
            return {key.split(",")[0]: value for key, value in results[task].items()}
    raise AssertionError(f"{task} not in any results file")


def expected_points(out: Path) -> dict[tuple, tuple[float, float]]:
    """(model, label, benchmark) -> (tokens per question, accuracy) from the sample logs, by hand."""
    tiny = tiny_name(out)
    points = {}
    for b in SCALING_BENCHMARKS:
        votes = logged(out, f"{b}_cot_maj")
        per_response = mean(s["output_tokens"] for s in votes)
        for k in KS:
            points[("gamma", f"maj@{k}", b)] = (k * per_response, mean(s[f"maj@{k}"] for s in votes))
        adaptive = logged(out, f"{b}_cot_adaptive")
        samples = mean(s["samples"] for s in adaptive)
        points[("gamma", f"adaptive ({samples:.1f} samples)", b)] = (mean(s["output_tokens"] for s in adaptive),
                                                                      mean(s["acc"] for s in adaptive))
    budget = logged(out, "medqa_cot_budget")
    for b in BUDGETS:
        points[(tiny, f"budget {b}", "medqa")] = (mean(s[f"tokens@{b}"] for s in budget), mean(s[f"acc@{b}"] for s in budget))
    points[(tiny, "full budget", "medqa")] = (mean(s["output_tokens"] for s in budget), mean(s["acc"] for s in budget))
    return points


def test_scaling_runs_are_not_rows_of_table1_nor_compared(out, reported):
    rep, stdout = reported
    tiny = tiny_name(out)
    for name in ("table1.csv", "adaptive_replay.md", "adaptive_replay.csv", FIGURE, "index.html"):
        assert f"wrote {name}: {rep / name}" in stdout
    assert "ignored task" not in stdout
    table = {(r["model"], r["strategy"]): r for r in read_csv(rep / "table1.csv")}
    assert set(table) == {(tiny, "cot"), ("gamma", "cot maj@32")}
    plain = logged(out, "medqa_cot")
    assert float(table[(tiny, "cot")]["medqa_acc"]) == pytest.approx(100 * mean(s["acc"] for s in plain), abs=1e-3)
    assert int(table[(tiny, "cot")]["medqa_n"]) == len(plain)
    # the response browser lists Table 1's tasks only: the budget run did not take the plain run's place
    meta = json.loads(re.search(r'<script type="application/json" id="meta">(.*?)</script>',
                                (rep / "index.html").read_text()).group(1))
    assert {t["key"] for t in meta["tasks"]} == {f"{tiny}:medqa_cot", "gamma:medbullets_cot_maj", "gamma:medqa_cot_maj"}
    refused = report(out, "--output", rep.parent / "compare", "--compare", f"{tiny}/cot budget", f"{tiny}/cot", check=False)
    assert refused.returncode == 1 and f"no row '{tiny}/cot budget'" in refused.stderr


def test_a_report_of_scaling_runs_alone(out, tmp_path):
    """Only the _adaptive run: no Table 1 row, a note saying why, the scaling figure, a page without a browser."""
    (results,) = (p for p in out.glob("gamma/results_*.json") if "medqa_cot_adaptive" in json.loads(p.read_text())["results"])
    alone = tmp_path / "alone" / "gamma"
    alone.mkdir(parents=True)
    for path in out.glob(f"gamma/*{results.stem.removeprefix('results_')}*"):
        shutil.copy(path, alone)
    stdout = report(alone.parent, "--output", tmp_path / "rep").stdout
    assert "note: Table 1 has no rows: these results hold only _adaptive and _budget tasks" in stdout
    assert read_csv(tmp_path / "rep" / "table1.csv") == []
    assert f"wrote {FIGURE}" in stdout and "adaptive_replay" not in stdout
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "<script" not in page and page.count("<svg") == 1


def test_scaling_points_equal_the_sample_logs_and_lm_eval_results(out):
    from lm_eval_medreason.reporting.logs import load_runs
    from lm_eval_medreason.reporting.report import build_rows, scaling_rows
    from lm_eval_medreason.reporting.scaling import point_label, points

    runs = load_runs([out])
    rows, _ = build_rows(runs)
    scaled, _ = scaling_rows(runs)
    drawn = {(p["model"], point_label(p), p["benchmark"]): (p["tokens"], p["acc"]) for p in points(rows, scaled)}
    expected = expected_points(out)
    assert set(drawn) == set(expected)  # no plain run among them, every budget and k present
    for key, (tokens, acc) in expected.items():
        assert drawn[key] == pytest.approx((tokens, acc), abs=1e-9), key
    results = aggregated(out, "medqa_cot_budget")
    tiny = tiny_name(out)
    for b in BUDGETS:
        assert drawn[(tiny, f"budget {b}", "medqa")] == pytest.approx((results[f"tokens@{b}"], results[f"acc@{b}"]))
    adaptive = aggregated(out, "medqa_cot_adaptive")
    (key,) = (k for k in drawn if k[0] == "gamma" and k[1].startswith("adaptive") and k[2] == "medqa")
    assert drawn[key] == pytest.approx((adaptive["output_tokens"], adaptive["acc"]))
    assert 4 <= adaptive["samples"] < 32  # the scripted patterns stop some questions early


_TITLE = re.compile(r"^(?P<model>.+) · cot (?P<label>.+) · (?P<bench>\w+): (?P<acc>[\d.]+)% at (?P<tokens>\d+) tokens$")


def test_the_page_names_every_point_of_the_scaling_figure(out, reported):
    rep, _ = reported
    assert png_size(rep / FIGURE) == (800, 500)
    page = (rep / "index.html").read_text()
    block = page[page.index('<figure id="fig-figure3b">'):]
    block = block[:block.index("</figure>")]
    assert "One panel per benchmark with an _adaptive or _budget run" in block
    titles = [_TITLE.match(html.unescape(t)) for t in re.findall(r"<title>(.*?)</title>", block)]
    assert all(titles)
    shown = {(t["model"], t["label"], {v: k for k, v in TITLES.items()}[t["bench"]]): (float(t["tokens"]), float(t["acc"]))
             for t in titles}
    assert len(shown) == len(titles)
    expected = expected_points(out)
    assert set(shown) == set(expected)
    for key, (tokens, acc) in expected.items():
        assert shown[key][0] == pytest.approx(tokens, abs=0.5 + 1e-6)
        assert shown[key][1] == pytest.approx(100 * acc, abs=0.05 + 1e-6)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: install Debian's chromium (apt-get install chromium; "
                                            ".ci/run does)")
def test_the_page_renders_the_scaling_figure_and_the_replay_table_in_chromium(out, reported):
    rep, _ = reported
    text = page_dom(rep / "index.html", "#task=gamma:medqa_cot_maj")
    figure = text[text.index('<figure id="fig-figure3b">'):]
    assert figure[:figure.index("</figure>")].count('class="point"') == len(expected_points(out))
    replay = text[text.index('<section id="replay">'):]
    replay = replay[:replay.index("</section>")]
    assert [html.unescape(b) for b in re.findall(r"<tr><td>gamma</td><td>cot maj@32</td>\s*<td>(.*?)</td>", replay)] == [
        '<a class="task-link" href="#task=gamma%3Amedbullets_cot_maj">Medbullets</a>',
        '<a class="task-link" href="#task=gamma%3Amedqa_cot_maj">MedQA</a>', "pooled"]
    assert '<a href="#replay">Adaptive replay</a>' in text


# ---- the adaptive replay, computed exactly: every order of the votes, round by round ----------------------------


def changes(v1: int, v2: int) -> float:
    """P(p1 <= p2) with p1 / (p1 + p2) ~ Beta(v1 + 1, v2 + 1): Adaptive-Consistency's chance that the leader loses."""
    return float(beta.cdf(0.5, v1 + 1, v2 + 1))


def vote(drawn: dict, gold) -> float:
    answered = {k: v for k, v in drawn.items() if k is not None and v}
    if not answered:
        return 0.0
    top = max(answered.values())
    leaders = [k for k, v in answered.items() if v == top]
    return 1 / len(leaders) if gold in leaders else 0.0


def exact_replay(votes: tuple, gold, threshold: float, round_size: int = 4) -> tuple[float, float, float, float]:
    """Expected samples and accuracy of the rule over all orders of ``votes`` (each equally likely), and their
    standard deviations: round by round, the next round's draw from what is left is multivariate hypergeometric."""
    labels = sorted(set(votes), key=str)
    total = {label: votes.count(label) for label in labels}
    n = len(votes)

    @lru_cache(maxsize=None)
    def walk(state: tuple) -> tuple[float, float, float, float]:  # E[samples], E[samples^2], E[acc], E[acc^2]
        drawn = dict(zip(labels, state))
        d = sum(state)
        answered = sorted((v for k, v in drawn.items() if k is not None), reverse=True) + [0, 0]
        if d == n or (d and answered[0] > 0 and changes(answered[0], answered[1]) <= threshold):
            acc = vote(drawn, gold)
            return d, d * d, acc, acc * acc
        r = min(round_size, n - d)
        left = [total[label] - drawn[label] for label in labels]
        moments = [0.0] * 4
        for take in product(*(range(min(k, r) + 1) for k in left)):
            if sum(take) != r:
                continue
            p = 1.0
            for k, x in zip(left, take):
                p *= comb(k, x)
            p /= comb(n - d, r)
            for i, m in enumerate(walk(tuple(s + x for s, x in zip(state, take)))):
                moments[i] += p * m
        return tuple(moments)

    s, s2, a, a2 = walk(tuple(0 for _ in labels))
    return s, sqrt(max(s2 - s * s, 0)), a, sqrt(max(a2 - a * a, 0))


def test_replay_table_equals_the_exact_expectation_over_every_order(out, reported):
    from lm_eval_medreason.reporting.scaling import REPLAY_ORDERS

    # the exact computation, on patterns small enough to count by hand: 32 votes for gold stop after 4 (the leader
    # loses with probability 1/32) at t = 0.05, after 8 (1/512) at 0.01; A A A A B: the first 4 are all A (stop)
    # with probability 1/5, else 3 A and the B (6/32 > 0.1) go on to all 5
    assert exact_replay(("A",) * 32, "A", 0.05)[:3] == (4, 0, 1.0) and exact_replay(("A",) * 32, "A", 0.01)[0] == 8
    assert exact_replay(("A", "A", "A", "A", "B"), "A", 0.1)[::2] == pytest.approx((4 / 5 + 5 * 4 / 5, 1.0))
    rep, _ = reported
    table = {r["benchmark"]: r for r in read_csv(rep / "adaptive_replay.csv")}
    assert set(table) == {*SCALING_BENCHMARKS, "pooled"}
    assert all((r["model"], r["strategy"]) == ("gamma", "cot maj@32") for r in table.values())
    assert "| gamma | cot maj@32 | MedQA | 8 |" in (rep / "adaptive_replay.md").read_text()
    for b in SCALING_BENCHMARKS:
        samples = logged(out, f"{b}_cot_maj")
        row = table[b]
        assert (int(row["n"]), int(row["votes"])) == (len(samples), 32)
        assert float(row["maj_acc"]) == pytest.approx(100 * mean(s["maj@32"] for s in samples), abs=1e-3)
        assert float(row["tokens"]) == pytest.approx(mean(s["output_tokens"] for s in samples), abs=0.01)
        questions = [(tuple(json.loads(r)["choice"] for r in s["filtered_resps"][0]), s["doc"]["answer_idx"])
                     for s in samples]
        # the scripted vote patterns (votes for gold, without an answer), each question's 32 as sent
        assert {(v.count(gold), v.count(None)) for v, gold in questions} == {(32, 0), (29, 0), (14, 0), (10, 2)}
        for t in THRESHOLDS:
            exact = [exact_replay(votes, gold, t) for votes, gold in questions]
            # Monte Carlo over REPLAY_ORDERS orders: within 4 standard errors of the exact expectation
            samples_tol = mean(4 * e[1] / sqrt(REPLAY_ORDERS) for e in exact) + 1e-3
            acc_tol = mean(4 * e[3] / sqrt(REPLAY_ORDERS) for e in exact) + 1e-5
            assert float(row[f"samples_{t}"]) == pytest.approx(mean(e[0] for e in exact), abs=samples_tol), t
            assert float(row[f"acc_{t}"]) == pytest.approx(100 * mean(e[2] for e in exact), abs=100 * acc_tol), t
    # adaptive voting saves samples, the stricter the threshold the fewer, never more than 32
    expected_samples = [float(table["medqa"][f"samples_{t}"]) for t in THRESHOLDS]
    assert expected_samples == sorted(expected_samples) and expected_samples[-1] < 32
    sizes = {b: int(table[b]["n"]) for b in SCALING_BENCHMARKS}
    for column in [f"{m}_{t}" for t in THRESHOLDS for m in ("samples", "acc")] + ["maj_acc"]:
        weighted = sum(sizes[b] * float(table[b][column]) for b in SCALING_BENCHMARKS) / sum(sizes.values())
        assert float(table["pooled"][column]) == pytest.approx(weighted, abs=1e-3)


# ---- medreason audit ----------------------------------------------------------------------------------------------


def audit(*paths) -> str:
    result = subprocess.run([MEDREASON, "audit", *map(str, paths), "--color", "never"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def counts(text: str, task: str) -> tuple[int, dict[str, int]]:
    section = text[text.index(f"== {task}:"):]
    section = section[:section.index("\n\n")] if "\n\n" in section else section
    total = int(re.search(rf"== {task}: (\d+) responses", section).group(1))
    return total, {m[1]: int(m[2]) for m in re.finditer(r"^   (phrase|text|final_line|none)\s+(\d+)", section, re.M)}


def test_audit_counts_only_drawn_samples_and_budget_responses(out):
    text = audit(out)
    for b in SCALING_BENCHMARKS:
        samples = logged(out, f"{b}_cot_adaptive")
        drawn = [r for s in samples for r in s["resps"][0] if r != NOT_DRAWN]
        assert len(drawn) == sum(s["samples"] for s in samples) < 32 * len(samples)
        total, by_rule = counts(text, f"{b}_cot_adaptive")
        assert total == len(drawn)
        assert by_rule["none"] == sum("cannot tell" in r for r in drawn)
        assert by_rule["phrase"] == sum("The answer is (" in r for r in drawn)
        assert counts(text, f"{b}_cot_maj")[0] == 32 * len(logged(out, f"{b}_cot_maj"))
    budget = logged(out, "medqa_cot_budget")
    total, by_rule = counts(text, "medqa_cot_budget")
    assert total == len(budget)
    assert by_rule["none"] == sum(json.loads(s["filtered_resps"][0])["choice"] is None for s in budget)
    section = text[text.index("== medqa_cot_budget:"):]
    assert '"medreason_budget"' not in section.split("\n\n")[0]  # the full response is shown, not its envelope
