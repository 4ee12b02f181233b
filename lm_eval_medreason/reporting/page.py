"""``report/index.html``: the report as one self-contained page, with a browser over every response.

One file that works from ``file://`` with no network: the tables are HTML, the figures
inline SVG, the CSS and the script inlined (``reporting/page/``, a Jinja template). The
responses are read again from each samples log (the tables never need them), one line at
a time (``logs.iter_samples``), and embedded as one compact ``<script type="application/json">`` block per task
that the page parses only when that task is opened, then renders 25 questions a page; the
cases, shared by every task of a benchmark, are embedded once. A ``_maj`` task embeds its
vote counts and ONE response per question: the first sampled response that voted for the
plurality letter (the first response when none answered). The page reads its state from
the URL hash (``#task=KEY&vs=KEY&filter=wrong&group=step1&q=text&page=2``), so every view
can be linked to.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import jinja2

from lm_eval_medreason.data import registry
from lm_eval_medreason.evaluation.adaptive import REPORT_THRESHOLDS
from lm_eval_medreason.reporting import figures as figures_module
from lm_eval_medreason.reporting.logs import (FILTERS, STUDY_BENCHMARKS, TITLES, TaskSamples, iter_samples,
                                              responses_and_scores)
from lm_eval_medreason.reporting.scaling import REPLAY_ORDERS

PAGE_SIZE = 25  # questions rendered at once
TEMPLATES = Path(__file__).resolve().parent / "page"
FIGURE_TITLES = {
    "figure2_mean_accuracy_by_strategy.png": "Mean accuracy by strategy (Figure 2)",
    "figure3_accuracy_vs_tokens.png": "Accuracy against output tokens (Figure 3)",
    "figure5_per_benchmark.png": "Accuracy and tokens per benchmark (Figure 5)",
    figures_module.SCALING_FIGURE: "Accuracy against output tokens: budget forcing, majority and adaptive vote "
                                   "(Figure 3, completed)",
}


def task_key(model: str, task: str) -> str:
    """How the page (and its URL hash) names one task of one model."""
    return f"{model}:{task}"


def _scored(value) -> dict:
    return value if isinstance(value, dict) else {}


def _plurality(votes: list[str | None]) -> str | None:
    """The letter with the most votes (a tie goes to the letter voted first); None when no sample answered."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(v for v in votes if v is not None and counts[v] == top)


def read_task(samples: TaskSamples, maj_k: int | None, cases: dict) -> dict:
    """One task's responses as the page embeds them (column lists, one entry per question in log order);
    each question's case is added to ``cases[benchmark]`` once."""
    bench = cases.setdefault(samples.benchmark, {"id": [], "q": [], "o": [], "g": [], "grp": [], "index": {}})
    key = registry.BENCHMARKS[samples.benchmark].breakdown
    freeform = samples.strategy == "freeform"
    data = {"case": [], "ch": [], "v": [], "tok": [], "r": [], "sp": [], "ru": []}
    if maj_k:
        data.update(votes=[], acc=[], tokm=[])
    for _, sample in iter_samples(samples.path, ("doc", "filter", "resps"), responses=True):
        if sample.get("filter") not in FILTERS:
            continue
        doc = sample.get("doc") or {}
        doc_id = str(doc.get("id", sample.get("doc_id")))
        if doc_id not in bench["index"]:
            bench["index"][doc_id] = len(bench["id"])
            bench["id"].append(doc_id)
            bench["q"].append(str(doc.get("question") or ""))
            bench["o"].append(doc.get("options") if isinstance(doc.get("options"), dict) else {})
            bench["g"].append(doc.get("answer_idx") if not freeform else doc.get("answer"))
            bench["grp"].append(str((doc.get("meta") or {}).get(key) or "(unknown)") if key else None)
        data["case"].append(bench["index"][doc_id])
        responses, scored = responses_and_scores(sample)
        responses = [r or "" for r in responses] or [""]
        scored = [_scored(s) for s in scored] + [{}] * (len(responses) - len(scored))
        if freeform:
            _freeform(data, sample, responses[0], scored[0])
        elif maj_k:
            _majority(data, sample, responses, scored, doc.get("answer_idx"), maj_k)
        else:
            _single(data, sample, responses[0], scored[0])
    return data


