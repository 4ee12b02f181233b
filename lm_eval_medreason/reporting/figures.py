"""The study's figures, from the report's rows (see report.py): PNG files, and SVG for the HTML page.

Every figure is 8 x 5 inches at 100 dpi, i.e. 800 x 500 pixels, always: figures are
built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state, no GUI
backend) and saved without ``bbox_inches="tight"``, which would change the size;
``layout="constrained"`` keeps legends and labels inside. Each drawer returns
``(figure, None)`` or ``(None, why)`` when its data is absent, so the report can say
which figure it skipped and why. Every bar and point gets an SVG id (``gid``) whose
tooltip (``figure.titles``) names its run, written into the SVG as a ``<title>``.

The mean-accuracy figures (2 and 3) pool the study's three benchmarks when some row
ran all three; otherwise the benchmarks present (``mean_benchmarks``), and they say which.
The scaling figure (3b, ``figure_scaling``) is drawn per benchmark from ``scaling.points``
(the ``_budget`` and ``_adaptive`` runs are not Table 1 rows) and says so in its caption.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from lm_eval_medreason.reporting import stats
from lm_eval_medreason.reporting.logs import STUDY_BENCHMARKS, TITLES
from lm_eval_medreason.reporting.scaling import point_label

FIGSIZE = (8, 5)  # inches
DPI = 100  # -> 800 x 500 px
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
_MARKERS = {"vanilla": "o", "cot": "s", "longstep": "^", "longmonolog": "D", "freeform": "P"}


def _short(text: str, width: int = 36) -> str:
    """Long model paths keep their ends: legends stay inside the fixed-size figure."""
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width // 2) :]


def _new() -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    fig.titles = {}  # SVG gid -> tooltip naming the run
    return fig


def _name(fig: Figure, artist, title: str) -> None:
    gid = f"pt{len(fig.titles)}"
    artist.set_gid(gid)
    fig.titles[gid] = title


def save_png(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png")
    return path


def svg(fig: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element: text kept as text, ids salted per figure (several share one
    page), each named artist with a ``<title>`` tooltip."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    for gid, title in fig.titles.items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{salt}-{gid}" class="point"><title>{html.escape(title)}</title>', 1)
    return re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1', text, count=1)


def mean_benchmarks(rows) -> tuple[str, ...]:
    """The benchmarks the mean-accuracy figures pool: the study's three when some row ran all three, else the
    study benchmarks every row that ran any shares (else those of the most rows), in Table 1 order."""
    if any(row.has_study_benchmarks() for row in rows):
        return STUDY_BENCHMARKS
    sets = [frozenset(b for b in STUDY_BENCHMARKS if b in row.tasks) for row in rows]
    sets = [s for s in sets if s]
    if not sets:
        return ()
    common = frozenset.intersection(*sets) or Counter(sets).most_common(1)[0][0]
    return tuple(b for b in STUDY_BENCHMARKS if b in common)


def _which(benchmarks) -> str:
    return ", ".join(TITLES[b] for b in benchmarks)


def _has(row, benchmarks) -> bool:
    return all(b in row.tasks for b in benchmarks) and sum(row.scores(b)[1].size for b in benchmarks) > 0


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list, list | None]], style, fig=None, unit="") -> None:
    """Bars: one cluster per group, one bar per series (label, heights, optional (lo, hi) pairs); NaN = no bar.
    ``style(i)`` gives the i-th series' bar keywords (color, hatch); each bar is named on ``fig`` for its tooltip."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (label, heights, intervals) in enumerate(series):
        heights = np.array(heights, dtype=float)
        errors = None
        if intervals is not None:
            errors = np.array([[h - lo, hi - h] for h, (lo, hi) in zip(heights, intervals)]).T
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(heights), width, label=label, yerr=errors,
                      capsize=2, error_kw={"elinewidth": 0.8}, edgecolor="white", linewidth=0.5, **style(i))
        if fig is not None:
            for g, (bar, h) in enumerate(zip(bars, heights)):
                if not np.isnan(h):
                    interval = f" [{intervals[g][0]:.1f}, {intervals[g][1]:.1f}]" if intervals is not None else ""
                    _name(fig, bar, f"{label} · {groups[g]}: {h:.1f}{unit}{interval}")
    ax.set_xticks(x, groups)


def _colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return lambda i: cmap(i % cmap.N)


