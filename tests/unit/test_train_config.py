"""`medreason train`'s recipes, settings and refusals, checked before anything is launched, and the adapter check."""

import hashlib
import json

import pytest
import yaml
import torch
from safetensors.torch import save_file

from lm_eval_medreason.errors import AdapterError, RecipeError, TrainError
from lm_eval_medreason.finetuning import launcher as train
from lm_eval_medreason.finetuning.adapters import check_adapter
from lm_eval_medreason.finetuning.launcher import CPU_FLAGS, eval_commands, main, plan, resolve
from lm_eval_medreason.finetuning.recipes import load_recipe, recipe_names

MODELS = {"qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct", "qwen2.5-72b": "Qwen/Qwen2.5-72B-Instruct",
          "llama3.1-70b": "meta-llama/Llama-3.1-70B-Instruct"}
STRATEGIES = ("longstep", "longmonolog", "cot")


def test_the_study_recipes_are_shipped_with_its_settings():
    assert recipe_names() == sorted(f"{m}-{s}" for m in MODELS for s in STRATEGIES)
    for model, hub_id in MODELS.items():
        for strategy in STRATEGIES:
            settings, _ = load_recipe(f"{model}-{strategy}")
            resolved = resolve(settings)  # TRL's own parser takes every key
            assert resolved.model_name_or_path == hub_id and resolved.strategy == strategy
            assert resolved.learning_rate == 1e-4 and resolved.effective_batch_size == 8
            assert resolved.num_train_epochs == 3 and resolved.lr_scheduler_type == "cosine"
            assert 0 < resolved.warmup_steps < 1
            assert resolved.use_peft and resolved.lora_target_modules == "all-linear"
            assert resolved.bf16 and resolved.gradient_checkpointing and resolved.completion_only_loss
            assert resolved.lora_r == 16 and resolved.lora_alpha == 32 and resolved.max_length == 8192


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def sft(tmp_path):
    lines = [{"messages": [{"role": "user", "content": f"Which of the following is the most likely diagnosis? {i}"},
                           {"role": "assistant", "content": "Let's think step by step. The answer is (C)."}]}
             for i in range(4)]
    lines[2]["messages"][1]["content"] += " Hmm, wait, but actually the findings suggest pulmonary embolism." * 3
    return write(tmp_path / "sft.jsonl", "".join(json.dumps(line) + "\n" for line in lines))


