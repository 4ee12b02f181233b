"""The evidence of a reading: ``read_choice`` returns the letter, the rule that gave it and the span of the
original response it was read from; ``score_response`` logs them beside the letter."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medreason.evaluation.answers import Reading, extract_choice, read_choice
from lm_eval_medreason.evaluation.hooks import ScoreResponses, score_response

CHEST = {"A": "Pulmonary embolism", "B": "Aortic dissection (AD)", "C": "Acute myocardial infarction",
         "D": "Tension pneumothorax"}
ADRENAL = {"A": "Cushing syndrome", "B": "Primary hyperaldosteronism", "C": "Addison disease", "D": "Pheochromocytoma"}
BLEED = {"A": "Intussusception", "B": "Meckel diverticulum", "C": "Volvulus", "D": "Pyloric stenosis"}
SHOCK = {"A": "Tension pneumothorax", "B": "Constrictive pericarditis", "C": "Cardiac tamponade", "D": "Septic shock"}
REASONING = "ST elevation in II, III and aVF with a rising troponin.\n\n"

# (id, response, options, letter, rule, the text of response[start:end])
SPANS = [
    ("answer_is_paren", REASONING + "The answer is (C).", CHEST, "C", "phrase", "answer is (C)"),
    ("answer_colon", REASONING + "Answer: C", CHEST, "C", "phrase", "Answer: C"),
    ("bold_answer", REASONING + "**Answer:** C", CHEST, "C", "phrase", "Answer:** C"),
    ("boxed", REASONING + "Therefore $\\boxed{C}$.", CHEST, "C", "phrase", "\\boxed{C}"),
    ("json", '{"reasoning": "STEMI", "answer": "C"}', CHEST, "C", "phrase", 'answer": "C"'),
    ("go_with", REASONING + "I'd go with D, given the tracheal deviation.", CHEST, "D", "phrase", "I'd go with D"),
    ("option_is_correct", REASONING + "Therefore, option C is correct.", CHEST, "C", "phrase", "option C is correct"),
    ("paren_is_correct", REASONING + "(C) is the correct answer.", CHEST, "C", "phrase", "(C) is the correct answer"),
    ("chinese", "下壁导联ST段抬高。答案是C。", CHEST, "C", "phrase", "答案是C"),
    ("fullwidth", "The answer is （Ｄ）", CHEST, "D", "phrase", "answer is （Ｄ）"),
    ("arrow", "Beck's triad\n→ **C**", SHOCK, "C", "phrase", "→ **C"),
    ("heading", "### Answer\n**(C)** Cardiac tamponade", SHOCK, "C", "phrase", "Answer\n**(C)"),
    ("retraction", "So B. Hmm, strike that, the ECG says C.", SHOCK, "C", "phrase", "strike that, the ECG says C"),
    ("strict_after_retraction", "The answer is B, wait, no: it must be C", SHOCK, "C", "phrase", "it must be C"),
    ("letter_in_brackets", "Pericardial fluid and hypotension, so tamponade (C).", SHOCK, "C", "phrase", "(C)"),
    ("letter_ending_sentence", "The onset is acute. Sticking with C.", SHOCK, "C", "phrase", "C"),
    ("lowercase_after_phrase", "the answer is b", SHOCK, "B", "phrase", "answer is b"),
    ("text_after_phrase", "The most likely diagnosis is Meckel's diverticulum.", BLEED, "B", "text",
     "most likely diagnosis is Meckel's diverticulum"),
    ("text_abbreviation", "Final answer: aortic dissection (AD)", CHEST, "B", "text",
     "Final answer: aortic dissection (AD)"),
    ("concluding_sentence", REASONING + "This fits Addison disease best.", ADRENAL, "C", "text",
     "This fits Addison disease"),
    ("concluding_possessive", "Painless bleeding. So it has to be Meckels diverticulum!", BLEED, "B", "text",
     "So it has to be Meckels diverticulum"),
    ("final_line_bold", REASONING + "**C. Acute myocardial infarction**", CHEST, "C", "final_line",
     "C. Acute myocardial infarction"),
    ("final_line_text", REASONING + "  Tension pneumothorax  \n", CHEST, "D", "final_line", "Tension pneumothorax"),
    ("final_line_letter", "(C)", CHEST, "C", "final_line", "(C)"),
    ("final_line_emoji", "Beck's triad.\n\n✅ **C. Cardiac tamponade**", SHOCK, "C", "final_line",
     "C. Cardiac tamponade"),
    ("last_sentence_text", "Muffled heart sounds after a stab wound: cardiac tamponade.", SHOCK, "C", "text",
     "Muffled heart sounds after a stab wound: cardiac tamponade"),
    ("first_line", "**B** – since the pulses differ.\n\nA pulse deficit points to a dissection.", CHEST, "B",
     "final_line", "B** – since the pulses differ."),
]


@pytest.mark.parametrize("response, options, letter, rule, text", [c[1:] for c in SPANS], ids=[c[0] for c in SPANS])
def test_span_is_what_the_letter_was_read_from(response, options, letter, rule, text):
    reading = read_choice(response, options)
    assert (reading.letter, reading.rule, response[reading.start : reading.end]) == (letter, rule, text)


def test_span_counts_the_reasoning_block():
    response = "<think>The answer is A? No.</think>\n\nThe answer is (C)."
    reading = read_choice(response, CHEST)
    assert reading == Reading("C", "phrase", 41, 54)
    assert response[41:54] == "answer is (C)"


@pytest.mark.parametrize(
    "response", ["", "I cannot give medical advice.", "<think>The answer is C", "The answer is A or C."]
)
def test_no_answer_has_no_span(response):
    assert read_choice(response, CHEST) == Reading(None, "none", None, None)


def test_reading_is_frozen():
    reading = read_choice("Answer: C", CHEST)
    assert [f.name for f in dataclasses.fields(Reading)] == ["letter", "rule", "start", "end"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.letter = "A"


def test_score_response_logs_rule_and_span_beside_the_letter():
    response = REASONING + "The answer is (C)."
    scored = score_response(response, {"options": CHEST})
    assert list(scored) == ["choice", "output_tokens", "rule", "span"]
    assert (scored["choice"], scored["rule"]) == ("C", "phrase")
    assert response[slice(*scored["span"])] == "answer is (C)"
    assert isinstance(scored["output_tokens"], int) and scored["output_tokens"] > 10


def test_score_response_without_answer():
    for response in (None, "I am not sure."):
        scored = score_response(response, {"options": CHEST})
        assert (scored["choice"], scored["rule"], scored["span"]) == (None, "none", [None, None])


def test_filter_writes_the_evidence_as_json():
    """What lands in the sample log's ``filtered_resps``: the JSON of score_response, span included."""
    responses = ["Hmm.\nThis fits Addison disease best.", "d"]
    [[first, second]] = ScoreResponses().apply([responses], [{"options": ADRENAL}])
    first, second = json.loads(first), json.loads(second)
    assert (first["choice"], first["rule"]) == ("C", "text")
    assert responses[0][slice(*first["span"])] == "This fits Addison disease"
    assert (second["choice"], second["rule"], second["span"]) == ("D", "final_line", [0, 1])


