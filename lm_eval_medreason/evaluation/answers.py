"""Which option did a model's response finally commit to, and where does it say so?

``read_choice(response, options)`` returns a ``Reading``: the letter (an uppercase key of
``options`` with a non-None text, or None), the rule that gave it and the span of the
response it was read from; ``extract_choice`` returns only the letter. Graded accuracy is only
as good as this reading, so the policy below is that of a careful human grader. In order:

1. Reasoning: only the text after the last ``</think>`` (exact, lowercase tag) counts. A ``<think>`` with no
   ``</think>`` after it (reasoning cut off) gives None, and so does a closed block with
   nothing committed after it. Full-width forms (``Ｃ``, ``：``, ``（``) count as ASCII.
2. Commitments, of which the one occurring LAST wins (so self-corrections count); rule "phrase"
   for a letter, "text" for an option's text:
   - a phrase followed by a letter: "The (correct/final) answer is (C)", "Answer: C",
     "**Answer:** C", "Final answer: **(C) text**", "The most likely diagnosis is C",
     "I'd go with C", "Bottom line: C", "Answer → B", ``\\boxed{C}``, ``\\boxed{\\text{C}}``,
     ``<answer>C</answer>``, JSON ``"answer": "C"``, "答案是C", "答案：C", "正确答案为 C", "选C",
     "最终答案：C", "应该是C"; a heading line "Answer", "Final answer", "Choice" or "Conclusion"
     ("### Answer", "**Final answer**") with the letter on the next line. A lowercase letter
     counts there when it ends its clause ("the answer is b", "answer: c.", "is d.)"). A
     "best/most appropriate ... step/test/treatment/diagnosis" phrase may have up to twelve
     words before its "is" ("The next best step in the management of this patient is ...");
   - "Option C is correct", "(C) is the correct answer", "Therefore, C is correct", "选项C正确";
   - a concluding word or an arrow followed by a letter that ends its clause (or is followed
     by a comma, dash or bracket and an explanation, or "rather than"/"not" and another):
     "So B.", "Thus, C", "=> D.", "→ **B**", "it must be C", "It's C.", "So A rather than C.";
   - a retraction (wait, actually, hmm, no, strike/scratch that, on reflection, on second
     thought) followed in its sentence by a letter that ends its clause and comes after a
     comma, a colon or a verb such as "be", "says", "pick", "makes it": "The answer is B,
     wait, no: it must be C", "I'd pick D... no, on reflection, A.", "So B. Hmm, strike that,
     the ECG says C."; or by an option's text alone ("no, on reflection, cardiac tamponade.",
     "wait, actually it's X."), not by "let me reconsider X";
   - a letter standing as the answer without a phrase: in brackets after a name and ending its
     clause ("Warfarin (C).", "so laparotomy (C).", "tamponade (C) is the best choice",
     "心包填塞（C）"), or ending its sentence or clause after a comma, a colon, the start of the
     sentence or a verb ("torsion. C.", "Sticking with E.", "settles it: B.", "Definitely A,
     not B.", "C stays.", "Option C"). Not when it is set aside or listed ("not B", "than B",
     "B or C", "torn between B and C", "B would", "B is wrong", "Why not D?"), when another
     letter in its sentence is named as well, when the line before or after ends with another
     bracketed letter or the line before announces a walk through the options (a list of
     tagged options), when it opens a line (the line rules read it), when a colon follows it
     ("Option B:" is a heading), nor when its option's text follows it as a label ("Going
     through the choices: A. Lumbar puncture - ...") unless its sentence says answer, final,
     so, thus, pick, ...; "C.A.D." holds no letter;
   - one of those phrases followed by an option's TEXT rather than a letter (see 5). The text
     read stops at the end of the sentence or at a contrast ("not", "rather than", "because",
     ...); two options named there ("a combination of X, Y and Z"), or "a combination",
     "both", "either" with no option named, is ambiguous: None.
   A letter not among the options is ignored; "A or C", "A, B and C" after a phrase is a hedge:
   None. A conditional or counterfactual is no commitment and leaves the earlier one standing:
   a sentence opening "Had she ..."/"Were the ...", an "if", "assuming", "provided that" or
   "otherwise" clause before it ("If she were pregnant, the answer would be A", "Assuming the
   test is positive, the answer is B"), and "if", "only if", "when" right after the letter ("I'd
   pick A only if ..."). Not conditionals: "If I had to choose", "if forced", "if we consider
   ...", "even if", and "unless" after the letter ("The answer is A, unless ..." commits to A).
   A phrase commitment that is one item of a numbered or "Step n:" list whose earlier items
   commit to two or more other letters with no turn between them ("1. The answer is A. 2. The
   answer is B. 3. The answer is D.") is contradicted: None; a conclusion on a line of its own
   after such a list stands, and so do self-corrections with "wait", "but", "actually", ...
   A letter after a phrase that starts a restated option list ("The correct answer is:\\nA.
   text\\nB. text", or "A. text B. text ..." on one line), or an option's text that starts a
   list of option texts, answers nothing: it is passed over, so a conclusion after the list is
   read ("... Of these, the triad points to reactive arthritis.").
3. Only if there is no commitment, rule "final_line": the final line, if it is
   - just a letter ("C", "(C)", "**C.**", a lowercase "d");
   - a letter label ("C.", "(C)", "C)", "C,", "**C**", "a)", "b,") with its option's text,
     exact, shortened or altered (at least half of the option's words among its first words),
     or misspelt (letter by letter at least 85% alike: "Furosemid", "N-acetyl cysteine"), with
     no option closer (or, when one is, with only words of its own option: "A. 50% normal
     saline" for "50% normal saline 50% dextrose"): "B. 12", "(C) 40", "**(C)** Cardiac
     tamponade", "a) Furosemide",
     "C. Myocardial infarction" for "Acute myocardial infarction", possibly followed by an
     explanation: "C. Warfarin is the most appropriate therapy for this patient.",
     "**A. Furosemide** — it relieves ...", "e - sulfasalazine, it is safe in pregnancy";
   - a letter label with a separator followed by an explanation: "**B** – since ...",
     "a. left mca", "d — lada";
   - or exactly one option's text, a closing full stop allowed (unless the line next to it is
     one too: a list).
   Lines are read without leading markdown, quotes, bullets, numbering ("1. ") and symbols
   ("✅"). A label line with more than its letter is not read when another line labels another
   letter (a restated option list, or an analysis of the options), when the line before it
   announces a walk through the options ("Let's go through the options.", "Let me weigh
   them:", but not a conclusion such as "So, based on the findings:"), when the text after
   the label names another option or letter outside a clause that sets it aside ("C. I'd only
   pick A if ..." is C), or when its first clause negates or hedges it ("A. Lumbar puncture -
   not indicated", "- this would ..."); "E. coli" is no label. An explanation needs a
   complete response (see 6).
4. Then, in a complete response that is no refusal ("I cannot provide", "medical advice",
   "consult a doctor"), rule "text": a sentence among the last four, outside label lines and
   lists, not a question, that names exactly one option: the last sentence as it stands
   ("Give fomepizole.", "...: ulcerative colitis.", "..., i.e. cardiac tamponade."), unless
   the option is its subject ("X is chronic."); an earlier one (after disclaimers or remarks
   that name nothing, or set an option aside) only if it concludes ("so", "thus", "fits",
   "points to", "has to be", "consistent with", "综上", ...): "This fits Addison disease
   best.", "All of it points to X.", "So it has to be Meckel's diverticulum.". Names after a
   contrast ("X rather than Y", "X, not Y") do not count; a sentence whose clause naming the
   option negates or hedges ("not", "unlikely", "could", "would", "but", "or", "let me
   reconsider"), or that is conditional, commits to nothing and an earlier one is tried; two
   options named positively, or one with "a combination of", "both", "plus", is ambiguous:
   None. Last, the first line, read as the final line is (a vanilla answer followed by an
   explanation), if the response is complete.
5. Option texts match ignoring case, accents, hyphens and dashes, punctuation, a possessive
   with or without its apostrophe ("Meckel's", "Meckels", "Graves'"), a plural "s", the
   inflection of a word of six letters or more ("decrease" for "Decreasing", "disease" and
   "diseased"), and
   brackets: "Aortic dissection (AD)" matches "aortic dissection", a bracketed name of 3+
   characters with a capital matches alone ("SLE", "de Quervain"; "AD" and "(oral)" never do)
   and with the words after it ("Subacute granulomatous (de Quervain) thyroiditis" matches "de
   Quervain thyroiditis").
   An eponym option also matches its possessive alone ("Addison's", "Hashimoto's", "Graves'";
   "Addisons" for "... disease/syndrome"; never the bare "Addison"). A name inside a longer
   matched name yields to it ("hepatitis" inside "autoimmune hepatitis"). Where no option is
   named so, after a phrase or in a sentence read by 4, an option is named loosely when the text
   holds three quarters of its words (of three or more; words compare by their first five
   letters, "therapy" is not "treatment") and no other option comes within 0.3 of that share:
   "start him on androgen replacement therapy" for "Start him on androgen replacement
   treatment".
6. Otherwise None: empty output, refusals, hedges ("It could be A or C"), questions ("what if
   the answer is B?"), cut-off text. A response is complete when it ends with sentence
   punctuation or a closing bracket or quote; or when it does not end with a comma, colon,
   dash or connecting word ("and", "the", "would", ...), no sentence in it ends with
   punctuation, and its last line is short (six words at most) unless it is its only line.
   Otherwise it was cut off, so an option line followed by cut-off reasoning ("A. Lumbar
   puncture\\n\\nThe patient has a headache and the CT") or a walk through the options cut off
   ("Going through the choices: A. Lumbar puncture - this would") gives None. Genuinely
   ambiguous, hence None: two options in one commitment, a restated option list, a label line
   among other label lines, a concluding sentence naming two options or a combination.

Letters are A-J. Lowercase counts only when enclosed ("(c)", "{c}", '"c"'), after a phrase
ending its clause, as a whole line ("d") or as a line label ("a) Furosemide", "b, text"). A
letter must stand alone: never from "vitamin A", "hepatitis B", "type A", "HbA1c", "E. coli",
"C-reactive"; a bare "A"/"I" followed by a lowercase word is the article/pronoun ("A patient
with...", "I think"), except before "because", "since", "as", "rather than", "not", ...

The span: ``response[start:end]`` is part of the response as given (offsets count the
reasoning block). For "phrase" it runs from the first character of the cue (the phrase as
matched: "answer is" in "The answer is (C).", "Answer:", "I'd go with", ``\\boxed{``, "答案是",
"So", an arrow, a retraction word such as "strike that"; for "Option C is correct" the label
"Option" or "(") through the letter, with the bracket or quote closing one opened just before
it: "answer is (C)", ``\\boxed{C}``, "Option C is correct"; for a letter standing alone it is the
letter with its brackets: "(C)" in "Warfarin (C).", "E" in "Sticking with E.". For "text" it
runs from the cue, or the sentence's first character, through the last character of the
option's name as written: "most likely diagnosis is Meckel's diverticulum", "This fits
Addison disease". For "final_line" it is the line without surrounding spaces, markdown
(``*_#>```), quotes, bullets and symbols: "C. Acute myocardial infarction" in "**C. Acute
myocardial infarction**". For "none" both are None.
"""

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache


