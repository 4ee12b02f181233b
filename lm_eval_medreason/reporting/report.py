"""``medreason report``: the study's Table 1, its figures, paired comparisons and breakdowns from lm-eval's logs.

Everything is computed from the per-sample logs (``--log_samples``), not from the
aggregated results, because intervals, paired tests and breakdowns need per-question
values; the pooled mean of those values is exactly lm-eval's ``weight_by_size``
group accuracy. A row of Table 1 is one (model, strategy); its benchmarks may come
from several runs (the latest run of a benchmark wins, with a note). The scaling tasks
(``_adaptive``, ``_budget``) are rows of their own, never in Table 1 or the comparisons:
they go into the scaling figure beside the ``_maj`` curves (``scaling.py``), and every
``_maj`` row gets the adaptive-voting replay table.

Conventions: accuracies are fractions in code and percentages (one decimal) in the
markdown; ``_maj`` runs become rows "STRATEGY maj@K" at their largest K, with tokens
per sampled response (the vote spends K times that). Free-form accuracy leaves out
questions whose grade is null (judge errors).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np

from lm_eval_medreason.data import registry
from lm_eval_medreason.errors import ReportError
from lm_eval_medreason.evaluation.adaptive import REPORT_THRESHOLDS
from lm_eval_medreason.reporting import scaling, stats
from lm_eval_medreason.reporting.logs import (BENCHMARKS, SCALING_MODES, STRATEGIES, STUDY_BENCHMARKS, TITLES, Run,
                                              TaskSamples, load_runs)

# benchmark -> the meta key its accuracy is broken down by (MedQA USMLE step, JAMA specialty, MedMCQA subject)
BREAKDOWN_KEYS = {name: b.breakdown for name, b in registry.BENCHMARKS.items() if b.breakdown}


@dataclass
class Row:
    """One (model, strategy) of Table 1, or of the scaling runs (``mode``), and the samples of each of its benchmarks."""

    model: str
    base: str  # vanilla, cot, longstep, longmonolog, freeform
    maj_k: int | None
    tasks: dict[str, TaskSamples]
    mode: str = ""  # "" or "maj" (Table 1), "adaptive" or "budget" (scaling)

    @property
    def strategy(self) -> str:
        if self.mode in SCALING_MODES:
            return f"{self.base} {self.mode}"
        return f"{self.base} maj@{self.maj_k}" if self.maj_k else self.base

    @property
    def label(self) -> str:
        """How ``--compare`` names the row: MODEL/STRATEGY as in Table 1."""
        return f"{self.model}/{self.strategy}"

    @property
    def metric(self) -> str:
        return f"maj@{self.maj_k}" if self.maj_k else "acc"

    def scores(self, benchmark: str, metric: str | None = None) -> tuple[list[str], np.ndarray]:
        """Question ids and per-question accuracy on one benchmark, questions with a null grade left out."""
        samples = self.tasks[benchmark]
        values = samples.metrics[metric or self.metric]
        keep = ~np.isnan(values)
        return [i for i, k in zip(samples.ids, keep) if k], values[keep]

    def has_study_benchmarks(self) -> bool:
        return all(b in self.tasks for b in STUDY_BENCHMARKS)


def _latest(runs: list[Run], modes: tuple[str, ...], notes: list[str]) -> dict[tuple[str, str, str], dict[str, TaskSamples]]:
    """(model, strategy, mode) -> benchmark -> samples of the tasks of these modes; the latest run of a benchmark wins."""
    chosen: dict[tuple[str, str, str], dict[str, tuple[Run, TaskSamples]]] = {}
    for run in sorted(runs, key=lambda r: r.timestamp):
        for samples in (s for s in run.tasks.values() if s.mode in modes):
            slot = chosen.setdefault((run.model, samples.strategy, samples.mode), {})
            if samples.benchmark in slot:
                notes.append(f"{run.model} {samples.task}: using {run.results_file} over {slot[samples.benchmark][0].results_file}")
            slot[samples.benchmark] = (run, samples)
    return {key: dict(sorted(((b, s) for b, (_, s) in slot.items()), key=lambda i: BENCHMARKS.index(i[0])))
            for key, slot in chosen.items()}


def build_rows(runs: list[Run]) -> tuple[list[Row], list[str]]:
    """Rows of Table 1 from runs: one per (model, strategy, maj); a later run of the same benchmark replaces an earlier one.
    The scaling tasks are left out (``scaling_rows``)."""
    notes = [note for run in runs for note in run.notes]
    rows = []
    for (model, strategy, mode), tasks in _latest(runs, ("", "maj"), notes).items():
        k = None
        if mode == "maj":
            common = set.intersection(*(set(s.maj_ks) for s in tasks.values()))
            if not common:
                raise ReportError(f"{model} {strategy}_maj: its benchmarks logged no common maj@k "
                                  f"({', '.join(f'{s.task}: {s.maj_ks}' for s in tasks.values())})")
            k = max(common)
        rows.append(Row(model, strategy, k, tasks, mode))
    rows.sort(key=lambda r: (r.model, STRATEGIES.index(r.base), r.maj_k or 0))
    return rows, notes


def scaling_rows(runs: list[Run]) -> tuple[list[Row], list[str]]:
    """One row per (model, strategy, mode) of the ``_adaptive`` and ``_budget`` tasks, as ``build_rows`` builds
    Table 1's; the notes say which run of a benchmark replaced which."""
    notes: list[str] = []
    rows = [Row(model, strategy, None, tasks, mode)
            for (model, strategy, mode), tasks in _latest(runs, SCALING_MODES, notes).items()]
    rows.sort(key=lambda r: (r.model, STRATEGIES.index(r.base), SCALING_MODES.index(r.mode)))
    return rows, notes


