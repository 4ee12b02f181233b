"""extract_choice on the forms a careful human grader reads, several phrasings each: concluding
sentences naming an option, label lines, arrows, lowercase letters, inline self-corrections,
conditionals, cut-off analyses, what small instruct models write, restated option lists.
Each section has the readings a careful grader makes and the traps next to them."""

import pytest

from lm_eval_medreason.evaluation.answers import extract_choice

ADRENAL = {"A": "Cushing syndrome", "B": "Primary hyperaldosteronism", "C": "Addison disease", "D": "Pheochromocytoma"}
BLEED = {"A": "Intussusception", "B": "Meckel diverticulum", "C": "Volvulus", "D": "Pyloric stenosis"}
THYROID = {"A": "Graves disease", "B": "Hashimoto thyroiditis", "C": "Subacute granulomatous thyroiditis",
           "D": "Toxic multinodular goiter"}
WEAKNESS = {"A": "Guillain-Barré syndrome", "B": "Myasthenia gravis", "C": "Botulism", "D": "Multiple sclerosis"}
LYMPH = {"A": "Hodgkin lymphoma", "B": "Non-Hodgkin lymphoma", "C": "Sarcoidosis", "D": "Tuberculosis"}
LUPUS = {"A": "Rheumatoid arthritis", "B": "Gout", "C": "Systemic lupus erythematosus (SLE)", "D": "Sarcoidosis"}
HEART_FAILURE = {"A": "Furosemide", "B": "Metoprolol", "C": "Digoxin", "D": "Lisinopril"}
SHOCK = {"A": "Tension pneumothorax", "B": "Constrictive pericarditis", "C": "Cardiac tamponade", "D": "Septic shock"}
DOSE = {"A": "6", "B": "12", "C": "40", "D": "80"}
ANTICOAG = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Clopidogrel"}
HEADACHE = {"A": "Lumbar puncture", "B": "CT of the head without contrast", "C": "MRI of the brain", "D": "Reassurance"}
CHEST = {"A": "Pulmonary embolism", "B": "Aortic dissection (AD)", "C": "Acute myocardial infarction",
         "D": "Tension pneumothorax"}
IVIG = {"A": "Plasmapheresis", "B": "Intravenous immunoglobulin", "C": "High-dose corticosteroids", "D": "Rituximab"}
CHEST_ZH = {"A": "肺栓塞", "B": "主动脉夹层", "C": "急性心肌梗死", "D": "张力性气胸"}

CASE = (
    "A 34-year-old woman has fatigue, weight loss, salt craving and darkening of the skin creases. "
    "Sodium is 128 mEq/L, potassium 5.9 mEq/L, morning cortisol low and ACTH high.\n\n"
)

