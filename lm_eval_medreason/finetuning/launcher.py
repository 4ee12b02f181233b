"""`medreason train`: resolve a recipe, check the data against it, launch accelerate with ZeRO-3.

The recipe (``training/recipes``), then the command line's SFTConfig / ModelConfig fields,
then the derived values (gradient accumulation from the effective batch size and the
processes; the processes, the machines and the data file's sha256 as launched) are merged
into one file, ``OUTPUT_DIR/medreason_train.yaml``, which is the whole record of the run
and what every process reads (``lm_eval_medreason.finetuning.worker``). Everything that would
make the run fail or differ from its record is refused here, before anything is launched. After
training: the ``lm_eval`` commands that evaluate the adapter and, with ``--merge``, full weights
for serving.
"""

from __future__ import annotations

import argparse
import enum
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from lm_eval_medreason.errors import DataError, FolderBusy, RecipeError, TrainError
from lm_eval_medreason.finetuning.data import fingerprint
from lm_eval_medreason.finetuning.recipes import load_recipe, recipe_names
from lm_eval_medreason.resources import training_dir

OWN_KEYS = ("data", "strategy", "effective_batch_size")
RECORDED_KEYS = ("num_processes", "num_machines", "data_sha256")  # written by medreason train, never set
CPU_FLAGS = "--bf16 false --dtype float32 --ddp_backend gloo"  # how the tests train without a GPU
CPU_BACKENDS = ("gloo", "mpi", "ccl")
# accelerate launch options that medreason train sets itself: after `--` they would silently win over the
# values the run record (and the gradient accumulation) were derived from.
OWN_LAUNCH_OPTIONS = {
    "num_processes": "it derives gradient_accumulation_steps from it: pass --num-processes N before `--`",
    "mixed_precision": "it follows the recipe's bf16/fp16: pass --bf16 or --fp16 true|false before `--`",
    "config_file": "pass --accelerate-config FILE before `--`",
}
# accelerate launch options that change how many data-parallel processes run, unseen by medreason train.
HIDDEN_PROCESS_OPTIONS = ("deepspeed_inclusion_filter", "deepspeed_exclusion_filter", "use_parallelism_config")
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class Plan:
    """Everything a launch needs, resolved before anything heavy starts."""

    settings: dict  # the merged recipe: what medreason_train.yaml holds
    config_file: Path
    command: list[str]  # the accelerate launch command
    output_dir: Path
    num_processes: int
    num_machines: int
    machine_rank: int
    dtype: str  # of the trained weights: bfloat16 or float32
    lora_r: int
    merge: bool
    dry_run: bool


def default_accelerate_config() -> Path:
    return training_dir() / "accelerate" / "zero3.yaml"