def _single(data: dict, sample: dict, response: str, scored: dict) -> None:
    choice = scored.get("choice")
    verdict = "n" if choice is None else ("c" if sample.get("acc") == 1 else "w")
    _add(data, choice, verdict, scored.get("output_tokens", sample.get("output_tokens")), response, scored)


def _majority(data: dict, sample: dict, responses: list[str], scored: list[dict], gold, k: int) -> None:
    votes = [s.get("choice") for s in scored[: len(responses)]]
    winner = _plurality(votes)
    counts = Counter(v for v in votes if v is not None)
    tied = winner is not None and sum(c == counts[winner] for c in counts.values()) > 1
    verdict = "n" if winner is None else ("c" if winner == gold and not tied else "w")
    shown = votes.index(winner) if winner is not None else 0
    _add(data, winner, verdict, scored[shown].get("output_tokens"), responses[shown], scored[shown])
    data["votes"].append({**dict(counts.most_common()), **({"none": votes.count(None)} if None in votes else {})})
    data["acc"].append(_number(sample.get(f"maj@{k}")))
    data["tokm"].append(_number(sample.get("output_tokens")))


def _freeform(data: dict, sample: dict, response: str, graded: dict) -> None:
    correct, answer = graded.get("correct"), graded.get("answer")
    verdict = "u" if correct is None and sample.get("acc") is None else (
        "c" if correct or sample.get("acc") == 1 else ("n" if answer is None else "w"))
    _add(data, answer, verdict, graded.get("output_tokens", sample.get("output_tokens")), response,
         {"rule": graded.get("grader")})


def _add(data: dict, choice, verdict: str, tokens, response: str, scored: dict) -> None:
    span = scored.get("span") or [None, None]
    data["ch"].append(choice)
    data["v"].append(verdict)
    data["tok"].append(_number(tokens))
    data["r"].append(response)
    data["sp"].append(list(span) if span[0] is not None else None)
    data["ru"].append(scored.get("rule"))


