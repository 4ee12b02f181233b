"""The `medreason` command: one console script, one subcommand per job."""

import argparse
import sys


def _tasks_dir(args: argparse.Namespace) -> int:
    from lm_eval_medreason.resources import tasks_dir

    print(tasks_dir())
    return 0


def _data_validate(args: argparse.Namespace) -> int:
    from lm_eval_medreason.loaders import describe, load_file

    cases = load_file(args.benchmark, args.path)
    print(describe(args.benchmark, args.path, cases))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lm_eval_medreason.report import make_report

    make_report([Path(p) for p in args.results], Path(args.output), args.compare, args.bootstrap, args.seed)
    return 0


REPORT_HELP = """\
Read lm-eval's outputs (results_<time>.json with its samples_<task>_<time>.jsonl from
`lm_eval ... --output_path OUT --log_samples`) and write into --output:
  table1.md, table1.csv    one row per (model, strategy): size-weighted mean accuracy over
                           JAMA, Medbullets and MedQA, and per benchmark accuracy and average
                           output tokens; accuracy in %% with a 95%% bootstrap interval
  comparisons.md/.csv      paired comparisons (see --compare): accuracy difference with a
                           paired-bootstrap interval and McNemar's exact p, joined on question id
  breakdowns.md/.csv       accuracy by MedQA USMLE step and by JAMA specialty
  freeform_agreement.md    LLM judge vs matcher agreement (free-form runs graded by a judge)
  figure2_mean_accuracy_by_strategy.png, figure3_accuracy_vs_tokens.png,
  figure5_per_benchmark.png   (800 x 500 px; skipped with a note when their data is absent)

A run is one results file and its samples; a folder may hold several. Rows are named by
the model (model_args pretrained/model, plus "+ADAPTER" for PEFT) and the strategy of the
task (vanilla, cot, longstep, longmonolog, freeform); a `_maj` run is the row
"STRATEGY maj@K" at its largest K. If a benchmark of a row was run more than once, the
latest run counts. Tasks that are not this package's are ignored with a note.

Exit status 1 with one line naming the folder or file when a folder holds no results,
a results file is not valid JSON, or a task's samples log is missing or truncated.
"""


def build_parser() -> argparse.ArgumentParser:
    from lm_eval_medreason import __version__

    parser = argparse.ArgumentParser(
        prog="medreason",
        description="Inference-time scaling for medical reasoning on top of lm-evaluation-harness.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = commands.add_parser(
        "tasks-dir",
        help="print the folder of this package's lm-eval tasks (for lm_eval --include_path)",
        description="Print the folder of this package's lm-eval task YAML, e.g. "
        'lm_eval --include_path "$(medreason tasks-dir)" --tasks medqa_cot ...',
    )
    tasks.set_defaults(run=_tasks_dir)

    data = commands.add_parser("data", help="check benchmark files", description="Check benchmark files.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    validate = data_commands.add_parser(
        "validate",
        help="validate a benchmark file and print its counts and gold-letter distribution",
        description="Load a benchmark file with the package's loader, check every row (non-empty question, "
        "at least two options, answer_idx among the option letters, answer text equal to that option, "
        "unique ids, UTF-8) and print counts and the gold-letter distribution. Exits 1 with one line "
        "naming the file and row on the first bad row.",
    )
    validate.add_argument(
        "--benchmark",
        required=True,
        choices=_benchmark_names(),
        help="which loader reads the file (its source format)",
    )
    validate.add_argument("path", help="the file to check, in the benchmark's upstream format")
    validate.set_defaults(run=_data_validate)

    report = commands.add_parser(
        "report",
        help="Table 1, figures, paired comparisons and breakdowns from lm_eval --log_samples outputs",
        description=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS_DIR",
        help="lm_eval --output_path folders, model subfolders in them, or results_*.json files (searched recursively)",
    )
    report.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write the report into (created)")
    report.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help='compare row A with row B, each named MODEL/STRATEGY as in Table 1 (e.g. "Qwen/Qwen2.5-7B-Instruct/cot" '
        '"Qwen/Qwen2.5-7B-Instruct/cot maj@32"); repeat for more pairs. Error if A and B share no question ids. '
        "Default: every pair of rows with the same model or the same strategy that share questions",
    )
    report.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for every interval (percentile method, 95%%; default 1000)",
    )
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    report.set_defaults(run=_report)
    return parser


def _benchmark_names() -> list[str]:
    from lm_eval_medreason.loaders import BENCHMARKS

    return sorted(BENCHMARKS)


def main(argv: list[str] | None = None) -> int:
    from lm_eval_medreason.loaders import DataError
    from lm_eval_medreason.results import ReportError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, ReportError) as err:
        print(f"medreason: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