def run_main(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_recipe_whose_max_length_cuts_an_example_is_refused(tiny_model, sft, tmp_path, capsys):
    recipe = write(tmp_path / "short.yaml", "base: qwen2.5-32b-longmonolog\nmax_length: 64\n")
    status, out, err = run_main(capsys, "--recipe", recipe, "--data", sft, "--output-dir", tmp_path / "run",
                                "--model", tiny_model, "--dry-run")
    assert status == 1
    assert err.count("\n") == 1 and err.startswith(f"medreason train: error: {sft} line 3: ")
    assert "longer than max_length 64" in err and "nothing is truncated" in err
    assert not (tmp_path / "run").exists()  # refused before anything was launched or written


def test_dry_run_resolves_recipe_command_line_and_derived_settings(tiny_model, sft, tmp_path, capsys):
    status, out, _ = run_main(capsys, "--recipe", "llama3.1-70b-longstep", "--data", sft, "--output-dir",
                              tmp_path / "run", "--model", tiny_model, "--num-processes", "4", "--dry-run",
                              "--lora_r", "24", "--learning_rate", "5e-5", "--", "--num_machines", "2")
    assert status == 0
    settings = yaml.safe_load((tmp_path / "run" / "medreason_train.yaml").read_text())
    assert settings["learning_rate"] == 5e-5 and settings["lora_r"] == 24 and settings["num_train_epochs"] == 3
    assert settings["model_name_or_path"] == str(tiny_model) and settings["strategy"] == "longstep"
    assert settings["gradient_accumulation_steps"] == 2  # 8 = 1 per device x 4 processes x 2
    assert settings["num_processes"] == 4 and settings["num_machines"] == 2  # 2 on each machine
    assert settings["data_sha256"] == hashlib.sha256(sft.read_bytes()).hexdigest()
    assert out.startswith("medreason train: 4 examples, ") and f"({sft} line 3), max_length 8192\n" in out
    command = next(line for line in out.splitlines() if "accelerate.commands.launch" in line)
    assert "training/accelerate/zero3.yaml --num_processes 4 --mixed_precision bf16 --num_machines 2 " in command
    assert command.endswith(f"-m lm_eval_medreason.finetuning.worker --config {tmp_path / 'run' / 'medreason_train.yaml'}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--learnin_rate", "1e-4"], "unknown argument(s) --learnin_rate 1e-4"),
        (["--learning_rate", "fast"], "argument --learning_rate/--learning-rate: invalid float value: 'fast'"),
        (["--num-processes", "3"], "effective_batch_size 8 is not a multiple of per_device_train_batch_size 1 x 3"),
        (["--gradient_accumulation_steps", "4"], "set --effective_batch_size, not --gradient_accumulation_steps"),
        (["--num-processes", "0"], "argument --num-processes: 0 is not a whole number of at least 1"),
        (["--num-processes", "-2"], "argument --num-processes: -2 is not a whole number of at least 1"),
        (["--max-steps", "0"], "argument --max-steps: 0 is not a whole number of at least 1"),
    ],
)
def test_bad_settings_get_one_line(extra, message, tiny_model, sft, tmp_path, capsys):
    status, _, err = run_main(capsys, "--recipe", "qwen2.5-72b-cot", "--data", sft, "--output-dir", tmp_path / "r",
                              "--model", tiny_model, "--dry-run", *extra)
    assert status == 1 and err.count("\n") == 1 and message in err


def test_recipe_errors_name_the_file(tmp_path):
    unknown = write(tmp_path / "mine.yaml", "base: qwen2.5-72b-cot\nlearning_rat: 1.0e-4\n")
    with pytest.raises(TrainError, match=r"mine\.yaml: unknown setting\(s\) learning_rat"):
        plan(["--recipe", str(unknown), "--output-dir", str(tmp_path / "r")])
    with pytest.raises(RecipeError, match="neither a file nor one of: llama3.1-70b-cot"):
        load_recipe("qwen2.5-7b-longmonolog")
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(RecipeError, match="form a cycle"):
        load_recipe(str(tmp_path / "a.yaml"))
    write(tmp_path / "list.yaml", "- 1\n")
    with pytest.raises(RecipeError, match="list.yaml: a recipe is a YAML mapping"):
        load_recipe(str(tmp_path / "list.yaml"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "no messages"}, "line 2: needs 'messages'"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]},
         "line 2: the last message must be the assistant's"),
        ({"messages": [{"role": "doctor", "content": "q"}, {"role": "assistant", "content": "a"}]},
         "line 2: message 1 needs a role"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
         "line 2: message 2 (assistant) has no text content"),
    ],
)
def test_bad_data_lines_are_named(line, message, tiny_model, tmp_path, capsys):
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data = write(tmp_path / "d.jsonl", json.dumps(good) + "\n" + json.dumps(line) + "\n")
    status, _, err = run_main(capsys, "--recipe", "qwen2.5-32b-cot", "--data", data, "--output-dir", tmp_path / "r",
                              "--model", tiny_model, "--dry-run")
    assert status == 1 and err.startswith(f"medreason train: error: {data} {message}") and err.count("\n") == 1


def adapter(tmp_path, tensors):
    save_file(tensors, str(tmp_path / "adapter_model.safetensors"))
    return tmp_path