CONCLUDING_TEXT = [
    ("fits_best", CASE + "This fits Addison disease best.", ADRENAL, "C"),
    ("points_to", CASE + "All of it points to Addison disease.", ADRENAL, "C"),
    ("points_toward_possessive", CASE + "Everything points toward Addison's disease.", ADRENAL, "C"),
    ("putting_together_no_apostrophe", CASE + "Putting it all together, this is Addisons disease.", ADRENAL, "C"),
    ("eponym_alone", CASE + "This is classic Addison's.", ADRENAL, "C"),
    ("bottom_line_abbreviation", CASE + "Bottom line: Addison disease (AD).", ADRENAL, "C"),
    ("bottom_line_long_abbreviation", "Malar rash, arthritis, low complement. Bottom line: SLE.", LUPUS, "C"),
    ("has_to_be_possessive", "Painless rectal bleeding in a toddler. So it has to be Meckel's diverticulum.",
     BLEED, "B"),
    ("has_to_be_no_apostrophe", "Painless bleeding, ectopic gastric mucosa: it must be Meckels diverticulum!",
     BLEED, "B"),
    ("thus_trailing_apostrophe", "Diffuse goiter, exophthalmos and pretibial myxedema. Thus, Graves' disease.",
     THYROID, "A"),
    ("consistent_with_possessive", "TPO antibodies are high, consistent with Hashimoto's thyroiditis.",
     THYROID, "B"),
    ("dash_and_accent_variants", "Ascending weakness after diarrhea; this is Guillain–Barre syndrome.",
     WEAKNESS, "A"),
    ("longer_name_wins", "Overall, the picture is most consistent with non-Hodgkin's lymphoma.", LYMPH, "B"),
    ("shorter_name_alone", "Overall the picture is most consistent with Hodgkin's lymphoma.", LYMPH, "A"),
    ("contrast_rather_than", CASE + "This fits Addison disease better than Cushing syndrome.", ADRENAL, "C"),
    ("contrast_comma_not", CASE + "This is Addison disease, not Cushing syndrome.", ADRENAL, "C"),
    ("negated_sentence_after", "So it has to be Meckel's diverticulum. Intussusception is unlikely without "
     "currant-jelly stools.", BLEED, "B"),
    ("disclaimer_after", CASE + "The findings are most consistent with Addison disease. Please confirm with a "
     "cosyntropin stimulation test.", ADRENAL, "C"),
    ("chinese", "患者胸痛放射至背部，双上肢血压差大。综上，考虑主动脉夹层。", CHEST_ZH, "B"),
]
CONCLUDING_NONE = [
    ("negated_unlikely", CASE + "Addison disease is unlikely given the normal cortisol.", ADRENAL, None),
    ("negated_does_not_fit", CASE + "This does not fit Addison disease.", ADRENAL, None),
    ("hedged_could_or", CASE + "It could be Addison disease or Cushing syndrome.", ADRENAL, None),
    ("question", CASE + "Is this Addison disease?", ADRENAL, None),
    ("differential_of_two", CASE + "The differential includes Addison disease and pheochromocytoma.", ADRENAL, None),
    ("two_named_positively", CASE + "Both Addison disease and pheochromocytoma fit.", ADRENAL, None),
    ("conditional", CASE + "If the ACTH were low, this would fit Cushing syndrome.", ADRENAL, None),
    ("but_unsure", CASE + "The findings point to Addison disease, but I am not sure.", ADRENAL, None),
    ("cut_off_after", CASE + "The presentation is consistent with Addison disease. However, we should also "
     "check the renin level and", ADRENAL, None),
    ("eponym_without_possessive", "Diffuse goiter with exophthalmos: classic Graves.", THYROID, None),
    ("refusal_naming_option", "I cannot diagnose this patient; Addison disease should be ruled out by a "
     "physician.", ADRENAL, None),
]