HELP = f"""\
Fine-tune a student on distilled traces: TRL SFT with a LoRA adapter under DeepSpeed ZeRO-3,
launched through accelerate with training/accelerate/zero3.yaml:

  medreason train --recipe qwen2.5-72b-longmonolog --data data/longmonolog.jsonl \\
      --output-dir runs/q72-lm --num-processes 8

Any field of TRL's SFTConfig or ModelConfig overrides the recipe: --learning_rate 5.0e-5,
--lora_r 32, --packing true, --bf16 false. Arguments after `--` go to `accelerate launch`
(multi-node: -- --num_machines 2 --machine_rank 0 --main_process_ip HOST --main_process_port 29500);
the process count is --num-processes alone (not accelerate's), so that gradient_accumulation_steps
keeps the recipe's effective batch. Every example must fit max_length (nothing is truncated; the
command refuses otherwise).
Without a GPU, train with {CPU_FLAGS}.
Running the same command again resumes from the newest checkpoint in --output-dir, if it was trained
with the same settings on the same data (else the command refuses: use another --output-dir).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medreason train", description=HELP, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", required=True, help=f"a shipped recipe ({', '.join(recipe_names())}) or a YAML file")
    p.add_argument("--data", help="JSONL of chat `messages` ending with the assistant turn (medreason distill's output)")
    p.add_argument("--output-dir", required=True, help="where checkpoints, the adapter and the summary go; "
                   "running again with the same folder resumes from its newest checkpoint")
    p.add_argument("--model", help="base model (hub id or folder), instead of the recipe's model_name_or_path")
    p.add_argument("--max-steps", type=_positive, help="stop after this many optimizer steps (overrides the epochs)")
    p.add_argument("--num-processes", type=_positive, help="processes in all, one per GPU, across every machine "
                   "(default: the GPUs of this machine, or 1, times accelerate's --num_machines)")
    p.add_argument("--accelerate-config", default=str(default_accelerate_config()),
                   help="accelerate config file (default: the shipped DeepSpeed ZeRO-3 config, %(default)s)")
    p.add_argument("--merge", action="store_true", help="after training, also write base + adapter merged "
                   "into full weights in OUTPUT_DIR/merged (needs the memory for the whole model)")
    p.add_argument("--dry-run", action="store_true", help="check the data and print the resolved settings and "
                   "the accelerate command; launch nothing (and skip the GPU check: a run can be prepared on a "
                   "machine without one)")
    return p


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1 (0 or less would silently mean something else, or nonsense)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number of at least 1")
    return value


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(medreason train's arguments, accelerate launch's: everything after ``--``)."""
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def plan(argv: list[str]) -> Plan:
    """Resolve the recipe and the command line into a run, checking settings and data; launch nothing."""
    own_argv, accelerate_args = split_argv(argv)
    parser = build_parser()
    parser.error = _raise_train_error  # one line, not argparse's usage
    args, field_args = parser.parse_known_args(own_argv)
    recipe, recipe_file = load_recipe(args.recipe)

    from lm_eval_medreason.finetuning.worker import CONFIG_FILE, lock_output_dir, make_parser

    field_parser = make_parser()
    unknown = sorted(set(recipe) - {a.dest for a in field_parser._actions})
    if unknown:
        raise TrainError(f"{recipe_file}: unknown setting(s) {', '.join(unknown)}: not fields of TRL's SFTConfig, "
                         f"ModelConfig or medreason's ({', '.join(OWN_KEYS)})")
    overrides = parse_overrides(field_args)
    recorded = [key for key in RECORDED_KEYS if key in recipe or key in overrides]
    if recorded:
        raise TrainError(f"{', '.join(recorded)}: written by medreason train into the run record, not set; the "
                         "processes are --num-processes, the machines accelerate's --num_machines after `--`")
    for flag, key in (("model", "model_name_or_path"), ("max_steps", "max_steps"), ("data", "data")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    output_dir = Path(args.output_dir).resolve()
    settings = {**recipe, **overrides, "output_dir": str(output_dir)}
    if not settings.get("data"):
        raise TrainError("no training data: pass --data FILE.jsonl (or set data: in the recipe)")
    if not settings.get("model_name_or_path"):
        raise TrainError(f"{recipe_file}: no model_name_or_path; pass --model")
    for key in ("data", "model_name_or_path"):  # the record names files wherever it is read from
        if Path(settings[key]).exists():
            settings[key] = str(Path(settings[key]).resolve())

    launch = launch_options(accelerate_args, Path(args.accelerate_config))
    num_processes = args.num_processes or (_visible_gpus() or 1) * launch.num_machines
    if num_processes % launch.num_machines:
        raise TrainError(f"--num-processes {num_processes} cannot be split evenly across {launch.num_machines} "
                         f"machines (accelerate would start {num_processes // launch.num_machines} on each, "
                         f"{num_processes // launch.num_machines * launch.num_machines} in all): change one of them")
    resolved = resolve(settings)
    if not args.dry_run:
        check_device(resolved, num_processes)
    if resolved.effective_batch_size:
        if "gradient_accumulation_steps" in overrides:
            raise TrainError("set --effective_batch_size, not --gradient_accumulation_steps: medreason derives the "
                             "accumulation from the effective batch size, the per-device batch and the processes")
        effective, per_device = resolved.effective_batch_size, resolved.per_device_train_batch_size
        steps, rest = divmod(effective, per_device * num_processes)
        if rest or not steps:
            raise TrainError(f"effective_batch_size {effective} is not a multiple of per_device_train_batch_size "
                             f"{per_device} x {num_processes} processes; change one of them")
        settings["gradient_accumulation_steps"] = steps
    settings["num_processes"], settings["num_machines"] = num_processes, launch.num_machines
    settings["data_sha256"] = fingerprint(settings["data"])

    config_file = output_dir / CONFIG_FILE
    if output_dir.is_dir():
        try:
            lock_output_dir(str(output_dir)).close()  # free now: no worker of an earlier run is alive
        except FolderBusy as err:
            raise TrainError(str(err)) from None
    _check_same_run(config_file, settings)
    check_data(settings, resolved.max_length)
    precision = "bf16" if resolved.bf16 else "fp16" if resolved.fp16 else "no"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(args.accelerate_config),
        "--num_processes", str(num_processes), "--mixed_precision", precision,
        *_default_port(launch), *accelerate_args,
        "-m", "lm_eval_medreason.finetuning.worker", "--config", str(config_file),
    ]
    return Plan(settings, config_file, command, output_dir, num_processes, launch.num_machines, launch.machine_rank,
                dtype="bfloat16" if resolved.bf16 else "float32", lora_r=resolved.lora_r,
                merge=args.merge, dry_run=args.dry_run)