def present_benchmarks(rows: list[Row]) -> list[str]:
    """Table columns: the study's three always, the variants only where some row has them."""
    return [b for b in BENCHMARKS if b in STUDY_BENCHMARKS or any(b in r.tasks for r in rows)]


def _pct(x: float) -> float:
    return round(100 * x, 4)


def table1(rows: list[Row], n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED) -> list[dict]:
    """Table 1 records: accuracy (%) with its bootstrap interval and mean tokens, per benchmark and pooled."""
    records = []
    for row in rows:
        record = {"model": row.model, "strategy": row.strategy}
        strata = [row.scores(b)[1] for b in STUDY_BENCHMARKS] if row.has_study_benchmarks() else []
        if sum(s.size for s in strata):
            lo, hi = stats.bootstrap_ci(strata, n_resamples, seed)
            tokens = [row.tasks[b].metrics["output_tokens"] for b in STUDY_BENCHMARKS]
            record.update(mean_acc=_pct(stats.pooled_mean(strata)), mean_acc_lo=_pct(lo), mean_acc_hi=_pct(hi),
                          mean_tokens=round(stats.pooled_mean(tokens), 2))
        for benchmark in present_benchmarks(rows):
            if benchmark not in row.tasks:
                continue
            values = row.scores(benchmark)[1]
            lo, hi = stats.bootstrap_ci(values, n_resamples, seed) if values.size else (math.nan, math.nan)
            record.update({
                f"{benchmark}_acc": _pct(values.mean()) if values.size else math.nan,
                f"{benchmark}_acc_lo": _pct(lo), f"{benchmark}_acc_hi": _pct(hi),
                f"{benchmark}_tokens": round(float(np.nanmean(row.tasks[benchmark].metrics["output_tokens"])), 2),
                f"{benchmark}_n": int(values.size),
            })
        records.append(record)
    return records


def table1_columns(rows: list[Row]) -> list[str]:
    columns = ["model", "strategy", "mean_acc", "mean_acc_lo", "mean_acc_hi", "mean_tokens"]
    for b in present_benchmarks(rows):
        columns += [f"{b}_acc", f"{b}_acc_lo", f"{b}_acc_hi", f"{b}_tokens", f"{b}_n"]
    return columns


