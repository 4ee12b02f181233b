"""Tests for lm_eval_medreason.evaluation.answers.extract_choice: one case per recognised form, trap and
refusal, plus properties over arbitrary text and option sets."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lm_eval_medreason.evaluation.answers import extract_choice

CHEST = {
    "A": "Pulmonary embolism",
    "B": "Aortic dissection (AD)",
    "C": "Acute myocardial infarction",
    "D": "Tension pneumothorax",
}
LIVER = {"A": "Hepatitis", "B": "Autoimmune hepatitis", "C": "Primary biliary cholangitis", "D": "Wilson disease"}
VIRAL = {"A": "Hepatitis A", "B": "Hepatitis C", "C": "Hepatitis B", "D": "Hepatitis E"}
DRUGS = {"A": "Beta blocker", "B": "Calcium-channel blocker", "C": "ACE inhibitor", "D": "Loop diuretic"}
VERTIGO = {"A": "Ménière disease", "B": "Vestibular neuritis", "C": "BPPV", "D": "Acoustic neuroma"}
RHEUM = {"A": "Rheumatoid arthritis", "B": "Gout", "C": "Systemic lupus erythematosus (SLE)", "D": "Sarcoidosis"}
LABS = {"A": "Erythrocyte sedimentation rate", "B": "Procalcitonin", "C": "Ferritin", "D": "C-reactive protein"}
BUGS = {"A": "Klebsiella pneumoniae", "B": "Proteus mirabilis", "C": "Enterococcus faecalis",
        "D": "Pseudomonas aeruginosa", "E": "Staphylococcus saprophyticus"}
CHEST_ZH = {"A": "肺栓塞", "B": "主动脉夹层", "C": "急性心肌梗死", "D": "张力性气胸"}
TEN = {k: f"Option text {k}" for k in "ABCDEFGHIJ"}
WITH_NONE = {**CHEST, "E": None}

STEMI = (
    "The patient is a 58-year-old man with crushing substernal chest pain for 40 minutes, "
    "diaphoresis and ST elevation in leads II, III and aVF. Troponin is elevated. "
    "Pulmonary embolism would give tachycardia and hypoxia; aortic dissection a pulse differential; "
    "tension pneumothorax absent breath sounds. None of these fit as well as an inferior STEMI.\n\n"
)
OPTIONS_LIST = "\n".join(f"{k}. {v}" for k, v in CHEST.items())

CASES = [
    # --- letter forms -------------------------------------------------------------------
    ("bare_letter", "C", CHEST, "C"),
    ("bare_letter_dot", "C.", CHEST, "C"),
    ("bare_letter_paren", "(C)", CHEST, "C"),
    ("answer_is_paren", STEMI + "The answer is (C).", CHEST, "C"),
    ("correct_answer_is", STEMI + "The correct answer is C", CHEST, "C"),
    ("answer_colon", STEMI + "Answer: C", CHEST, "C"),
    ("bold_answer_colon", STEMI + "**Answer:** C", CHEST, "C"),
    ("bold_letter_text_final_line", STEMI + "**C. Acute myocardial infarction**", CHEST, "C"),
    ("bold_letter_only_final_line", STEMI + "**C.**", CHEST, "C"),
    ("final_answer_colon", STEMI + "Final Answer: C", CHEST, "C"),
    ("final_answer_bold_paren_text", STEMI + "Final answer: **(C) Acute myocardial infarction**", CHEST, "C"),
    ("final_answer_next_line", STEMI + "Final answer:\n\nC", CHEST, "C"),
    ("boxed", STEMI + "Therefore $\\boxed{C}$.", CHEST, "C"),
    ("boxed_text", STEMI + "\\[ \\boxed{\\text{C}} \\]", CHEST, "C"),
    ("json", '{"reasoning": "ST elevation in II, III, aVF", "answer": "C"}', CHEST, "C"),
    ("json_lowercase", '{"answer": "c"}', CHEST, "C"),
    ("lowercase_enclosed", STEMI + "answer: (c)", CHEST, "C"),
    ("option_is_correct", STEMI + "Therefore, option C is correct.", CHEST, "C"),
    ("paren_is_correct_answer", STEMI + "(C) is the correct answer.", CHEST, "C"),
    ("id_go_with", STEMI + "I'd go with D, given the tracheal deviation.", CHEST, "D"),
    ("most_likely_diagnosis_letter", STEMI + "The most likely diagnosis is (C).", CHEST, "C"),
    ("ten_options_letter_i", "Answer: I", TEN, "I"),
    # --- Chinese and full-width -----------------------------------------------------------
    ("zh_answer_is", "患者下壁导联ST段抬高，肌钙蛋白升高，符合急性心肌梗死。答案是C。", CHEST, "C"),
    ("zh_answer_fullwidth", "根据以上分析。\n答案：Ｃ", CHEST, "C"),
    ("zh_correct_answer_wei", "综合考虑，正确答案为 C", CHEST, "C"),
    ("zh_xuan", "排除其他选项，故选C。", CHEST, "C"),
    ("zh_final_answer", "选项A：肺栓塞，不太可能。\n最终答案：C", CHEST, "C"),
    ("zh_option_correct", "选项C正确。", CHEST, "C"),
    ("zh_option_text", "根据胸痛放射至背部及双上肢血压差，最可能的诊断是主动脉夹层。", CHEST_ZH, "B"),
    ("fullwidth_paren", "The answer is （Ｄ）", CHEST, "D"),
    # --- self-corrections and the last commitment -----------------------------------------
    ("self_correction_wait", "The answer is B. Wait, actually the breath sounds are absent and the trachea "
     "is deviated, so the answer is D.", CHEST, "D"),
    ("self_correction_reflection", "Answer: B\n\nOn reflection, the ECG shows inferior ST elevation; "
     "the correct answer is C", CHEST, "C"),
    ("text_then_letter", "The most likely diagnosis is pulmonary embolism. However, the ST elevation "
     "changes this: the answer is C.", CHEST, "C"),
    ("letter_then_text", "Answer: A. Hmm, wait. The pulse differential matters. The most likely "
     "diagnosis is actually aortic dissection.", CHEST, "B"),
    ("options_list_then_answer", OPTIONS_LIST + "\n\nThe ECG shows STEMI.\n\nAnswer: C", CHEST, "C"),
    ("options_list_then_bare_letter", OPTIONS_LIST + "\n\nC", CHEST, "C"),
    ("invalid_letter_then_ignored", "The answer is B.\n\nFinal answer: E", CHEST, "B"),
    # --- reasoning blocks ------------------------------------------------------------------
    ("think_closed_answer_after", "<think>PE or MI? The ST elevation says MI.</think>\n\nThe answer is C.",
     CHEST, "C"),
    ("think_tentative_inside", "<think>So the answer is B... no, the ECG shows STEMI.</think>\nFinal answer: C",
     CHEST, "C"),
    ("think_closed_nothing_after", "<think>The answer is B.</think>\n\n", CHEST, None),
    ("think_unclosed", "<think>Let me think. The answer is B. Hmm, but the ECG", CHEST, None),
    ("think_open_only_in_prompt", "Reasoning: maybe B.</think>\nAnswer: C", CHEST, "C"),
    ("think_reopened_after_close", "<think>a</think>Answer: C<think>reconsidering", CHEST, None),
    # --- no answer -------------------------------------------------------------------------
    ("refusal", "I cannot provide medical advice. Please consult a licensed physician.", CHEST, None),
    ("empty", "", CHEST, None),
    ("whitespace", "  \n\t  ", CHEST, None),
    ("hedge_no_phrase", STEMI + "It could be A or C; both fit the presentation.", CHEST, None),
    ("hedge_after_phrase", STEMI + "The answer is A or C.", CHEST, None),
    ("cut_off_mid_analysis", "Let's analyze each option.\n\nA. Pulmonary embolism: The sudden dyspnea and",
     CHEST, None),
    ("cut_off_at_option_header", "Let's go through the options.\n\n**A. Pulmonary embolism**: unlikely, "
     "no hypoxia.\n\n**B. Aortic dissection (AD)**", CHEST, None),
    ("only_options_list", OPTIONS_LIST, CHEST, None),
    ("letter_not_in_options", STEMI + "Answer: E", CHEST, None),
    ("letter_with_none_text", STEMI + "Answer: E", WITH_NONE, None),
    ("pronoun_i", "I am not sure; I would need more information.", TEN, None),
    # --- letters that are part of words ----------------------------------------------------
    ("trap_vitamin_a", "Night blindness and Bitot spots point to vitamin A. Replete it.", CHEST, None),
    ("trap_hepatitis_b", "Serology shows hepatitis B surface antigen; the answer is hepatitis B.", CHEST, None),
    ("trap_type_a", "CT shows a type A dissection of the ascending aorta.", CHEST, None),
    ("trap_group_b_strep", "The neonate most likely has group B strep sepsis.", CHEST, None),
    ("trap_factor_plan_b", "She took Plan B last week; factor B levels were normal.", CHEST, None),
    ("trap_hba1c", "Her HbA1c is 9.2%, so glycemic control is poor.", CHEST, None),
    ("trap_age_article", "This is a 45-year-old man with chest pain.", CHEST, None),
    ("trap_article_sentence", "A patient with these findings needs urgent imaging.", CHEST, None),
    ("trap_article_after_answer", "Answer:\nA patient like this should get CT angiography.", CHEST, None),
    ("trap_genus_abbreviation", "The most likely organism is E. coli.", BUGS, None),
    ("trap_c_reactive", "The best initial test is C-reactive protein.", LABS, "D"),
    ("trap_b12", "Answer: B12 deficiency", CHEST, None),
    # --- option text -----------------------------------------------------------------------
    ("text_diagnosis", STEMI + "The most likely diagnosis is pulmonary embolism.", CHEST, "A"),
    ("text_upper_case", "THE MOST LIKELY DIAGNOSIS IS PULMONARY EMBOLISM", CHEST, "A"),
    ("text_article_a", "The answer is a tension pneumothorax.", CHEST, "D"),
    ("text_hyphen_vs_space", "The best next step is to start a beta-blocker.", DRUGS, "A"),
    ("text_space_vs_hyphen", "The most appropriate treatment is a calcium channel blocker.", DRUGS, "B"),
    ("text_accents", "The most likely diagnosis is Meniere disease.", VERTIGO, "A"),
    ("text_bracket_abbreviation_dropped", "The answer is aortic dissection.", CHEST, "B"),
    ("text_short_abbreviation_alone", "The answer is AD.", CHEST, None),
    ("text_long_abbreviation_alone", "Final answer: SLE", RHEUM, "C"),
    ("text_substring_longer", "The most likely diagnosis is autoimmune hepatitis.", LIVER, "B"),
    ("text_substring_shorter", "The most likely diagnosis is hepatitis.", LIVER, "A"),
    ("text_hepatitis_b_option", "The most likely diagnosis is hepatitis B.", VIRAL, "C"),
    ("text_ambiguous", "The most likely diagnosis is pulmonary embolism or aortic dissection.", CHEST, None),
    ("text_contrast", "The most likely diagnosis is aortic dissection rather than pulmonary embolism.",
     CHEST, "B"),
    ("text_negated", "The answer is not pulmonary embolism.", CHEST, None),
    ("text_id_go_with", "I'd go with tension pneumothorax.", CHEST, "D"),
    ("text_boxed", "$\\boxed{\\text{Tension pneumothorax}}$", CHEST, "D"),
    ("text_final_line", STEMI + "Tension pneumothorax", CHEST, "D"),
    ("text_final_line_bold", STEMI + "**Acute myocardial infarction**", CHEST, "C"),
]


@pytest.mark.parametrize("response, options, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_extract_choice(response, options, expected):
    assert extract_choice(response, options) == expected


def test_case_ids_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


# --- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    "answer", "Answer: ", "The answer is ", "final answer", "答案是", "选", "<think>", "</think>",
    "\\boxed{", "}", "\n", "\n\n", " ", "(", ")", "**", ":", "：", "A", "B", "C", "D", "E", "I", "J", "a",
    "Ｃ", "or", " or ", "vitamin A", "hepatitis B", "most likely diagnosis is ", "I'd go with ",
    "option ", " is correct.", '{"answer": "', '"}', "pulmonary embolism", "E. coli", "İ",
    "So ", "→ ", "=> ", "wait, no: ", "strike that, ", "it must be ", "Had she been pregnant, ", " only if ",
    "### Answer\n", "**C** – ", "a) ", "This fits ", "Meckel's diverticulum", " best.", "é", "? ",
]
LETTERS = "ABCDEFGHIJ"
responses = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FRAGMENTS)), max_size=25).map("".join)
option_texts = st.one_of(
    st.none(), st.text(max_size=25), st.sampled_from(list(CHEST.values()) + list(LIVER.values()) + ["", "A", "AD"])
)
option_sets = st.dictionaries(st.sampled_from(LETTERS), option_texts, min_size=2, max_size=6)


@settings(max_examples=300, deadline=None)
@given(response=st.one_of(st.text(), responses), options=option_sets)
def test_never_raises_and_returns_a_present_option(response, options):
    got = extract_choice(response, options)
    assert got is None or (got in options and options[got] is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(response=st.one_of(st.text(), responses), options=option_sets, data=st.data())
def test_trailing_final_answer_wins(response, options, data):
    assume(response.rfind("<think>") <= response.rfind("</think>"))  # no reasoning left open
    present = sorted(k for k, v in options.items() if v is not None)
    assume(present)
    letter = data.draw(st.sampled_from(present))
    assert extract_choice(response + f"\n\nFinal answer: {letter}", options) == letter