LABEL_LINES = [
    ("bold_letter_dash_since", "**B** – since the patient is tachycardic, a beta blocker slows the rate.",
     HEART_FAILURE, "B"),
    ("bold_letter_hyphen", "**B** - since the patient is tachycardic.", HEART_FAILURE, "B"),
    ("bold_letter_text_em_dash", "**A. Furosemide** — it relieves pulmonary congestion quickly.", HEART_FAILURE, "A"),
    ("bold_paren_colon", "**(B)**: metoprolol lowers the rate.", HEART_FAILURE, "B"),
    ("letter_colon_because", "B: because the rate is high.", HEART_FAILURE, "B"),
    ("bracketed_letter_text", "[C] Digoxin", HEART_FAILURE, "C"),
    ("bold_dot_text_dash", "**D.** Lisinopril — reduces afterload.", HEART_FAILURE, "D"),
    ("heading_then_bold_paren", "### Answer\n**(C)** Cardiac tamponade\n\nBeck's triad: hypotension, raised "
     "JVP, muffled heart sounds.", SHOCK, "C"),
    ("heading_final_answer_bold", "Beck's triad is present.\n\n**Final Answer**\n\n(C) Cardiac tamponade", SHOCK, "C"),
    ("heading_after_text", "## Reasoning\nHypotension, JVD, muffled sounds.\n\n## Answer\nC", SHOCK, "C"),
    ("final_line_after_reasoning", "Beck's triad with pulsus paradoxus.\n\n**(C)** Cardiac tamponade — "
     "pericardiocentesis now.", SHOCK, "C"),
    ("final_line_after_announcement", "ST elevation in II, III and aVF.\n\nLet me give my final answer.\n"
     "**C. Acute myocardial infarction**", CHEST, "C"),
    ("first_line_then_explanation", "**B** – metoprolol.\n\nThe rate is 150 and he is stable, so rate control "
     "comes first.", HEART_FAILURE, "B"),
]
LABEL_LINES_NONE = [
    ("article_sentence", "A 45-year-old man with dyspnea.", HEART_FAILURE, None),
    ("lowercase_article", "a patient like this needs diuresis.", HEART_FAILURE, None),
    ("negated_option_line", "A. Furosemide - not indicated here.", HEART_FAILURE, None),
    ("analysis_of_several", "A. Furosemide: incorrect, he is dry.\nB. Metoprolol: a reasonable choice.",
     HEART_FAILURE, None),
    ("label_with_other_option_text", "C. Heparin is the most appropriate therapy.", ANTICOAG, None),
    ("heading_then_list", "### Answer\nA. Tension pneumothorax\nB. Constrictive pericarditis\nC. Cardiac tamponade",
     SHOCK, None),
    ("genus_abbreviation_line", "Gram-negative rods in the urine.\n\nE. coli",
     {"A": "Proteus mirabilis", "B": "Klebsiella pneumoniae", "E": "Staphylococcus saprophyticus"}, None),
    ("genus_abbreviation_other_option", "C. difficile",
     {"A": "Proteus mirabilis", "B": "Clostridioides difficile", "C": "Enterococcus faecalis"}, None),
    ("hedged_option_line", "A. Tension pneumothorax - this would cause tracheal deviation.", SHOCK, None),
    ("option_line_naming_another", "C. Cardiac tamponade, though constrictive pericarditis fits too.", SHOCK, None),
]

ARROWS_AND_LOWERCASE = [
    ("arrow_bold", "Beck's triad is present.\n→ **C**", SHOCK, "C"),
    ("arrow_inline", "Hypotension + JVD + muffled sounds → C", SHOCK, "C"),
    ("ascii_arrow", "Hypotension + JVD + muffled sounds -> C", SHOCK, "C"),
    ("fat_arrow_dot", "Beck's triad => D. Wait, no fever. Beck's triad => C.", SHOCK, "C"),
    ("therefore_sign", "Beck's triad ∴ C", SHOCK, "C"),
    ("answer_arrow", "Answer → B", SHOCK, "B"),
    ("so_letter", "Beck's triad. So, C.", SHOCK, "C"),
    ("therefore_colon_paren", "Beck's triad. Therefore: (C)", SHOCK, "C"),
    ("hence_letter_explained", "Hence C, cardiac tamponade.", SHOCK, "C"),
    ("it_is_letter", "Muffled heart sounds and JVD. It's C.", SHOCK, "C"),
    ("i_think_it_is", "I think it is B.", SHOCK, "B"),
    ("lowercase_whole", "d", HEART_FAILURE, "D"),
    ("lowercase_whole_b", "b", HEART_FAILURE, "B"),
    ("lowercase_paren_text", "a) Furosemide", HEART_FAILURE, "A"),
    ("lowercase_enclosed_text", "(b) Metoprolol", HEART_FAILURE, "B"),
    ("lowercase_dot_text", "c. digoxin", HEART_FAILURE, "C"),
]
ARROWS_NONE = [
    ("so_list_ruled_out", "So A and B are ruled out.", SHOCK, None),
    ("so_article", "So A patient with Beck's triad needs pericardiocentesis.", SHOCK, None),
    ("arrow_then_words", "JVD → B-lines on ultrasound are absent.", SHOCK, None),
    ("it_is_vitamin", "It is vitamin A toxicity.", SHOCK, None),
    ("so_letter_would", "So C would be wrong here.", SHOCK, None),
]

