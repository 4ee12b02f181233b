"""Generations per question for the whole majority-vote curve, counted at the server.

Runs the real `lm_eval` CLI against a local scripted OpenAI-compatible server on
synthetic MedQA cases and counts the requests it receives per question:
  ours      one run of ``medqa_cot_maj`` (32 samples give maj@1..maj@32)
  separate  the study's way: separate runs with 4, 8, 16 and 32 votes (tasks that
            include ours with ``repeats`` set to 4, 8, 16, 32)

    python -m benchmarks.vote_requests [--cases 10]
"""

import argparse
import json
import tempfile
from pathlib import Path

SEPARATE_VOTES = (4, 8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    args = parser.parse_args()

    from lm_eval_medreason.resources import tasks_dir
    from tests.support.fake_openai import fake_chat_server
    from tests.support.lm_eval_run import run_lm_eval
    from tests.support.synthetic import write_data_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data_dir(tmp / "data", n=args.cases)
        separate = tmp / "separate"
        separate.mkdir()
        for votes in SEPARATE_VOTES:
            (separate / f"votes_{votes}.yaml").write_text(
                f"include: {tasks_dir() / 'medqa' / 'medqa_cot_maj.yaml'}\ntask: medqa_cot_votes_{votes}\nrepeats: {votes}\n"
            )
        counts = {}
        for label, tasks, extra in (
            ("ours", "medqa_cot_maj", []),
            ("separate", ",".join(f"medqa_cot_votes_{v}" for v in SEPARATE_VOTES), ["--include_path", str(separate)]),
        ):
            with fake_chat_server(lambda prompt: "The answer is (A).") as (url, requests):
                run_lm_eval(
                    ["--model", "local-chat-completions", "--apply_chat_template",
                     "--model_args", f"model=counter,base_url={url},num_concurrent=8,tokenizer_backend=none",
                     "--tasks", tasks, "--metadata", json.dumps({"data_dir": str(data["root"])}), *extra],
                    tmp / label,
                )
                counts[label] = len(requests)
    ours, sep = counts["ours"] / args.cases, counts["separate"] / args.cases
    print(f"{args.cases} MedQA questions, requests counted at the server")
    print(f"  one medqa_cot_maj run (maj@1..maj@32):           {ours:5.1f} generations per question")
    print(f"  separate runs with {'+'.join(map(str, SEPARATE_VOTES))} votes (the study): {sep:5.1f} generations per question")
    print(f"  saving: {1 - ours / sep:.0%}")


if __name__ == "__main__":
    main()
