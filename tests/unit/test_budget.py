"""Budget forcing's pieces: where a response is cut (checked against decoding the first B token ids), the
settings' one-line errors, the envelope the wrapper returns, and which backends can continue a cut turn."""

import json

import pytest

from lm_eval_medreason.evaluation import budget
from lm_eval_medreason.evaluation.budget import Settings, can_continue, cut_offsets, pack, unpack

RESPONSES = [
    "Let's think step by step. Hmm, wait, but actually the findings suggest pulmonary embolism.",
    "A 45-year-old man presents with chest pain radiating to the back.\n\nThe answer is (C).",
    "Step 1. Summarize:   xyzzy   qwerty!!  ... The most appropriate next step is surgery. Final answer: B",
    "D",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("response", RESPONSES)
def test_the_cut_at_b_is_what_the_first_b_tokens_decode_to(tokenizer, response):
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    budgets = range(1, len(ids) + 3)
    cuts = cut_offsets(response, tokenizer, budgets)
    assert sorted(cuts) == list(range(1, len(ids) + 1))  # cut at every B it reaches; a shorter one is not cut
    for b, cut in cuts.items():
        assert response[:cut] == tokenizer.decode(ids[:b], clean_up_tokenization_spaces=False), b


def test_a_tokenizer_without_offsets_cuts_at_the_same_places():
    """A python-backend ("slow") tokenizer has no offset mapping: cuts come from decoding growing prefixes."""
    from transformers import PreTrainedTokenizer

    class Pairs(PreTrainedTokenizer):
        """Every two characters are one token (id = the pair's code points)."""

        vocab_size = 1 << 42

        def get_vocab(self):
            return {}

        def _tokenize(self, text):
            return [text[i:i + 2] for i in range(0, len(text), 2)]

        def _convert_token_to_id(self, token):
            return sum(ord(c) << (21 * i) for i, c in enumerate(token))

        def _convert_id_to_token(self, index):
            return "".join(chr((index >> (21 * i)) & 0x1FFFFF) for i in range(2) if index >> (21 * i))

        def convert_tokens_to_string(self, tokens):
            return "".join(tokens)

    response = "The answer is (C)."  # 18 characters: 9 tokens
    assert cut_offsets(response, Pairs(), [1, 4, 8, 9, 20]) == {1: 2, 4: 8, 8: 16, 9: 18}


def test_settings_from_metadata_sorts_and_deduplicates_the_budgets_and_keeps_the_defaults():
    settings = Settings.from_metadata({"budgets": [512, 64, 512, 128]})
    assert settings == Settings((64, 128, 512), "\n\nI have to answer now. The answer is (", 8)
    custom = Settings.from_metadata({"budgets": [8], "budget_suffix": "\nAnswer: (", "budget_answer_tokens": 3})
    assert (custom.suffix, custom.answer_tokens) == ("\nAnswer: (", 3)
    assert custom.as_column() == {"mode": "budget", "budgets": [8], "suffix": "\nAnswer: (", "answer_tokens": 3}


@pytest.mark.parametrize(
    "metadata,key",
    [
        ({}, "budgets"),
        ({"budgets": []}, "budgets"),
        ({"budgets": 256}, "budgets"),
        ({"budgets": [256, 0]}, "budgets"),
        ({"budgets": [256, -1]}, "budgets"),
        ({"budgets": [256.0]}, "budgets"),
        ({"budgets": ["256"]}, "budgets"),
        ({"budgets": [True]}, "budgets"),
        ({"budgets": [8], "budget_suffix": ""}, "budget_suffix"),
        ({"budgets": [8], "budget_suffix": " \n "}, "budget_suffix"),
        ({"budgets": [8], "budget_suffix": 3}, "budget_suffix"),
        ({"budgets": [8], "budget_answer_tokens": 0}, "budget_answer_tokens"),
        ({"budgets": [8], "budget_answer_tokens": 2.5}, "budget_answer_tokens"),
        ({"budgets": [8], "budget_answer_tokens": "8"}, "budget_answer_tokens"),
        ({"budgets": [8], "budget_answer_tokens": False}, "budget_answer_tokens"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(metadata, key):
    with pytest.raises(ValueError) as err:
        Settings.from_metadata(metadata)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"--metadata {key} must be "), message


def test_default_budgets_stop_at_the_strategy_budget():
    assert budget.default_budgets(2048) == [256, 512, 1024, 2048]
    assert budget.default_budgets(8192) == [256, 512, 1024, 2048, 4096, 8192]
    assert budget.default_budgets(1000) == [256, 512]


def test_forced_prompt_is_the_prompt_the_cut_response_and_the_suffix():
    settings = Settings((4,), suffix=" SUFFIX")
    assert budget.forced_prompt("<user>Q</user>", "thinking hard", 8, settings) == "<user>Q</user>thinking SUFFIX"


def test_the_envelope_round_trips():
    response = 'He said "wait" \\ then {x}: the answer is (C).\nÉtape 2 — 心 \u2028'
    forced = {4: (7, ' B) "quoted"'), 64: (40, ""), 16: (20, "Ünïcödé\n")}
    settings = Settings((4, 16, 64), "\nAnswer: (", 3)
    text = pack(response, forced, settings)
    assert json.loads(text)["medreason_budget"] == 1
    assert unpack(text) == (response, forced)
    assert unpack(text, settings) == (response, forced)
    assert unpack(pack(response, {}, settings), settings) == (response, {})


@pytest.mark.parametrize("other", [Settings((4, 16)), Settings((4, 16, 64), "\nAnswer: ", 3),
                                   Settings((4, 16, 64), "\nAnswer: (", 8)])
def test_an_envelope_forced_with_other_settings_is_refused_naming_the_cache(other):
    """lm-eval's --use_cache keys a response by its prompt and generation settings, not by the task's budgets:
    an envelope from a run with other settings lacks (or has other) forced answers, so it must not be scored."""
    text = pack("a long response", {4: (3, "B)")}, Settings((4, 16, 64), "\nAnswer: (", 3))
    with pytest.raises(ValueError) as err:
        unpack(text, other)
    message = str(err.value)
    assert "\n" not in message and "--use_cache" in message and str(list(other.budgets)) in message, message


@pytest.mark.parametrize(
    "response",
    ["The answer is (C).", "", '{"answer": "C"}', "{not json", "[1]",
     '{"medreason_budget": 2, "response": "", "forced": {}}'],
)
def test_unpacking_a_plain_response_names_the_wrapper(response):
    with pytest.raises(ValueError) as err:
        unpack(response)
    message = str(err.value)
    assert "\n" not in message and "--model medreason" in message and "base=" in message, message


@pytest.mark.parametrize("backend", ["hf", "vllm", "local-completions", "hf-auto", "huggingface", "openai-completions"])
def test_text_prompt_backends_can_continue(backend):
    assert can_continue(backend)


@pytest.mark.parametrize(
    "backend", ["local-chat-completions", "openai-chat-completions", "anthropic-chat", "medreason", ""])
def test_chat_backends_cannot_continue_and_the_message_names_those_that_can(backend):
    assert not can_continue(backend)
    message = budget.cannot_continue_message(backend)
    assert "\n" not in message and repr(backend) in message and "hf, vllm, local-completions" in message


def test_a_budget_task_builds_without_a_model_and_is_refused_beside_a_plain_one():
    """lm-eval builds the model before the tasks: with no model (lm-eval's own task tests) the task builds; beside a
    plain lm-eval model, which would get the requests uncut, it stops naming the wrapper (the CLI path is e2e)."""
    from lm_eval.models.dummy import DummyLM

    from lm_eval_medreason.evaluation.hooks import scaling_column

    metadata = {"scaling": "budget", "budgets": [8, 16]}
    assert scaling_column(metadata)["medreason_scaling"]["budgets"] == [8, 16]
    plain = DummyLM()
    with pytest.raises(ValueError, match="need this package's model wrapper"):
        scaling_column(metadata)
    del plain
    assert scaling_column(metadata)["medreason_scaling"]["budgets"] == [8, 16]
