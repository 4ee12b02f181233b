"""`medreason train` end to end: the real `accelerate launch` with the shipped ZeRO-3 config,
TRL's SFTTrainer with a LoRA adapter on the tiny local model, then the real `lm_eval` CLI
evaluating the adapter through `peft=`."""

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.evaluation.answers import extract_choice
from lm_eval_medreason.finetuning.adapters import check_adapter
from lm_eval_medreason.finetuning.data import read_sft_jsonl, token_lengths
from lm_eval_medreason.finetuning.launcher import CPU_FLAGS
from lm_eval_medreason.prompts import render_case
from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.synthetic import write_data_dir

pytestmark = pytest.mark.slow

# DeepSpeed on a machine without GPUs: no bf16, and a CPU process-group backend; exactly the flags that
# `medreason train` names when it refuses a bf16 recipe on such a machine, so these runs prove they train.
CPU = CPU_FLAGS.split()
TRACE = "The answer is (C)."


def write_sft(path: Path, data_root: Path, n: int | None = None) -> Path:
    """SFT lines whose user turn is the medqa_longmonolog evaluation prompt and whose assistant turn is TRACE."""
    cases = load_cases("medqa", {"data_dir": str(data_root)})[:n]
    with path.open("w") as f:
        for case in cases:
            messages = [{"role": "user", "content": render_case("eval_longmonolog.j2", case)},
                        {"role": "assistant", "content": TRACE}]
            f.write(json.dumps({"id": case["id"], "messages": messages, "meta": {"gold": case["answer_idx"]}}) + "\n")
    return path


def train_command(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lm_eval_medreason.cli", "train", "--recipe", "qwen2.5-32b-longmonolog",
            "--data", str(data), "--output-dir", str(output), "--model", str(model), *CPU, *extra]


