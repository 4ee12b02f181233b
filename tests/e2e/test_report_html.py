"""`medreason report`'s index.html, opened from file:// in headless Chromium (Debian's `chromium`, installed by
.ci/run): the page's state comes from the URL hash, so each view is one `--dump-dom` of a hash. Inputs are the
real lm_eval runs of tests/e2e/conftest.py (its session fixtures)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.report_runs import CHROMIUM, chromium, mean, png_size, report, samples  # noqa: F401
from tests.support.report_runs import HAS_MAJ, MODELS, STRATEGIES, STUDY  # noqa: F401
from tests.support.report_runs import page_dom as dom

pytestmark = pytest.mark.slow
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: install Debian's chromium "
                                                            "(apt-get install chromium; .ci/run does)")
_ARTICLE = re.compile(r'<article class="question" data-id="([^"]*)" data-verdict="(\w)">')


def shown(text: str) -> list[tuple[str, str]]:
    """(question id, verdict) of every question card in the DOM, in order."""
    return [(html_unescape(i), v) for i, v in _ARTICLE.findall(text)]


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_page_is_one_offline_file(reported):
    rep, stdout = reported
    assert f"wrote index.html: {rep / 'index.html'}" in stdout
    page = (rep / "index.html").read_text()
    assert not re.search(r"<(script|link|img|iframe|object)\b[^>]*\b(src|href)=", page), "the page loads something"
    assert "@import" not in page and "url(http" not in page
    assert page.count("<svg") == 3  # figures 2, 3 and 5, inline


@needs_browser
def test_page_renders_table_figures_and_responses_in_chromium(out, reported, tmp_path):
    rep, _ = reported
    page = rep / "index.html"
    text = dom(page, "#task=alpha:medqa_cot")
    # Table 1: a row per (model, strategy), each benchmark cell a link to its task in the browser
    table = text[text.index('id="table1"'):text.index('id="comparisons"')]
    for model in MODELS:
        for strategy in STRATEGIES:
            assert re.search(rf"<td>{model}</td><td>{strategy}</td>", table)
            for benchmark in STUDY:
                assert f'href="#task={model}%3A{benchmark}_{strategy}"' in table
    # figures: inline SVG, every point/bar named by its run
    for figure in ("figure2", "figure3", "figure5"):
        block = text[text.index(f'id="fig-{figure}"'):]
        assert block.index("<svg") < block.index("</figure>")
    assert re.search(r"<title>alpha · cot: [\d.]+% at \d+ tokens</title>", text)
    # the first page of responses: every MedQA question of alpha/cot, in log order, verdicts as logged
    logged = samples(out, "alpha", "medqa_cot")
    expected = [(s["doc"]["id"], "c" if s["acc"] == 1 else "w") for s in logged]
    assert shown(text) == expected
    # the span the grader read is highlighted: the logged span of the response
    first = logged[0]
    scored = json.loads(first["filtered_resps"][0])
    start, end = scored["span"]
    marks = re.findall(r'<mark class="span"[^>]*>([^<]*)</mark>', text)
    assert len(marks) == len(logged) and html_unescape(marks[0]) == first["resps"][0][0][start:end]
    assert marks[0].startswith("answer is (")

    # filters change what is shown
    wrong = [(i, v) for i, v in expected if v == "w"]
    assert 0 < len(wrong) < len(expected)
    assert shown(dom(page, "#task=alpha:medqa_cot&filter=wrong")) == wrong
    assert shown(dom(page, "#task=alpha:medqa_cot&filter=correct")) == [x for x in expected if x[1] == "c"]
    jama = samples(out, "beta", "jama_cot")  # beta refuses the first JAMA case: no answer
    assert shown(dom(page, "#task=beta:jama_cot&filter=none")) == [(jama[0]["doc"]["id"], "n")]
    step1 = [s["doc"]["id"] for s in samples(out, "beta", "medqa_longmonolog") if s["doc"]["meta"]["step"] == "step1"]
    assert [i for i, _ in shown(dom(page, "#task=beta:medqa_longmonolog&group=step1"))] == step1
    needle = logged[5]["doc"]["question"].strip()[:60]
    assert [i for i, _ in shown(dom(page, "#task=alpha:medqa_cot&q=" + json.dumps(needle)[1:-1].replace(" ", "%20")))] \
        == [s["doc"]["id"] for s in logged if needle in s["doc"]["question"]]
    # two strategies side by side: the questions where their answers differ
    other = {s["doc"]["id"]: json.loads(s["filtered_resps"][0])["choice"] for s in samples(out, "alpha", "medqa_longmonolog")}
    differ = [s["doc"]["id"] for s in logged if json.loads(s["filtered_resps"][0])["choice"] != other[s["doc"]["id"]]]
    pair = dom(page, "#task=alpha:medqa_cot&vs=alpha:medqa_longmonolog&filter=differ")
    assert [i for i, _ in shown(pair)] == differ and differ
    assert pair.count('class="side"') == 2 * len(differ)

    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1400,2200",
             page.as_uri() + "#task=alpha:medqa_cot&vs=alpha:medqa_longmonolog&filter=differ")
    assert png_size(screenshot) == (1400, 2200)
    print(f"screenshot of the report page: {screenshot}")


@needs_browser
@pytest.mark.skipif(not HAS_MAJ, reason="no *_maj tasks in this checkout yet (tasks/*/*_maj.yaml)")
def test_majority_vote_task_shows_votes_and_one_response(out, reported):
    rep, _ = reported
    text = dom(rep / "index.html", "#task=alpha:medqa_cot_maj")
    logged = samples(out, "alpha", "medqa_cot_maj")
    assert [i for i, _ in shown(text)] == [s["doc"]["id"] for s in logged]
    votes = re.findall(r'<div class="votes">votes: ([^<]*) — shown', text)
    assert len(votes) == len(logged)
    for line, sample in zip(votes, logged):
        choices = [json.loads(r)["choice"] for r in sample["filtered_resps"][0]]
        counts = dict(pair.rsplit(" ", 1) for pair in line.split(", "))
        assert {k: int(v) for k, v in counts.items()} == {c: choices.count(c) for c in set(choices) if c} | (
            {"none": choices.count(None)} if None in choices else {})
    assert text.count('<pre class="response">') == len(logged)  # one response per question, not 32


TRICKY = "\n</script><script>alert(1)</script><!-- <b>"


def without_jama(out: Path, dest: Path) -> Path:
    """The runs as if JAMA had never been scraped: MedQA and Medbullets tasks only."""
    for model in MODELS:
        (dest / model).mkdir(parents=True)
        for path in (out / model).iterdir():
            if "jama" in path.name:
                continue
            if path.name.startswith("results_"):
                content = json.loads(path.read_text())
                for section in ("results", "n-samples", "configs"):
                    content[section] = {k: v for k, v in (content.get(section) or {}).items() if "jama" not in k}
                content["group_subtasks"] = {g: [t for t in ts if "jama" not in t]
                                             for g, ts in (content.get("group_subtasks") or {}).items()}
                (dest / model / path.name).write_text(json.dumps(content))
            elif path.name.startswith("samples_medqa_cot_2"):  # a response that quotes HTML
                lines = [json.loads(line) for line in path.read_text().splitlines()]
                lines[0]["resps"][0][0] += TRICKY
                (dest / model / path.name).write_text("".join(json.dumps(s) + "\n" for s in lines))
            else:
                shutil.copy(path, dest / model / path.name)
    return dest


def test_without_jama_the_figures_use_medqa_and_medbullets_and_say_so(out, tmp_path):
    runs = without_jama(out, tmp_path / "out")
    rep = tmp_path / "rep"
    stdout = report(runs, "--output", rep).stdout
    for name in ("figure2_mean_accuracy_by_strategy.png", "figure3_accuracy_vs_tokens.png"):
        assert f"wrote {name}" in stdout and png_size(rep / name) == (800, 500)
        assert f"note: {name}: over Medbullets, MedQA only" in stdout
    page = (rep / "index.html").read_text()
    block = page[page.index('id="fig-figure3"'):]
    block = block[:block.index("</figure>")]
    assert "Pooled over Medbullets, MedQA: not all of JAMA, Medbullets and MedQA ran" in block
    assert "Accuracy against inference-time compute (Medbullets, MedQA)" in block
    # each point names its run, at the accuracy pooled over the two benchmarks' logged samples
    logged = [s for b in ("medbullets", "medqa") for s in samples(out, "beta", f"{b}_longmonolog")]
    acc, tokens = 100 * mean(s["acc"] for s in logged), mean(s["output_tokens"] for s in logged)
    assert f"<title>beta · longmonolog: {acc:.1f}% at {tokens:.0f} tokens</title>" in block
    # the response data blocks survive any text in a response (every "<" is escaped inside the JSON)
    blocks = re.findall(r'<script type="application/json" id="data-\d+">(.*?)</script>', page, re.S)
    assert len(blocks) == len(MODELS) * len(STRATEGIES) * 2 + HAS_MAJ * 2
    assert all(json.loads(b)["case"] for b in blocks)
    assert sum(json.loads(b)["r"][0].endswith(TRICKY) for b in blocks) == len(MODELS)
