"""The `medreason` command: one console script, one subcommand per job."""

import argparse
import dataclasses
import sys
import typing


def _tasks_dir(args: argparse.Namespace) -> int:
    from lm_eval_medreason.resources import tasks_dir

    print(tasks_dir())
    return 0


def _data_validate(args: argparse.Namespace) -> int:
    from lm_eval_medreason.data.loaders import describe, load_file

    cases = load_file(args.benchmark, args.path)
    print(describe(args.benchmark, args.path, cases))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lm_eval_medreason.reporting.report import make_report

    make_report([Path(p) for p in args.results], Path(args.output), args.compare, args.bootstrap, args.seed)
    return 0


def _distill(args: argparse.Namespace) -> int:
    from lm_eval_medreason.distillation import pipeline
    from lm_eval_medreason.errors import DataError, TeacherFatal, scrub

    config = from_arguments(pipeline.DistillConfig, args)
    try:
        teacher = config.teacher()
        if config.dry_run:
            from lm_eval_medreason.distillation.estimate import estimate

            print(estimate(config, teacher, config.price_input, config.price_output))
            return 0
        stats = pipeline.run(config, teacher)
    except KeyboardInterrupt:
        print(f"medreason distill: interrupted; finished items are kept in {config.output} and its .dropped.jsonl; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except TeacherFatal as err:  # the key, the URL or the model: nothing in flight was recorded
        print(f"medreason distill: error: {scrub(str(err))}; the cases not finished stay to do: run the same command "
              "again once fixed", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - one scrubbed line, never a traceback with the key in it
        if isinstance(err, DataError):
            raise DataError(scrub(str(err))) from None
        print(f"medreason distill: error: {scrub(f'{type(err).__name__}: {err}'.splitlines()[0])}", file=sys.stderr)
        return 1
    print(pipeline.format_stats(stats, config.output), file=sys.stderr)
    return 0


DISTILL_HELP = """\
Distill long reasoning traces from a teacher model through any OpenAI-compatible API
(OPENAI_API_KEY; --base-url for other servers) into SFT data:

  medreason distill --input medqa-train --style longmonolog --model o1-preview \\
      --output data/longmonolog.jsonl --concurrency 32

OUTPUT gets one JSON line per kept trace: {id, source_id, messages: [user, assistant], meta};
the user turn is the evaluation prompt of the same style (prompts/eval_STYLE.j2), the
assistant turn the teacher's trace ending "The answer is (X).". OUTPUT.dropped.jsonl gets one
line per dropped case with its reason (wrong_answer, no_answer, empty, too_short, length,
content_filter, duplicate, contaminated: final verdicts). Lines are written as they arrive;
a killed run resumes where it stopped when run again with the same arguments (Ctrl-C stops
cleanly, exit 130).

Exactly once: a case is kept at most once per OUTPUT, whatever the settings; a second run on
the same OUTPUT refuses at once (OUTPUT.lock). A request that still fails after the retries
(server or transport errors) is written with "final": false and asked again by the next run.
A refused key, permission, URL or model (HTTP 401, 403, 404) stops the run at once with exit
1, recording nothing for the cases in flight: fix it and run the same command again. A re-run
with another --model, --style, --template, --max-tokens, --temperature or --system on an
OUTPUT whose dropped cases were asked with the old ones refuses, naming the change: add
--retry-dropped to ask the dropped cases again (kept ones never are), or use a new --output.
"""


REPORT_HELP = """\
Read lm-eval's outputs (results_<time>.json with its samples_<task>_<time>.jsonl from
`lm_eval ... --output_path OUT --log_samples`) and write into --output:
  table1.md, table1.csv    one row per (model, strategy): size-weighted mean accuracy over
                           {study}, and per benchmark accuracy and average
                           output tokens; accuracy in % with a 95% bootstrap interval
  comparisons.md/.csv      paired comparisons (see --compare): accuracy difference with a
                           paired-bootstrap interval and McNemar's exact p, joined on question id
  breakdowns.md/.csv       accuracy by {breakdowns}
  freeform_agreement.md    LLM judge vs matcher agreement (free-form runs graded by a judge)
  adaptive_replay.md/.csv  per `_maj` run, what adaptive voting would have cost: expected
                           samples per question and accuracy per stopping threshold, the
                           rule replayed over random orders of the logged votes
  figure2_mean_accuracy_by_strategy.png, figure3_accuracy_vs_tokens.png,
  figure5_per_benchmark.png, figure3b_scaling_curves.png (accuracy against tokens per
  question of the `_budget` curves, `_maj` vote curves and `_adaptive` points, per benchmark)
                           (800 x 500 px; skipped with a note when their data is absent)
  index.html               all of it on one page, with a browser over every response

A run is one results file and its samples; a folder may hold several. Rows are named by
the model (model_args pretrained/model, plus "+ADAPTER" for PEFT) and the strategy of the
task (vanilla, cot, longstep, longmonolog, freeform); a `_maj` run is the row
"STRATEGY maj@K" at its largest K. `_adaptive` and `_budget` runs are not rows of Table 1
(nor compared): they are drawn in figure3b. If a benchmark of a row was run more than
once, the latest run counts. Tasks that are not this package's are ignored with a note.

Exit status 1 with one line naming the folder or file when a folder holds no results,
a results file is not valid JSON, or a task's samples log is missing or truncated; exit
status 2 with one line naming the option, before anything is read, for a bad option
(--bootstrap below 1, a negative or fractional --seed).
"""


class OneLineErrors(argparse.ArgumentParser):
    """A bad option is one line naming it, exit 2, before anything is read (argparse prints the usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from lm_eval_medreason import __version__

    parser = OneLineErrors(
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
        description=_report_help(),
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
        type=_bounded(int, 1),
        default=1000,
        metavar="N",
        help="bootstrap resamples for every interval (percentile method, 95%%; at least 1, default 1000)",
    )
    report.add_argument("--seed", type=_bounded(int, 0), default=0,
                        help="seed of the bootstrap resampling (a whole number >= 0, numpy's rule; default 0)")
    report.set_defaults(run=_report)

    add_distill_parser(commands)
    add_audit_parser(commands)
    # Listed here for --help only: main() hands `train` its own arguments, since any SFTConfig field is one.
    commands.add_parser("train", add_help=False, help="fine-tune a student on distilled traces (TRL SFT + LoRA + "
                        "DeepSpeed ZeRO-3 through accelerate); medreason train --help for its options")
    return parser


def _bounded(kind, low=None, high=None, above=False):
    """An argparse type: a number of ``kind`` (int or float) at least ``low`` (above it when ``above``), at most
    ``high``; anything else is a one-line error naming the flag (argparse adds it)."""
    name = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if above else value < low):
            least = "above" if above else "of at least"
            raise argparse.ArgumentTypeError(f"{text} is too small: give {name} {least} {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} is too large: give {name} of at most {high}")
        return value

    return parse


def add_distill_parser(commands) -> None:
    """The `distill` subcommand: one option per field of ``DistillConfig`` (every number is checked here, at parse
    time)."""
    from lm_eval_medreason.distillation.pipeline import DistillConfig, Options

    d = commands.add_parser(
        "distill", help="distill LongStep/LongMonolog traces from a teacher model into SFT JSONL",
        description=DISTILL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="medreason distill --input INPUT --output OUTPUT --model MODEL [options]",
    )
    add_arguments(d.add_argument_group("input, output and filters"), Options)
    add_arguments(d.add_argument_group("teacher and API"), DistillConfig, skip=Options)
    d.set_defaults(run=_distill)


def add_arguments(parser, config, skip=None) -> None:
    """One option per field of the dataclass ``config`` (but those of the dataclass ``skip``), in field order, as
    transformers' HfArgumentParser builds them (without needing transformers, which only the train extra installs).

    The option is ``--field-name`` (``metadata["flag"]`` if set), of the field's type, with its default; a field
    without one is required. A bool is a switch that flips its default (``--no-...`` flags name their field).
    The metadata gives ``help``, ``choices``, ``metavar``, a ``type`` that reads the text, and the bounds of a
    number: ``min`` (at least), ``above`` (greater than), ``max`` (at most).
    """
    hints = typing.get_type_hints(config)
    skipped = {item.name for item in dataclasses.fields(skip)} if skip else set()
    for item in dataclasses.fields(config):
        if item.name in skipped:
            continue
        spec = dict(item.metadata)
        flag = spec.pop("flag", "--" + item.name.replace("_", "-"))
        low, above, high = (spec.pop(key, None) for key in ("min", "above", "max"))
        kind = next(t for t in typing.get_args(hints[item.name]) or [hints[item.name]] if t is not type(None))
        options = {"dest": item.name, "help": spec.pop("help").replace("%", "%%"), **spec}
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = item.default_factory() if item.default is dataclasses.MISSING else item.default
        if kind is bool:
            options["action"] = "store_false" if options.get("default") else "store_true"
        else:
            if "choices" not in options:  # named after the flag, not the field
                options.setdefault("metavar", flag.lstrip("-").replace("-", "_").upper())
            if low is not None or above is not None or high is not None:
                options.setdefault("type", _bounded(kind, above if low is None else low, high, above is not None))
            options.setdefault("type", kind)
        parser.add_argument(flag, **options)


def from_arguments(config, args: argparse.Namespace):
    """The dataclass ``config`` from the options ``add_arguments`` parsed."""
    return config(**{item.name: getattr(args, item.name) for item in dataclasses.fields(config)})


AUDIT_HELP = """\
Check the grader on your own model in a minute. For every multiple-choice task of every run
under RESULTS_DIR (lm_eval --output_path with --log_samples), print how many responses each
rule of the answer reader read (phrase: "The answer is (C)"; text: an option named by its
text; final_line: a bare letter or option line at the end or start; none: no answer), then a
reproducible random sample of the responses with no answer and of those read from an option's
text, with the span the grader read marked >>>like this<<< (highlighted on a terminal).
"""


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lm_eval_medreason.reporting.audit import run_audit

    color = {"always": True, "never": False}.get(args.color, sys.stdout.isatty())
    print(run_audit([Path(p) for p in args.results], args.samples, args.seed, color))
    return 0


def add_audit_parser(commands) -> None:
    """The `audit` subcommand's options."""
    audit = commands.add_parser("audit", help="how the grader read each response: counts by rule and samples to check",
                                description=AUDIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                       help="lm_eval --output_path folders, model subfolders in them, or results_*.json files")
    audit.add_argument("--samples", "-k", type=_bounded(int, 0), default=5, metavar="K",
                       help="responses shown per sampled rule (no answer; read from an option's text) per task (default 5)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0): the same seed shows "
                       "the same responses")
    audit.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="highlight the span with terminal colours (auto: when printing to a terminal)")
    audit.set_defaults(run=_audit)


def _benchmark_names() -> list[str]:
    from lm_eval_medreason.data.registry import BENCHMARKS

    return sorted(BENCHMARKS)


def _report_help() -> str:
    """REPORT_HELP with the registry's study benchmarks and breakdown fields (one per task folder)."""
    from lm_eval_medreason.data.registry import BENCHMARKS

    titles = [b.title for b in BENCHMARKS.values() if b.in_study]
    folders = {}
    for b in BENCHMARKS.values():
        if b.breakdown:
            folders.setdefault(b.folder, f"{b.title} {b.breakdown}")
    return REPORT_HELP.format(study=f"{', '.join(titles[:-1])} and {titles[-1]}", breakdowns=", ".join(folders.values()))


def main(argv: list[str] | None = None) -> int:
    from lm_eval_medreason.errors import DataError, ReportError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from lm_eval_medreason.finetuning.launcher import main as train

        return train(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, ReportError) as err:
        print(f"medreason: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
