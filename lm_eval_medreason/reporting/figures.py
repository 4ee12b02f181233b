"""The study's figures as PNG, from the report's rows (see report.py).

Every figure is 8 x 5 inches at 100 dpi, i.e. 800 x 500 pixels, always: figures are
built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state, no GUI
backend) and saved without ``bbox_inches="tight"``, which would change the size;
``layout="constrained"`` keeps legends and labels inside. Each drawer returns
``(path, None)`` or ``(None, why)`` when its data is absent, so the report can say
which figure it skipped and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lm_eval_medreason.reporting import stats
from lm_eval_medreason.reporting.logs import STUDY_BENCHMARKS, TITLES

FIGSIZE = (8, 5)  # inches
DPI = 100  # -> 800 x 500 px
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
_MARKERS = {"vanilla": "o", "cot": "s", "longstep": "^", "longmonolog": "D", "freeform": "P"}


def _short(text: str, width: int = 36) -> str:
    """Long model paths keep their ends: legends stay inside the fixed-size figure."""
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width // 2) :]


def _new() -> Figure:
    return Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list, list | None]], style) -> None:
    """Bars: one cluster per group, one bar per series (label, heights, optional (lo, hi) pairs); NaN = no bar.
    ``style(i)`` gives the i-th series' bar keywords (color, hatch)."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (label, heights, intervals) in enumerate(series):
        heights = np.array(heights, dtype=float)
        errors = None
        if intervals is not None:
            errors = np.array([[h - lo, hi - h] for h, (lo, hi) in zip(heights, intervals)]).T
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(heights), width, label=label, yerr=errors,
               capsize=2, error_kw={"elinewidth": 0.8}, edgecolor="white", linewidth=0.5, **style(i))
    ax.set_xticks(x, groups)


def _colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return lambda i: cmap(i % cmap.N)


def figure2(rows, records, path: Path):
    """Weighted mean accuracy by strategy, one bar per model (the study's Figure 2)."""
    with_mean = [r for r in records if "mean_acc" in r]
    if not with_mean:
        return None, "no (model, strategy) has all of JAMA, Medbullets and MedQA"
    strategies = list(dict.fromkeys(r["strategy"] for r in with_mean))
    models = list(dict.fromkeys(r["model"] for r in with_mean))
    by_key = {(r["model"], r["strategy"]): r for r in with_mean}
    series = []
    for model in models:
        cells = [by_key.get((model, s)) for s in strategies]
        heights = [c["mean_acc"] if c else np.nan for c in cells]
        intervals = [(c["mean_acc_lo"], c["mean_acc_hi"]) if c else (np.nan, np.nan) for c in cells]
        series.append((_short(model), heights, intervals))
    fig = _new()
    ax = fig.add_subplot()
    color = _colors(len(models))
    _grouped_bars(ax, strategies, series, lambda i: {"color": color(i)})
    ax.set_ylabel("mean accuracy (%), size-weighted")
    ax.set_ylim(0, 100)
    ax.set_title("Mean accuracy by strategy (JAMA, Medbullets, MedQA)")
    ax.legend(fontsize="small", title="model", title_fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path), None


def figure3_data(rows) -> list[dict]:
    """Figure 3's points: (tokens, accuracy) per single-answer row, and per maj row its curve over k with
    tokens = k x mean tokens per response and accuracy = size-weighted maj@k; accuracy as a fraction.
    Only rows with all three study benchmarks (the weighted mean needs them)."""
    points = []
    for row in (r for r in rows if r.has_study_benchmarks()):
        if not sum(row.scores(b)[1].size for b in STUDY_BENCHMARKS):
            continue  # every grade missing (all judge errors): no accuracy to plot
        tokens = stats.pooled_mean([row.tasks[b].metrics["output_tokens"] for b in STUDY_BENCHMARKS])
        if not row.maj_k:
            acc = stats.pooled_mean([row.scores(b)[1] for b in STUDY_BENCHMARKS])
            points.append({"model": row.model, "strategy": row.strategy, "k": None, "tokens": tokens, "acc": acc})
            continue
        ks = sorted(set.intersection(*(set(row.tasks[b].maj_ks) for b in STUDY_BENCHMARKS)))
        for k in ks:
            acc = stats.pooled_mean([row.scores(b, f"maj@{k}")[1] for b in STUDY_BENCHMARKS])
            points.append({"model": row.model, "strategy": f"{row.base} maj", "k": k, "tokens": k * tokens, "acc": acc})
    return points