@dataclass(frozen=True)
class Reading:
    """How a response was read: the letter or None, the rule that gave it and where (see the module docstring)."""

    letter: str | None
    rule: str  # "phrase", "text", "final_line" or "none"
    start: int | None
    end: int | None


NO_ANSWER = Reading(None, "none", None, None)

_LETTERS = frozenset("ABCDEFGHIJ")

_NOUNS = (
    "diagnosis|cause|etiology|explanation|mechanism|treatment|therapy|management|step|test|"
    "intervention|drug|medication|pharmacotherapy|agent|organism|pathogen|finding|complication|"
    "investigation|course\\s+of\\s+action|action|answer|option|choice|response|condition|disorder|"
    "disease|lesion|location|site|source|structure|gene|mutation|enzyme|process|approach"
)
_ADJ_TAIL = (
    r"(?:[\s-]+(?:next|initial|first|underlying|immediate|best|appropriate|single|diagnostic|therapeutic)){0,2}"
    rf"\s+(?:{_NOUNS})\b(?:\s+[a-z'’]+){{0,12}}?\s*(?:is\b|would\s+be\b|:)"
)
_ADJS = (
    r"most\s+(?:likely|probable|appropriate|accurate|effective|common|consistent|specific|sensitive)",
    "best", "correct", "right", "final", "preferred", "likely", "probable", "definitive",
)
_VERB = r"(?:go|choose|pick|select|opt)(?:\s+(?:with|for))?\b"
_ADVERB = r"(?:(?:only|probably|still|rather|also|definitely|personally)\s+)?"
# Phrases after which a letter or an option's text is a commitment. They run on the
# lowercased text and each starts with a literal, which lets `re` skip ahead quickly.
_PHRASES = tuple(
    re.compile(p)
    for p in (
        r"answer(?:\s+(?:choice|option))?(?:\*\*|__|[\"'])?\s*"
        r"(?:is\b|would\s+be|should\s+be|must\s+be|will\s+be|remains|[:=\-–—→])"
        r"(?:\s+(?:therefore|thus|then|clearly|definitely|indeed|actually|likely|most\s+likely|probably|still|now)"
        r"\b){0,2}",
        *(adj + _ADJ_TAIL for adj in _ADJS),
        r"diagnosis\s+is\b",
        r"etiology\s+is\b",
        r"most\s+likely\s+(?:has|have|had|suffers?\s+from)\b",
        r"i['’]\s*(?:d|ll)\s+" + _ADVERB + _VERB,
        r"i (?:would\s+|will\s+|am\s+going\s+to\s+)?" + _ADVERB + _VERB,
        r"going\s+with\b",
        r"bottom\s+line\s*[:\-–—]",
        r"choice\s*(?:is\b|:)",
        r"pick\s*(?:is\b|:)",
        r"答案(?:应该|应当|应)?(?:是|为|选)?",
        r"选(?!项)择?",
        r"最(?:可能|佳|合适|恰当)的?[^\s,.，。:：]{0,8}?(?:是|为)",
        r"诊断(?:是|为)",
        r"应该(?:是|选)",
        r"\\boxed\s*\{",
        r"<answer>",
    )
)
# "Answer" alone on its line ("### Final answer", "**Answer**", "#### Choice"), the letter on the next line.
_HEADINGS = tuple(
    re.compile(word + r"(?:\s+(?:choice|option))?[ \t*_:]*(?=\n)") for word in ("answer", "choice", "conclusion")
)
_PHRASES += _HEADINGS
_HEADING_LEAD = re.compile(r"[ \t#>*_]*((?:(?:the\s+)?(?:final|correct|best)\s+)?)")
# Words after which only a letter that ends its clause commits: "So B.", "=> D.", "it must be C".
_STRICT = re.compile(
    r"(?:so|thus|therefore|hence|overall|ultimately|in\s+(?:summary|conclusion|short)|to\s+summarize)\b[,:]?"
    r"|(?:it|this|that)(?:['’]s|\s+is|\s+(?:must|has\s+to|should|will|has\s+got\s+to)\s+be)\b"
    r"|→|⇒|⟹|=>|->|➔|➡|∴"
)
# Words that take back what came before: the letter after them is the new commitment.
_RETRACT = re.compile(
    r"wait\b|actually\b|hmm+\b|strike\s+that\b|scratch\s+that\b|on\s+(?:second\s+thought|(?:further\s+)?reflection)\b"
    r"|correction\b|i\s+take\s+(?:that|it)\s+back\b|no(?=\s*(?:[,:;!—–]|\.\.\.|…|-\s))|oops\b"
)
_SEP = r"(?:[\s*_#>`$=:\"'(\[{]|\\(?:text|textbf|mathrm|mathbf)\s*\{|\\[(\[]){0,12}"
_SKIP = re.compile(_SEP)
# The letter right after a phrase: uppercase standing alone, or lowercase when enclosed.
_LETTER = re.compile(
    _SEP + r"(?:(?i:option|choice|letter)\b|选项)?" + _SEP
    + r"(?:([A-J])(?![A-Za-z0-9_\-]|['’][A-Za-z]|\.[ \t]*[a-z]|\.[A-Z])|(?<=[(\[{\"'])([a-j])(?=[)\]}\"']))"
    + r"(?![)\]}\"'*]*\s*\?)"  # "what if the answer is B?" asks, it does not commit
)
# A lowercase letter after a phrase that ends its clause: "the answer is b", "answer: c".
_LOWER_LETTER = re.compile(
    _SEP + r"([a-j])(?=[)\]}*\"']*[ \t]*(?:[.!;](?:\s|$)|(?<![ai])(?:$|\n))|\.?\)(?:\s|$))"
)
# A letter standing alone anywhere (after a retraction).
_BARE = re.compile(r"(?<![\w'’\-.])[(\[*\"']*([A-J])(?![\w\-]|['’][A-Za-z]|\.[ \t]*[a-z]|\.[\dA-Z])")
_ARTICLE = re.compile(
    r"[ \t]+(?!(?:because|since|as|is|was|which|given|due|for|so|then|rather\s+than|instead|not|stays|remains)\b)"
    r"[a-z0-9]"
)
_HEDGE = re.compile(
    r"[)\]}\"'*.]*\s*(?:(?:(?:,\s*(?i:or)\b|(?i:or|and|vs\.?|versus)\b)(?:\s+(?i:possibly|perhaps|maybe|probably))?"
    r"|/|或|还是|和)\s*[(\[*\"']*[A-J](?![A-Za-z])"
    r"|,\s*[(\[*\"']*[A-J](?![\w\-])[)\]*\"']*\s*(?:,|(?i:and|or)\b|[.;]|$))"  # "A, B and C"; not "C, I think"
)
# A letter standing as the answer without a phrase: in brackets after a name ("Warfarin (C)."), or ending its
# sentence or clause after a comma, a colon or a verb ("Sticking with E.", "tamponade: C.", "Definitely A, not B.").
_MENTION = re.compile(
    r"(?<![\w'’\-./])(?:\(([A-J])\)|\[([A-J])\]|([A-J])(?![\w\-]|['’][A-Za-z]|\.[ \t]*[a-z]|\.[\dA-Z]))"
)
_MENTION_PRE = re.compile(
    r"(?:^|\b(?:be|is|it['’]?s|its|that['’]?s|says|say|said|means|with|pick|choose|select|answer|option|choice|go|"
    r"stays?|remains|keep|definitely|clearly|obviously|surely|certainly|so|thus|hence|therefore|then|final(?:ly)?|"
    r"again|still|to))[\s*_\"'`(\[]*$"
)
_MENTION_FOLLOW = re.compile(
    r"[)\]}*\"'’”`]*[ \t]*(?:\Z|[.!;\n。]|,(?![ \t]*[(\[*\"']*[A-J]\b)|[-–—(]"
    r"|(?:stays|remains|holds|stands|wins|it\s+is|then|instead|rather\s+than|not|fits\s+best"
    r"|is\s+(?:the\s+)?(?:correct|right|best|answer|one|it|most))\b)"
)
# Words that set a letter aside ("not B", "rather than B", "B would fit if"), and those that list it among others.
_ASIDE = (
    r"not|no|than|vs|versus|against|except|without|from|over|initially|thought|tempting|considered|considering|"
    r"consider|maybe|perhaps|possibly|could|might|would|should|may|why|what\s+about|rule[sd]?\s+out|ruled\s+out|"
    r"exclude[sd]?|excluding|unlikely|similar\s+to|compared|like|unlike|instead\s+of"
)
_ASIDE_TAIL = r"n['’]t\b|cannot\b|\?|['’]d\b(?!\s+(?:say|go|pick|choose|select|answer|stick|stay|keep)\b)"
_MENTION_ASIDE = re.compile(rf"\b(?:{_ASIDE})\b|{_ASIDE_TAIL}")
_MENTION_NEG = re.compile(rf"\b(?:{_ASIDE}|or|and|nor|between)\b|{_ASIDE_TAIL}")
_AFTER = (
    r"[)\]}*\"'`]*\s*(?:(?:is|are|was|seems?|looks?)\s+(?:not|also|less|wrong|incorrect|unlikely|tempting|out)\b"
    r"|(?:would|could|might|may|can|only\s+if|if|when)\b|doesn['’]t|isn['’]t|can['’]t"
)
_MENTION_ASIDE_AFTER = re.compile(_AFTER + ")")
_MENTION_NEG_AFTER = re.compile(_AFTER + r"|(?:or|and)\b|/)")
_OWN_TEXT = re.compile(r"[.):\]]?[*_]*[ \t]*(?:[-–—:,][ \t]*)?")  # from a letter to its option's text
_INLINE_LABEL = re.compile(r"[ \t]*[(\[]?([A-J])[.)\]][ \t]+\S")
_END_TAG = re.compile(r"[(\[]([A-J])[)\]][ \t*_.]*\Z")
_LIST_LINE = re.compile(r"[ \t>*_#]*(?:\d{1,2}[.):]|(?i:step)\s*\d+\s*[:.)]|[-•])")
_TURN = re.compile(
    r"\b(?:wait|actually|hmm+|but|however|initially|first|at\s+first|reconsider|on\s+(?:second\s+thought|reflection)"
    r"|no|not|instead|correction|strike|scratch|re-?read(?:ing)?)\b"
)
_SENTENCE_END = re.compile(r"[.!?;\n。！？；]")
_LABEL_TAIL = re.compile(r"[*_]*[ \t]*[.):\-–—][*_]*[ \t]*")
_ANSWER_CUE = re.compile(
    r"\b(?:final|answer|conclusion|so|thus|therefore|hence|pick|choose|go(?:ing)?\s+with|say|correct)\b"
)
_VERDICT = re.compile(
    r"[*_]*[ \t]+(?:stays|remains|holds|stands|wins|is\s+(?:the\s+)?(?:correct|right|best|answer|it))\b"
)
# After a strict cue or a retraction, the letter must end its clause.
_STRICT_FOLLOW = re.compile(
    r"[)\]}*\"'’”]*[ \t]*(?:\Z|[.!;:\n。]"
    r"|,(?![ \t]*[(\[*\"']*[A-J]\b)(?![ \t]*(?:only[ \t]+)?(?:if|unless|when)\b)"
    r"|[ \t]*(?:[-–—(]|(?i:is[ \t]+(?:the[ \t]+)?(?:correct|right|best|answer|one)|instead|then|after[ \t]+all"
    r"|rather[ \t]+than|not)\b))"
)
_PRE_LETTER = re.compile(
    r"(?:^|[,:;(—–\-]|\b(?:be|is|it|it['’]s|that['’]s|makes?|says|say|said|shows|suggests|indicates|means|with|"
    r"pick|choose|select|answer|option|choice|to|for|go))[\s*(\[\"']*$"
)
# Between a retraction and an option's text, only more retraction words and "it's", "the answer is".
_RETRACT_FILLER = re.compile(
    r"[\s,:;.!\-–—…*]*(?:(?:no|wait|actually|hmm+|on\s+(?:second\s+thought|(?:further\s+)?reflection)"
    r"|strike\s+that|scratch\s+that|i\s+mean|rather)[\s,:;.!\-–—…*]*)*"
    r"(?:(?:it|this|that)(?:['’]s|\s+is|\s+(?:must|has\s+to|should)\s+be)\s+|(?:the\s+)?(?:answer|diagnosis)\s+is\s+"
    r"|i['’]d\s+(?:go\s+with|pick|choose)\s+)?(?:an?\s+|the\s+)?"
)
_WINDOW_NEG = re.compile(r"\b(?:not|if|unless|why|could|might|may|maybe|perhaps|than|whether|except)\b|\?")
_CLAUSE_END = re.compile(r"[.!?;\n。！？；](?![\w(])")
_CLAUSE = re.compile(r"[^,.!?;\n。！？；，]+")
_SEVERAL = re.compile(r"(?:an?\s+)?(?:combination|mix|mixture|both|either|several|multiple)\b")
# Conditionals and counterfactuals (see the module docstring).
_COND_AFTER = re.compile(r"[)\]}*\"'\s,]*(?:only\s+)?(?:if|when|provided|assuming|in\s+case)\b")
# An "if" that sets a condition; not "even if", "if I had to choose", "if forced", "if we consider ...".
_IF = re.compile(
    r"\b(?<!even\s)(?<!as\s)(?:if|unless|otherwise|suppose|supposing|assuming"
    r"|provided(?=\s+(?:that|she|he|it|they|there|the|we|you)\b))\b"
    r"(?!\s+(?:i|we)\s+(?:had|have|were|must|need)\s+to\b|\s+forced\b|\s+anything\b"
    r"|\s+(?:we|you|one)\s+(?:consider|look|put|take|combine|review|weigh|sum|go\s+through|analy[sz]e)\b)"
)
_INVERTED = re.compile(
    r"[\s*_\"'(]*(?:but\s+|and\s+)?(?:had|were|should)\s+(?:she|he|they|it|the|this|there|we|i|you|his|her)\b"
)
# "Option C is correct", "(C) is the correct answer", "选项C正确": an anchor on the
# lowercased text, then the letter just before it on the original text.
_POSTFIX = (
    (
        re.compile(
            r"is\s+(?:the\s+)?(?:correct|right|best)\b(?:\s+(?:answer|choice|option))?(?=\s*(?:[.!:;*\n]|$))"
        ),
        re.compile(
            r"(?:(?i:option|choice|answer)\s*[(\[]?([A-J])[)\]]?|[(\[]([A-J])[)\]]"
            r"|(?:^|[.:,]\s+|\b(?i:so|therefore|thus|hence),?\s+)\**([A-J])\**)\s*\**\s+\Z",
            re.M,
        ),
    ),
    (re.compile("正确"), re.compile(r"选项\s*([A-J])\s*(?:是)?\Z")),
)
# Where the text after a phrase stops naming the answer: sentence end, or a contrast.
_SPAN_END = re.compile(
    r"\.(?=\s+[A-Z(]|\s*$)|[;!?。；！？\n}]|\b(?i:not|rather\s+than|instead\s+of|versus|vs\.?|unlike|"
    r"as\s+opposed\s+to|but|because|since|given|due\s+to|which|although|however|unlikely|less\s+likely)\b"
    r"|而不是|而非|不是|因为"
)
# Line fallbacks: a letter label at the start of a (stripped) line, and the other lines' labels.
_LINE_LABEL = re.compile(r"([(\[])?([A-Ja-j])([)\]]|[.:)])?([*_]{1,3})?(?=\s|\Z|[–—:,]|-\s)")
_LABEL = re.compile(r"[ \t>*_#-]*(?:[(\[]?([A-J])[)\].:]|\(?([a-j])\))")
_LINE_STRIP = " \t*_#>`\"'"
_LIST_ITEM = re.compile(r"(?:\d{1,2}[.)]|[-•·▪◦‣])[ \t]+")
_LINE = re.compile("[^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")  # what str.splitlines splits on
_REST_LEAD = re.compile(r"[\s*_`]*(?:[-–—:,][\s*_`]*)?")
_NEGATION = (
    r"\b(?:not|no|never|unlikely|incorrect|wrong|less\s+likely|rule[sd]?\s+out|ruled\s+out|excluded?|excluding|"
    r"false|against|without|neither|nor{})\b|n['’]t\b|cannot\b|不|排除|除外|可能性小"
)
_NEG = re.compile(_NEGATION.format("|contraindicated|inappropriate"))
# After a label, "contraindicated" may be the answer asked for ("A. Ceftriaxone is contraindicated ...").
_LABEL_NEG = re.compile(_NEGATION.format(""))
# A line announcing a walk through the options: the label line after it is the first option, not an answer.
_WALKTHROUGH = re.compile(
    r":\s*$|\b(?:let['’]?s|let\s+me|i\s+(?:need|will|['’]ll|should|must)|first|go(?:ing)?\s+through|each)\b"
    r".*\b(?:options?|choices?|alternatives)\b"
)
_LABEL_HEDGE = re.compile(r"\b(?:would|could|might|may|if|unless|consider|possibl[ey]|maybe|perhaps)\b|\?")
# Concluding sentences (rule "text" without a phrase).
_SENT_BREAK = re.compile(r"\n|[。！？；;]|[.!?…]+(?=[*_\"'”’)\]]*(?:\s+[^a-z\s]|\s*\Z))")
_CONCLUDE = re.compile(
    r"\b(?:so|thus|therefore|hence|overall|ultimately|altogether|in\s+(?:summary|conclusion|short|sum)|"
    r"to\s+(?:sum(?:marize)?|conclude)|all\s+in\s+all|taken\s+together|putting\s+(?:it|this|everything)\s+"
    r"(?:all\s+)?together|bottom\s+line|points?\s+(?:to|toward)|pointing\s+to|fits?|fitting|consistent\s+with|"
    r"in\s+keeping\s+with|compatible\s+with|suggest(?:s|ive\s+of)?|indicat(?:es?|ive\s+of)|most\s+likely|likely|"
    r"has\s+to\s+be|must\s+be|it['’]s|it\s+is|this\s+is|diagnosis|clearly|definitely|best\s+explain(?:s|ed)|"
    r"explains?|classic|typical|characteristic|pathognomonic|conclude|going\s+with|my\s+(?:pick|choice))\b"
    r"|\bbased\s+on\b|综上|因此|所以|考虑|符合|故"
)
_HEDGED = re.compile(
    r"\b(?:if|unless|whether|could|might|may|maybe|perhaps|possibly|either|or|vs|versus|differential|"
    r"consider(?:ed|ing)?|but|however|although|though|instead|would|combination|both|together\s+with|along\s+with|"
    r"plus|as\s+well\s+as|in\s+addition\s+to|alongside|let\s+me|let['’]s|reconsider|think\s+about|look\s+at|check)\b"
    r"|\?|或|还是"
)
_INLINE_LABELS = re.compile(r"(?<![\w'’])[(\[]?[A-J][.)\]][ \t]+\S")
_AFTER_LABEL = re.compile(r"(?<![\w'’])[(\[]?[A-J][.)\]][ \t]*\Z")  # a sentence split off at an option's label
_COMBINED = re.compile(
    r"\b(?:combination|both|together\s+with|along\s+with|plus|as\s+well\s+as|in\s+addition\s+to|alongside)\b"
)
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:cannot|can['’]?t|am\s+not\s+able\s+to|['’]m\s+not\s+able\s+to|am\s+unable\s+to)\s+"
    r"(?:provide|give|offer|diagnose|answer|determine)|medical\s+advice|as\s+an\s+ai|consult\s+(?:a|your)\s+"
    r"(?:doctor|physician|healthcare))"
)
_CONTRAST = re.compile(
    r"\b(?:rather\s+than|instead\s+of|as\s+opposed\s+to|more\s+than|better\s+than)\b|[,;—–-]\s*(?:but\s+)?not\b"
    r"|而不是|而非"
)
_TERMINAL = frozenset(".!?。！？…)]}\"'”’")
_PROSE_END = re.compile(r"[a-z0-9)\]]{2}[.!?。！？](?:\s|$)")
_CONNECTING = frozenset(
    "the a an and or of to with would will could should can may might is are was were be been this that which "
    "because but for in on at as from by if then so since than it its their his her when while into has have had "
    "not no".split()
)
_MAX_LINE = 300  # a longer final line is prose, not an answer line
_LONG_LINE = 2000  # how far a line is searched for its start or end (keeps every reading bounded)
_AT_END = re.compile(r"[ \t\n*_]*\Z")
_WINDOW, _MARGIN = 500, 200  # commitments are searched from the end: this many characters first, then 4 times more
_FULLWIDTH = re.compile("[\uff01-\uff0b\uff0d-\uff5e]")  # all but the full-width comma, the commonest
_BRACKETED = re.compile(r"\s*[(\[]([^)\]]*)[)\]]")
_POSSESSIVE = re.compile(r"['’]s\b")
_INFLECTED = re.compile(r"(?:ing|ed|es|e)\Z")
_WORD = re.compile(r"[^\W_]+")
_GENERIC = frozenset({"disease", "syndrome", "disorder", "sign", "phenomenon", "palsy", "anomaly"})
_FILLER = frozenset(
    "of the a an and or with in to for on by at from him her his she he it its them they their this that these is "
    "are be was were patient".split()
)
_STOPWORDS = frozenset({"of", "the", "a", "an", "and", "or", "with", "in", "to", "for", "on", "by", "at", "from"})
_ACCENTED = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")  # Latin letters with diacritics