def figure2(rows, records, n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED):
    """Size-weighted mean accuracy by strategy, one bar per model (the study's Figure 2), over ``mean_benchmarks``."""
    benchmarks = mean_benchmarks(rows)
    chosen = [(row, rec) for row, rec in zip(rows, records) if benchmarks and _has(row, benchmarks)]
    if not chosen:
        return None, "no (model, strategy) has a graded answer on JAMA, Medbullets or MedQA"
    strategies = list(dict.fromkeys(rec["strategy"] for _, rec in chosen))
    models = list(dict.fromkeys(rec["model"] for _, rec in chosen))
    by_key = {}
    for row, rec in chosen:
        strata = [row.scores(b)[1] for b in benchmarks]
        lo, hi = stats.bootstrap_ci(strata, n_resamples, seed)
        by_key[(rec["model"], rec["strategy"])] = (100 * stats.pooled_mean(strata), 100 * lo, 100 * hi)
    series = []
    for model in models:
        cells = [by_key.get((model, s)) for s in strategies]
        series.append((_short(model), [c[0] if c else np.nan for c in cells],
                       [(c[1], c[2]) if c else (np.nan, np.nan) for c in cells]))
    fig = _new()
    ax = fig.add_subplot()
    color = _colors(len(models))
    _grouped_bars(ax, strategies, series, lambda i: {"color": color(i)}, fig, "%")
    ax.set_ylabel("mean accuracy (%), size-weighted")
    ax.set_ylim(0, 100)
    ax.set_title(f"Mean accuracy by strategy ({_which(benchmarks)})")
    ax.legend(fontsize="small", title="model", title_fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.benchmarks = benchmarks
    return fig, None


def figure3_data(rows, benchmarks: tuple[str, ...] | None = None) -> list[dict]:
    """Figure 3's points: (tokens, accuracy) per single-answer row, and per maj row its curve over k with
    tokens = k x mean tokens per response and accuracy = size-weighted maj@k; accuracy as a fraction.
    Only rows with all of ``benchmarks`` (default ``mean_benchmarks(rows)``: the weighted mean needs them)."""
    benchmarks = mean_benchmarks(rows) if benchmarks is None else benchmarks
    points = []
    for row in (r for r in rows if benchmarks and all(b in r.tasks for b in benchmarks)):
        if not sum(row.scores(b)[1].size for b in benchmarks):
            continue  # every grade missing (all judge errors): no accuracy to plot
        tokens = stats.pooled_mean([row.tasks[b].metrics["output_tokens"] for b in benchmarks])
        if not row.maj_k:
            acc = stats.pooled_mean([row.scores(b)[1] for b in benchmarks])
            points.append({"model": row.model, "strategy": row.strategy, "k": None, "tokens": tokens, "acc": acc})
            continue
        ks = sorted(set.intersection(*(set(row.tasks[b].maj_ks) for b in benchmarks)))
        for k in ks:
            acc = stats.pooled_mean([row.scores(b, f"maj@{k}")[1] for b in benchmarks])
            points.append({"model": row.model, "strategy": f"{row.base} maj", "k": k, "tokens": k * tokens, "acc": acc})
    return points


def figure3(rows, records, n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED):
    """Accuracy against average output tokens per question; maj@k curves at k x tokens per response (Figure 3)."""
    benchmarks = mean_benchmarks(rows)
    points = figure3_data(rows, benchmarks)
    if not points:
        return None, "no (model, strategy) has a graded answer on JAMA, Medbullets or MedQA"
    models = list(dict.fromkeys(p["model"] for p in points))
    n_curves = len({(p["model"], p["strategy"]) for p in points if p["k"] is not None})
    color = _colors(len(models))
    fig = _new()
    ax = fig.add_subplot()

    def name(artist, p):
        k = f"@{p['k']}" if p["k"] else ""
        _name(fig, artist, f"{p['model']} · {p['strategy']}{k}: {100 * p['acc']:.1f}% at {p['tokens']:.0f} tokens")

    for m, model in enumerate(models):
        mine = [p for p in points if p["model"] == model]
        for p in (p for p in mine if p["k"] is None):
            name(ax.scatter(p["tokens"], 100 * p["acc"], color=color(m), marker=_MARKERS.get(p["strategy"], "o"), s=50,
                            label=f"{_short(model)} · {p['strategy']}", zorder=3), p)
        for strategy in dict.fromkeys(p["strategy"] for p in mine if p["k"] is not None):
            curve = sorted((p for p in mine if p["strategy"] == strategy and p["k"] is not None), key=lambda p: p["k"])
            xs, ys = [p["tokens"] for p in curve], [100 * p["acc"] for p in curve]
            marker = _MARKERS.get(strategy.split()[0], "o")
            ax.plot(xs, ys, color=color(m), marker=marker, markersize=4, linestyle="--",
                    label=f"{_short(model)} · {strategy}@k")
            for p, x, y in zip(curve, xs, ys):  # one named marker per point, for its tooltip
                name(ax.scatter(x, y, color=color(m), marker=marker, s=16, zorder=3), p)
            if n_curves <= 3:  # with more, the labels would overlap; the x axis still reads k x tokens
                for p, x, y in zip(curve, xs, ys):
                    ax.annotate(f"k={p['k']}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=6,
                                color=color(m))
    if any(p["k"] for p in points):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("average output tokens per question (maj@k: k × tokens per response)")
    ax.set_ylabel("mean accuracy (%), size-weighted")
    ax.set_title(f"Accuracy against inference-time compute ({_which(benchmarks)})")
    ax.legend(fontsize="x-small", loc="best")
    ax.grid(alpha=0.3)
    fig.benchmarks = benchmarks
    return fig, None


def figure5(rows, records, n_resamples: int = stats.N_RESAMPLES, seed: int = stats.SEED):
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
    _grouped_bars(acc_ax, titles, acc, style, fig, "%")
    _grouped_bars(tok_ax, titles, tokens, style, fig, " tokens")
    acc_ax.set_ylabel("accuracy (%)")
    acc_ax.set_ylim(0, 100)
    tok_ax.set_ylabel("average output tokens")
    for ax in (acc_ax, tok_ax):
        ax.grid(axis="y", alpha=0.3)
    handles, names = acc_ax.get_legend_handles_labels()
    per_column = 60 + 5 * max(len(n) for n in names)  # pixels of one x-small legend entry, roughly
    fig.legend(handles, names, loc="outside lower center", ncol=max(1, min(len(names), 760 // per_column)), fontsize="x-small")
    fig.suptitle("Accuracy and output tokens per benchmark")
    return fig, None


FIGURES = {
    "figure2_mean_accuracy_by_strategy.png": figure2,
    "figure3_accuracy_vs_tokens.png": figure3,
    "figure5_per_benchmark.png": figure5,
}

# The scaling figure (drawn from ``scaling.points``, not from Table 1's rows): Figure 3 completed.
SCALING_FIGURE = "figure3b_scaling_curves.png"
_MODES = {  # how each kind of point is drawn: line style, marker, marker size, legend text
    "budget": ("-", "o", 24, "budget forcing at B (and the full budget)"),
    "maj": ("--", "s", 16, "majority vote of k samples"),
    "adaptive": ("none", "*", 140, "adaptive vote"),
}


def figure_scaling(points: list[dict]):
    """Accuracy against mean output tokens per question, one panel per benchmark with an ``_adaptive`` or
    ``_budget`` run: per (model, strategy) one colour, its budget curve, maj@k curve and adaptive point."""
    if not any(p["mode"] != "maj" for p in points):
        return None, "no _adaptive or _budget run (figure 3 has the maj@k curves)"
    benchmarks = list(dict.fromkeys(p["benchmark"] for p in points))
    series = list(dict.fromkeys((p["model"], p["strategy"]) for p in points))
    color = _colors(len(series))
    fig = _new()
    columns = min(len(benchmarks), 3)
    axes = np.atleast_1d(fig.subplots((len(benchmarks) + columns - 1) // columns, columns, sharey=True)).ravel()
    for ax in axes[len(benchmarks):]:
        ax.set_visible(False)
    for ax, benchmark in zip(axes, benchmarks):
        for (model, strategy), mode in ((s, m) for s in series for m in _MODES):
            line = sorted((p for p in points if (p["benchmark"], p["model"], p["strategy"], p["mode"])
                           == (benchmark, model, strategy, mode)), key=lambda p: p["tokens"])
            if not line:
                continue
            c = color(series.index((model, strategy)))
            style, marker, size, _ = _MODES[mode]
            xs, ys = [p["tokens"] for p in line], [100 * p["acc"] for p in line]
            if style != "none":
                ax.plot(xs, ys, color=c, linestyle=style, linewidth=1.2)
            for p, x, y in zip(line, xs, ys):  # one named marker per point, for its tooltip
                _name(fig, ax.scatter(x, y, color=c, marker=marker, s=size, zorder=3),
                      f"{model} · {strategy} {point_label(p)} · {TITLES[benchmark]}: {y:.1f}% at {x:.0f} tokens")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_title(TITLES[benchmark], fontsize="medium")
        ax.set_xlabel("mean output tokens per question", fontsize="small")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    handles = [Line2D([], [], color=color(i), linewidth=4) for i in range(len(series))]
    names = [f"{_short(model, 28)} · {strategy}" for model, strategy in series]
    present = [m for m in _MODES if any(p["mode"] == m for p in points)]
    handles += [Line2D([], [], color="0.4", linestyle=_MODES[m][0] if _MODES[m][0] != "none" else "",
                       marker=_MODES[m][1], markersize=8 if m == "adaptive" else 5) for m in present]
    names += [_MODES[m][3] for m in present]
    per_column = 60 + 5 * max(len(n) for n in names)  # pixels of one x-small legend entry, roughly
    fig.legend(handles, names, loc="outside lower center", ncol=max(1, min(len(names), 760 // per_column)),
               fontsize="x-small")
    fig.suptitle("Accuracy against inference-time compute: budget forcing, majority vote, adaptive vote")
    fig.caption = ("One panel per benchmark with an _adaptive or _budget run. Budget: the response cut at B tokens "
                   "and forced to answer (x: tokens written within B), and at the full budget; maj@k: the vote of k "
                   "sampled responses (x: k × mean tokens per response); adaptive: the vote of the samples the "
                   "stopping rule drew (x: their tokens per question).")
    return fig, None