SELF_CORRECTIONS = [
    ("wait_no_must_be", "The answer is B, wait, no: it must be C", SHOCK, "C"),
    ("no_on_reflection", "I'd pick D... no, on reflection, A.", SHOCK, "A"),
    ("strike_that_says", "So B. Hmm, strike that, the ECG says C.", SHOCK, "C"),
    ("actually_no_makes_it", "Answer: B. Actually, no - the pulsus paradoxus makes it C.", SHOCK, "C"),
    ("on_second_thought", "I'll go with A. Hmm, on second thought, C.", SHOCK, "C"),
    ("scratch_that_colon", "The answer is D. Wait, scratch that: C.", SHOCK, "C"),
    ("no_wait", "My answer: A... no wait, B.", SHOCK, "B"),
    ("actually_is_correct", "The answer is A. Actually, C is the correct answer.", SHOCK, "C"),
    ("retraction_to_text", "I'd pick tension pneumothorax... no, on reflection, cardiac tamponade.", SHOCK, "C"),
    ("retraction_to_text_its", "The answer is A. Wait, actually it's cardiac tamponade.", SHOCK, "C"),
    ("chinese_retraction", "答案是B。不对，应该是C。", SHOCK, "C"),
]
SELF_CORRECTIONS_KEEP = [
    ("wait_question_then_stands", "The answer is C. Wait, D is also possible? No, C stands.", SHOCK, "C"),
    ("actually_trap_mention", "The answer is C. Actually, A is a common trap here.", SHOCK, "C"),
    ("wait_check_no_letter", "The answer is C. Wait, let me double-check the JVP. Yes, it is elevated.", SHOCK, "C"),
    ("wait_is_wrong", "The answer is C. Wait, is D wrong? Yes, D is wrong.", SHOCK, "C"),
    ("no_not", "The answer is C. No, not B.", SHOCK, "C"),
    ("actually_type_a", "The answer is B. Actually, this looks like a type A dissection.", CHEST, "B"),
    ("actually_reconsider_text", "The answer is C. Actually, let me reconsider septic shock", SHOCK, "C"),
    ("actually_suggests_text_cut", "The answer is C. Actually, that suggests constrictive pericarditis. Let me "
     "check the", SHOCK, "C"),
]

CONDITIONALS = [
    ("had_she_been", "The answer is C. Had she been pregnant, the answer would be A.", CHEST, "C"),
    ("only_pick_if", "The answer is C. I'd only pick A if the D-dimer were high.", CHEST, "C"),
    ("pick_only_if", "The answer is C. I'd pick A only if the trachea were deviated.", SHOCK, "C"),
    ("why_not", "The answer is C. Why not D? D would fit only if breath sounds were absent.", CHEST, "C"),
    ("if_were_would", "The answer is C. If she were febrile, the answer would be D.", SHOCK, "C"),
    ("were_inverted", "The answer is C. Were the breath sounds absent, I'd choose A.", SHOCK, "C"),
    ("otherwise_would", "Answer: C. Otherwise the answer would be B.", SHOCK, "C"),
    ("conditional_text", "The most likely diagnosis is cardiac tamponade. If the trachea were deviated, the "
     "most likely diagnosis would be tension pneumothorax.", SHOCK, "C"),
    ("conditional_alone", "Had the patient been septic, the answer would be D.", SHOCK, None),
    ("if_i_had_to_choose", "If I had to choose, I'd go with C.", SHOCK, "C"),
    ("if_we_consider", "If we consider all the findings, the answer is C.", SHOCK, "C"),
    ("even_if", "Even if the ECG were normal, the answer is C.", SHOCK, "C"),
    ("conditional_before_answer", "I'd choose A only if there were tracheal deviation. The answer is C.", SHOCK, "C"),
]

