"""Free-form answers without a judge: final-answer extraction, the deterministic matcher (one case
per rule, plus properties), the prompt, the dataset hooks and the per-sample metrics."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medreason.freeform import (
    GradeFreeform,
    answers_match,
    extract_final_answer,
    judge_settings,
    match_freeform,
    process_results,
    prompt_freeform,
)
from lm_eval_medreason.prompts import render
from lm_eval_medreason.tokens import count_tokens

REASONING = (
    "The patient has a malar rash, arthritis, oral ulcers and anti-dsDNA antibodies. "
    "Rheumatoid arthritis would not explain the rash. Dermatomyositis would give weakness.\n\n"
)

EXTRACTION = [
    ("final_answer_line", REASONING + "Final answer: Systemic lupus erythematosus", "Systemic lupus erythematosus"),
    ("bold_label", REASONING + "**Final Answer:** Systemic lupus erythematosus", "Systemic lupus erythematosus"),
    ("bold_answer", REASONING + "Final answer: **Systemic lupus erythematosus**.", "Systemic lupus erythematosus"),
    ("heading_then_next_line", REASONING + "### Final answer\n\nSystemic lupus erythematosus", "Systemic lupus erythematosus"),
    ("final_answer_is", REASONING + "My final answer is lupus nephritis.", "lupus nephritis"),
    ("final_diagnosis", REASONING + "Final diagnosis: lupus nephritis", "lupus nephritis"),
    ("last_final_answer_wins", "Final answer: gout\nWait, the rash fits better.\nFinal answer: SLE", "SLE"),
    ("sentence_cut", REASONING + "Final answer: Lupus nephritis. This explains the casts.", "Lupus nephritis"),
    ("because_cut", REASONING + "Final answer: Lupus nephritis because of the casts", "Lupus nephritis"),
    ("boilerplate_stripped", REASONING + "Final answer: The most likely diagnosis is lupus nephritis", "lupus nephritis"),
    ("boxed", REASONING + "Final answer: $\\boxed{\\text{Lupus nephritis}}$", "Lupus nephritis"),
    ("answer_is", REASONING + "So the answer is lupus nephritis.", "lupus nephritis"),
    ("diagnosis_is", REASONING + "The most likely diagnosis is lupus nephritis.", "lupus nephritis"),
    ("after_think", "<think>\nFinal answer: gout? No.\n</think>\n\nFinal answer: SLE", "SLE"),
    ("short_reply", "Lupus nephritis", "Lupus nephritis"),
    ("e_coli_kept", "Final answer: E. coli urinary tract infection", "E. coli urinary tract infection"),
    ("open_think_is_none", "<think>\nFinal answer: SLE, probably", None),
    ("long_prose_is_none", REASONING + "I would need more information before deciding.", None),
    ("short_refusal_is_none", "I cannot determine this from the information given.", None),
    ("short_question_is_none", "Could it be lupus nephritis?", None),
    ("labelled_refusal_is_an_answer", "Final answer: Cannot be determined", "Cannot be determined"),
    ("empty_is_none", "", None),
    ("placeholder_only_is_none", "Final answer: **", None),
    ("empty_final_line_falls_back", "The answer is lupus nephritis.\nFinal answer:", "lupus nephritis"),
    ("final_answer_in_prose_is_no_heading", REASONING + "Before my final answer\nwe check the urine.", None),
]


@pytest.mark.parametrize("response,expected", [c[1:] for c in EXTRACTION], ids=[c[0] for c in EXTRACTION])
def test_extract_final_answer(response, expected):
    assert extract_final_answer(response) == expected


MATCHES = [
    # rule: normalisation (case, punctuation, accents, possessive, plural, articles)
    ("case_and_period", "systemic LUPUS erythematosus.", "Systemic lupus erythematosus"),
    ("accents", "Meniere disease", "Ménière disease"),
    ("possessive", "Crohns disease", "Crohn's disease"),
    ("possessive_plural", "Graves disease", "Graves' disease"),
    ("article", "The iron deficiency", "Iron deficiency"),
    ("plural", "Kidney stones", "Kidney stone"),
    ("plural_ies", "Lewy body dementia", "Lewy bodies dementia"),
    ("of_dropped", "Pancreatic head adenocarcinoma", "Adenocarcinoma of the pancreatic head"),
    ("roman_numeral", "Type I diabetes mellitus", "Type 1 diabetes mellitus"),
    ("greek_letter", "β-thalassemia minor", "Beta-thalassemia minor"),
    # rule: hyphens as spaces or as nothing; spaces ignored in order
    ("hyphen_space", "Beta thalassemia minor", "Beta-thalassemia minor"),
    ("hyphen_joined", "Betathalassemia minor", "Beta-thalassemia minor"),
    ("space_joined", "Nonhodgkin lymphoma", "Non Hodgkin lymphoma"),
    # rule: word order within a clause, clause order, inverted index form
    ("word_order", "Nephritis lupus", "Lupus nephritis"),
    ("inverted_index_form", "Nephritis, lupus", "Lupus nephritis"),
    ("clause_order", "Vancomycin and ceftriaxone", "Ceftriaxone and vancomycin"),
    ("clause_order_commas", "Decreased calcium, increased PTH", "Increased PTH, decreased calcium"),
    # rule: bracketed abbreviation in the gold, and the abbreviation table
    ("gold_abbreviation_alone", "SLE", "Systemic lupus erythematosus (SLE)"),
    ("gold_without_bracket", "Polycystic ovarian syndrome", "Polycystic ovarian syndrome (PCOS)"),
    ("bracket_abbreviation_not_in_table", "PCOS", "Polycystic ovarian syndrome (PCOS)"),
    ("response_bracket", "Pulmonary embolism (PE)", "Pulmonary embolism"),
    ("table_mi", "Acute MI", "Acute myocardial infarction"),
    ("table_pe", "PE", "Pulmonary embolism"),
    ("table_dvt", "DVT", "Deep vein thrombosis"),
    ("table_copd", "COPD exacerbation", "Chronic obstructive pulmonary disease exacerbation"),
    ("table_chf", "CHF", "Congestive heart failure"),
    ("table_tb", "Miliary TB", "Miliary tuberculosis"),
    ("table_uti", "UTI", "Urinary tract infection"),
    ("table_dka", "DKA", "Diabetic ketoacidosis"),
    ("gold_several_sentences", "Repeat antibody screening at 28 weeks. Administer anti-D immunoglobulin",
     "Repeat antibody screening at 28 weeks. Administer anti-D immunoglobulin."),
    ("gold_semicolon", "Type IV hypersensitivity; CD4+ T cells", "Type IV hypersensitivity; CD4+ T cells"),
    ("same_fraction", "25/250", "25/250"),
    ("gold_holds_or", "Observe with no additional testing or intervention", "Observe with no additional testing or intervention"),
    ("gold_holds_differential", "Repeat CBC with differential", "Repeat CBC with differential"),
]


@pytest.mark.parametrize("answer,gold", [c[1:] for c in MATCHES], ids=[c[0] for c in MATCHES])
def test_matching_forms(answer, gold):
    assert match_freeform(REASONING + f"Final answer: {answer}", gold)
    if ". " not in answer:  # a gold of several sentences matches the whole final line only
        assert answers_match(answer, gold)


REJECTS = [
    ("type_1_vs_2", "Type 2 diabetes mellitus", "Type 1 diabetes mellitus"),
    ("type_roman_vs_2", "Type II diabetes mellitus", "Type 1 diabetes mellitus"),
    ("aml_vs_all", "Acute lymphoblastic leukemia", "Acute myeloid leukemia"),
    ("aml_abbreviation_vs_all", "AML", "Acute lymphoblastic leukemia"),
    ("hepatitis_b_vs_c", "Hepatitis C", "Hepatitis B"),
    ("less_specific", "Diabetes mellitus", "Type 1 diabetes mellitus"),
    ("more_specific", "Lupus nephritis class IV", "Lupus nephritis"),
    ("modifier_swapped", "Decreased PTH, increased calcium", "Increased PTH, decreased calcium"),
    ("laterality_swapped", "Right ventricle to left atrium", "Left ventricle to right atrium"),
    ("acute_vs_chronic", "Chronic pancreatitis", "Acute pancreatitis"),
    ("gold_middle_bracket_alone", "Mucormycosis", "Invasive fungal sinusitis (mucormycosis) with perineural spread"),
    ("abbreviation_of_part_only", "HgbF", "Increases levels of fetal hemoglobin (HgbF)"),
    ("abbreviation_of_part_only_2", "PID", "Active or recurrent pelvic inflammatory disease (PID)"),
    ("direction_swapped", "Decreases levels of fetal hemoglobin (HgbF)", "Increases levels of fetal hemoglobin (HgbF)"),
    ("inversion_keeps_clauses", "PPV increases, NPV decreases", "PPV decreases, NPV increases"),
    ("fraction_order", "250/25", "25/250"),
    ("numeric_bracket_kept", "580 / (20 + 590)", "580 / (580 + 20)"),
    ("inequality", "LOD score < 3", "LOD score > 3"),
    ("sequence_order", "Atria > Purkinje fibers > ventricles > AV node", "Purkinje fibers > atria > ventricles > AV node"),
    ("hedge_either_or", "Either lupus nephritis or IgA nephropathy", "Lupus nephritis"),
    ("hedge_or", "Lupus nephritis or IgA nephropathy", "Lupus nephritis"),
    ("hedge_list_or", "Lupus nephritis, IgA nephropathy, or PSGN", "Lupus nephritis"),
    ("hedge_vs", "Lupus nephritis vs. IgA nephropathy", "Lupus nephritis"),
    ("hedge_differential", "Differential includes lupus nephritis and IgA nephropathy", "Lupus nephritis"),
    ("hedge_and_or", "Lupus nephritis and/or IgA nephropathy", "Lupus nephritis"),
    ("empty_answer", "", "Lupus nephritis"),
]


@pytest.mark.parametrize("answer,gold", [c[1:] for c in REJECTS], ids=[c[0] for c in REJECTS])
def test_rejected_answers(answer, gold):
    assert not answers_match(answer, gold)
    assert not match_freeform(REASONING + f"Final answer: {answer}", gold)


@pytest.mark.parametrize(
    "response",
    [
        REASONING + "The differential includes lupus nephritis and IgA nephropathy.",
        REASONING + "Differential diagnosis: lupus nephritis and IgA nephropathy",
        REASONING + "It could be lupus nephritis or IgA nephropathy; I cannot commit.",
        "<think>\nLupus nephritis is likely, so Final answer: lupus nephritis",  # cut off
        "I cannot determine the diagnosis from the information given.",
    ],
)
def test_no_single_commitment_never_matches(response):
    assert not match_freeform(response, "Lupus nephritis")


def test_answer_after_reasoning_block_counts():
    response = "<think>\nFinal answer: IgA nephropathy? No, the dsDNA fits lupus.\n</think>\n\nFinal answer: Lupus nephritis"
    assert match_freeform(response, "Lupus nephritis")
    assert not match_freeform(response, "IgA nephropathy")


# --- properties ----------------------------------------------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèüöβ -', 0123456789", min_size=1, max_size=60)


@given(st.text(max_size=300), st.text(max_size=80))
@settings(max_examples=400, deadline=None)
def test_never_raises(response, gold):
    assert isinstance(match_freeform(response, gold), bool)
    answer = extract_final_answer(response)
    assert answer is None or isinstance(answer, str)


@given(st.text(min_size=1, max_size=80))
@settings(max_examples=400, deadline=None)
def test_identical_answers_match(text):
    if any(c.isalnum() for c in text):
        assert answers_match(text, text)


@given(st.text(alphabet=" .,;:!?-()[]'\"*_/", max_size=20))
def test_answers_without_words_never_match(text):
    assert not answers_match(text, text) and not match_freeform(f"Final answer: {text}", text)


@given(WORDS)
@settings(max_examples=300, deadline=None)
def test_case_hyphen_and_accent_variants_match(text):
    if not any(c.isalnum() for c in text):
        return
    variants = [text.upper(), text.replace("-", " "), text.replace("é", "e").replace("ü", "u"), f"  {text}. "]
    for variant in variants:
        assert answers_match(variant, text), variant


@given(WORDS)
@settings(max_examples=300, deadline=None)
def test_final_answer_line_round_trips(text):
    answer = text.strip(" -',.")
    if not any(c.isalnum() for c in answer) or answer[0] in "-'":
        return
    assert match_freeform(REASONING + f"Final answer: {answer}", answer)


# --- prompt, hooks, metrics ----------------------------------------------------------------

CASE = {
    "question": "  A 30-year-old woman has a malar rash. Which of the following is the most likely diagnosis?  ",
    "options": {"A": "Rheumatoid arthritis", "B": "Systemic lupus erythematosus", "C": "Gout", "D": None},
}


def test_prompt_shows_the_case_without_options():
    prompt = prompt_freeform(CASE)
    case_text = render("question.j2", **CASE).split("\n\n")[0]
    assert case_text in prompt and prompt.endswith(case_text)
    assert "Rheumatoid arthritis" not in prompt and "B." not in prompt
    assert "withheld" in prompt and "Final answer: <answer>" in prompt


def test_judge_settings_from_metadata_then_environment(clean_env, monkeypatch):
    assert judge_settings({})["model"] is None and judge_settings({})["concurrency"] == 8
    monkeypatch.setenv("MEDREASON_JUDGE_MODEL", "env-judge")
    monkeypatch.setenv("MEDREASON_JUDGE_CONCURRENCY", "3")
    assert judge_settings({}) == {
        "model": "env-judge", "base_url": None, "cache_dir": None, "concurrency": 3, "max_retries": 5, "timeout": 120.0,
    }
    assert judge_settings({"judge_model": "meta-judge", "judge_base_url": "http://x/v1"})["model"] == "meta-judge"
    settings = judge_settings({"judge_concurrency": 2, "judge_timeout": "30"})
    assert (settings["concurrency"], settings["timeout"]) == (2, 30.0)
    with pytest.raises(ValueError, match="MEDREASON_JUDGE_API_KEY"):
        judge_settings({"judge_api_key": "sk-secret"})
    with pytest.raises(ValueError, match="judge_concurrency"):
        judge_settings({"judge_concurrency": 0})


def test_dataset_hooks_add_judge_settings_but_no_key(synthetic_data, clean_env, monkeypatch):
    from lm_eval_medreason import freeform, harness

    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", "sk-never-logged")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-logged-either")
    root = str(synthetic_data["root"])
    for name in ("jama", "jama_full", "medbullets", "medqa"):
        plain = getattr(harness, f"{name}_dataset")(data_dir=root)["test"]
        docs = getattr(freeform, f"{name}_dataset")(data_dir=root, judge_model="judge", judge_base_url="http://h/v1")["test"]
        assert docs["id"] == plain["id"] and docs["answer"] == plain["answer"]
        assert docs[0]["judge"]["model"] == "judge" and docs[0]["judge"]["base_url"] == "http://h/v1"
        assert "sk-never" not in json.dumps(docs.to_list())
    matcher_docs = freeform.medqa_dataset(data_dir=root)["test"]
    assert matcher_docs[0]["judge"]["model"] is None


def test_matcher_grading_and_metrics(synthetic_data, clean_env):
    from lm_eval_medreason.freeform import medqa_dataset

    docs = medqa_dataset(data_dir=str(synthetic_data["root"]))["test"].to_list()[:3]
    responses = [
        [REASONING + f"Final answer: {docs[0]['answer']}"],
        [REASONING + "Final answer: Hepatitis C"],
        [REASONING + "I am not sure."],
    ]
    filtered = GradeFreeform().apply(responses, docs)
    graded = [json.loads(f[0]) for f in filtered]
    assert graded[0] == {
        "answer": docs[0]["answer"], "output_tokens": count_tokens(responses[0][0]), "grader": "matcher",
        "correct": True, "matcher_correct": True, "judge_error": False,
    }
    assert [g["correct"] for g in graded] == [True, False, False] and graded[2]["answer"] is None
    metrics = [process_results(doc, f) for doc, f in zip(docs, filtered)]
    assert metrics[0] == {"acc": 1.0, "output_tokens": float(count_tokens(responses[0][0])), "no_answer": 0.0,
                          "judge_error": 0.0, "judged": 0.0}
    assert [m["acc"] for m in metrics] == [1.0, 0.0, 0.0] and [m["no_answer"] for m in metrics] == [0.0, 0.0, 1.0]
    assert not any("matcher_agreement" in m for m in metrics)  # no judge verdict: agreement is not measured


def test_process_results_leaves_judge_errors_out_of_acc():
    base = {"answer": "SLE", "output_tokens": 7, "grader": "judge:j", "matcher_correct": True}
    error = process_results({}, [json.dumps({**base, "correct": None, "judge_error": True})])
    assert "acc" not in error and "matcher_agreement" not in error
    assert error == {"output_tokens": 7.0, "no_answer": 0.0, "judge_error": 1.0, "judged": 1.0}
    disagree = process_results({}, [json.dumps({**base, "correct": False, "judge_error": False})])
    assert disagree["acc"] == 0.0 and disagree["matcher_agreement"] == 0.0
    no_answer = process_results({}, [json.dumps({**base, "answer": None, "correct": False, "matcher_correct": False,
                                                  "judge_error": False})])
    assert no_answer["acc"] == 0.0 and no_answer["no_answer"] == 1.0 and "matcher_agreement" not in no_answer


def test_real_gold_answers_match_themselves_and_no_distractor(shared_data):
    """On the real MedQA and Medbullets files: a response naming the gold text verbatim is right, and
    naming any other option of the same question is wrong (order-, abbreviation- and hedge-rules
    must not merge two options)."""
    from lm_eval_medreason.loaders import load_cases

    pairs = 0
    for benchmark in ("medqa", "medqa_op5", "medbullets", "medbullets_op4"):
        for case in load_cases(benchmark, {"data_dir": str(shared_data)}):
            gold = case["answer"]
            if any(c.isalnum() for c in gold):  # one gold is "↓ ↑ ↓": for the judge
                assert match_freeform(REASONING + f"Final answer: {gold}", gold), gold
            for letter, text in case["options"].items():
                if text is not None and letter != case["answer_idx"]:
                    pairs += 1
                    assert not match_freeform(REASONING + f"Final answer: {text}", gold), (text, gold)
    assert pairs > 10_000
