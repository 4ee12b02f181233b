"""The training script every process runs under ``accelerate launch``: TRL SFT with a LoRA adapter.

Modelled on TRL's ``trl/scripts/sft.py``: the config classes carry the options, the
script only wires them. ``medreason train`` writes the resolved recipe to
``OUTPUT_DIR/medreason_train.yaml`` and launches, on every process::

    python -m lm_eval_medreason.finetuning.worker --config OUTPUT_DIR/medreason_train.yaml

It resumes from the newest checkpoint in the output folder, saves the adapter, checks it
(``adapters.check_adapter``) and writes ``train_summary.json`` with a one-line summary.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from lm_eval_medreason import locks
from lm_eval_medreason.errors import AdapterError, Busy, DataError, FolderBusy, LaunchMismatch
from lm_eval_medreason.finetuning.adapters import check_adapter
from lm_eval_medreason.finetuning.data import fingerprint, read_sft_jsonl

SUMMARY_FILE = "train_summary.json"
CONFIG_FILE = "medreason_train.yaml"
LOCK_FILE = ".medreason_train.lock"


def lock_output_dir(output_dir: str) -> locks.Lock:
    """Hold an exclusive lock on the output folder until the returned lock is closed or the process ends (the
    kernel drops it even on SIGKILL); so a second run cannot write into the folder while the workers of a first
    one are still alive (e.g. when only the launcher was killed: they run in their own sessions)."""
    try:
        return locks.hold(Path(output_dir) / LOCK_FILE)
    except Busy as err:
        raise FolderBusy(f"{output_dir}: a training is still running there (process {err.owner}); stop it first, "
                         "or use another --output-dir") from None


@dataclass
class MedreasonArguments:
    """medreason's own recipe keys, beside SFTConfig's and ModelConfig's."""

    data: str | None = field(default=None, metadata={"help": "JSONL of chat `messages` ending with the assistant turn"})
    strategy: str | None = field(
        default=None, metadata={"help": "the evaluation strategy the data teaches (cot, longstep, longmonolog)"}
    )
    effective_batch_size: int | None = field(
        default=None,
        metadata={"help": "examples per optimizer step; gradient_accumulation_steps is derived from it"},
    )
    # Written by `medreason train` into the run record, never set by hand (it refuses them in a recipe):
    # what the run was launched with, checked again by every worker (check_launch).
    num_processes: int | None = field(
        default=None, metadata={"help": "recorded: processes in all (set with medreason train --num-processes)"}
    )
    num_machines: int | None = field(
        default=None, metadata={"help": "recorded: machines (accelerate's --num_machines after `--`)"}
    )
    data_sha256: str | None = field(default=None, metadata={"help": "recorded: the sha256 of the data file"})


def check_launch(args: MedreasonArguments, world_size: int) -> None:
    """Refuse to train when this launch is not the run the record describes: another process count would change
    the effective batch (gradient accumulation was derived for the recorded one), another data file (changed since
    `medreason train` read it, or another copy on another machine) would train on other examples."""
    if args.num_processes is not None and world_size != args.num_processes:
        raise LaunchMismatch(f"{world_size} processes were launched but the run record says {args.num_processes}, "
                             "from which gradient_accumulation_steps was derived: launch with medreason train")
    if args.data_sha256 is not None and fingerprint(args.data) != args.data_sha256:
        raise LaunchMismatch(f"{args.data} changed since medreason train checked it (sha256 {args.data_sha256} in the "
                             "run record): run medreason train again")


def make_parser() -> TrlParser:
    return TrlParser((MedreasonArguments, SFTConfig, ModelConfig))