CUT_OFF = [
    ("walk_through_inline", "Going through the choices: A. Lumbar puncture - this would", HEADACHE, None),
    ("walk_through_lines", "Going through the choices:\nA. Lumbar puncture - this would", HEADACHE, None),
    ("walk_through_bold", "Let's analyze each option:\n\n**A. Lumbar puncture**: detects xanthochromia, but",
     HEADACHE, None),
    ("two_options_then_cut", "A. Lumbar puncture - needed if CT is negative.\nB. CT of the head without "
     "contrast - the first", HEADACHE, None),
    ("option_line_then_cut", "A. Lumbar puncture\n\nThe patient has a sudden severe headache, and the CT",
     HEADACHE, None),
    ("option_line_then_cut_comma", "B. CT of the head without contrast\n\nShe has the worst headache of her life,",
     HEADACHE, None),
    ("bold_option_then_cut", "**C. MRI of the brain**\n\nMRI is sensitive for posterior fossa lesions, which",
     HEADACHE, None),
    ("walk_through_first_heading", "The pressure differs between the arms.\n\nFirst, I need to consider the "
     "options.\n\nA. Pulmonary embolism", CHEST, None),
    ("walk_through_first_heading_colon", "Let me weigh them:\n**A. Pulmonary embolism**", CHEST, None),
    ("conclusion_colon_then_option_line", "The pulse deficit and the widened mediastinum decide it.\n\nSo, based "
     "on the findings:\n**B. Aortic dissection** - urgent CT angiography.", CHEST, "B"),
    ("walk_through_first_option_cut_short", "First, I need to consider the options.\n\nA. Pulmonary embolism: he",
     CHEST, None),
    ("concluding_then_short_cut_line", CASE + "Everything points to Addison disease.\n\nLet me double-check the "
     "renin", ADRENAL, None),
    ("option_line_then_complete", "B. CT of the head without contrast\n\nCT first: it is fast and sensitive in "
     "the first six hours.", HEADACHE, "B"),
]

SMALL_MODEL = [
    ("letter_short_text", "B. 12", DOSE, "B"),
    ("paren_short_text", "(C) 40", DOSE, "C"),
    ("letter_text_sentence", "C. Warfarin is the most appropriate therapy for this patient.", ANTICOAG, "C"),
    ("letter_text_sentence_aspirin", "A. Aspirin is enough for this low-risk patient.", ANTICOAG, "A"),
    ("shortened_text", "C. Myocardial infarction", CHEST, "C"),
    ("altered_text", "B. IV immunoglobulin", IVIG, "B"),
    ("altered_text_plural", "B. Intravenous immunoglobulins (IVIG)", IVIG, "B"),
    ("altered_text_extra_word", "C. IV warfarin therapy", ANTICOAG, "C"),
    ("hyphen_variant", "C. High dose corticosteroids", IVIG, "C"),
    ("letter_text_newline_explanation", "C. Warfarin\n\nWarfarin prevents stroke in atrial fibrillation.",
     ANTICOAG, "C"),
    ("bare_letter_then_explanation", "B\n\nExplanation: the dose is 12 mg.", DOSE, "B"),
    ("letter_mismatched_text", "C. Pulmonary embolism", CHEST, None),
]

LISTS = [
    ("correct_answer_is_list", "The correct answer is:\n\nA. Tension pneumothorax\nB. Constrictive pericarditis\n"
     "C. Cardiac tamponade", SHOCK, None),
    ("correct_answer_is_inline_list", "The correct answer is: A. Tension pneumothorax\nB. Constrictive pericarditis\n"
     "C. Cardiac tamponade", SHOCK, None),
    ("answer_is_list_no_dot", "The answer is:\nA) Tension pneumothorax\nB) Constrictive pericarditis", SHOCK, None),
    ("answer_then_explained_options", "Answer: C. Cardiac tamponade\n\nA. Tension pneumothorax - no tracheal "
     "deviation.\nB. Constrictive pericarditis - chronic.", SHOCK, "C"),
    ("letters_comma_and", "The answer is A, B and C.", SHOCK, None),
    ("letters_commas", "The answer is A, B, C.", SHOCK, None),
    ("letter_comma_i_think", "The answer is C, I think.", SHOCK, "C"),
    ("both_letters", "The answer is both A and C.", SHOCK, None),
    ("combination_of_texts", "The best treatment is a combination of furosemide, metoprolol and lisinopril.",
     HEART_FAILURE, None),
    ("combination_unnamed", "The answer is a combination of drugs.", HEART_FAILURE, None),
    ("combination_after_answer", "I'd go with A. The best treatment is a combination of furosemide and "
     "metoprolol.", HEART_FAILURE, None),
]

