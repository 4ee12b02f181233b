"""`--model medreason` passes what is not a scaling request through to its backend untouched: log-likelihoods,
chat templating, the tokenizer's name; and it refuses a missing or circular `base` with one line."""

import pytest

from lm_eval_medreason.evaluation.model import MedreasonLM


@pytest.fixture(scope="module")
def wrapped(tiny_model):
    from lm_eval.models.huggingface import HFLM

    return MedreasonLM(base="hf", pretrained=str(tiny_model), dtype="float32", device="cpu"), \
        HFLM(pretrained=str(tiny_model), dtype="float32", device="cpu")


def test_log_likelihoods_are_the_backends(wrapped):
    from lm_eval.api.instance import Instance

    lm, alone = wrapped
    pairs = [("The answer is", " (A)"), ("Chest pain radiating to the left arm", " suggests ischemia")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    assert lm.loglikelihood(requests) == alone.loglikelihood(requests)
    rolling = [Instance("loglikelihood_rolling", {}, (text,), i) for i, (text, _) in enumerate(pairs)]
    assert lm.loglikelihood_rolling(rolling) == alone.loglikelihood_rolling(rolling)


def test_chat_template_and_names_come_from_the_backend(wrapped):
    lm, alone = wrapped
    chat = [{"role": "user", "content": "Which artery?"}]
    assert lm.apply_chat_template(chat) == alone.apply_chat_template(chat)
    assert lm.tokenizer_name == alone.tokenizer_name and lm.chat_template(True) == alone.chat_template(True)
    assert (lm.rank, lm.world_size) == (0, 1) and lm.tokenizer is lm.base.tokenizer


@pytest.mark.parametrize("args,named", [({}, "base=BACKEND"), ({"base": "medreason"}, "base=medreason")])
def test_a_missing_or_circular_base_is_one_line(args, named):
    with pytest.raises(ValueError) as error:
        MedreasonLM(**args)
    assert named in str(error.value) and "\n" not in str(error.value)