def test_check_adapter_fails_loudly_on_empty_or_untrained_adapters(tmp_path):
    a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    with pytest.raises(AdapterError, match="no adapter was saved"):
        check_adapter(tmp_path)
    with pytest.raises(AdapterError, match="holds no tensors.*zero3_save_16bit_model"):
        check_adapter(adapter(tmp_path, {}))
    with pytest.raises(AdapterError, match=r"2 of 2 tensors are empty.*TRL #4416"):
        check_adapter(adapter(tmp_path, {a: torch.zeros(0), b: torch.zeros(0)}))
    with pytest.raises(AdapterError, match="all 1 lora_B weights are zero"):
        check_adapter(adapter(tmp_path, {a: torch.randn(4, 8), b: torch.zeros(8, 4)}))
    stats = check_adapter(adapter(tmp_path, {a: torch.randn(4, 8), b: torch.full((8, 4), 0.01)}))
    assert (stats.tensors, stats.parameters, stats.lora_b_nonzero) == (2, 64, 1)


def test_eval_commands_round_the_vllm_rank_up(tiny_model, sft, tmp_path, capsys):
    run = plan(["--recipe", "qwen2.5-72b-longmonolog", "--data", str(sft), "--output-dir", str(tmp_path / "run"),
                "--model", str(tiny_model), "--lora_r", "24", "--dry-run"])
    hf, vllm = eval_commands(run, None)
    assert hf == (f"lm_eval --model hf --model_args pretrained={tiny_model},peft={tmp_path / 'run'},dtype=bfloat16 "
                  "--tasks medreason_longmonolog --apply_chat_template --batch_size auto")
    assert f"lora_local_path={tmp_path / 'run'},max_lora_rank=32," in vllm


def test_resuming_with_other_settings_is_refused(tiny_model, sft, tmp_path, capsys):
    args = ["--recipe", "qwen2.5-32b-cot", "--data", sft, "--output-dir", tmp_path / "run", "--model", tiny_model,
            "--dry-run"]
    assert run_main(capsys, *args)[0] == 0
    assert run_main(capsys, *args, "--learning_rate", "5e-5")[0] == 0  # no checkpoint yet: a fresh start
    checkpoint = tmp_path / "run" / "checkpoint-5"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    assert run_main(capsys, *args, "--learning_rate", "5e-5")[0] == 0  # the same settings: resumes
    status, _, err = run_main(capsys, *args)
    assert status == 1 and err.count("\n") == 1
    assert f"{tmp_path / 'run'} holds checkpoints of a run with other settings (learning_rate; " in err