def _join(a: Row, b: Row, benchmark: str) -> tuple[np.ndarray, np.ndarray]:
    """Paired per-question values of two rows on one benchmark, joined on doc id (questions graded in both)."""
    a_ids, a_values = a.scores(benchmark)
    b_map = dict(zip(*b.scores(benchmark)))
    pairs = [(x, b_map[i]) for i, x in zip(a_ids, a_values) if i in b_map]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def compare(a: Row, b: Row, n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED) -> list[dict]:
    """Per shared benchmark and pooled over the shared study benchmarks: accuracy difference a - b (points),
    its paired-bootstrap interval and McNemar's exact p (single-answer rows only: maj@k values are vote
    probabilities, fractional wherever a vote can tie)."""
    joined = {bench: _join(a, b, bench) for bench in BENCHMARKS if bench in a.tasks and bench in b.tasks}
    joined = {bench: pair for bench, pair in joined.items() if pair[0].size}
    if not joined:
        raise ReportError(f"{a.label} and {b.label} share no question ids on any benchmark; nothing to compare")
    pooled = [bench for bench in STUDY_BENCHMARKS if bench in joined]
    groups = [(bench, [bench]) for bench in joined] + ([("pooled", pooled)] if pooled else [])
    records = []
    for name, benches in groups:
        xs, ys = [joined[x][0] for x in benches], [joined[x][1] for x in benches]
        x, y = np.concatenate(xs), np.concatenate(ys)
        lo, hi = stats.paired_bootstrap_ci(xs, ys, n_resamples, seed)
        record = {"a": a.label, "b": b.label, "benchmark": name, "benchmarks": "+".join(benches), "n": int(x.size),
                  "acc_a": _pct(x.mean()), "acc_b": _pct(y.mean()), "diff": _pct(x.mean() - y.mean()),
                  "diff_lo": _pct(lo), "diff_hi": _pct(hi), "a_only": None, "b_only": None, "mcnemar_p": None}
        if not (a.maj_k or b.maj_k) and np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all():
            record["a_only"], record["b_only"], record["mcnemar_p"] = stats.mcnemar_exact(x, y)
        records.append(record)
    return records


def resolve_pairs(rows: list[Row], requested: list[list[str]] | None) -> list[tuple[Row, Row]]:
    """``--compare A B`` pairs by label; without any, every pair of rows with the same model or the same strategy."""
    by_label = {r.label: r for r in rows}
    if requested:
        pairs = []
        for labels in requested:
            missing = [x for x in labels if x not in by_label]
            if missing:
                raise ReportError(f"--compare: no row {missing[0]!r}; rows are: {', '.join(by_label)}")
            pairs.append((by_label[labels[0]], by_label[labels[1]]))
        return pairs
    return [(a, b) for a, b in combinations(rows, 2)
            if (a.model == b.model or a.strategy == b.strategy) and _shares_questions(a, b)]


def _shares_questions(a: Row, b: Row) -> bool:
    return any(set(a.tasks[x].ids) & set(b.tasks[x].ids) for x in a.tasks if x in b.tasks)


def breakdowns(rows: list[Row], n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED) -> list[dict]:
    """Accuracy by each benchmark's breakdown field (``BREAKDOWN_KEYS``: MedQA USMLE step, JAMA specialty, ...), per row."""
    records = []
    for row in rows:
        for benchmark, key in BREAKDOWN_KEYS.items():
            if benchmark not in row.tasks:
                continue
            samples = row.tasks[benchmark]
            values = samples.metrics[row.metric]
            labels = np.array([str(m.get(key) or "(unknown)") for m in samples.meta])
            for group in sorted(set(labels)):
                v = values[(labels == group) & ~np.isnan(values)]
                if not v.size:
                    continue
                lo, hi = stats.bootstrap_ci(v, n_resamples, seed)
                records.append({"model": row.model, "strategy": row.strategy, "benchmark": benchmark, "by": key,
                                "group": group, "n": int(v.size), "acc": _pct(v.mean()), "acc_lo": _pct(lo), "acc_hi": _pct(hi)})
    return records


