"""Every prompt includes the one question block; token counts are tiktoken's."""

import pytest

from lm_eval_medreason.generate_tasks import STRATEGIES
from lm_eval_medreason.prompts import render, render_case
from lm_eval_medreason.tokens import count_tokens, get_encoding

CASE = {
    "question": "  A 61-year-old woman has sudden dyspnea after a long flight.  ",
    "options": {"A": "Pulmonary embolism", "B": "Pneumothorax", "C": "Asthma", "D": None},
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_prompt_contains_the_question_block(strategy):
    block = render("question.j2", **CASE)
    assert block == "A 61-year-old woman has sudden dyspnea after a long flight.\n\nA. Pulmonary embolism\nB. Pneumothorax\nC. Asthma\n"
    prompt = render_case(f"eval_{strategy}.j2", CASE)
    assert block in prompt and "D." not in prompt


def test_reasoning_prompts_ask_for_the_final_answer_line():
    for strategy in ("cot", "longstep", "longmonolog"):
        assert 'The answer is (X)' in render_case(f"eval_{strategy}.j2", CASE)


def test_missing_variable_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render("question.j2", question="q")


def test_count_tokens_is_tiktoken_on_the_whole_text():
    text = "<think>\nHmm, wait.\n</think>\n\nThe answer is (C). <|endoftext|>"
    assert count_tokens(text) == len(get_encoding("cl100k_base").encode_ordinary(text))
    assert count_tokens(text) > count_tokens("The answer is (C).")
    assert count_tokens("") == 0


def test_encoding_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEDREASON_TOKEN_ENCODING", "no_such_encoding")
    with pytest.raises(ValueError, match="unknown tiktoken encoding 'no_such_encoding'"):
        count_tokens("The answer is (C).")


def test_encoding_comes_from_metadata_and_travels_with_each_doc(synthetic_data, clean_env):
    from lm_eval_medreason.harness import medqa_dataset, score_response

    docs = medqa_dataset(data_dir=str(synthetic_data["root"]), token_encoding="no_such_encoding", pretrained="x")["test"]
    assert set(docs["token_encoding"]) == {"no_such_encoding"}
    with pytest.raises(ValueError, match="no_such_encoding"):
        score_response("The answer is (C).", docs[0])
    default_docs = medqa_dataset(data_dir=str(synthetic_data["root"]))["test"]
    assert score_response("The answer is (C).", default_docs[0])["output_tokens"] == count_tokens("The answer is (C).")