BARE_LETTERS = [
    ("sentence_after_findings", "Beck's triad with pulsus paradoxus and electrical alternans. C.", SHOCK, "C"),
    ("sticking_with", "Could it be constrictive pericarditis? The onset is too acute. Sticking with C.", SHOCK, "C"),
    ("it_stays", "Tension pneumothorax crossed my mind, but the trachea is midline. It stays C.", SHOCK, "C"),
    ("letter_stays", "Septic shock would not muffle the heart sounds. C stays.", SHOCK, "C"),
    ("final_colon", "Muffled sounds, raised JVP, hypotension.\nFinal: C.", SHOCK, "C"),
    ("ill_say", "The echo shows a swinging heart. I'll say C.", SHOCK, "C"),
    ("comma_after_name", "Cardiac tamponade, C.", SHOCK, "C"),
    ("colon_after_name", "Fluid around the heart: tamponade: C.", SHOCK, "C"),
    ("definitely_not", "Definitely C, not A.", SHOCK, "C"),
    ("option_word_alone", "Option C", SHOCK, "C"),
    ("bracket_after_name", "Pericardial fluid with hypotension, so cardiac tamponade (C).", SHOCK, "C"),
    ("bracket_then_praise", "Pericardiocentesis for tamponade (C) is the best choice here.", SHOCK, "C"),
    ("bracket_fullwidth", "最可能的诊断是心包填塞（C）。", SHOCK, "C"),
    ("later_letter_wins", "First I thought constrictive pericarditis (B), but the onset is acute. C.", SHOCK, "C"),
]
BARE_LETTERS_NONE = [
    ("bracket_describing", "Answer: C. Constrictive pericarditis (B) presents over months.", SHOCK, "C"),
    ("bracket_list", "Tension pneumothorax (A), constrictive pericarditis (B) and tamponade (C) all lower the blood "
     "pressure.", SHOCK, None),
    ("letter_then_wrong", "The answer is C. A is wrong because the trachea is midline.", SHOCK, "C"),
    ("rules_out", "The answer is C; the normal breath sounds rule out A.", SHOCK, "C"),
    ("letter_in_question", "Why not D?", SHOCK, None),
    ("tempting_bracket", "Constrictive pericarditis (B) is tempting", SHOCK, None),
    ("vitamin_sentence_end", "Night blindness means a lack of vitamin A.", SHOCK, None),
    ("torn_between", "I am torn between B and C.", SHOCK, None),
    ("cut_inside_bracket", "Let me go through them.\n\nA. Tension pneumothorax: the trachea would deviate.\n\n"
     "B. Constrictive pericarditis (C", SHOCK, None),
]
LOWERCASE_MORE = [
    ("answer_is_lower_end", "the answer is b", HEART_FAILURE, "B"),
    ("answer_colon_lower", "answer: c", HEART_FAILURE, "C"),
    ("id_go_with_lower", "i'd go with a.", HEART_FAILURE, "A"),
    ("correct_option_lower", "hmm, the correct option is d", HEART_FAILURE, "D"),
    ("label_comma_text", "b, metoprolol", HEART_FAILURE, "B"),
    ("label_dash_reason", "a - furosemide since he is wet", HEART_FAILURE, "A"),
    ("label_em_dash_abbreviation", "d — acei", HEART_FAILURE, "D"),
    ("article_at_end_cut", "So putting it all together, this is a", HEART_FAILURE, None),
]
MISSPELT_AND_MARKUP = [
    ("misspelt_letter_text", "A. Furosemid", HEART_FAILURE, "A"),
    ("split_word", "B) Meto prolol", HEART_FAILURE, "B"),
    ("misspelt_dropped_letter", "D. Lisinoprl", HEART_FAILURE, "D"),
    ("emoji_line", "Fluid overload with crackles.\n\n✅ **A. Furosemide**", HEART_FAILURE, "A"),
    ("numbered_list_no_answer", "Best options:\n1. A. Furosemide\n2. B. Metoprolol\n3. D. Lisinopril",
     HEART_FAILURE, None),
    ("answer_tag", "<think>Wet lungs, high JVP.</think>\n<answer>A</answer>", HEART_FAILURE, "A"),
    ("choice_heading", "#### Choice\n`A` — Furosemide\n\nHe is fluid overloaded.", HEART_FAILURE, "A"),
    ("name_with_full_stop", "<think>Beck's triad.</think>\n\nCardiac tamponade.", SHOCK, "C"),
    ("label_about_other_letter", "C. I would choose B only if the pericardium were calcified.", SHOCK, "C"),
    ("label_with_letter_word", "**(B)**: a beta blocker, it slows the rate in A fib.", HEART_FAILURE, "B"),
]
TEXT_ONLY = [
    ("after_colon", "Hypotension, JVD and muffled heart sounds after a stab wound: cardiac tamponade.", SHOCK, "C"),
    ("ie_name", "A swinging heart on echo, i.e. cardiac tamponade.", SHOCK, "C"),
    ("imperative", "He is wet and congested. Start furosemide.", HEART_FAILURE, "A"),
    ("culprit_is", "The drug to blame is the ACE inhibitor, lisinopril.", HEART_FAILURE, "D"),
    ("bracket_inner_name", "Tender gland after a cold, high ESR: classic de Quervain thyroiditis.",
     {"A": "Graves disease", "B": "Subacute granulomatous (de Quervain) thyroiditis", "C": "Hashimoto thyroiditis",
      "D": "Thyroid lymphoma"}, "B"),
    ("eponym_possessive_other_head", "Firm painless goiter and high TPO antibodies: Hashimoto's.", THYROID, "B"),
    ("subject_described", "The pressure is low. Constrictive pericarditis is chronic.", SHOCK, None),
    ("reconsider", "The pressure is low. Let me reconsider septic shock.", SHOCK, None),
    ("combination", "He needs a combination of furosemide and metoprolol.", HEART_FAILURE, None),
    ("both_needed", "Both A and D are needed: furosemide and lisinopril.", HEART_FAILURE, None),
    ("restated_list_then_conclusion", "The correct answer is:\n\nA. Furosemide\nB. Metoprolol\nC. Digoxin\n"
     "D. Lisinopril\n\nWith diabetic kidney disease and protein in the urine, he needs lisinopril.",
     HEART_FAILURE, "D"),
    ("restated_texts", "The best drug is:\n\n- Furosemide\n- Metoprolol\n- Digoxin\n- Lisinopril",
     HEART_FAILURE, None),
    ("refusal", "I cannot provide medical advice; furosemide should only be given by a physician.", HEART_FAILURE,
     None),
]
CONDITIONALS_MORE = [
    ("assuming_then_if", "Assuming the echo shows fluid, the answer is C; if it shows a thick pericardium, B.",
     SHOCK, None),
    ("unless_is_a_caveat", "The answer is C, unless the echo shows no fluid.", SHOCK, "C"),
    ("would_be_bracket", "The first dose is 40 mg (C); in renal failure it would be 80 mg (D).", DOSE, "C"),
    ("if_letter_after", "Answer: C. If the trachea were deviated, A.", SHOCK, "C"),
    ("had_said_letter", "Without the echo I'd have said B. With the swinging heart, C.", SHOCK, "C"),
]