def freeform_agreement(rows: list[Row]) -> list[dict]:
    """Judge vs deterministic matcher on free-form questions both graded (grader ``judge:*``, an answer extracted,
    no judge error: the samples lm-eval's ``matcher_agreement`` averages), per benchmark and pooled."""
    records = []
    for row in (r for r in rows if r.base == "freeform"):
        pairs_by_benchmark = {}
        for benchmark, samples in row.tasks.items():
            pairs = [(bool(g["correct"]), bool(g["matcher_correct"])) for g in samples.grading or []
                     if str(g.get("grader") or "").startswith("judge") and g.get("correct") is not None
                     and g.get("matcher_correct") is not None and g.get("answer", "") is not None]
            if pairs:
                pairs_by_benchmark[benchmark] = pairs
        if not pairs_by_benchmark:
            continue
        groups = list(pairs_by_benchmark.items())
        if len(groups) > 1:
            groups.append(("pooled", [p for ps in pairs_by_benchmark.values() for p in ps]))
        for benchmark, pairs in groups:
            judge, matcher = zip(*pairs)
            records.append({"model": row.model, "benchmark": benchmark, "n": len(pairs),
                            "agreement": _pct(np.mean([j == m for j, m in pairs])),
                            "kappa": round(stats.cohen_kappa(judge, matcher), 4),
                            "judge_acc": _pct(np.mean(judge)), "matcher_acc": _pct(np.mean(matcher))})
    return records


# ---- writing -------------------------------------------------------------------------------------------


def _cell(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _acc_cell(record: dict, key: str) -> str:
    """``61.2 [58.0, 64.1]``: accuracy and its interval, one decimal; blank when absent."""
    if key not in record or math.isnan(record[key]):
        return ""
    return f"{record[key]:.1f} [{record[key + '_lo']:.1f}, {record[key + '_hi']:.1f}]"


def _markdown(title: str, header: list[str], body: list[list[str]], notes: list[str]) -> str:
    align = ["---" if i < 2 else "---:" for i in range(len(header))]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines + [""] + notes) + "\n"


def _write_csv(path: Path, columns: list[str], records: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: _csv_value(r.get(c)) for c in columns} for r in records)
    return path


