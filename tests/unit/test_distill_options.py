"""`medreason distill`'s options are one dataclass, DistillConfig: the parser is built from its fields and parses
straight into it, what depends on other options is a property, and nothing is set on it afterwards."""

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lm_eval_medreason.cli import OneLineErrors, add_arguments, build_parser, from_arguments, main
from lm_eval_medreason.distillation.batch import BatchTeacher
from lm_eval_medreason.distillation.pipeline import DistillConfig, Options
from lm_eval_medreason.distillation.teacher import Teacher

REQUIRED = ["--input", "cases.jsonl", "--output", "out/o.jsonl", "--model", "gpt-4o"]
# Every flag `medreason distill` had when its options were 60 lines of add_argument: none may go or be renamed.
FLAGS = {
    "--input", "--output", "--style", "--model", "--base-url", "--template", "--expand-template", "--system",
    "--concurrency", "--processes", "--http-client", "--rpm", "--tpm", "--max-retries", "--timeout", "--max-tokens",
    "--temperature", "--reasoning-model", "--min-tokens", "--data-dir", "--eval-benchmarks",
    "--contamination-threshold", "--no-contamination-check", "--limit", "--batch", "--batch-poll-interval",
    "--batch-max-requests", "--retry-dropped", "--dry-run", "--price-input", "--price-output", "--no-fsync",
    "--no-progress",
}


def parse(*extra: str, model: str = "gpt-4o") -> DistillConfig:
    argv = ["distill", *REQUIRED[:-1], model, *extra]
    return from_arguments(DistillConfig, build_parser().parse_args(argv))