# --- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    "answer", "Answer: ", "The answer is ", "答案是", "选", "\\boxed{", "}", "\n", "\n\n", " ", "(", ")", "**", ":",
    "A", "B", "C", "D", "a", "d", "Ｃ", " or ", "So ", "→ ", "wait, no: ", "Hmm, strike that, ", "it must be ",
    "If she were pregnant, the answer would be ", "Had she been pregnant, ", " only if ", "### Answer\n",
    "This fits ", "Addison disease", "Meckel's diverticulum", "pulmonary embolism", " best.", ". ", "? ",
    "A. ", "B) ", "**C** – ", "Going through the choices: ", "vitamin A", "E. coli", "İ", "é", "</think>",
]
text = st.lists(st.one_of(st.text(max_size=10), st.sampled_from(FRAGMENTS)), max_size=25).map("".join)
option_sets = st.sampled_from([CHEST, ADRENAL, BLEED, SHOCK, {"A": "Addison disease", "B": None, "C": "A"}])


def _fold(s: str) -> str:
    return "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in s).upper()


@settings(max_examples=400, deadline=None)
@given(response=st.one_of(st.text(), text), options=option_sets)
def test_reading_is_consistent(response, options):
    reading = read_choice(response, options)
    assert reading.letter == extract_choice(response, options)
    assert reading.rule in ("phrase", "text", "final_line", "none")
    assert (reading.letter is None) == (reading.rule == "none") == (reading.start is None) == (reading.end is None)
    if reading.letter is None:
        return
    assert options.get(reading.letter) is not None
    assert 0 <= reading.start < reading.end <= len(response)
    assert reading.start >= response.rfind("</think>") + len("</think>") * ("</think>" in response)
    span = response[reading.start : reading.end]
    if reading.rule == "phrase":
        assert reading.letter in _fold(span)
    if reading.rule == "final_line":
        assert "\n" not in span and span == span.strip()


@settings(max_examples=300, deadline=None)
@given(response=text, reasoning=st.text(max_size=40), options=option_sets)
def test_span_offsets_follow_a_reasoning_block(response, reasoning, options):
    """Behind a closed reasoning block the same reading comes back, its span moved by the block's length."""
    if "think>" in response + reasoning:
        return
    prefix = f"<think>{reasoning}</think>"
    alone, behind = read_choice(response, options), read_choice(prefix + response, options)
    assert (behind.letter, behind.rule) == (alone.letter, alone.rule)
    if alone.start is not None:
        assert (behind.start, behind.end) == (alone.start + len(prefix), alone.end + len(prefix))