def strip_accents(text: str) -> str:
    """``text`` without diacritics, compatibility forms decomposed (NFKD): "é" -> "e". The one accent folding
    of the package: answer reading, free-form matching and the contamination guard all use it."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=1024)
def _unaccent(c: str) -> str:
    """An accented letter as its base letter ("é" -> "e"), one character for one."""
    base = strip_accents(c).lower()
    return base if len(base) == 1 else c


def _lower(text: str) -> str:
    """Lowercase, the same length as ``text`` so that positions agree."""
    return text.replace("\u0130", "i").lower()


def _fold(low: str) -> str:
    """Lowercased text without accents, one character for one."""
    return low if low.isascii() else _ACCENTED.sub(lambda m: _unaccent(m.group()), low)


def _to_ascii(m: re.Match) -> str:
    """Full-width "Ｃ", "：", "（" as their ASCII twins (cheaper than NFKC on CJK text)."""
    return chr(ord(m.group()) - 0xFEE0)


def _stem(word: str) -> str:
    """A word without a plural or apostrophe-less possessive "s", for comparing option texts."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> list[str]:
    """The words of an option text, folded, possessives dropped."""
    return _WORD.findall(_POSSESSIVE.sub("", _fold(_lower(text))))


def _name_pattern(words: list[str]) -> str:
    """Regex for a name on lowercased text: any punctuation between words, an optional possessive or plural."""
    parts = []
    for w in words:
        if len(w) >= 3 and w.isascii() and w.isalpha():
            stem = _INFLECTED.sub("", w) if len(w) >= 6 else w
            inflection = r"(?:ing|ed|es|e)?" if stem != w else ""  # "decreasing" matches "decrease", "decreased"
            parts.append(re.escape(stem) + inflection + r"(?:['’]?s|['’])?")
        else:
            parts.append(re.escape(w))
    return r"(?:[^\w\n]|_)+".join(parts)