def distill_help(capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: help texts are not wrapped
    with pytest.raises(SystemExit) as exit:
        main(["distill", "--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out


def test_every_flag_is_kept_and_is_one_field(capsys, monkeypatch):
    text = distill_help(capsys, monkeypatch)
    assert set(re.findall(r"^  (--[a-z-]+)", text, re.M)) == FLAGS
    assert len(dataclasses.fields(DistillConfig)) == len(FLAGS)
    for item in dataclasses.fields(DistillConfig):  # the help a field carries is the help its flag shows
        assert " ".join(item.metadata["help"].split()) in text, item.name
    assert 'may {% include "question.j2" %}' in text  # a % in a field's help is shown as written


def test_the_defaults_are_the_dataclass_defaults():
    config = parse()
    assert config == DistillConfig(input="cases.jsonl", output=Path("out/o.jsonl"), model="gpt-4o")
    assert (config.style, config.concurrency, config.processes, config.http_client, config.max_retries) == (
        "longstep", 16, 1, "aiohttp", 5)
    assert (config.rpm, config.tpm, config.timeout, config.batch_poll_interval) == (0, 0, 600, 30)
    assert config.threshold == 0.5
    assert config.batch_max_requests == 50_000 and config.max_tokens is None and config.min_tokens is None
    assert config.contamination and config.fsync and config.progress
    assert not (config.batch or config.dry_run or config.retry_dropped or config.reasoning_model)
    assert config.metadata == {} and config.template is None and config.limit is None


def test_switches_lists_and_paths_land_on_their_fields():
    config = parse("--no-contamination-check", "--no-fsync", "--no-progress", "--retry-dropped", "--dry-run",
                   "--eval-benchmarks", " medqa, ,jama ", "--data-dir", "/data", "--contamination-threshold", "1",
                   "--template", "t.j2", "--expand-template", "e.j2", "--limit", "7", "--min-tokens", "0",
                   "--price-input", "1.5", "--price-output", "0")
    assert not (config.contamination or config.fsync or config.progress)
    assert config.retry_dropped and config.dry_run
    assert config.eval_benchmarks == ("medqa", "jama")
    assert config.metadata == {"data_dir": "/data"}
    assert config.threshold == 1.0 and config.limit == 7 and config.min_tokens == 0
    assert (config.template, config.expand_template, config.output) == (Path("t.j2"), Path("e.j2"), Path("out/o.jsonl"))
    assert (config.price_input, config.price_output) == (1.5, 0.0)
    assert parse("--data-dir", "").metadata == {} and parse("--eval-benchmarks", "").eval_benchmarks == ()


@pytest.mark.parametrize(("model", "extra", "budget", "reasoning"), [
    ("gpt-4o", [], 4096, False),
    ("gpt-4o", ["--style", "longmonolog"], 8192, False),
    ("gpt-4o", ["--style", "cot"], 2048, False),
    ("o1-preview", [], 32768, True),
    ("openai/o3-mini", ["--style", "cot"], 32768, True),
    ("gpt-4o", ["--reasoning-model"], 32768, True),
    ("o1-preview", ["--max-tokens", "123"], 123, True),
    ("gpt-4o", ["--max-tokens", "99", "--style", "longmonolog"], 99, False),
])
def test_the_budget_and_reasoning_are_derived_from_the_options(model, extra, budget, reasoning):
    config = parse("--temperature", "0.3", *extra, model=model)
    teacher = config.teacher()
    assert (config.completion_budget, config.reasoning) == (budget, reasoning)
    assert (teacher.max_tokens, teacher.reasoning) == (budget, reasoning)
    assert teacher.temperature == (None if reasoning else 0.3)  # never sent to a reasoning model
    assert config.max_tokens == (int(extra[1]) if "--max-tokens" in extra else None)  # the option itself unchanged


def test_the_live_teacher_gets_every_setting():
    config = parse("--base-url", "http://host/v1", "--system", "be brief", "--concurrency", "3", "--processes", "2",
                   "--http-client", "httpx", "--rpm", "60", "--tpm", "1000.5", "--max-retries", "0",
                   "--timeout", "1.5", "--style", "longmonolog")
    teacher = config.teacher()
    assert type(teacher) is Teacher
    assert (teacher.model, teacher.base_url, teacher.system, teacher.http_client) == (
        "gpt-4o", "http://host/v1", "be brief", "httpx")
    assert (teacher.concurrency, teacher.processes, teacher.rpm, teacher.tpm) == (3, 2, 60.0, 1000.5)
    assert (teacher.max_retries, teacher.timeout, teacher.expected_completion) == (0, 1.5, 1223)  # the study's mean


def test_the_batch_teacher_gets_its_settings():
    teacher = parse("--batch", "--concurrency", "4", "--batch-poll-interval", "0.5", "--batch-max-requests", "9",
                    "--style", "cot").teacher()
    assert type(teacher) is BatchTeacher
    assert teacher.concurrency == 10**9  # every pending case asks at once: --concurrency does not apply
    assert teacher.state_path == Path("out/o.jsonl.batches.json")
    assert (teacher.poll_interval, teacher.max_batch_requests, teacher.max_tokens) == (0.5, 9, 2048)


def test_options_are_never_patched_after_construction():
    config = parse()
    for name, value in (("max_tokens", 1), ("reasoning", True), ("metadata", {})):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Options(input="x", output=Path("o")).threshold = 0.9


@dataclass
class Toy:
    name: str = field(metadata={"help": "who"})
    count: int = field(default=2, metadata={"min": 1, "help": "how many (100% sure)"})
    ratio: float | None = field(default=None, metadata={"above": 0, "max": 1, "help": "a share"})
    loud: bool = field(default=False, metadata={"help": "shout"})
    keep: bool = field(default=True, metadata={"flag": "--no-keep", "help": "throw it away"})
    tags: tuple = field(default=("a",), metadata={"type": lambda text: tuple(text.split("+")), "help": "tags"})


def toy_parser() -> OneLineErrors:
    parser = OneLineErrors(prog="toy")
    add_arguments(parser, Toy)
    return parser


def test_the_builder_makes_one_option_per_field():
    assert from_arguments(Toy, toy_parser().parse_args(["--name", "x"])) == Toy("x")
    argv = ["--name", "x", "--count", "3", "--ratio", "1", "--loud", "--no-keep", "--tags", "b+c"]
    assert from_arguments(Toy, toy_parser().parse_args(argv)) == Toy("x", 3, 1.0, True, False, ("b", "c"))
    text = toy_parser().format_help()
    assert "--count COUNT" in text and "--ratio RATIO" in text and "(100% sure)" in text and "--no-keep " in text


@pytest.mark.parametrize(("argv", "error"), [
    ([], "the following arguments are required: --name"),
    (["--name", "x", "--count", "0"], "argument --count: 0 is too small: give a whole number of at least 1"),
    (["--name", "x", "--count", "1.5"], "argument --count: '1.5' is not a whole number"),
    (["--name", "x", "--ratio", "0"], "argument --ratio: 0 is too small: give a number above 0"),
    (["--name", "x", "--ratio", "2"], "argument --ratio: 2 is too large: give a number of at most 1"),
    (["--name", "x", "--ratio", "nan"], "argument --ratio: 'nan' is not a finite number"),
])
def test_the_builder_checks_bounds_at_parse_time(argv, error, capsys):
    with pytest.raises(SystemExit) as exit:
        toy_parser().parse_args(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.strip() == f"toy: error: {error} (see toy --help)"


def test_an_empty_template_is_the_shipped_one():
    config = parse("--template", "", "--expand-template", "")
    assert (config.template, config.expand_template) == (None, None)
