"""Training tokens/s of `medreason train` against plain TRL `SFTTrainer` with the same settings.

Both train the same LoRA adapter on the same model and data under the same accelerate /
DeepSpeed ZeRO-3 config, one process each, one at a time:

(a) ``medreason train --recipe qwen2.5-32b-longmonolog ...`` (subprocess): recipe resolution,
    data check, then ``lm_eval_medreason.finetuning.worker`` under ``accelerate launch`` with its
    ``PaddingTrackingSFTTrainer``; tokens/s = ``tokens / runtime_s`` of its train_summary.json.
(b) a plain TRL script (written to a temporary file here; it imports nothing of ours) run by
    ``accelerate launch --config_file training/accelerate/zero3.yaml --num_processes 1
    --mixed_precision no``: ``SFTTrainer`` with an ``SFTConfig`` built from the SFTConfig fields
    of (a)'s ``medreason_train.yaml`` and a ``LoraConfig`` from its ``lora_*`` values (so
    padding_free, completion_only_loss, LoRA r/alpha/dropout/targets, lr, schedule, batch,
    accumulation, steps, seed and gradient checkpointing are the same), on the same JSONL turned
    into prompt/completion examples; tokens/s = TRL's own ``num_tokens`` / ``train_runtime``.

Both times are the Trainer's ``train_runtime`` (the training loop only: not the start-up, model
load, tokenization nor saving), and both token counts are positions trained on; the script checks
that the two counts, and the losses logged at every step, agree. Runs alternate (a, b, a, b, ...);
it prints the medians and the ratio medreason / plain. Target: ratio at least 0.95.

Small machines are noisy (matrix products slow down for seconds at a time, whatever runs), so the script also times every step as its log line arrives
(``logging_steps`` 1, unbuffered output) and prints the median over steps of the ratio of the two
runs' durations of the same step, which such spells hit only in the steps they overlap.

The model is the tests' tiny tokenizer (tests/support/tiny_model.py) with a wider Qwen2 body than the
tests' (hidden 256, intermediate 768, 4 layers, 4 heads / 2 KV heads: 3.3 M parameters, all
linear layers LoRA-adapted), so that a step is dominated by the model's forward and backward,
as on a real model, rather than by per-step bookkeeping (with the tests' model, hidden 32, start-up
and logging weigh as much as the model). The data are synthetic chat
examples with a long-tailed (log-normal, sigma 0.8) length distribution: 262 tokens on average,
median 217, up to 969 (the study's ~1,200-token mean would make a run several minutes long on 2
cores). Steps: 15 of 8 examples, 4 per micro-batch (2 accumulation steps), padding-free as in the
recipes; 3 runs of each.

    python -m benchmarks.train_throughput [--repeats 3] [--steps 15] [--examples 240] [--mean-words 150]
"""

import argparse
import ast
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLAIN_SFT = '''\
"""Plain TRL SFT + LoRA: the settings of medreason_train.yaml, nothing of lm_eval_medreason."""
import dataclasses
import json
import sys

import yaml
from datasets import Dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

settings = yaml.safe_load(open(sys.argv[1]))
output_dir = sys.argv[2]
fields = {f.name for f in dataclasses.fields(SFTConfig)}
kwargs = {key: value for key, value in settings.items() if key in fields}
kwargs["output_dir"] = output_dir
if kwargs.get("padding_free") and not kwargs.get("packing"):
    kwargs["max_length"] = None  # TRL refuses max_length with unpacked padding-free batches
kwargs["model_init_kwargs"] = {"dtype": settings["dtype"]}
args = SFTConfig(**kwargs)

rows = []
with open(settings["data"]) as handle:
    for line in handle:
        messages = json.loads(line)["messages"]
        rows.append({"prompt": messages[:-1], "completion": messages[-1:]})

peft_config = LoraConfig(task_type="CAUSAL_LM", r=settings["lora_r"], lora_alpha=settings["lora_alpha"],
                         lora_dropout=settings["lora_dropout"], target_modules=settings["lora_target_modules"],
                         bias="none")
trainer = SFTTrainer(model=settings["model_name_or_path"], args=args, train_dataset=Dataset.from_list(rows),
                     peft_config=peft_config)
result = trainer.train()
if trainer.accelerator.is_main_process:
    tokens = [entry["num_tokens"] for entry in trainer.state.log_history if "num_tokens" in entry][-1]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {"steps": trainer.state.global_step, "tokens": int(tokens), "runtime_s": result.metrics["train_runtime"],
               "final_loss": losses[-1]}
    with open(sys.argv[3], "w") as handle:
        json.dump(summary, handle)
trainer.accelerator.wait_for_everyone()
'''

