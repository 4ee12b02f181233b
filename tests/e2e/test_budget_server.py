"""The budget curve over a real text-completion server: `--model medreason --model_args base=local-completions,...`
against `transformers serve` of the tiny model. The wrapper cuts each response with the tokenizer named in
--model_args and sends the forced prompts to the server; each forced answer must be the model's own greedy
continuation of that prompt, computed here with transformers."""

import json

import pytest

from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.transformers_server import transformers_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
BUDGETS = [4, 16, 32]
ANSWER_TOKENS = 4
SUFFIX = "\n\nI have to answer now. The answer is ("


@pytest.fixture(scope="module")
def run(transformers_server, tmp_path_factory):  # noqa: F811
    from tests.support.synthetic import write_data_dir

    base_url, model = transformers_server
    data = write_data_dir(tmp_path_factory.mktemp("server-budget") / "data", n=3)
    out = tmp_path_factory.mktemp("server-budget-out")
    args = (f"base=local-completions,model={model},base_url={base_url}/completions,tokenizer={model},"
            "tokenizer_backend=huggingface,tokenized_requests=False,num_concurrent=1,max_retries=1")
    metadata = {"data_dir": str(data["root"]), "budgets": BUDGETS, "budget_answer_tokens": ANSWER_TOKENS}
    run_lm_eval(["--model", "medreason", "--model_args", args, "--tasks", "medqa_cot_budget",
                 "--gen_kwargs", "max_gen_toks=40", "--metadata", json.dumps(metadata)], out)
    return model, read_results(out)[1]["medqa_cot_budget"]


def test_forced_answers_through_a_completions_server_are_the_models_own(run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, samples = run
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    checked = 0
    for sample in samples:
        envelope = json.loads(sample["resps"][0][0])
        response, context = envelope["response"], sample["arguments"]["gen_args_0"]["arg_0"]
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        assert sorted(int(b) for b in envelope["forced"]) == [b for b in BUDGETS if len(ids) >= b]
        for b, forced in envelope["forced"].items():
            kept = response[:forced["cut"]]
            assert kept == tokenizer.decode(ids[:int(b)], clean_up_tokenization_spaces=False)  # the first B tokens
            encoded = tokenizer(context + kept + SUFFIX, return_tensors="pt")
            with torch.no_grad():
                generated = model.generate(**encoded, max_new_tokens=ANSWER_TOKENS, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            assert forced["continuation"] == tokenizer.decode(generated[0, encoded["input_ids"].shape[1]:],
                                                              skip_special_tokens=True), (sample["doc_id"], b)
            checked += 1
    assert checked >= len(samples)  # every question was forced at least once