def _number(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _json(value) -> str:
    """Compact JSON that is safe inside ``<script>``: every ``<`` escaped, so no ``</script>`` can end it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _acc(record: dict, key: str) -> dict | None:
    if key not in record or record[key] is None or math.isnan(record[key]):
        return None
    return {"acc": f"{record[key]:.1f}", "ci": f"[{record[key + '_lo']:.1f}, {record[key + '_hi']:.1f}]"}


def _replay_rows(records: list[dict], by_label: dict) -> list[dict]:
    """The replay table's cells, each task's linked to its responses in the browser."""
    rows = []
    for r in records:
        row = by_label[f"{r['model']}/{r['strategy']}"]
        key = task_key(row.model, row.tasks[r["benchmark"]].task) if r["benchmark"] in row.tasks else None
        rows.append({**r, "title": TITLES.get(r["benchmark"], r["benchmark"]), "key": key,
                     "cells": [(_fmt(r[f"samples_{t}"]), _fmt(r[f"acc_{t}"])) for t in REPORT_THRESHOLDS],
                     "maj": _fmt(r["maj_acc"]), "tokens": _fmt(r["tokens"], 0)})
    return rows


def write_page(path: Path, rows, benchmarks: list[str], records, comparisons, breakdowns, drawn: dict, notes: list[str],
               n_resamples: int, seed: int, replay: list[dict] = ()) -> Path:
    """Write the page: read every task's responses, then stream the template into ``path``. ``replay``: the
    adaptive-voting replay of the ``_maj`` rows (``scaling.replay``)."""
    tasks = []  # the browser's tasks, in Table 1 order
    by_label = {row.label: row for row in rows}
    table = []
    for row, record in zip(rows, records):
        cells = []
        for b in benchmarks:
            samples = row.tasks.get(b)
            cells.append({"acc": _acc(record, f"{b}_acc"), "tokens": _fmt(record.get(f"{b}_tokens"), 0),
                          "n": record.get(f"{b}_n"), "key": task_key(row.model, samples.task) if samples else None})
            if samples:
                tasks.append({"key": task_key(row.model, samples.task), "model": row.model, "task": samples.task,
                              "strategy": row.strategy, "benchmark": b, "title": TITLES[b], "k": row.maj_k,
                              "freeform": row.base == "freeform", "samples": samples})
        table.append({"model": row.model, "strategy": row.strategy, "mean": _acc(record, "mean_acc"),
                      "mean_tokens": _fmt(record.get("mean_tokens"), 0), "cells": cells})
    comparison_rows = []
    for r in comparisons:
        a, b = by_label.get(r["a"]), by_label.get(r["b"])
        link = None
        if r["benchmark"] in (a.tasks if a else {}) and r["benchmark"] in (b.tasks if b else {}):
            link = f"task={task_key(a.model, a.tasks[r['benchmark']].task)}&vs={task_key(b.model, b.tasks[r['benchmark']].task)}&filter=differ"
        comparison_rows.append({**r, "title": TITLES.get(r["benchmark"], r["benchmark"]), "link": link,
                                "diff_cell": f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]",
                                "p": "" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.4g}"})
    breakdown_rows = [{**r, "title": TITLES[r["benchmark"]], "cell": f"{r['acc']:.1f} [{r['acc_lo']:.1f}, {r['acc_hi']:.1f}]",
                       "key": task_key(r["model"], by_label[f"{r['model']}/{r['strategy']}"].tasks[r["benchmark"]].task)}
                      for r in breakdowns]
    figure_blocks = []
    for name, fig in drawn.items():
        pooled = getattr(fig, "benchmarks", None)
        caption = getattr(fig, "caption", None)
        if pooled is not None:
            caption = f"Pooled over {', '.join(TITLES[b] for b in pooled)}" + (
                " (the study's three benchmarks)." if tuple(pooled) == STUDY_BENCHMARKS
                else ": not all of JAMA, Medbullets and MedQA ran, so this is not the study's three-benchmark mean.")
        figure_blocks.append({"name": name, "title": FIGURE_TITLES.get(name, name), "caption": caption,
                              "svg": figures_module.svg(fig, name.split("_")[0])})
    # The first task's block and the cases come before the script, the other tasks after it: the page renders its
    # first view while the browser is still reading the rest.
    cases: dict = {}
    blocks = [{"id": f"data-{i}", "json": _json(read_task(task["samples"], task["k"], cases))}
              for i, task in enumerate(tasks)]
    cases_json = _json({b: {k: v for k, v in c.items() if k != "index"} for b, c in cases.items()})

    meta = [{k: t[k] for k in ("key", "model", "task", "strategy", "benchmark", "title", "k", "freeform")}
            | {"data": f"data-{i}", "by": registry.BENCHMARKS[t["benchmark"]].breakdown} for i, t in enumerate(tasks)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)
    template = env.get_template("index.html.j2")
    stream = template.stream(
        benchmarks=[{"name": b, "title": TITLES[b]} for b in benchmarks], table=table, comparisons=comparison_rows,
        breakdowns=breakdown_rows, figures=figure_blocks, replay=_replay_rows(replay, by_label),
        thresholds=REPORT_THRESHOLDS, replay_orders=REPLAY_ORDERS, seed=seed, notes=notes, tasks=tasks, first=blocks[:1], rest=blocks[1:],
        cases_json=cases_json, meta_json=_json({"tasks": meta, "pageSize": PAGE_SIZE}),
        settings=f"95% percentile bootstrap over questions, {n_resamples} resamples, seed {seed}",
        css=(TEMPLATES / "page.css").read_text(encoding="utf-8"), js=(TEMPLATES / "page.js").read_text(encoding="utf-8"),
        any_maj=any(t["k"] for t in tasks))
    with path.open("w", encoding="utf-8") as handle:
        stream.dump(handle)
    return path