def _check_same_run(config_file: Path, settings: dict) -> None:
    """Resuming continues the run in the folder: refuse if its checkpoints were made with other settings."""
    from lm_eval_medreason.finetuning.worker import last_checkpoint

    if not config_file.is_file() or last_checkpoint(str(config_file.parent)) is None:
        return
    before = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    if before.get("data_sha256") != settings["data_sha256"]:
        then = before.get("data_sha256") or "not recorded"
        raise TrainError(f"{config_file.parent} holds checkpoints of a run on other data ({before.get('data')} sha256 "
                         f"{then} then, {settings['data']} sha256 {settings['data_sha256']} now): use another "
                         "--output-dir to start afresh, or the data they were trained on to resume")
    changed = sorted(k for k in before.keys() | settings.keys() if before.get(k) != settings.get(k))
    if changed:
        first = changed[0]
        raise TrainError(f"{config_file.parent} holds checkpoints of a run with other settings ({', '.join(changed)}; "
                         f"{first}: {before.get(first)!r} then, {settings.get(first)!r} now): use another --output-dir "
                         "to start afresh, or the same settings to resume")


def parse_overrides(field_args: list[str]) -> dict:
    """The SFTConfig / ModelConfig / medreason fields given on the command line, typed by TRL's own parser."""
    from lm_eval_medreason.finetuning.worker import make_parser

    parser = make_parser()
    parser.error = _raise_train_error  # one line, not argparse's usage of 300 options
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    namespace, unknown = parser.parse_known_args(field_args)
    if unknown:
        raise TrainError(f"unknown argument(s) {' '.join(unknown)}: not an option of medreason train nor a field of "
                         f"TRL's SFTConfig, ModelConfig or medreason's ({', '.join(OWN_KEYS)})")
    return {key: value.value if isinstance(value, enum.Enum) else value for key, value in vars(namespace).items()}


def _raise_train_error(message: str):
    raise TrainError(message)


def resolve(settings: dict) -> argparse.Namespace:
    """Every field's value as each process will parse it (typed by TRL's parser; the config classes are built,
    and check their combinations, in the processes: building SFTConfig here would set up devices)."""
    from lm_eval_medreason.finetuning.worker import make_parser

    parser = make_parser()
    parser.error = _raise_train_error
    parser.set_defaults_with_config(**settings)
    for action in parser._actions:
        action.required = False
    return parser.parse_args([])