# the `medreason` console script, run by this interpreter
MEDREASON = [sys.executable, "-c", "import sys; from lm_eval_medreason.cli import main; sys.exit(main())"]

WORDS = ("the patient presents with chest pain fever cough radiating to back history examination laboratory "
         "imaging results step think wait but actually findings suggest pulmonary embolism diagnosis most "
         "likely appropriate next management surgery answer is final").split()


def build_model(directory: Path, hidden: int, intermediate: int, layers: int) -> Path:
    """The tests' tiny tokenizer with a wider Qwen2 body (random weights)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from tests.support.tiny_model import build_tiny_model

    build_tiny_model(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def write_data(path: Path, n: int, mean_words: float, cap: int, seed: int = 0) -> None:
    """Chat examples whose assistant turns have log-normal lengths (sigma 0.8: a long right tail)."""
    rng = random.Random(seed)
    sigma = 0.8
    mu = math.log(mean_words) - sigma**2 / 2
    with path.open("w") as out:
        for i in range(n):
            words = min(cap, max(8, int(rng.lognormvariate(mu, sigma))))
            question = f"Case {i}. " + " ".join(rng.choices(WORDS, k=30)) + "? A. B. C. D."
            answer = " ".join(rng.choices(WORDS, k=words)) + " The answer is (C)."
            out.write(json.dumps({"messages": [{"role": "user", "content": question},
                                               {"role": "assistant", "content": answer}]}) + "\n")


def run_medreason(tmp: Path, model: Path, data: Path, run: int, args) -> dict:
    output = tmp / f"medreason-{run}"
    command = [
        *MEDREASON, "train", "--recipe", "qwen2.5-32b-longmonolog",
        "--data", str(data), "--output-dir", str(output), "--model", str(model), "--max-steps", str(args.steps),
        "--num-processes", "1", "--bf16", "false", "--dtype", "float32", "--ddp_backend", "gloo",
        "--logging_steps", "1", "--save_steps", "100000", "--disable_tqdm", "true",
        "--effective_batch_size", str(args.effective_batch), "--per_device_train_batch_size", str(args.per_device),
    ]
    steps, wall = _run(command, output / "log.txt", tmp)
    summary = json.loads((output / "train_summary.json").read_text())
    return {"tokens": summary["tokens"], "runtime_s": summary["runtime_s"], "final_loss": summary["final_loss"],
            "config": output / "medreason_train.yaml", "steps": steps, "wall_s": wall}


def run_plain(tmp: Path, script: Path, config: Path, run: int) -> dict:
    output = tmp / f"plain-{run}"
    output.mkdir()
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(REPO / "training" / "accelerate" / "zero3.yaml"), "--num_processes", "1", "--mixed_precision", "no",
        "--main_process_port", str(_free_port()), str(script), str(config), str(output), str(output / "summary.json"),
    ]
    steps, wall = _run(command, output / "log.txt", tmp)
    return {**json.loads((output / "summary.json").read_text()), "steps": steps, "wall_s": wall}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str], log: Path, cwd: Path) -> list[tuple[float, str]]:
    """Run ``command``, its output to ``log``: (arrival time, loss) of each per-step log line, and the wall time."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # TOKENIZERS_PARALLELISM as medreason train sets for its workers; unbuffered, so that each step's log
    # line arrives when the step ends
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    steps, started = [], time.perf_counter()
    with log.open("w") as handle, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                   cwd=cwd, env=env, text=True) as process:
        for line in process.stdout:
            if line.startswith("{'loss'"):
                steps.append((time.perf_counter(), str(ast.literal_eval(line.strip())["loss"])))
            handle.write(line)
    if process.returncode:
        sys.exit(f"failed (exit {process.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")
    return steps, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--steps", type=int, default=15, help="optimizer steps per run")
    parser.add_argument("--examples", type=int, default=240)
    parser.add_argument("--mean-words", type=float, default=150.0, help="mean words of an assistant turn")
    parser.add_argument("--cap", type=int, default=1000, help="longest assistant turn, in words")
    parser.add_argument("--effective-batch", type=int, default=8)
    parser.add_argument("--per-device", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--intermediate", type=int, default=768)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from lm_eval_medreason.finetuning.data import read_sft_jsonl, token_lengths

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "model"
        parameters = build_model(model, args.hidden, args.intermediate, args.layers)
        data = tmp / "sft.jsonl"
        write_data(data, args.examples, args.mean_words, args.cap)
        lengths = sorted(token_lengths(AutoTokenizer.from_pretrained(model), read_sft_jsonl(data)[0]))
        print(f"model: Qwen2 hidden {args.hidden}, intermediate {args.intermediate}, {args.layers} layers, "
              f"{parameters / 1e6:.1f} M parameters; data: {len(lengths)} examples of {statistics.mean(lengths):.0f} "
              f"tokens on average (median {lengths[len(lengths) // 2]}, p90 {lengths[int(len(lengths) * 0.9)]}, "
              f"max {lengths[-1]}); {args.steps} steps of {args.effective_batch} examples "
              f"({args.per_device} per micro-batch), the recipe's LoRA and padding-free batches, ZeRO-3, 1 process",
              flush=True)
        script = tmp / "plain_sft.py"
        script.write_text(PLAIN_SFT)

        ours, plain, paired, walls = [], [], [], []
        for run in range(args.repeats):
            a = run_medreason(tmp, model, data, run, args)
            b = run_plain(tmp, script, a["config"], run)
            if a["tokens"] != b["tokens"] or [loss for _, loss in a["steps"]] != [loss for _, loss in b["steps"]]:
                sys.exit(f"not the same training: medreason {a['tokens']} tokens, losses {a['steps']}; "
                         f"plain TRL {b['tokens']} tokens, losses {b['steps']}")
            ours.append(a["tokens"] / a["runtime_s"])
            plain.append(b["tokens"] / b["runtime_s"])
            # step i of both runs trains on the same batch: the ratio of their durations, step by step
            # (steps 2..N: the first has no start mark), is immune to slow spells of the machine that hit one run
            a_times, b_times = (_durations(r["steps"]) for r in (a, b))
            paired += [tb / ta for ta, tb in zip(a_times, b_times)]
            walls.append((a["wall_s"], b["wall_s"]))
            print(f"run {run + 1}: {a['tokens']:,} tokens; medreason {a['runtime_s']:.2f} s "
                  f"({ours[-1]:,.0f} tokens/s), "
                  f"plain TRL {b['runtime_s']:.2f} s ({plain[-1]:,.0f} tokens/s); same losses (final "
                  f"{a['final_loss']:.4f}); median step {statistics.median(a_times):.3f} s against "
                  f"{statistics.median(b_times):.3f} s; whole command {a['wall_s']:.1f} s against {b['wall_s']:.1f} s",
                  flush=True)

    ours_median, plain_median = statistics.median(ours), statistics.median(plain)
    quartiles = statistics.quantiles(paired, n=4)
    print(f"median tokens/s (tokens / train_runtime): plain TRL {plain_median:,.0f}, medreason {ours_median:,.0f}: "
          f"ratio {ours_median / plain_median:.3f} (target >= 0.95)")
    print(f"paired per-step ratio (plain step time / medreason step time, {len(paired)} steps): median "
          f"{statistics.median(paired):.3f}, quartiles {quartiles[0]:.3f} to {quartiles[2]:.3f}")
    print(f"median wall time of the whole command (start-up, data check, model load, training, saving): "
          f"medreason train {statistics.median(a for a, _ in walls):.1f} s, plain TRL "
          f"{statistics.median(b for _, b in walls):.1f} s")


def _durations(steps: list[tuple[float, str]]) -> list[float]:
    return [later - earlier for (earlier, _), (later, _) in zip(steps, steps[1:])]


if __name__ == "__main__":
    main()