FLUIDS = {"A": "Normal saline with potassium chloride", "B": "Normal saline", "C": "Lactated Ringer solution",
          "D": "Begin intravenous fluid resuscitation", "E": "Begin oral rehydration"}
REAL_OUTPUT_FORMS = [
    ("steps_each_another_answer", "1. The answer is A.\n2. The answer is B.\n3. The answer is D.", HEART_FAILURE,
     None),
    ("steps_then_own_conclusion", "Step 1: the answer is A\nStep 2: the answer is B\nStep 3: the answer is D\n\n"
     "The correct answer is C.", HEART_FAILURE, "C"),
    ("answers_with_turns_between", "The answer is A. Wait, he is tachycardic, so the answer is B. Hmm, no: the "
     "cough points to the ACE inhibitor, and the answer is D.", HEART_FAILURE, "D"),
    ("inflected_option_word", "The next best step is to decrease sodium intake.",
     {"A": "Decreasing sodium intake", "B": "Increasing potassium intake", "C": "Starting a statin",
      "D": "Restricting fluids"}, "A"),
    ("long_gap_before_is", "The next best step in the management of a man with this much fluid overload is "
     "furosemide.", HEART_FAILURE, "A"),
    ("diagnostic_test", "The most appropriate diagnostic test would be echocardiography.",
     {"A": "Echocardiography", "B": "Chest radiograph", "C": "CT angiography", "D": "Cardiac MRI"}, "A"),
    ("loosely_named_option", "He is in shock, so the next step is to begin IV fluid resuscitation.", FLUIDS, "D"),
    ("too_loosely_named", "He is in shock and needs fluid.", FLUIDS, None),
    ("label_with_own_words", "A. Normal saline with potassium", FLUIDS, "A"),
    ("label_with_other_words", "A. Lactated Ringer", FLUIDS, None),
    ("tagged_list_lines", "Possible treatments:\nWarm compresses (C)\nKetotifen eye drops (B)",
     {"A": "Erythromycin ointment", "B": "Ketotifen eye drops", "C": "Warm compresses", "D": "Artificial tears"},
     None),
    ("tag_after_walkthrough", "Now let's look at the options:\n\nWarm compresses (C)\nK",
     {"A": "Erythromycin ointment", "B": "Ketotifen eye drops", "C": "Warm compresses", "D": "Artificial tears"},
     None),
    ("acronym_letters", "The radiograph is C.A.D. on this film.", SHOCK, None),
    ("provided_participle", "Based on the findings provided, the most likely diagnosis is cardiac tamponade.",
     SHOCK, "C"),
    ("provided_that", "The answer is C. Provided that the trachea were deviated, the answer would be A.", SHOCK, "C"),
    ("lowercase_label_after_phrase", "3. The correct answer is d.)", HEART_FAILURE, "D"),
    ("option_heading_walkthrough", "Let me go option by option.\n\nOption A:\nThe trachea is midline.\n\n"
     "Option B:\nThe onset is", SHOCK, None),
]