def run_train(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(train_command(*args, **kwargs), capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, f"medreason train failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    return result


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a run and every process under it, as a job scheduler or the OOM killer would (torch's launcher
    starts the workers in sessions of their own, so the launcher's process group alone does not reach them)."""
    import psutil

    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for member in tree:
        member.send_signal(signal.SIGKILL)
    process.wait()
    psutil.wait_procs(tree[1:], timeout=30)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data_dir(tmp_path_factory.mktemp("data"), n=6)


@pytest.fixture(scope="module")
def one_process(tiny_model, data, tmp_path_factory):
    """One process, padding-free, 42 steps on 6 examples that all answer (C); merged at the end."""
    root = tmp_path_factory.mktemp("train-1")
    sft = write_sft(root / "sft.jsonl", data["root"])
    output = root / "run"
    result = run_train(tiny_model, sft, output, "--num-processes", "1", "--max-steps", "42",
                       "--effective_batch_size", "2", "--per_device_train_batch_size", "2",
                       "--learning_rate", "2e-2", "--logging_steps", "5", "--save_steps", "20", "--merge")
    return {"stdout": result.stdout, "output": output, "sft": sft}


def test_loss_falls_and_tokens_and_padding_are_counted(one_process, tiny_model):
    summary = json.loads((one_process["output"] / "train_summary.json").read_text())
    assert summary["steps"] == 42
    assert summary["final_loss"] < summary["first_loss"] / 3
    from transformers import AutoTokenizer

    examples, _ = read_sft_jsonl(one_process["sft"])
    lengths = token_lengths(AutoTokenizer.from_pretrained(tiny_model), examples)
    assert summary["tokens"] == 14 * sum(lengths)  # 6 examples, 2 per step: 42 steps are 14 epochs
    assert summary["padding_fraction"] == 0  # padding-free: the two examples of a step are concatenated
    line = next(line for line in one_process["stdout"].splitlines() if line.startswith("medreason train: trained"))
    assert line.startswith(f"medreason train: trained 42 steps, {summary['tokens']:,} tokens, ")
    assert "tokens/s, final loss" in line


def test_only_lora_weights_are_saved_and_only_linear_layers_change(one_process, tiny_model):
    output = one_process["output"]
    stats = check_adapter(output)
    adapter = load_file(output / "adapter_model.safetensors")
    assert adapter and all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert stats.lora_b_nonzero == stats.lora_b == 14  # 2 layers x 7 linear modules (q k v o gate up down)

    base = load_file(tiny_model / "model.safetensors")
    merged = load_file(output / "merged" / "model.safetensors")
    assert set(merged) == set(base)
    targeted = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    for name, weight in base.items():
        if name.endswith(".weight") and name.split(".")[-2] in targeted:
            assert not merged[name].equal(weight), f"{name} did not change"
        else:  # embeddings, norms, biases: frozen
            assert merged[name].equal(weight), f"{name} changed"


def test_labels_cover_only_the_assistant_turn(one_process, tiny_model):
    """The collated batch that training sees: the labels are the assistant turn (and its end-of-turn), nothing else."""
    from transformers import AutoTokenizer

    from lm_eval_medreason.finetuning.worker import build_trainer, make_parser

    settings = yaml.safe_load((one_process["output"] / "medreason_train.yaml").read_text())
    del settings["ddp_backend"]  # in this process, without accelerate: no process group
    settings["output_dir"] = str(one_process["output"] / "inspect")
    trainer = build_trainer(*make_parser().parse_dict(settings))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = ids[labels != -100]
    assert tokenizer.decode(trained) == f"{TRACE}<|im_end|>\n" * 2
    assert "position_ids" in batch and "attention_mask" not in batch  # padding-free


def test_the_printed_lm_eval_command_evaluates_the_adapter(one_process, data, tiny_model, tmp_path):
    """Run the printed HF command (on the synthetic medqa task, short outputs): the adapter answers (C) everywhere,
    which the base model does not."""
    printed = [line.strip() for line in one_process["stdout"].splitlines() if line.strip().startswith("lm_eval --model")]
    assert len(printed) == 3  # hf peft=, vLLM LoRA, vLLM merged
    hf, vllm_lora, vllm_merged = printed
    adapter = one_process["output"]
    assert f"pretrained={tiny_model},peft={adapter}," in hf and "--tasks medreason_longmonolog" in hf
    assert f"lora_local_path={adapter},max_lora_rank=16" in vllm_lora and "--model vllm" in vllm_lora
    assert f"pretrained={adapter / 'merged'}," in vllm_merged

    args = shlex.split(hf)[1:]
    args[args.index("--tasks") + 1] = "medqa_longmonolog"
    args[args.index("--batch_size") + 1] = "6"
    env = {"MEDREASON_DATA_DIR": str(data["root"])}
    short = ["--gen_kwargs", "max_gen_toks=32"]
    run_lm_eval(args + short, tmp_path / "adapter", env=env)
    results, samples = read_results(tmp_path / "adapter")
    responses = [s["resps"][0][0] for s in samples["medqa_longmonolog"]]
    options = [s["doc"]["options"] for s in samples["medqa_longmonolog"]]
    assert [extract_choice(r, o) for r, o in zip(responses, options)] == ["C"] * len(data["gold"]["medqa"])
    accuracy = results["results"]["medqa_longmonolog"]["acc,final-answer"]
    assert accuracy == pytest.approx(data["gold"]["medqa"].count("C") / len(data["gold"]["medqa"]))

    base_args = [a.replace(f",peft={adapter}", "") for a in args]
    run_lm_eval(base_args + short, tmp_path / "base", env=env)
    _, base_samples = read_results(tmp_path / "base")
    assert [s["resps"][0][0] for s in base_samples["medqa_longmonolog"]] != responses


def test_two_processes_under_zero3(tiny_model, tmp_path):
    """ZeRO-3 across two processes, padded batches: every example seen 3 times, padding measured, adapter whole."""
    data = write_data_dir(tmp_path / "data", n=8)
    sft = write_sft(tmp_path / "sft.jsonl", data["root"], n=8)
    output = tmp_path / "run"
    run_train(tiny_model, sft, output, "--num-processes", "2", "--max-steps", "6", "--effective_batch_size", "4",
              "--per_device_train_batch_size", "2", "--padding_free", "false", "--learning_rate", "2e-2",
              "--logging_steps", "1", "--save_steps", "100")
    settings = yaml.safe_load((output / "medreason_train.yaml").read_text())
    assert settings["gradient_accumulation_steps"] == 1  # 4 = 2 per process x 2 processes x 1
    assert (settings["num_processes"], settings["num_machines"]) == (2, 1)  # the run record: what was launched
    assert settings["data_sha256"] == hashlib.sha256(sft.read_bytes()).hexdigest()
    summary = json.loads((output / "train_summary.json").read_text())
    from transformers import AutoTokenizer

    examples, _ = read_sft_jsonl(sft)
    lengths = token_lengths(AutoTokenizer.from_pretrained(tiny_model), examples)
    assert summary["steps"] == 6 and summary["tokens"] == 3 * sum(lengths)
    assert 0 < summary["padding_fraction"] < 0.5
    assert summary["final_loss"] < summary["first_loss"]
    assert check_adapter(output).lora_b_nonzero == 14


def test_killed_run_resumes_to_the_same_number_of_steps(tiny_model, data, tmp_path):
    sft = write_sft(tmp_path / "sft.jsonl", data["root"])
    output = tmp_path / "run"
    # 6 examples, 2 per step, 15 epochs: 45 steps, a checkpoint every 5
    args = ("--num-processes", "1", "--num_train_epochs", "15", "--effective_batch_size", "2",
            "--per_device_train_batch_size", "2", "--save_steps", "5", "--logging_steps", "1", "--learning_rate", "1e-2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(train_command(tiny_model, sft, output, *args), stdout=log, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (output / "checkpoint-10" / "trainer_state.json").exists():  # maybe still being written: a real kill
        assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-4000:]
        time.sleep(0.05)
    kill_tree(first)
    assert not (output / "train_summary.json").exists()  # killed mid-way, not finished

    result = run_train(tiny_model, sft, output, *args)
    resumed = next(line for line in result.stdout.splitlines() if "resuming from" in line)
    step = int(resumed.rsplit("checkpoint-", 1)[1])
    assert 5 <= step < 45  # checkpoint-10, or -5 if the kill cut checkpoint-10's trainer_state.json short
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["steps"] == 45 and summary["resumed_from"].endswith(f"checkpoint-{step}")
    state = json.loads((output / "checkpoint-45" / "trainer_state.json").read_text())
    logged = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged == list(range(1, 46))  # each step logged once: nothing redone, nothing skipped
    assert check_adapter(output).lora_b_nonzero == 14