def test_resuming_on_other_data_is_refused_naming_the_flag_to_start_afresh(tiny_model, sft, tmp_path, capsys):
    """The same file name with other lines (e.g. more traces distilled into it) is other data."""
    args = ["--recipe", "qwen2.5-32b-cot", "--data", sft, "--output-dir", tmp_path / "run", "--model", tiny_model,
            "--dry-run"]
    assert run_main(capsys, *args)[0] == 0
    before = hashlib.sha256(sft.read_bytes()).hexdigest()
    checkpoint = tmp_path / "run" / "checkpoint-5"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    with sft.open("a") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "one more"},
                                         {"role": "assistant", "content": "The answer is (A)."}]}) + "\n")
    after = hashlib.sha256(sft.read_bytes()).hexdigest()
    status, _, err = run_main(capsys, *args)
    assert status == 1 and err == (f"medreason train: error: {tmp_path / 'run'} holds checkpoints of a run on other "
                                   f"data ({sft} sha256 {before} then, {sft} sha256 {after} now): use another "
                                   "--output-dir to start afresh, or the data they were trained on to resume\n")
    assert yaml.safe_load((tmp_path / "run" / "medreason_train.yaml").read_text())["data_sha256"] == before
    fresh = ["--recipe", "qwen2.5-32b-cot", "--data", sft, "--output-dir", tmp_path / "fresh", "--model", tiny_model]
    assert run_main(capsys, *fresh, "--dry-run")[0] == 0  # what the line says works


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "bf16 needs a GPU that supports it, and this machine has none: to train here on CPU pass " + CPU_FLAGS),
        (["--bf16", "false", "--fp16", "true"],
         "fp16 needs a GPU, and this machine has none: to train here on CPU pass "
         "--fp16 false --dtype float32 --ddp_backend gloo"),
        (["--bf16", "false", "--dtype", "float32", "--num-processes", "2"],
         "2 processes without a GPU need a CPU process-group backend, not the default: to train here on CPU pass "
         + CPU_FLAGS),
    ],
)
def test_a_recipe_this_machine_cannot_train_is_refused_before_launching(extra, message, tiny_model, sft, tmp_path,
                                                                        capsys, monkeypatch):
    """A machine without a GPU (whatever this one has): one line naming the flags, nothing launched or written."""
    monkeypatch.setattr(train, "_bf16_gpu", lambda: False)
    monkeypatch.setattr(train, "_any_gpu", lambda: False)
    monkeypatch.setattr(train.subprocess, "run", lambda *a, **k: pytest.fail(f"launched {a}"))
    args = ["--recipe", "qwen2.5-32b-longmonolog", "--data", str(sft), "--output-dir", str(tmp_path / "run"),
            "--model", str(tiny_model)]
    status, out, err = run_main(capsys, *args, *extra)
    assert status == 1 and err == f"medreason train: error: {message}\n" and out == ""
    assert not (tmp_path / "run").exists()

    run = plan([*args, *extra, *message.split(" pass ")[1].split()])  # the flags it names pass the check
    assert (run.settings["bf16"], run.settings.get("fp16", False), run.dtype) == (False, False, "float32")
    assert run.settings["ddp_backend"] == "gloo" and "--mixed_precision no" in " ".join(run.command)


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (["--num_processes", "2"], "--num_processes after `--`: medreason train sets accelerate's --num_processes "
                                   "itself; it derives gradient_accumulation_steps from it: pass --num-processes N"),
        (["--num-processes=2"], "pass --num-processes N before `--`"),
        (["--mixed_precision", "fp16"], "sets accelerate's --mixed_precision itself; it follows the recipe's bf16"),
        (["--config_file", "other.yaml"], "sets accelerate's --config_file itself; pass --accelerate-config FILE"),
        (["--deepspeed_inclusion_filter", "host1"],
         "--deepspeed_inclusion_filter after `--` changes how many processes share the data"),
        (["--use_parallelism_config", "--parallelism_config_tp_size", "2"],
         "--use_parallelism_config after `--` changes how many processes share the data"),
        (["--num_machines", "3"], "--num-processes 4 cannot be split evenly across 3 machines (accelerate would "
                                  "start 1 on each, 3 in all)"),
        (["--num_procs=2"], "arguments after `--` (for accelerate launch): unrecognized arguments: --num_procs=2"),
    ],
)
def test_launch_arguments_that_would_change_the_effective_batch_are_refused(after, message, tiny_model, sft, tmp_path,
                                                                            capsys):
    status, _, err = run_main(capsys, "--recipe", "qwen2.5-72b-cot", "--data", sft, "--output-dir", tmp_path / "r",
                              "--model", tiny_model, "--dry-run", "--num-processes", "4", "--", *after)
    assert status == 1 and err.count("\n") == 1 and err.startswith("medreason train: error: ") and message in err
    assert not (tmp_path / "r").exists()


def test_the_machines_derive_the_processes_and_the_record_shows_them(tiny_model, sft, tmp_path, capsys, monkeypatch):
    """Without --num-processes: this machine's GPUs on each of the machines, from `--` or the accelerate config."""
    monkeypatch.setattr(train, "_visible_gpus", lambda: 2)
    base = ["--recipe", "qwen2.5-72b-cot", "--data", str(sft), "--model", str(tiny_model), "--dry-run"]

    run = plan([*base, "--output-dir", str(tmp_path / "one")])
    assert (run.num_processes, run.num_machines, run.settings["gradient_accumulation_steps"]) == (2, 1, 4)

    run = plan([*base, "--output-dir", str(tmp_path / "two"), "--", "--num-machines=2", "--machine_rank", "1"])
    assert (run.num_processes, run.num_machines, run.machine_rank) == (4, 2, 1)
    assert run.settings["gradient_accumulation_steps"] == 2  # 8 = 1 per device x 4 processes x 2
    assert "--num_processes 4 " in " ".join(run.command) and "--main_process_port" not in run.command

    config = tmp_path / "four-machines.yaml"
    config.write_text((train.default_accelerate_config()).read_text().replace("num_machines: 1", "num_machines: 4"))
    assert main([*base, "--output-dir", str(tmp_path / "four"), "--accelerate-config", str(config)]) == 0
    settings = yaml.safe_load((tmp_path / "four" / "medreason_train.yaml").read_text())
    assert (settings["num_processes"], settings["num_machines"], settings["gradient_accumulation_steps"]) == (8, 4, 1)