def _csv_value(value):
    """Blank for absent values (None, NaN), as in the markdown."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _settings(n_resamples: int, seed: int) -> str:
    return (f"Intervals: 95% percentile bootstrap over questions, {n_resamples} resamples, seed {seed}; "
            "the mean's resamples each benchmark at its own size (stratified).")


def table1_markdown(rows: list[Row], records: list[dict], n_resamples: int, seed: int) -> str:
    benchmarks = present_benchmarks(rows)
    header = ["Model", "Strategy", "Mean Acc."] + [f"{TITLES[b]} {m}" for b in benchmarks for m in ("Acc.", "Tokens")]
    body = [[r["model"], r["strategy"], _acc_cell(r, "mean_acc")]
            + [x for b in benchmarks for x in (_acc_cell(r, f"{b}_acc"), _cell(r.get(f"{b}_tokens"), 0))]
            for r in records]
    notes = ["Accuracy in % (one decimal) with its 95% interval; Tokens: mean tiktoken count of the whole response.",
             "Mean Acc.: size-weighted mean over JAMA, Medbullets and MedQA (lm-eval's weight_by_size group acc); "
             "blank unless all three ran.",
             "Rows \"S maj@K\": majority vote over K sampled responses (the largest K logged); Tokens there are per "
             "sampled response, so the vote spends K times as many.",
             _settings(n_resamples, seed), "The CSV holds unrounded values, interval ends and n per benchmark."]
    return _markdown("Table 1: accuracy and output tokens", header, body, notes)


COMPARISON_COLUMNS = ["a", "b", "benchmark", "benchmarks", "n", "acc_a", "acc_b", "diff", "diff_lo", "diff_hi",
                      "a_only", "b_only", "mcnemar_p"]


def comparisons_markdown(records: list[dict], n_resamples: int, seed: int) -> str:
    header = ["A", "B", "Benchmark", "n", "Acc. A", "Acc. B", "A - B [95% CI]", "A only / B only", "McNemar p"]
    body = [[r["a"], r["b"], r["benchmark"], str(r["n"]), _cell(r["acc_a"]), _cell(r["acc_b"]),
             f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]",
             "" if r["a_only"] is None else f"{r['a_only']} / {r['b_only']}",
             "" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.4g}"] for r in records]
    notes = ["Paired on question id: only questions graded in both runs count. Differences in percentage points; "
             "intervals resample question ids jointly (paired bootstrap), pooled = the shared study benchmarks, "
             "stratified.", _settings(n_resamples, seed),
             "McNemar: exact two-sided binomial test on the discordant questions (A only right vs B only right); "
             "blank when a side is a maj@k row (its per-question values are vote probabilities, not 0/1)."]
    return _markdown("Paired comparisons", header, body, notes)


BREAKDOWN_COLUMNS = ["model", "strategy", "benchmark", "by", "group", "n", "acc", "acc_lo", "acc_hi"]


def breakdowns_markdown(records: list[dict], n_resamples: int, seed: int) -> str:
    header = ["Model", "Strategy", "Benchmark", "By", "Group", "n", "Acc. [95% CI]"]
    body = [[r["model"], r["strategy"], TITLES[r["benchmark"]], r["by"], r["group"], str(r["n"]),
             _acc_cell(r, "acc")] for r in records]
    notes = ["MedQA by USMLE step (meta.step), JAMA by specialty (meta.field; \"(unknown)\" where none was scraped).",
             _settings(n_resamples, seed)]
    return _markdown("Accuracy by difficulty", header, body, notes)


def agreement_markdown(records: list[dict]) -> str:
    lines = ["# Free-form grading: LLM judge vs deterministic matcher", ""]
    for r in records:
        lines.append(f"- {r['model']}, {r['benchmark']}: agreement {r['agreement']:.1f}% on {r['n']} judged answers, "
                     f"Cohen's kappa {_cell(r['kappa'], 3) or 'n/a'} (judge acc {r['judge_acc']:.1f}%, "
                     f"matcher acc {r['matcher_acc']:.1f}%)")
    lines += ["", "Only answers with an extracted final answer that the judge graded without error count "
              "(the samples of lm-eval's matcher_agreement)."]
    return "\n".join(lines) + "\n"


def replay_markdown(records: list[dict], seed: int) -> str:
    header = ["Model", "Strategy", "Benchmark", "n", "maj@K"] + [f"t={t}: {m}" for t in REPORT_THRESHOLDS
                                                                 for m in ("samples", "acc.")]
    body = [[r["model"], r["strategy"], TITLES.get(r["benchmark"], r["benchmark"]), str(r["n"]), _cell(r["maj_acc"])]
            + [x for t in REPORT_THRESHOLDS for x in (_cell(r[f"samples_{t}"]), _cell(r[f"acc_{t}"]))] for r in records]
    notes = ["What adaptive voting would have cost on each maj@K run: Adaptive-Consistency's stopping rule (Beta "
             "criterion, checked every 4 samples as the _adaptive tasks draw them; threshold t = the largest chance "
             "that more samples change the plurality) replayed over random orders of each question's K logged votes.",
             f"samples: expected samples per question (of K); acc.: accuracy in % of the vote where the rule stopped "
             f"(a tie counts 1/t, as maj@K). {scaling.REPLAY_ORDERS} random orders of each question's votes, "
             f"seed {seed}; pooled: every question of the row's benchmarks (size-weighted).",
             "The CSV holds the votes per question (K) and the mean tokens per sampled response (the vote spends "
             "samples x tokens)."]
    return _markdown("Adaptive voting, replayed on the majority-vote runs", header, body, notes)


def make_report(paths: list[Path], output: Path, compare_pairs: list[list[str]] | None = None,
                n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED, echo=print) -> dict[str, Path]:
    """Read the runs under ``paths`` and write every table and figure into ``output``; returns name -> path."""
    from lm_eval_medreason.reporting import figures

    try:
        stats.check_settings(n_resamples)
        np.random.default_rng(seed)  # numpy's own rule for seeds (whole numbers >= 0)
    except (ValueError, TypeError) as err:
        raise ReportError(f"bootstrap settings: {err}") from None
    runs = load_runs(paths)
    rows, notes = build_rows(runs)
    scaled, scaling_notes = scaling_rows(runs)
    notes += scaling_notes
    if not rows and not scaled:
        raise ReportError(f"{', '.join(map(str, paths))}: no medreason tasks in these lm-eval results")
    if not rows:
        notes.append("Table 1 has no rows: these results hold only _adaptive and _budget tasks (see the scaling figure)")
    output.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        written[name] = output / name
        written[name].write_text(content, encoding="utf-8")

    records = table1(rows, n_resamples, seed)
    text("table1.md", table1_markdown(rows, records, n_resamples, seed))
    written["table1.csv"] = _write_csv(output / "table1.csv", table1_columns(rows), records)

    comparisons = [rec for a, b in resolve_pairs(rows, compare_pairs) for rec in compare(a, b, n_resamples, seed)]
    if comparisons:
        text("comparisons.md", comparisons_markdown(comparisons, n_resamples, seed))
        written["comparisons.csv"] = _write_csv(output / "comparisons.csv", COMPARISON_COLUMNS, comparisons)
    else:
        notes.append("no comparisons: no two rows with the same model or strategy share questions (see --compare)")
    by_difficulty = breakdowns(rows, n_resamples, seed)
    if by_difficulty:
        text("breakdowns.md", breakdowns_markdown(by_difficulty, n_resamples, seed))
        written["breakdowns.csv"] = _write_csv(output / "breakdowns.csv", BREAKDOWN_COLUMNS, by_difficulty)
    else:
        notes.append("no breakdowns: no MedQA or JAMA runs")
    agreement = freeform_agreement(rows)
    if agreement:
        text("freeform_agreement.md", agreement_markdown(agreement))
    replayed = scaling.replay(rows, seed)
    if replayed:
        text("adaptive_replay.md", replay_markdown(replayed, seed))
        written["adaptive_replay.csv"] = _write_csv(output / "adaptive_replay.csv", scaling.REPLAY_COLUMNS, replayed)

    drawers = {name: partial(draw, rows, records, n_resamples, seed) for name, draw in figures.FIGURES.items()}
    drawers[figures.SCALING_FIGURE] = partial(figures.figure_scaling, scaling.points(rows, scaled))
    drawn = {}
    for name, draw in drawers.items():
        fig, why = draw()
        if fig is None:
            notes.append(f"skipped {name}: {why}")
            continue
        written[name] = figures.save_png(fig, output / name)
        if getattr(fig, "benchmarks", STUDY_BENCHMARKS) != STUDY_BENCHMARKS:
            notes.append(f"{name}: over {', '.join(TITLES[b] for b in fig.benchmarks)} only (not all of JAMA, "
                         "Medbullets and MedQA ran)")
        drawn[name] = fig
    from lm_eval_medreason.reporting import page

    written["index.html"] = page.write_page(
        output / "index.html", rows, present_benchmarks(rows), records, comparisons, by_difficulty, drawn, notes, n_resamples, seed,
        replayed)
    for note in notes:
        echo(f"note: {note}")
    for name, path in written.items():
        echo(f"wrote {name}: {path}")
    return written