def figure3(rows, records, path: Path):
    """Accuracy against average output tokens per question; maj@k curves at k x tokens per response (Figure 3)."""
    points = figure3_data(rows)
    if not points:
        return None, "no (model, strategy) has all of JAMA, Medbullets and MedQA"
    models = list(dict.fromkeys(p["model"] for p in points))
    n_curves = len({(p["model"], p["strategy"]) for p in points if p["k"] is not None})
    color = _colors(len(models))
    fig = _new()
    ax = fig.add_subplot()
    for m, model in enumerate(models):
        mine = [p for p in points if p["model"] == model]
        for p in (p for p in mine if p["k"] is None):
            ax.scatter(p["tokens"], 100 * p["acc"], color=color(m), marker=_MARKERS.get(p["strategy"], "o"), s=50,
                       label=f"{_short(model)} · {p['strategy']}", zorder=3)
        for strategy in dict.fromkeys(p["strategy"] for p in mine if p["k"] is not None):
            curve = sorted((p for p in mine if p["strategy"] == strategy and p["k"] is not None), key=lambda p: p["k"])
            xs, ys = [p["tokens"] for p in curve], [100 * p["acc"] for p in curve]
            ax.plot(xs, ys, color=color(m), marker=_MARKERS.get(strategy.split()[0], "o"), markersize=4,
                    linestyle="--", label=f"{_short(model)} · {strategy}@k")
            if n_curves <= 3:  # with more, the labels would overlap; the x axis still reads k x tokens
                for p, x, y in zip(curve, xs, ys):
                    ax.annotate(f"k={p['k']}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=6,
                                color=color(m))
    if any(p["k"] for p in points):
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("average output tokens per question (maj@k: k × tokens per response)")
    ax.set_ylabel("mean accuracy (%), size-weighted")
    ax.set_title("Accuracy against inference-time compute")
    ax.legend(fontsize="x-small", loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path), None


def figure5(rows, records, path: Path):
    """Accuracy (left) and average output tokens (right) per benchmark, one bar per (model, strategy) (Figure 5).
    A maj@k row's tokens are per sampled response, as in Table 1."""
    chosen = list(zip(rows, records))
    benchmarks = [b for b in STUDY_BENCHMARKS if any(b in row.tasks for row, _ in chosen)]
    if not benchmarks:
        return None, "no run on JAMA, Medbullets or MedQA"
    titles = [TITLES[b] for b in benchmarks]
    fig = _new()
    acc_ax, tok_ax = fig.subplots(1, 2)
    # colour = strategy, hatch = model: the figure reads "by strategy" within each benchmark
    strategies = list(dict.fromkeys(rec["strategy"] for _, rec in chosen))
    models = list(dict.fromkeys(rec["model"] for _, rec in chosen))
    color = _colors(len(strategies))

    def style(i: int) -> dict:
        rec = chosen[i][1]
        return {"color": color(strategies.index(rec["strategy"])), "hatch": _HATCHES[models.index(rec["model"]) % len(_HATCHES)]}

    labels = [f"{_short(rec['model'], 28)} · {rec['strategy']}" for _, rec in chosen]
    acc = [(label, [rec.get(f"{b}_acc", np.nan) for b in benchmarks],
            [(rec.get(f"{b}_acc_lo", np.nan), rec.get(f"{b}_acc_hi", np.nan)) for b in benchmarks])
           for label, (_, rec) in zip(labels, chosen)]
    tokens = [(label, [rec.get(f"{b}_tokens", np.nan) for b in benchmarks], None) for label, (_, rec) in zip(labels, chosen)]
    _grouped_bars(acc_ax, titles, acc, style)
    _grouped_bars(tok_ax, titles, tokens, style)
    acc_ax.set_ylabel("accuracy (%)")
    acc_ax.set_ylim(0, 100)
    tok_ax.set_ylabel("average output tokens")
    for ax in (acc_ax, tok_ax):
        ax.grid(axis="y", alpha=0.3)
    handles, names = acc_ax.get_legend_handles_labels()
    per_column = 60 + 5 * max(len(n) for n in names)  # pixels of one x-small legend entry, roughly
    fig.legend(handles, names, loc="outside lower center", ncol=max(1, min(len(names), 760 // per_column)), fontsize="x-small")
    fig.suptitle("Accuracy and output tokens per benchmark")
    return _save(fig, path), None


FIGURES = {
    "figure2_mean_accuracy_by_strategy.png": figure2,
    "figure3_accuracy_vs_tokens.png": figure3,
    "figure5_per_benchmark.png": figure5,
}