@lru_cache(maxsize=4096)
def _names(items: tuple) -> tuple:
    """(regex finding any option's name, letters per group), or (None, ()) when no option has a name."""
    forms: dict[str, set] = {}
    for letter, text in items:
        plain = _BRACKETED.sub("", text)
        # a bracketed name, alone and with what follows it: "(SLE)", "(de Quervain) thyroiditis"; not "(oral)"
        inner = [(m.group(1), text[m.end() :]) for m in _BRACKETED.finditer(text) if not m.group(1).islower()]
        for form in {text, plain, *(a for a, _ in inner), *(f"{a} {after}" for a, after in inner if after.strip())}:
            words = _words(form)
            if len("".join(words)) >= 3:
                forms.setdefault(_name_pattern(words), set()).add(letter)
        words = _words(plain)
        if len(words) >= 2 and len(words[0]) >= 4 and words[0].isalpha() and plain[:1].isupper():
            # an eponym by its possessive alone: "Addison's", "Hashimoto's", "Graves'"; "Addisons" for "... disease"
            bare = "|s" if len(words) == 2 and words[1] in _GENERIC else ""
            ends_s = "|['’]" if words[0].endswith("s") else ""
            forms.setdefault(re.escape(words[0]) + f"(?:['’]s{bare}{ends_s})", set()).add(letter)
    if not forms:
        return None, ()
    ordered = sorted(forms, key=len, reverse=True)  # a longer name first, so it wins where both start
    rx = re.compile(r"(?<![a-z0-9])(?:" + "|".join(f"({p})" for p in ordered) + r")(?![a-z0-9])")
    return rx, tuple(frozenset(forms[p]) for p in ordered)