def check_data(settings: dict, max_length: int | None) -> None:
    """Read and validate the data, and refuse it if an example is longer than max_length (never truncate)."""
    from transformers import AutoTokenizer

    from lm_eval_medreason.finetuning.data import check_max_length, read_sft_jsonl, token_lengths

    examples, positions = read_sft_jsonl(settings["data"])
    tokenizer = AutoTokenizer.from_pretrained(
        settings["model_name_or_path"], revision=settings.get("model_revision", "main"),
        trust_remote_code=bool(settings.get("trust_remote_code")),
    )
    lengths = token_lengths(tokenizer, examples)
    longest = check_max_length(settings["data"], positions, lengths, max_length)
    limit = "no max_length" if max_length is None else f"max_length {max_length}"
    print(f"medreason train: {len(examples)} examples, {sum(lengths):,} tokens; longest {longest.tokens} tokens "
          f"({settings['data']} {longest.position}), {limit}", flush=True)


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _bf16_gpu() -> bool:
    """transformers' own test, which fails a bf16 run in every worker after the launch."""
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

    return is_torch_bf16_gpu_available() or is_torch_xla_available()


def _any_gpu() -> bool:
    import torch

    return torch.accelerator.is_available()


def check_device(resolved: argparse.Namespace, num_processes: int) -> None:
    """Refuse, before launching, what this machine cannot train: bf16 without a bf16 GPU, fp16 without a GPU, and
    several processes without a GPU on a GPU-only process-group backend (DeepSpeed then sees one process per
    worker and fails on the batch size)."""
    if resolved.bf16 and not resolved.use_cpu and not _bf16_gpu():
        raise TrainError(f"bf16 needs a GPU that supports it, and this machine has none: to train here on CPU pass "
                         f"{CPU_FLAGS}")
    if _any_gpu():
        return
    if resolved.fp16:
        raise TrainError(f"fp16 needs a GPU, and this machine has none: to train here on CPU pass "
                         f"{CPU_FLAGS.replace('--bf16', '--fp16')}")
    if num_processes > 1 and resolved.ddp_backend not in CPU_BACKENDS:
        raise TrainError(f"{num_processes} processes without a GPU need a CPU process-group backend, not "
                         f"{resolved.ddp_backend or 'the default'}: to train here on CPU pass {CPU_FLAGS}")


@dataclass(frozen=True)
class Launch:
    """What the arguments after `--` and the accelerate config file make of the processes."""

    num_machines: int
    machine_rank: int
    main_process_port: int | None