class PaddingTrackingSFTTrainer(SFTTrainer):
    """SFTTrainer that logs ``padding_fraction`` (padding positions / all positions since the start of this run)
    and counts the real tokens it trained on. The counts stay on the device, per process, and are summed across
    processes only when logged: no extra collective or device sync per micro-batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_counts = None  # this process's [padding positions, all positions]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            ids = inputs["input_ids"]
            if "attention_mask" in inputs:
                real = inputs["attention_mask"].sum()
            elif self.args.pad_to_multiple_of:  # padding-free: one flattened row, padded at its end only
                real = inputs["position_ids"][0].nonzero().max() + 1
            else:  # padding-free, no padding at all
                real = torch.tensor(ids.numel(), device=ids.device)
            counts = torch.stack([ids.numel() - real, torch.tensor(ids.numel(), device=ids.device)])
            self.local_counts = counts if self.local_counts is None else self.local_counts + counts
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def total_counts(self) -> tuple[int, int]:
        """(padding positions, all positions) of every process; a collective: call it on every process."""
        local = self.local_counts if self.local_counts is not None else torch.zeros(2, dtype=torch.long)
        padding, positions = self.accelerator.reduce(local.to(self.accelerator.device), reduction="sum").tolist()
        return int(padding), int(positions)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # every process logs, so the collective is safe here
            padding, positions = self.total_counts()
            logs["padding_fraction"] = round(padding / positions, 4) if positions else 0.0
        super().log(logs, start_time)


def last_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint saved whole: the Trainer writes trainer_state.json last, so a checkpoint that a
    kill cut short has none, or a truncated one, and is passed over (transformers' get_last_checkpoint would
    pick it and fail)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    folders = [p for p in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()]
    complete = [p for p in folders if _readable_state(p)]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def _readable_state(checkpoint: Path) -> bool:
    from transformers.trainer import TRAINER_STATE_NAME

    try:
        return isinstance(json.loads((checkpoint / TRAINER_STATE_NAME).read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def summarize(trainer: PaddingTrackingSFTTrainer, counts: tuple[int, int], runtime: float, resumed_from: str | None) -> dict:
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    padding, positions = counts
    tokens = positions - padding
    return {
        "steps": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "tokens": tokens,  # trained in this run (after a resume: since the resume)
        "runtime_s": runtime,
        "tokens_per_s": tokens / runtime if runtime else 0.0,
        "final_loss": losses[-1] if losses else None,
        "first_loss": losses[0] if losses else None,
        "padding_fraction": padding / positions if positions else 0.0,
        "resumed_from": resumed_from,
    }


def summary_line(summary: dict) -> str:
    loss = "n/a" if summary["final_loss"] is None else f"{summary['final_loss']:.4f}"
    return (
        f"trained {summary['steps']} steps, {summary['tokens']:,} tokens, {summary['tokens_per_s']:,.0f} tokens/s, "
        f"final loss {loss}, padding {summary['padding_fraction']:.1%}"
    )


def build_trainer(args: MedreasonArguments, training_args: SFTConfig, model_args: ModelConfig):
    """The trainer of a run: the data as prompt-completion examples, the model by name, LoRA from ModelConfig."""
    from datasets import Dataset

    examples, _ = read_sft_jsonl(args.data)
    if training_args.padding_free and not training_args.packing:
        # TRL refuses max_length with unpacked padding-free batches, since it would not cut there;
        # `medreason train` has already checked that no example is longer, so nothing needs cutting.
        training_args.max_length = None
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    return PaddingTrackingSFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=Dataset.from_list(examples),
        peft_config=get_peft_config(model_args),
    )


def main(argv: list[str] | None = None) -> int:
    # DeepSpeed's collectives trip torch's deprecation warning at every step: noise, not news.
    warnings.filterwarnings("ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning)
    args, training_args, model_args = make_parser().parse_args_and_config(argv)
    try:
        check_launch(args, training_args.world_size)
    except (LaunchMismatch, DataError) as err:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"medreason train: error: {err}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        try:
            lock = lock_output_dir(training_args.output_dir)  # noqa: F841 - held until the process ends
        except FolderBusy as err:
            print(f"medreason train: error: {err}", file=sys.stderr)
            return 1
    trainer = build_trainer(args, training_args, model_args)
    resume = training_args.resume_from_checkpoint or last_checkpoint(training_args.output_dir)
    if resume:
        trainer.accelerator.print(f"medreason train: resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)

    status, counts = 0, trainer.total_counts()
    if trainer.accelerator.is_main_process:
        summary = summarize(trainer, counts, result.metrics["train_runtime"], resume)
        try:
            if model_args.use_peft:
                stats = check_adapter(training_args.output_dir)
                summary["adapter"] = {"tensors": stats.tensors, "parameters": stats.parameters}
        except AdapterError as err:
            print(f"medreason train: error: {err}", file=sys.stderr)
            status = 1
        (Path(training_args.output_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"medreason train: {summary_line(summary)}", flush=True)
    trainer.accelerator.wait_for_everyone()  # the other processes must not tear the group down meanwhile
    trainer.end()
    return status


if __name__ == "__main__":
    sys.exit(main())
