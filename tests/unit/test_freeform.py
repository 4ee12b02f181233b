"""Free-form answers without a judge: final-answer extraction, the deterministic matcher (one case
per rule, plus properties), the prompt, the dataset hooks and the per-sample metrics."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medreason.evaluation.freeform import (
    GradeFreeform,
    abbreviations_defined,
    answers_match,
    extract_final_answer,
    grade_with_matcher,
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
    # a line that only announces the answer is not the answer
    ("announcing_line_alone_is_none", REASONING + "The answer to this clinical case is:", None),
    ("announcing_line_short_reply_is_none", "The answer to this clinical case is:", None),
    ("announcing_line_then_answer", REASONING + "The answer to this case would be:\n\n**Lupus nephritis**", "Lupus nephritis"),
    ("answer_for_the_patient_is", REASONING + "The answer for this patient is lupus nephritis.", "lupus nephritis"),
    ("final_answer_alone_is_none", REASONING + "Final answer:", None),
    # a question is not an answer
    ("labelled_question_is_none", REASONING + "Final answer: Lupus nephritis?", None),
    ("labelled_question_sentence_is_none", REASONING + "Final answer: Could this be lupus nephritis?", None),
    ("diagnosis_question_is_none", REASONING + "The most likely diagnosis is... lupus nephritis?", None),
    # a bare option letter names nothing (the options are withheld); a letter before the text is dropped
    ("bare_letter_is_none", REASONING + "Final answer: C", None),
    ("bare_bracketed_letter_is_none", REASONING + "Final answer: (B)", None),
    ("bare_bold_letter_is_none", REASONING + "Final answer: **D.**", None),
    ("option_word_letter_is_none", REASONING + "Final answer: Option E", None),
    ("bare_lowercase_letter_is_none", "a", None),
    ("letter_then_text", REASONING + "Final answer: B. Lupus nephritis", "Lupus nephritis"),
    ("bracketed_letter_then_text", REASONING + "Final answer: (C) Lupus nephritis", "Lupus nephritis"),
    ("bold_bracketed_letter_then_text", "Final answer: **(C)** Cardiac tamponade", "Cardiac tamponade"),
    ("genus_initial_kept", REASONING + "Final answer: C. difficile colitis", "C. difficile colitis"),
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
    # rule: dash variants
    ("en_dash", "Churg–Strauss syndrome", "Churg-Strauss syndrome"),
    ("em_dash", "Churg—Strauss syndrome", "Churg-Strauss syndrome"),
    ("en_dash_non", "Non–small cell lung cancer", "Non-small cell lung cancer"),
    ("dash_and_accent", "Guillain–Barré syndrome", "Guillain-Barre syndrome"),
    ("possessive_curly", "Hashimoto’s thyroiditis", "Hashimoto thyroiditis"),
    # rule: relations keep their order but not their wording
    ("relation_same", "Hypothyroidism secondary to Hashimoto thyroiditis", "Hypothyroidism secondary to Hashimoto thyroiditis"),
    ("relation_other_marker", "Hypothyroidism due to Hashimoto thyroiditis", "Hypothyroidism secondary to Hashimoto thyroiditis"),
    ("relation_caused_by", "Cirrhosis caused by hepatitis C", "Cirrhosis as a result of hepatitis C"),
    ("relation_forwards", "Hashimoto thyroiditis causing hypothyroidism", "Hypothyroidism secondary to Hashimoto thyroiditis"),
    ("relation_leading_to", "Pneumonia leading to sepsis", "Sepsis due to pneumonia"),
    ("relation_parts_order_free", "Lung adenocarcinoma metastatic to the brain", "Adenocarcinoma of the lung metastatic to the brain"),
    ("relation_conversion", "Conversion of testosterone to dihydrotestosterone", "Conversion of testosterone to dihydrotestosterone"),
    ("relation_hyphens", "Left to right shunt", "Left-to-right shunt"),
    # rule: the gold's own initialism (three or more capitals, a gold of two words or more)
    ("initialism_hus", "HUS", "Hemolytic uremic syndrome"),
    ("initialism_sclc", "SCLC", "Small cell lung cancer"),
    ("initialism_within_words", "HOCM", "Hypertrophic obstructive cardiomyopathy"),
    ("initialism_skips_of", "TOF", "Tetralogy of Fallot"),
    ("initialism_of_a_synonym", "EGPA", "Churg-Strauss syndrome"),
    ("initialism_gold_bracket", "PCOS", "Polycystic ovary syndrome (PCOS)"),
    # rule: a more specific qualifier that conflicts with nothing in the gold
    ("qualifier_localized", "Localized bullous pemphigoid", "Bullous pemphigoid"),
    ("qualifier_generalized", "Generalised bullous pemphigoid", "Bullous pemphigoid"),
    # rule: cited synonyms (synonyms.tsv)
    ("synonym_churg_strauss", "Churg-Strauss syndrome", "Eosinophilic granulomatosis with polyangiitis"),
    ("synonym_egpa", "Eosinophilic granulomatosis with polyangiitis", "Churg-Strauss syndrome"),
    ("synonym_reiter", "Reiter syndrome", "Reactive arthritis"),
    ("synonym_reiter_possessive", "Reiter's disease", "Reactive arthritis"),
    ("synonym_wegener", "Wegener’s granulomatosis", "Granulomatosis with polyangiitis"),
    ("synonym_buerger", "Buergers disease", "Thromboangiitis obliterans"),
    ("synonym_type_numeral", "Glycogen storage disease type I", "Von Gierke disease"),
    ("synonym_trisomy", "Trisomy 18", "Edwards syndrome"),
    ("synonym_lay_name", "Whooping cough", "Pertussis"),
    ("synonym_hsp_accent", "Henoch–Schönlein purpura", "IgA vasculitis"),
    ("synonym_in_brackets", "Herpes zoster (shingles)", "Herpes zoster"),
    ("synonym_in_brackets_either", "Trisomy 21 (Down syndrome)", "Down syndrome"),
    ("initialism_skips_type", "NF1", "Neurofibromatosis type 1"),
    # rule: British spellings
    ("british_haem", "Haemorrhagic stroke", "Hemorrhagic stroke"),
    ("british_aemia", "Iron deficiency anaemia", "Iron deficiency anemia"),
    ("british_oesophagus", "Barrett's oesophagus", "Barrett esophagus"),
    ("british_tumour", "Wilms tumour", "Wilms tumor"),
    # rule: numbers
    ("decimal_same", "2.5", "2.5"),
    ("thousands_same", "1,000", "1000"),
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
    # relations reversed
    ("secondary_to_reversed", "Hashimoto thyroiditis secondary to hypothyroidism", "Hypothyroidism secondary to Hashimoto thyroiditis"),
    ("due_to_reversed", "Chronic kidney disease due to anemia", "Anemia due to chronic kidney disease"),
    ("other_marker_reversed", "Hepatitis C caused by cirrhosis", "Cirrhosis secondary to hepatitis C"),
    ("forwards_reversed", "Hypothyroidism causing Hashimoto thyroiditis", "Hypothyroidism secondary to Hashimoto thyroiditis"),
    ("metastatic_to_reversed", "Bone cancer metastatic to the breast", "Breast cancer metastatic to bone"),
    ("of_metastatic_to_reversed", "Adenocarcinoma of the liver metastatic to the colon", "Adenocarcinoma of the colon metastatic to the liver"),
    ("conversion_reversed", "Conversion of dihydrotestosterone to testosterone", "Conversion of testosterone to dihydrotestosterone"),
    ("conversion_numerals_reversed", "Conversion of angiotensin II to angiotensin I", "Conversion of angiotensin I to angiotensin II"),
    ("by_reversed", "Inhibition of aspirin by thromboxane A2", "Inhibition of thromboxane A2 by aspirin"),
    ("from_to_reversed", "Transmission from fetus to mother", "Transmission from mother to fetus"),
    ("shunt_reversed", "Right-to-left shunt", "Left-to-right shunt"),
    ("index_form_keeps_relation", "Hashimoto thyroiditis, secondary to hypothyroidism", "Hypothyroidism, secondary to Hashimoto thyroiditis"),
    # siblings stay apart, also through synonyms and initialisms
    ("small_vs_non_small", "Small cell lung cancer", "Non-small cell lung cancer"),
    ("artery_vs_vein", "Renal artery thrombosis", "Renal vein thrombosis"),
    ("primary_vs_secondary", "Secondary hyperparathyroidism", "Primary hyperparathyroidism"),
    ("synonym_of_a_sibling", "Trisomy 21", "Edwards syndrome"),
    ("former_name_of_a_sibling", "Churg-Strauss syndrome", "Granulomatosis with polyangiitis"),
    ("egpa_vs_gpa", "Eosinophilic granulomatosis with polyangiitis", "Granulomatosis with polyangiitis"),
    ("hunter_vs_hurler", "Hurler syndrome", "Mucopolysaccharidosis type II"),
    ("initialism_of_a_sibling", "NSCLC", "Small cell lung cancer"),
    ("initialism_not_fitting", "ALL", "Acute myeloid leukemia"),
    ("initialism_table_reads_otherwise", "AML", "Acute monocytic leukemia"),
    ("initialism_two_letters", "HL", "Hodgkin lymphoma"),
    ("initialism_lowercase", "hus", "Hemolytic uremic syndrome"),
    ("initialism_one_word_gold", "HTN", "Hypertension"),
    ("initialism_hyphenated_word", "Anti-Ro", "Anti-ribonucleoprotein"),
    ("initialism_type_number", "NF2", "Neurofibromatosis type 1"),
    ("bracket_names_another_disease", "Herpes zoster (chickenpox)", "Herpes zoster"),
    # a qualifier that conflicts with the gold, or is not a plain extent
    ("qualifier_sibling", "Generalized bullous pemphigoid", "Localized bullous pemphigoid"),
    ("qualifier_conflicts_with_metastatic", "Localized prostate cancer", "Metastatic prostate cancer"),
    ("qualifier_severity", "Severe preeclampsia", "Preeclampsia"),
    ("qualifier_complication", "Perforated gastric peptic ulcer", "Gastric peptic ulcer"),
    # brackets are words unless they restate an abbreviation
    ("bracket_type", "Diabetes mellitus (type 2)", "Diabetes mellitus (type 1)"),
    ("bracket_excluded", "Kawasaki disease (excluded)", "Kawasaki disease"),
    ("bracket_hedge", "Sarcoidosis (vs lymphoma)", "Sarcoidosis"),
    ("bracket_subtype_abbreviation", "Acute leukemia (AML)", "Acute leukemia"),
    # hedges and negations
    ("hedge_possible", "Possible sarcoidosis", "Sarcoidosis"),
    ("hedge_suspected", "Suspected tuberculosis", "Tuberculosis"),
    ("hedge_rule_out", "Rule out appendicitis", "Appendicitis"),
    ("negation_not", "Not Kawasaki disease", "Kawasaki disease"),
    ("negation_unlikely", "Kawasaki disease is unlikely", "Kawasaki disease"),
    ("negation_no", "No pulmonary embolism", "Pulmonary embolism"),
    # numbers
    ("decimal_point", "25", "2.5"),
    ("decimal_order", "5.2", "2.5"),
    ("list_is_not_a_number", "12", "1 and 2"),
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


@pytest.mark.parametrize(
    "line",
    [
        "Kawasaki disease - ruled out given the short fever",
        "Kawasaki disease — unlikely with 2 days of fever",
        "Kawasaki disease. Unlikely, though, with 2 days of fever.",
        "Kawasaki disease. However, scarlet fever remains possible.",
        "Kawasaki disease. Or perhaps scarlet fever.",
        "Kawasaki disease - or possibly scarlet fever",
        "Kawasaki disease. This is less likely than scarlet fever.",
    ],
)
def test_a_line_that_takes_the_answer_back_never_matches(line):
    assert not match_freeform(REASONING + f"Final answer: {line}", "Kawasaki disease")


@pytest.mark.parametrize(
    "line",
    [
        "Kawasaki disease - IVIG and aspirin are next.",
        "Kawasaki disease. The coronary arteries need an echocardiogram.",
        "Kawasaki disease because of 5 days of fever and conjunctivitis",
    ],
)
def test_an_explanation_after_the_answer_still_matches(line):
    assert match_freeform(REASONING + f"Final answer: {line}", "Kawasaki disease")


def test_a_letter_is_an_answer_only_where_the_gold_is_that_letter():
    """With the options withheld a letter names nothing, except on questions about a figure's regions
    (MedQA's gold "E") or factor X."""
    assert extract_final_answer(REASONING + "Final answer: E") is None
    assert grade_with_matcher(REASONING + "Final answer: E", "E") == ("E", True)
    assert grade_with_matcher(REASONING + "Final answer: (B)", "E") == ("(B)", False)
    assert grade_with_matcher(REASONING + "Final answer: C", "Kawasaki disease") == (None, False)
    assert match_freeform(REASONING + "Final answer: X", "X")


@pytest.mark.parametrize(
    "response,defined",
    [
        ("This is diabetic ketoacidosis (DKA).", {"DKA": "diabetic ketoacidosis"}),
        ("The pressure is high: idiopathic intracranial hypertension (IIH).", {"IIH": "idiopathic intracranial hypertension"}),
        ("A patient with hemolytic uremic syndrome (HUS) after diarrhea.", {"HUS": "hemolytic uremic syndrome"}),
        ("It fits thrombotic thrombocytopenic purpura ( TTP ).", {"TTP": "thrombotic thrombocytopenic purpura"}),
        ("Raised levels of hemoglobin F (HbF) and of glucose (Glc).", {"HbF": "hemoglobin F"}),  # Glc: one capital
        ("Raised levels of fetal hemoglobin (HbF).", {}),  # the letters of HbF are not in the order of the words
        ("Multiple sclerosis (MS) early on; later mitral stenosis (MS).", {"MS": None}),  # two meanings: none
        ("Multiple sclerosis (MS), then MS again: multiple sclerosis (MS).", {"MS": "Multiple sclerosis"}),
        ("Serum sodium (mEq/L) was low (125).", {}),
        ("", {}),
    ],
)
def test_abbreviations_the_response_defines(response, defined):
    assert abbreviations_defined(response) == defined


def test_a_defined_abbreviation_names_what_the_response_defined():
    dka = "Glucose 540 and ketones: diabetic ketoacidosis (DKA).\n\nFinal answer: DKA"
    assert match_freeform(dka, "Diabetic ketoacidosis")
    mitral = "Opening snap after rheumatic fever: mitral stenosis (MS).\n\nFinal answer: MS"
    assert match_freeform(mitral, "Mitral stenosis") and not match_freeform(mitral, "Multiple sclerosis")
    sclerosis = "Periventricular plaques: multiple sclerosis (MS).\n\nFinal answer: MS"
    assert match_freeform(sclerosis, "Multiple sclerosis") and not match_freeform(sclerosis, "Mitral stenosis")
    synonym = "Papilledema, normal MRI: idiopathic intracranial hypertension (IIH).\n\nFinal answer: IIH"
    assert match_freeform(synonym, "Pseudotumor cerebri")
    twice = "Multiple sclerosis (MS) or mitral stenosis (MS)?\n\nFinal answer: MS"
    assert not match_freeform(twice, "Multiple sclerosis") and not match_freeform(twice, "Mitral stenosis")
    defined_in_the_answer = REASONING + "Final answer: Deposition of calcium pyrophosphate (CPP) crystals"
    assert match_freeform(defined_in_the_answer, "Deposition of calcium pyrophosphate (CPP) crystals")
    assert match_freeform(defined_in_the_answer, "Deposition of calcium pyrophosphate crystals")


def test_every_synonym_names_its_source_and_one_disease():
    from lm_eval_medreason.evaluation import freeform

    rows = [line.split("\t") for line in freeform._SYNONYMS_FILE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith(("#", "concept\t"))]
    assert len(rows) >= 40 and all(len(row) == 3 for row in rows)
    for concept, name, source in rows:
        assert re.fullmatch(r"DOID:\d+", concept) and name.strip() == name and name
        assert re.search(r"\bDO (?:label|exact synonym) " + re.escape(concept) + r"\b|\bMeSH D\d{6,9}\b", source), source
    index, names = freeform._synonyms()
    assert sum(len(n) for n in names.values()) == len(rows) and len(names) == len({row[0] for row in rows})


@pytest.mark.parametrize(
    "row,error",
    [
        ("DOID:1\tsome disease", r"synonyms\.tsv:2: expected 'DOID:<id>"),
        ("DOID:1\tsome disease\tmy memory", r"synonyms\.tsv:2: expected 'DOID:<id>"),
        ("D001\tsome disease\tMeSH D000001", r"synonyms\.tsv:2: expected 'DOID:<id>"),
        ("DOID:2\tKawasaki disease\tDO label DOID:2", r"synonyms\.tsv:2: 'Kawasaki disease' also reads as a name of DOID:1"),
    ],
)
def test_a_bad_synonym_row_is_a_one_line_error(tmp_path, monkeypatch, row, error):
    from lm_eval_medreason.evaluation import freeform

    path = tmp_path / "synonyms.tsv"
    path.write_text(f"DOID:1\tKawasaki's disease\tDO label DOID:1\n{row}\n", encoding="utf-8")
    monkeypatch.setattr(freeform, "_SYNONYMS_FILE", path)
    freeform._synonyms.cache_clear()
    try:
        with pytest.raises(ValueError, match=error) as raised:
            freeform._synonyms()
        assert "\n" not in str(raised.value)
    finally:
        freeform._synonyms.cache_clear()
        freeform._concepts.cache_clear()


def test_the_wheel_ships_the_synonyms():
    from hatchling.builders.wheel import WheelBuilder

    shipped = {f.distribution_path for f in WheelBuilder(str(Path(__file__).resolve().parents[2])).recurse_included_files()}
    assert "lm_eval_medreason/evaluation/synonyms.tsv" in shipped


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


def test_matcher_grading_and_metrics(synthetic_data, clean_env):
    from lm_eval_medreason.evaluation.freeform import medqa_dataset

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
    from lm_eval_medreason.data.loaders import load_cases

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