@lru_cache(maxsize=4096)
def _option_words(items: tuple) -> tuple:
    """Per option: (letter, alternatives), each alternative the stemmed words of a form of its text."""
    out = []
    for letter, text in items:
        forms = {text, _BRACKETED.sub("", text), *_BRACKETED.findall(text)}
        out.append((letter, tuple({tuple(map(_stem, _words(f))) for f in forms if _words(f)})))
    return tuple(out)


@lru_cache(maxsize=4096)
def _option_content(items: tuple) -> tuple:
    """Per option: (letter, the first five letters of each of its words that says something)."""
    return tuple((k, frozenset(w[:5] for w in _words(_BRACKETED.sub("", t)) if w[:5] not in _FILLER)) for k, t in items)


def _closing(text: str, m: re.Match) -> int:
    """End of a matched name, with the bracket closing one it opened ("Aortic dissection (AD)")."""
    end, name = m.end(), m.group()
    for o, c in ("()", "[]"):
        if name.count(o) > name.count(c) and text[end : end + 1] == c:
            return end + 1
    return end


class _Response:
    """The text after the reasoning, its lowercased twin and the options, with the names built on demand."""

    __slots__ = ("text", "low", "valid", "items", "_folded")

    def __init__(self, text: str, valid: frozenset, items: tuple):
        self.text, self.low, self.valid, self.items, self._folded = text, _lower(text), valid, items, None

    @property
    def folded(self) -> str:
        """``low`` without accents, for matching option names (built when first needed)."""
        if self._folded is None:
            self._folded = _fold(self.low)
        return self._folded

    def named(self, start: int, end: int) -> list:
        """(letters, start, end) of each option name in ``text[start:end]``."""
        rx, letters = _names(self.items)
        if rx is None or start >= end:
            return []
        folded = self.folded
        return [(letters[m.lastindex - 1], m.start(), _closing(folded, m)) for m in rx.finditer(folded, start, end)]

    def named_loosely(self, start: int, end: int) -> list:
        """[(letters, start, end)] of the one option most of whose words ``text[start:end]`` holds, in other forms
        ("start him on androgen replacement therapy" for "... replacement treatment"), when no other option comes
        within 0.3 of it; [] otherwise. Words compare by their first five letters; an option needs three."""
        words = [(m.group()[:5], m.start(), m.end()) for m in _WORD.finditer(self.folded, start, end)]
        have = {w for w, _, _ in words if w not in _FILLER}
        scores = sorted(((len(c & have) / len(c), k, c) for k, c in _option_content(self.items) if len(c) >= 3),
                        reverse=True)
        if not scores or scores[0][0] < 0.75 or (len(scores) > 1 and scores[1][0] > scores[0][0] - 0.3):
            return []
        _, letter, content = scores[0]
        hit = [(a, b) for w, a, b in words if w in content]
        return [(frozenset(letter), hit[0][0], hit[-1][1])]

    def name_is(self, start: int, end: int) -> frozenset:
        """Letters whose name is exactly ``text[start:end]``."""
        rx, letters = _names(self.items)
        m = rx and rx.fullmatch(self.folded, start, end)
        return letters[m.lastindex - 1] if m else frozenset()


def reasoning_end(response: str) -> int | None:
    """Where the text after the last closed <think> block starts (0 without one); None when a block is left open
    (reasoning cut off). The one reasoning split of the package: the choice reader, the free-form extraction and
    the judge's verdict parser all read only what follows it."""
    close = response.rfind("</think>")
    if response.rfind("<think>") > close:
        return None
    return close + len("</think>") if close >= 0 else 0


def _close(text: str, start: int, end: int) -> int:
    """End of a letter read at ``start:end``, with the bracket or quote closing one that opened just before it."""
    pairs = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}
    if start and end < len(text) and pairs.get(text[start - 1]) == text[end]:
        return end + 1
    return end


def _cut_off(text: str) -> bool:
    """Does the response stop mid-sentence? See the module docstring, 6."""
    t = text.rstrip(" \t\n*_`~>")
    if not t or t[-1] in _TERMINAL:
        return False
    if not t[-1].isalnum():
        return True  # ",", ":", "-"
    last = t.rfind("\n") + 1
    line = t[last:].split()
    if line[-1].lower() in _CONNECTING or (last and len(line) > 6):
        return True  # prose, not an answer line
    return bool(_PROSE_END.search(t))  # sentences before it end with punctuation, but not this one