@pytest.mark.parametrize("key", ["num_processes", "num_machines", "data_sha256"])
def test_the_recorded_values_cannot_be_set(key, tiny_model, sft, tmp_path, capsys):
    recipe = write(tmp_path / "mine.yaml", f"base: qwen2.5-32b-cot\n{key}: 2\n")
    for args in (["--recipe", recipe], ["--recipe", "qwen2.5-32b-cot", f"--{key}", "2"]):
        status, _, err = run_main(capsys, *args, "--data", sft, "--output-dir", tmp_path / "r", "--model",
                                  tiny_model, "--dry-run")
        assert status == 1 and err == (f"medreason train: error: {key}: written by medreason train into the run "
                                       "record, not set; the processes are --num-processes, the machines "
                                       "accelerate's --num_machines after `--`\n")


def test_each_worker_checks_the_launch_against_the_record(sft, tmp_path):
    """The backstop in every process: another process count, or a data file changed after the check, is refused."""
    from lm_eval_medreason.errors import LaunchMismatch
    from lm_eval_medreason.finetuning.worker import MedreasonArguments, check_launch

    digest = hashlib.sha256(sft.read_bytes()).hexdigest()
    record = MedreasonArguments(data=str(sft), num_processes=2, data_sha256=digest)
    check_launch(record, world_size=2)
    with pytest.raises(LaunchMismatch, match=r"^1 processes were launched but the run record says 2, from which "
                                             r"gradient_accumulation_steps was derived"):
        check_launch(record, world_size=1)
    sft.write_text(sft.read_text().replace("(C)", "(D)"))
    with pytest.raises(LaunchMismatch, match=f"^{sft} changed since medreason train checked it"):
        check_launch(record, world_size=2)


def test_without_the_train_extra_the_error_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    from lm_eval_medreason.finetuning import launcher as train

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    status, _, err = run_main(capsys, "--recipe", "qwen2.5-32b-cot", "--output-dir", "x")
    assert status == 1 and err == ("medreason train: error: deepspeed not installed: pip install "
                                   "'lm-eval-medreason[train]' (after installing the torch build you want)\n")
    assert train.missing_packages() == ["deepspeed"]


def test_a_checkpoint_cut_short_is_passed_over(tmp_path):
    from lm_eval_medreason.finetuning.worker import last_checkpoint

    assert last_checkpoint(str(tmp_path / "none")) is None
    for step, state in ((5, "{}"), (10, '{"global_step": 1'), (15, None)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-5")


def test_a_folder_where_a_training_still_runs_is_refused(tiny_model, sft, tmp_path, capsys):
    import os

    from lm_eval_medreason.finetuning.worker import lock_output_dir

    held = lock_output_dir(str(tmp_path / "run"))  # as the workers of a run whose launcher alone was killed
    status, _, err = run_main(capsys, "--recipe", "qwen2.5-32b-cot", "--data", sft, "--output-dir", tmp_path / "run",
                              "--model", tiny_model, "--dry-run")
    assert status == 1 and err == (f"medreason train: error: {tmp_path / 'run'}: a training is still running there "
                                   f"(process {os.getpid()}); stop it first, or use another --output-dir\n")
    held.close()
    assert run_main(capsys, "--recipe", "qwen2.5-32b-cot", "--data", sft, "--output-dir", tmp_path / "run",
                    "--model", tiny_model, "--dry-run")[0] == 0