ALL = {
    "concluding": CONCLUDING_TEXT + CONCLUDING_NONE,
    "label": LABEL_LINES + LABEL_LINES_NONE,
    "arrows": ARROWS_AND_LOWERCASE + ARROWS_NONE,
    "selfcorr": SELF_CORRECTIONS + SELF_CORRECTIONS_KEEP,
    "conditional": CONDITIONALS,
    "cutoff": CUT_OFF,
    "small": SMALL_MODEL,
    "lists": LISTS,
    "bare": BARE_LETTERS + BARE_LETTERS_NONE,
    "lower": LOWERCASE_MORE,
    "spelling": MISSPELT_AND_MARKUP,
    "textonly": TEXT_ONLY,
    "conditional2": CONDITIONALS_MORE,
    "real": REAL_OUTPUT_FORMS,
}
CASES = [(f"{group}-{c[0]}", *c[1:]) for group, cases in ALL.items() for c in cases]


@pytest.mark.parametrize("response, options, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_form(response, options, expected):
    assert extract_choice(response, options) == expected


def test_case_ids_unique():
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("wrap", ["<think>{}</think>\n\n", "<think>\nThe answer is A.\n</think>\n{}"])
def test_forms_after_reasoning_block(wrap):
    """The new forms are read after a closed reasoning block, and not from inside it."""
    assert extract_choice(wrap.format("Beck's triad.") + "So it has to be cardiac tamponade.", SHOCK) == "C"
    assert extract_choice(wrap.format("Beck's triad.") + "\n**(C)** Cardiac tamponade", SHOCK) == "C"
    assert extract_choice("<think>So it has to be cardiac tamponade.</think>\n\n", SHOCK) is None