def _line_at(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the line holding ``pos``, without surrounding spaces and markdown."""
    s = max(text.rfind("\n", max(0, pos - _LONG_LINE), pos) + 1, pos - _LONG_LINE)
    e = text.find("\n", pos, pos + _LONG_LINE)
    return _strip(text, max(0, s), min(len(text), pos + _LONG_LINE) if e < 0 else e)


def _strip(text: str, s: int, e: int) -> tuple[int, int]:
    """``(s, e)`` narrowed past surrounding spaces, markdown and quotes."""
    while s < e and (text[s] in _LINE_STRIP or text[s].isspace() or unicodedata.category(text[s]) == "So"):
        s += 1
    item = _LIST_ITEM.match(text, s, e)  # "1. A. text", "- text": an item of a list
    if item:
        return _strip(text, item.end(), e)
    while e > s and (text[e - 1] in _LINE_STRIP or text[e - 1].isspace()):
        e -= 1
    return s, e


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty line, stripped as ``_strip`` does."""
    out = []
    for m in _LINE.finditer(text):
        s, e = _strip(text, m.start(), m.end())
        if s < e:
            out.append((s, e))
    return out


# --- commitments ------------------------------------------------------------------------------


def _conditional(r: _Response, cue: int, end: int) -> bool:
    """Is the commitment between ``cue`` and ``end`` conditional or counterfactual?"""
    low = r.low
    if _COND_AFTER.match(low, end):
        return True
    s = max(low.rfind(c, max(0, cue - 300), cue) for c in ".!?;\n。") + 1
    before = low[s:cue]
    return bool(_INVERTED.match(before) or _IF.search(before))


def _is_option_text(r: _Response, letter: str, start: int, end: int) -> bool:
    """Is ``text[start:end]`` exactly the text of option ``letter`` (as words)?"""
    words = tuple(map(_stem, _words(r.text[start:end])))
    return any(words == alt for k, alts in _option_words(r.items) if k == letter for alt in alts)


def _next_line(text: str, pos: int) -> tuple[int, int] | None:
    """(start, end) of the first non-empty line after the one holding ``pos``, stripped."""
    eol = text.find("\n", pos, pos + _LONG_LINE)
    if eol < 0:
        return None
    nxt = next(iter(_lines(text[eol : eol + 2000])), None)
    return nxt and (nxt[0] + eol, nxt[1] + eol)


def _restated_list(r: _Response, cue_end: int, start: int, end: int, letter: str) -> bool:
    """Is the letter read after a phrase the first item of a restated option list?"""
    text = r.text
    own = _OWN_TEXT.match(text, _close(text, start, end)).end()
    rx, names = _names(r.items)
    named = rx and rx.match(r.folded, own)
    if named and letter in names[named.lastindex - 1]:  # "A. text B. text ..." on one line
        inline = _INLINE_LABEL.match(text, _closing(r.folded, named))
        if inline and inline.group(1) != letter:
            return True
    nxt = _next_line(text, end)
    m = nxt and _LABEL.match(text, *nxt)
    other = m and (m.group(1) or m.group(2).upper())
    if not other or other == letter:
        return False
    if "\n" in text[cue_end:start]:
        return True  # the letter opens a line after the phrase, and the next line labels another
    rest = _REST_LEAD.match(text, m.end(), nxt[1]).end()
    if rest < nxt[1] and not _is_option_text(r, other, rest, nxt[1]):
        return False  # an explanation of another option, not the option restated
    eol = text.find("\n", end)
    own_end = _strip(text, own, eol)[1]
    return own >= own_end or _is_option_text(r, letter, own, own_end)


def _listed_names(r: _Response, end: int, name_end: int, letters: set) -> bool:
    """Is an option's text read after a phrase the first of a list of option texts, one a line?"""
    if "\n" not in r.text[end:name_end]:
        return False
    nxt = _next_line(r.text, name_end)
    if nxt is None:
        return False
    label = _LABEL.match(r.text, *nxt)
    return bool(label or {x for h in r.named(*nxt) for x in h[0]} - letters)


def _letter_after(text: str, pos: int):
    """(letter, start, end) right after a phrase; "" for a hedge ("A or C"), None when there is none."""
    m = _LETTER.match(text, pos) or _LOWER_LETTER.match(text, pos)
    if not m or (m.group(1) in ("A", "I") and _ARTICLE.match(text, m.end())):
        return None
    if _HEDGE.match(text, m.end()):
        return ""
    g = 1 if m.group(1) else 2
    return m.group(g).upper(), m.start(g), m.end(g)


def _read_phrase(r: _Response, cue: int, end: int, limit: int) -> Reading | None:
    """A phrase followed by a letter, or by an option's text."""
    got = _letter_after(r.text, end)
    if got == "":
        return NO_ANSWER
    if got:
        letter, s, e = got
        if letter not in r.valid or _conditional(r, cue, e):
            return None
        if _restated_list(r, end, s, e, letter):
            return None  # a restated option list answers nothing; a later conclusion may
        return Reading(letter, "phrase", cue, _close(r.text, s, e))
    start = _SKIP.match(r.text, end, limit).end()
    if start >= limit:
        return None
    stop = _SPAN_END.search(r.text, start, limit)
    hits = r.named(start, stop.start() if stop else limit) or r.named_loosely(start, stop.start() if stop else limit)
    letters = {x for h in hits for x in h[0]}
    if not letters:
        return NO_ANSWER if _SEVERAL.match(r.low, start) else None
    if len(letters) > 1:
        return NO_ANSWER
    name_end = max(h[2] for h in hits)
    if _conditional(r, cue, name_end) or _listed_names(r, end, name_end, letters):
        return None
    return Reading(letters.pop(), "text", cue, name_end)


def _read_strict(r: _Response, cue: int, end: int) -> Reading | None:
    """A concluding word or an arrow followed by a letter that ends its clause."""
    got = _letter_after(r.text, end)
    if not got:
        return None
    letter, s, e = got
    if letter not in r.valid or not _STRICT_FOLLOW.match(r.text, e) or _conditional(r, cue, e):
        return None
    return Reading(letter, "phrase", cue, _close(r.text, s, e))


def _read_retraction(r: _Response, cue: int, end: int) -> Reading | None:
    """A retraction followed, in its sentence, by a letter or an option's text."""
    text, low = r.text, r.low
    stop = _CLAUSE_END.search(text, end, end + 200)
    window_end = stop.start() if stop else min(len(text), end + 200)
    for m in _BARE.finditer(text, end, window_end):
        letter, s, e = m.group(1), m.start(1), m.end(1)
        before = low[end : m.start()]
        if _WINDOW_NEG.search(before):
            return None
        if (
            letter in r.valid
            and _PRE_LETTER.search(before)
            and not (letter in "AI" and _ARTICLE.match(text, e))
            and _STRICT_FOLLOW.match(text, e)
            and not _HEDGE.match(text, e)
        ):
            return Reading(letter, "phrase", cue, _close(text, s, e))
    hits = r.named(end, window_end)
    letters = {x for h in hits for x in h[0]}
    if len(letters) == 1 and _RETRACT_FILLER.fullmatch(low, end, hits[0][1]):
        name_end = hits[-1][2]
        if not low[name_end:window_end].strip(" \t*_\"')]"):
            return Reading(letters.pop(), "text", cue, name_end)
    return None


def _sentence_start(low: str, pos: int) -> int:
    """Where the sentence (or ";"-clause) holding ``pos`` starts (see _SENTENCE_END)."""
    return max(low.rfind(c, max(0, pos - 400), pos) for c in ".!?;\n。！？；") + 1


def _clause_start(low: str, sentence: int, pos: int) -> int:
    """Where the clause holding ``pos`` starts: after the last comma, colon, dash or bracket of its sentence."""
    return max(sentence, max(low.rfind(c, sentence, pos) for c in ",:;—–(") + 1)


def _mention_letter(m: re.Match) -> tuple[str, bool]:
    """(letter, enclosed in brackets) of a _MENTION match."""
    return (m.group(3), False) if m.group(3) else (m.group(1) or m.group(2), True)


def _negated_mention(low: str, start: int, end: int, sentence: int, listed: bool = True) -> bool:
    """Is the letter at ``start:end`` negated, hedged or tentative in its clause ("not B", "B would")? With
    ``listed`` also when it is one of several ("B and C"): without, only when set aside."""
    clause = _clause_start(low, sentence, start)
    before, after = (_MENTION_NEG, _MENTION_NEG_AFTER) if listed else (_MENTION_ASIDE, _MENTION_ASIDE_AFTER)
    return bool(before.search(low, clause, start) or after.match(low, end))


def _read_mention(r: _Response, m: re.Match, sentence: int) -> Reading | None:
    """A letter standing as the answer in its sentence (see _MENTION), or None."""
    text, low = r.text, r.low
    letter, enclosed = _mention_letter(m)
    end = m.end(1 if enclosed and m.group(1) else 2 if enclosed else 3)
    if not enclosed and letter in "AI" and _ARTICLE.match(text, end):
        return None
    line = _line_at(text, m.start())[0]
    if _AFTER_LABEL.search(text, max(line, m.start() - 8), m.start()):
        return None  # "C. A...": the start of an option's text after its label
    if _AT_END.match(text, m.end()) and _cut_off(text):
        return None  # "... dissection (A": cut off
    if line == m.start() and not _VERDICT.match(text, m.end()):
        return None  # a letter opening its line ("C", "C. text", "**B** - since"): the line rules read it
    if _negated_mention(low, m.start(), m.end(), sentence) or not _MENTION_FOLLOW.match(text, m.end()):
        return None
    label = _LABEL_TAIL.match(text, m.end())
    rx, names = _names(r.items)
    named = label and rx and rx.match(r.folded, label.end())
    if named and letter in names[named.lastindex - 1]:
        if not _ANSWER_CUE.search(low, sentence, m.start()) or _restated_list(r, m.start(), m.start(), end, letter):
            return None  # "Going through the choices: A. Lumbar puncture - ...": an option's label, not an answer
    clause = _clause_start(low, sentence, m.start())
    if not enclosed and not _MENTION_PRE.search(low[clause : m.start()]):
        return None
    stop = _CLAUSE_END.search(text, m.end(), m.end() + _LONG_LINE)
    if (stop and text[stop.start()] == "?") or _HEDGE.match(text, m.end()):
        return None
    before = low[sentence : m.start()]
    if _INVERTED.match(before) or _IF.search(before):
        return None
    sentence_end = stop.start() if stop else len(text)
    for other in _MENTION.finditer(text, sentence, sentence_end):
        o, _ = _mention_letter(other)
        if o != letter and o in r.valid and not _negated_mention(low, other.start(), other.end(), sentence, False):
            return None  # several letters named in one sentence: a list, not an answer
    if enclosed and _tagged_neighbour(r, m, letter):
        return None  # "Fleming eye drops (A)\nKetotifen eye drops (B)": a list of options tagged with letters
    return Reading(letter, "phrase", m.start(), m.end())


def _tagged_neighbour(r: _Response, m: re.Match, letter: str) -> bool:
    """Does the line before or after the one holding ``m`` end with another option's letter in brackets, or the
    line before announce a walk through the options?"""
    text = r.text
    here = _line_at(text, m.start())
    before = text.rfind("\n", max(0, here[0] - _LONG_LINE), here[0])
    above = _line_at(text, before - 1) if before > 0 else None
    if above and _WALKTHROUGH.search(r.low, *above) and not _CONCLUDE.search(r.low, *above):
        return True  # the first item after "Let's look at the options:"
    for line in filter(None, [above, _next_line(text, m.end())]):
        tag = _END_TAG.search(text, *line)
        if tag and tag.group(1) != letter and tag.group(1) in r.valid:
            return True
    return False


def _cue_start(low: str, m: re.Match) -> int | None:
    """Where a phrase's cue starts (leading markup skipped); None when the match starts inside a word."""
    i = m.start()
    if i and "a" <= low[i - 1] <= "z" and "a" <= low[i] <= "z":
        return None  # inside a word: "unanswered", "hi I'd"
    if m.re in _HEADINGS:  # "### Answer" alone on its line
        line = low.rfind("\n", max(0, i - 80), i) + 1
        lead = _HEADING_LEAD.fullmatch(low, line or max(0, i - 80), i)
        return lead.start(1) if lead else None
    return m.end() - len(low[i : m.end()].lstrip(" \t\n#>*_"))


def _phrase_candidates(r: _Response, lo: int, hi: int, next_cue: int) -> list:
    """(position, kind, cue start, cue end, extra) of phrases and postfix forms at positions in (lo, hi], latest first.

    ``next_cue`` is where the first phrase after ``hi`` starts: the text a phrase's option name is read from ends there.
    """
    text, low = r.text, r.low
    a, b = max(0, lo - _MARGIN), min(len(low), hi + _MARGIN)
    phrases: dict[int, int] = {}
    for rx in _PHRASES:
        for m in rx.finditer(low, a, b):
            if lo < m.end() <= hi:
                cue = _cue_start(low, m)
                if cue is not None:
                    phrases[m.end()] = min(cue, phrases.get(m.end(), cue))
    ends = sorted(phrases)
    nexts = [phrases[e] for e in ends[1:]] + [next_cue]
    out = [(e, "phrase", phrases[e], e, max(e, min(s, e + 300))) for e, s in zip(ends, nexts)]
    groups: dict[int, list] = {}
    found = _MENTION.finditer(text, max(0, lo - 3), min(len(text), hi + 3))
    mentions = [m for m in found if lo < m.end() <= hi and _mention_letter(m)[0] in r.valid]
    if mentions:  # grouped by sentence: where the last sentence end before each starts it
        ends = [x.end() for x in _SENTENCE_END.finditer(low, max(0, mentions[0].start() - 400), mentions[-1].start())]
        for m in mentions:
            i = bisect_left(ends, m.start() + 1)
            groups.setdefault(ends[i - 1] if i else _sentence_start(low, m.start()), []).append(m)
    out += [(sentence, "mention", sentence, 0, found) for sentence, found in groups.items()]
    for anchor, head in _POSTFIX:
        for m in anchor.finditer(low, a, b):
            h = lo < m.start() <= hi and head.search(text, max(0, m.start() - 40), m.start())
            if h:
                g = next(i for i, x in enumerate(h.groups(), 1) if x)
                start = h.start(g) if g == 3 else h.start() + len(h.group()) - len(h.group().lstrip(" \t\n.:,"))
                out.append((m.start(), "postfix", start, m.end(), h.group(g)))
    return sorted(out, key=lambda c: c[0], reverse=True)


def _late_candidates(r: _Response, lo: int, hi: int, taken: set) -> list:
    """Strict cues and retractions ending in (lo, hi], latest first: searched only where they could still win."""
    low, out = r.low, []
    for rx, kind in ((_STRICT, "strict"), (_RETRACT, "retract")):
        for m in rx.finditer(low, max(0, lo - 40), min(len(low), hi + 40)):
            if lo < m.end() <= hi and m.end() not in taken:
                cue = _cue_start(low, m)
                if cue is not None:
                    out.append((m.end(), kind, cue, m.end(), None))
    return sorted(out, key=lambda c: c[0], reverse=True)


def _visit(r: _Response, kind: str, cue: int, end: int, extra) -> Reading | None:
    """Read one candidate: a Reading, NO_ANSWER when it is ambiguous, None when it commits to nothing."""
    if kind == "phrase":
        return _read_phrase(r, cue, end, extra)
    if kind == "strict":
        return _read_strict(r, cue, end)
    if kind == "retract":
        return _read_retraction(r, cue, end)
    if kind == "mention":
        return next(filter(None, (_read_mention(r, m, cue) for m in reversed(extra))), None)
    return Reading(extra, "phrase", cue, end) if extra in r.valid else None


def _contradicted(r: _Response, phrases: list, final: tuple) -> bool:
    """Is the final commitment one item of a list whose items before it commit to two or more other letters,
    one after another, with no word that turns the reasoning between them ("wait", "but", "actually")? Then
    no answer stands. A conclusion on a line of its own after such a list stands."""
    line = r.text.rfind("\n", max(0, final[2] - _LONG_LINE), final[2]) + 1
    if not _LIST_LINE.match(r.text, line, final[2]):
        return False
    letters, after = set(), final[2]
    for cand in phrases[phrases.index(final) + 1 : phrases.index(final) + 12]:
        if cand[1] != "phrase":
            continue
        if _TURN.search(r.low, cand[3], after):
            break
        got = _letter_after(r.text, cand[3])
        if got and got[0] in r.valid and not _conditional(r, cand[2], got[2]):
            letters.add(got[0])
            after = cand[2]
    return len(letters - {_letter_after(r.text, final[3])[0]}) >= 2


def _commitment(r: _Response) -> Reading | None:
    """The last commitment; NO_ANSWER when it is ambiguous, None when there is none.

    Commitments are tried from the end, a window of text at a time, so that a long response that
    commits at its end is searched only there.
    """
    hi = next_cue = len(r.text)
    window = _WINDOW
    while hi > 0:
        lo, window = max(0, hi - window), window * 4
        phrases = _phrase_candidates(r, lo, hi, next_cue)
        taken, late_hi = {c[0] for c in phrases}, hi
        for cand in [*phrases, (lo, None, 0, 0, None)]:
            for late in _late_candidates(r, cand[0], late_hi, taken):
                reading = _visit(r, *late[1:])
                if reading is not None:
                    return reading
            if cand[1] is None:
                break
            reading = _visit(r, *cand[1:])
            if reading is not None:
                if cand[1] == "phrase" and reading.rule == "phrase" and _contradicted(r, phrases, cand):
                    return NO_ANSWER  # "Step 1: The answer is A. Step 2: The answer is B. ..."
                return reading
            late_hi = cand[0]
        next_cue = min([c[2] for c in phrases if c[1] == "phrase"] + [next_cue])
        hi = lo
    return None


# --- without a commitment: the final line, a concluding sentence, the first line --------------


def _option_at(r: _Response, start: int, end: int):
    """(letters, end) of the option(s) whose text ``text[start:end]`` opens with, exact, shortened or misspelt;
    None if none."""
    raw = [(m.group(), m.end()) for m in _WORD.finditer(r.folded, start, end)]
    tokens = [(_stem(w), at) for w, at in raw if w != "s"]  # the "s" of "Meckel's"
    stems = [t for t, _ in tokens]
    best, who, stop = None, set(), start
    for letter, alternatives in _option_words(r.items):
        for alt in alternatives:
            n = len(alt)
            if stems[:n] == list(alt):
                key, at = (2, n, 1.0), tokens[n - 1][1]
            else:
                content = {w for w in alt if w not in _STOPWORDS}
                window = stems[: n + 2]
                found = [i for i, w in enumerate(window) if w in content]
                share = len({window[i] for i in found}) / len(content) if content else 0
                if share >= 0.5:
                    key, at = (1, share, len(found)), tokens[found[-1]][1]
                else:
                    key, at = _misspelt(alt, raw)
                    if key is None:
                        continue
            if best is None or key > best:
                best, who, stop = key, {letter}, at
            elif key == best:
                who.add(letter)
    return (who, stop) if best else None


def _misspelt(alt: tuple, raw: list):
    """(key, end) when the first words of ``raw`` spell the option ``alt`` a letter or two off ("Furosemid",
    "N-acetyl cysteine"), else (None, 0)."""
    target = "".join(alt)
    if len(target) < 5:
        return None, 0
    spelt = ""
    for word, end in raw:
        if len(spelt) >= len(target) + 2:
            break
        spelt += _stem(word)
        score = SequenceMatcher(None, target, spelt, autojunk=False).ratio()
        if score >= 0.85:
            return (1, score, 0), end
    return None, 0


def _others_named(r: _Response, start: int, end: int, letter: str) -> bool:
    """Does ``text[start:end]`` name another option, by its text or by a letter standing as one ("(B)", "B.")?"""
    if {x for h in r.named(start, end) for x in h[0]} - {letter}:
        return True
    for m in _MENTION.finditer(r.text, start, end):
        other, enclosed = _mention_letter(m)
        if other not in r.valid or other == letter:
            continue
        article = other in "AI" and _ARTICLE.match(r.text, m.end())
        if enclosed or (_MENTION_FOLLOW.match(r.text, m.end()) and not article):
            return True
        if _MENTION_NEG.search(r.low, start, m.start()):  # "I'd only pick A if", "not B"
            return True
    return False


def _negated_clause(r: _Response, start: int, end: int, letter: str) -> bool:
    """Does the first clause after an option's label negate or hedge it ("- not indicated", "- this would ...")?
    Not when that clause is about another option ("C. I'd only pick A if ...")."""
    clause = _CLAUSE.search(r.text, start, end)
    if not clause:
        return False
    a, b = clause.span()
    if not (_LABEL_NEG.search(r.low, a, b) or _LABEL_HEDGE.search(r.low, a, b)):
        return False
    return not _others_named(r, a, b, letter)


def _mentions_other(r: _Response, start: int, end: int, letter: str) -> bool:
    """Does the explanation after a label name another option, outside a clause that sets it aside ("not B")?"""
    low = r.low
    for m in _CLAUSE.finditer(r.text, start, end):
        a, b = m.span()
        if _others_named(r, a, b, letter) and not (
            _NEG.search(low, a, b) or _LABEL_HEDGE.search(low, a, b) or _MENTION_NEG.search(low, a, b)
        ):
            return True
    return False


def _own_words(r: _Response, letter: str, start: int, end: int) -> int | None:
    """End of the first clause of ``text[start:end]`` when every word of it is a word of option ``letter``."""
    clause = _CLAUSE.match(r.text, start, end)
    words = [_stem(w) for w in _WORD.findall(r.folded, start, clause.end() if clause else end) if w != "s"]
    own = {w for k, alts in _option_words(r.items) if k == letter for alt in alts for w in alt}
    return (clause.end() if clause else end) if words and set(words) <= own else None


def _read_label_line(r: _Response, m: re.Match, s: int, e: int, others: list, after: tuple | None,
                     complete: bool) -> Reading | None:
    """A line opening with a letter label: the letter alone, with its option's text, or with an explanation.

    ``after`` is the line before it, when it is the final line of several."""
    text, low = r.text, r.low
    bracket, char, punct, emph = m.groups()
    letter = char.upper()
    if letter not in r.valid:
        return None
    rest = _REST_LEAD.match(text, m.end(), e).end()
    if rest >= e:
        return Reading(letter, "final_line", s, e)
    for os_, oe in others:
        o = _LABEL.match(text, os_, oe)
        if o and (o.group(1) or o.group(2).upper()) != letter:
            return None  # a restated option list, or an analysis of the options
    if after and _WALKTHROUGH.search(low, *after) and not _CONCLUDE.search(low, *after):
        return None  # the first option of a walk through the options, not "So, based on all this:"
    found = _option_at(r, rest, e)
    if found:
        who, stop = found
        if letter not in who:
            own = _own_words(r, letter, rest, e)  # "A. 50% normal saline" for "50% normal saline 50% dextrose"
            if own is None:
                return None
            who, stop = {letter}, own
        tail = text[stop:e].strip(" \t*_.")
        if not tail:
            return Reading(letter, "final_line", s, e)
        if _mentions_other(r, stop, e, letter):
            return None
        explained = tail[0] in ":;,-–—(" or len(tail.split()) > 2
        if explained and (not complete or _negated_clause(r, stop, e, letter)):
            return None
        return Reading(letter, "final_line", s, e)
    emphasised = bracket or emph or text[max(0, s - 2) : s] in ("**", "__")
    separated = bool(re.search(r"[-–—:,]", text[m.end() : rest]))
    if not (punct or emphasised or separated) or not complete or (char.islower() and not (punct or separated)):
        return None
    if punct == "." and not emph and char.isupper() and text[rest].islower():
        return None  # "E. coli", "C. difficile"
    if _negated_clause(r, rest, e, letter) or _mentions_other(r, rest, e, letter):
        return None
    return Reading(letter, "final_line", s, e)


def _answer_line(r: _Response, lines: list, k: int, complete: bool) -> Reading | None:
    """Line ``k`` (0 or -1) as an answer line (see the module docstring, 3)."""
    s, e = lines[k]
    if e - s > _MAX_LINE:
        return None
    others = lines[1:] if k == 0 else lines[:-1]
    m = _LINE_LABEL.match(r.text, s, e)
    if m:
        return _read_label_line(r, m, s, e, others, others[-1] if k == -1 and others else None, complete)
    named = r.name_is(s, e - 1 if r.text[e - 1] in ".!" and e - 1 > s else e)  # "Cardiac tamponade."
    if len(named) != 1:
        return None
    if others and r.name_is(*others[0 if k == 0 else -1]):
        return None  # a list of option texts
    return Reading(next(iter(named)), "final_line", s, e)


def _concluding(r: _Response, lines: list) -> Reading | None:
    """An option named in a concluding sentence near the end (see the module docstring, 4)."""
    text, low = r.text, r.low
    if _REFUSAL.search(low):
        return None
    skipped = {s for s, e in lines if _LABEL.match(text, s, e) or len(_INLINE_LABELS.findall(text, s, e)) > 1}
    skipped |= {s for s, e in lines if r.name_is(s, e)}  # an option's text alone: a list item here
    start = max(0, len(text) - 2000)
    pieces, s = [], start
    for m in _SENT_BREAK.finditer(text, start):
        pieces.append((s, m.start(), m.group()))
        s = m.end()
    pieces.append((s, len(text), ""))
    seen = 0
    for s, e, term in reversed(pieces):
        s, e = _strip(text, s, e)
        if s >= e:
            continue
        seen += 1
        if seen > 4:
            break
        if "?" in term or _line_at(text, s)[0] in skipped or _AFTER_LABEL.search(text, max(0, s - 8), s):
            continue
        if _INLINE_LABELS.match(text, s):
            continue  # "B) Constrictive pericarditis - chronic.": an option's label, not a conclusion
        hits = r.named(s, e) or r.named_loosely(s, e)
        cut = _CONTRAST.search(low, s, e)
        head_end = cut.start() if cut else e
        head = [h for h in hits if h[2] <= head_end]
        letters = {x for h in head for x in h[0]}
        if not letters:
            continue
        clause = _clause_start(low, s, head[0][1])
        masked, at = [], clause
        for _, hs, he in head:
            masked.append(low[at:hs])
            at = he
        masked.append(low[at:head_end])
        masked = " _ ".join(masked)
        before = low[s : head[0][1]]
        if _NEG.search(masked) or _HEDGED.search(masked) or _IF.search(before) or _INVERTED.match(before):
            continue
        if _COMBINED.search(before):
            return NO_ANSWER  # "a combination of X, Y and Z", "Both A and C are needed"
        if len(letters) > 1:
            return NO_ANSWER
        subject = not low[s : head[0][1]].strip(" *_") and head[-1][2] < e
        if (seen > 1 or subject) and not _CONCLUDE.search(low, s, e):
            continue  # the last sentence names the answer as it stands ("..., i.e. X."), unless the option is its
            # subject ("X is chronic."); an earlier one must conclude
        return Reading(letters.pop(), "text", s, head[-1][2])
    return None


def _fallback(r: _Response) -> Reading:
    """No commitment: the final line, a concluding sentence, then the first line of a complete response."""
    lines = _lines(r.text)
    if not lines:
        return NO_ANSWER
    complete = not _cut_off(r.text)
    reading = _answer_line(r, lines, -1, complete) or (_concluding(r, lines) if complete else None)
    if reading is None and len(lines) > 1 and complete:
        reading = _answer_line(r, lines, 0, complete)
    return reading or NO_ANSWER


def read_choice(response: str, options: dict[str, str]) -> Reading:
    """How ``response`` was read: the option letter it finally committed to, the rule and the span."""
    if not response or not options:
        return NO_ANSWER
    valid = frozenset(k for k, v in options.items() if v is not None and k in _LETTERS)
    base = reasoning_end(response)
    if not valid or base is None:
        return NO_ANSWER
    text = response[base:]
    if not text.strip():
        return NO_ANSWER
    if not text.isascii():
        text = _FULLWIDTH.sub(_to_ascii, text)
    r = _Response(text, valid, tuple(sorted((k, str(options[k])) for k in valid)))
    reading = _commitment(r) or _fallback(r)
    if not base or reading.start is None:
        return reading
    return Reading(reading.letter, reading.rule, reading.start + base, reading.end + base)


def extract_choice(response: str, options: dict[str, str]) -> str | None:
    """The option letter ``response`` finally committed to, or None (see the module docstring)."""
    return read_choice(response, options).letter
