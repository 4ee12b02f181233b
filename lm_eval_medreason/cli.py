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
    return parser


def _benchmark_names() -> list[str]:
    from lm_eval_medreason.loaders import BENCHMARKS

    return sorted(BENCHMARKS)


def main(argv: list[str] | None = None) -> int:
    from lm_eval_medreason.loaders import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DataError as err:
        print(f"medreason: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
