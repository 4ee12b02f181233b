"""End-to-end overhead of a medreason task against a plain lm-eval YAML task.

Both send the same prompts with the same generation settings to the same tiny
model (built locally, HF backend, loaded once): ours is ``medqa_cot`` on a
synthetic MedQA file (loader + validation + Jinja prompt + extraction + token
counting); the plain task reads the pre-rendered prompts from a JSON file and
scores with lm-eval's regex filter and exact_match. Runs alternate; the script
prints the median wall time of each ``simple_evaluate`` and their ratio.
Target: ratio at most 1.05.

    python -m benchmarks.e2e_overhead [--cases 100] [--repeats 7] [--max-gen-toks 32]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

PLAIN_TASK = """\
task: plain_medqa_cot
dataset_path: json
dataset_kwargs:
  data_files:
    test: {prompts}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer_idx}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_gen_toks}
  do_sample: false
  temperature: 0.0
filter_list:
  - name: regex
    filter:
      - function: regex
        regex_pattern: "answer is \\\\(?([A-E])\\\\)?"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-gen-toks", type=int, default=32)
    args = parser.parse_args()

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from lm_eval_medreason.data.loaders import load_cases
    from lm_eval_medreason.prompts import render_case
    from lm_eval_medreason.resources import tasks_dir
    from tests.support.synthetic import write_data_dir
    from tests.support.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data_dir(tmp / "data", n=args.cases)
        metadata = {"data_dir": str(data["root"])}
        prompts = tmp / "plain" / "prompts.jsonl"
        prompts.parent.mkdir()
        with prompts.open("w") as out:
            for case in load_cases("medqa", metadata):
                out.write(json.dumps({"prompt": render_case("eval_cot.j2", case), "answer_idx": case["answer_idx"]}) + "\n")
        (tmp / "plain" / "plain_medqa_cot.yaml").write_text(PLAIN_TASK.format(prompts=prompts, max_gen_toks=args.max_gen_toks))

        model = HFLM(pretrained=str(build_tiny_model(tmp / "model")), device="cpu", dtype="float32", batch_size=8)
        # lm-eval's own tasks left out (faster indexing), so ours are named explicitly: the hook adds them only
        # to a TaskManager that includes the defaults.
        manager = TaskManager(include_path=[str(tmp / "plain"), str(tasks_dir())], include_defaults=False,
                              metadata=metadata)
        gen_kwargs = f"max_gen_toks={args.max_gen_toks}"

        def evaluate(task: str) -> float:
            start = time.perf_counter()
            lm_eval.simple_evaluate(model=model, tasks=[task], task_manager=manager, gen_kwargs=gen_kwargs,
                                    bootstrap_iters=0, verbosity="ERROR")
            return time.perf_counter() - start

        evaluate("medqa_cot"), evaluate("plain_medqa_cot")  # warm-up: caches, lazy imports
        ours, plain = [], []
        for _ in range(args.repeats):
            ours.append(evaluate("medqa_cot"))
            plain.append(evaluate("plain_medqa_cot"))
    o, p = statistics.median(ours), statistics.median(plain)
    print(f"{args.cases} MedQA cases, max_gen_toks {args.max_gen_toks}, tiny 2-layer model on CPU, {args.repeats} alternating runs")
    print(f"  plain lm-eval YAML task:  median {p:7.3f} s")
    print(f"  medqa_cot (this package): median {o:7.3f} s")
    print(f"  ratio: {o / p:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