def launch_options(accelerate_args: list[str], config_file: Path) -> Launch:
    """Read the arguments after `--` with accelerate's own parser (both spellings, `=` forms) and the config file
    the way `accelerate launch` does (the command line wins); refuse the options that would make the run differ
    from its record."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    parser = launch_command_parser()
    parser.error = lambda message: _raise_train_error(f"arguments after `--` (for accelerate launch): {message}")
    options = parser.parse_args([*accelerate_args, "-m", "lm_eval_medreason.finetuning.worker"])
    for dest, instead in OWN_LAUNCH_OPTIONS.items():
        if getattr(options, dest) is not None:
            raise TrainError(f"--{dest} after `--`: medreason train sets accelerate's --{dest} itself; {instead}")
    defaults = {action.dest: action.default for action in parser._actions}
    hidden = [dest for dest in defaults if dest in HIDDEN_PROCESS_OPTIONS or dest.startswith("parallelism_config_")]
    changed = [dest for dest in hidden if getattr(options, dest) != defaults[dest]]
    if changed:
        raise TrainError(f"--{changed[0]} after `--` changes how many processes share the data, unseen by medreason "
                         "train (the effective batch would no longer be the recipe's): set the processes with "
                         "--num-processes; ZeRO-3 shards the model across all of them")
    try:
        config = load_config_from_file(str(config_file))
    except (OSError, ValueError, TypeError, yaml.YAMLError) as err:
        raise TrainError(f"{config_file}: cannot read the accelerate config ({' '.join(str(err).split())})") from None
    num_machines = options.num_machines or config.num_machines or 1
    machine_rank = options.machine_rank if options.machine_rank is not None else config.machine_rank or 0
    port = options.main_process_port if options.main_process_port is not None else config.main_process_port
    return Launch(int(num_machines), int(machine_rank), port)


def _default_port(launch: Launch) -> list[str]:
    """A free port on a single machine, so that two runs (or a restart) never collide on 29500."""
    if launch.main_process_port is not None or launch.num_machines > 1:
        return []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return ["--main_process_port", str(s.getsockname()[1])]


def eval_commands(run: Plan, merged_dir: Path | None) -> list[str]:
    """The lm_eval commands that evaluate the trained adapter: HF with peft=, vLLM with its LoRA support."""
    base, adapter_dir, dtype = run.settings["model_name_or_path"], run.output_dir, run.dtype
    tasks = f"medreason_{run.settings.get('strategy') or 'STRATEGY'}"
    rank = next((r for r in VLLM_LORA_RANKS if r >= run.lora_r), VLLM_LORA_RANKS[-1])
    tail = f"--tasks {tasks} --apply_chat_template --batch_size auto"
    commands = [
        f"lm_eval --model hf --model_args pretrained={base},peft={adapter_dir},dtype={dtype} {tail}",
        f"lm_eval --model vllm --model_args pretrained={base},lora_local_path={adapter_dir},max_lora_rank={rank},"
        f"dtype={dtype},enable_prefix_caching=True {tail}",
    ]
    if merged_dir is not None:
        commands.append(f"lm_eval --model vllm --model_args pretrained={merged_dir},dtype={dtype},"
                        f"enable_prefix_caching=True {tail}")
    return commands


def write_config(run: Plan) -> None:
    run.output_dir.mkdir(parents=True, exist_ok=True)
    header = "# Written by medreason train: the recipe, the command line's settings and the derived ones.\n"
    run.config_file.write_text(header + yaml.safe_dump(run.settings, sort_keys=False), encoding="utf-8")


def missing_packages() -> list[str]:
    import importlib.util

    return [name for name in ("trl", "peft", "deepspeed", "accelerate") if importlib.util.find_spec(name) is None]


def main(argv: list[str]) -> int:
    missing = missing_packages()
    if missing and not {"-h", "--help"} & set(argv):
        print(f"medreason train: error: {', '.join(missing)} not installed: pip install 'lm-eval-medreason[train]' "
              "(after installing the torch build you want)", file=sys.stderr)
        return 1
    try:
        run = plan(argv)
    except (TrainError, RecipeError, DataError) as err:
        print(f"medreason train: error: {err}", file=sys.stderr)
        return 1
    write_config(run)
    print(f"medreason train: settings in {run.config_file}", flush=True)
    print(f"medreason train: {shlex.join(run.command)}", flush=True)
    if run.dry_run:
        return 0
    completed = subprocess.run(run.command, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if completed.returncode != 0:
        print(f"medreason train: error: training failed (exit {completed.returncode}); see the output above. "
              f"Running the same command again resumes from the newest checkpoint in {run.output_dir}", file=sys.stderr)
        return completed.returncode
    if run.machine_rank != 0:
        return 0
    merged = None
    if run.merge:
        from lm_eval_medreason.finetuning.adapters import merge_adapter

        merged = merge_adapter(run.output_dir, run.output_dir / "merged", run.dtype)
        print(f"medreason train: merged weights in {merged}")
    print("medreason train: evaluate the adapter with:")
    for command in eval_commands(run, merged):
        print(f"  {command}")
    return 0
