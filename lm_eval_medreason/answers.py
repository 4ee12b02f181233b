"""Which option did a model's response finally commit to?

``extract_choice(response, options)`` returns an uppercase letter that is a key of
``options`` with a non-None text, or None. Policy, in order:

1. Reasoning: only the text after the last ``</think>`` (exact, lowercase tag) counts. A ``<think>`` with no
   ``</think>`` after it (reasoning cut off) gives None, and so does a closed block with
   nothing committed after it. Full-width forms (``Ｃ``, ``：``, ``（``) count as ASCII.
2. Commitments, of which the one occurring LAST wins (so self-corrections count):
   - a phrase followed by a letter: "The (correct/final) answer is (C)", "Answer: C",
     "**Answer:** C", "Final answer: **(C) text**", "The most likely diagnosis is C",
     "I'd go with C", ``\\boxed{C}``, ``\\boxed{\\text{C}}``, JSON ``"answer": "C"``,
     "答案是C", "答案：C", "正确答案为 C", "选C", "最终答案：C";
   - "Option C is correct", "(C) is the correct answer", "Therefore, C is correct", "选项C正确";
   - one of those phrases followed by an option's TEXT rather than a letter, matched
     ignoring case, accents, hyphens/punctuation and a bracketed abbreviation
     ("Aortic dissection (AD)" matches "aortic dissection"; a bracketed abbreviation
     of 3+ characters matches alone, "AD" never does). The span stops at the end of
     the sentence or at a contrast ("not", "rather than", "because", ...). A name
     inside a longer matched name yields to it ("hepatitis" inside "autoimmune
     hepatitis"); two different options named in the span is ambiguous: None.
   A letter not among the options is ignored; "A or C" after a phrase is a hedge: None.
3. Only if there is no commitment: the final line, else the first line (a vanilla answer
   followed by an explanation), if it is just a letter ("C", "(C)", "**C.**"), a letter
   with exactly its option text ("**C. Pulmonary embolism**", unless other lines label
   other letters: a restated option list or an analysis cut off at an option's heading),
   or exactly one option's text (unless the next line is one too: a list).
4. Otherwise None: empty output, refusals, hedges ("It could be A or C"), questions
   ("what if the answer is B?"), cut-off text.

Letters are A-J. Lowercase counts only when enclosed ("(c)", "{c}", '"c"'). A letter
must stand alone: never from "vitamin A", "hepatitis B", "type A", "HbA1c", "E. coli",
"C-reactive"; a bare "A"/"I" followed by a lowercase word is the article/pronoun
("A patient with...", "I think"), except before "because", "since", "as", ...
"""

import re
import unicodedata
from functools import lru_cache

_LETTERS = frozenset("ABCDEFGHIJ")

_NOUNS = (
    "diagnosis|cause|etiology|explanation|mechanism|treatment|therapy|management|step|test|"
    "intervention|drug|medication|pharmacotherapy|agent|organism|pathogen|finding|complication|"
    "investigation|course\\s+of\\s+action|action|answer|option|choice|response|condition|disorder|"
    "disease|lesion|location|site|source|structure|gene|mutation|enzyme|process|approach"
)
_ADJ_TAIL = (
    r"(?:[\s-]+(?:next|initial|first|underlying|immediate|best|appropriate|single)){0,2}"
    rf"\s+(?:{_NOUNS})\b(?:\s+[a-z'’]+){{0,5}}?\s*(?:is\b|would\s+be\b|:)"
)
_ADJS = (
    r"most\s+(?:probable|appropriate|accurate|effective|common|consistent|specific|sensitive)",
    "best", "correct", "right", "final", "preferred", "likely", "probable", "definitive",
)
_VERB = r"(?:go|choose|pick|select|opt)(?:\s+(?:with|for))?\b"
# Phrases after which a letter or an option's text is a commitment. They run on the
# lowercased text and each starts with a literal, which lets `re` skip ahead quickly.
_PHRASES = tuple(
    re.compile(p)
    for p in (
        r"answer(?:\s+(?:choice|option))?(?:\*\*|__|[\"'])?\s*"
        r"(?:is\b|would\s+be|should\s+be|must\s+be|will\s+be|remains|[:=\-–—])"
        r"(?:\s+(?:therefore|thus|then|clearly|definitely|indeed|actually|likely|most\s+likely|probably|still|now)"
        r"\b){0,2}",
        *(adj + _ADJ_TAIL for adj in _ADJS),
        r"diagnosis\s+is\b",
        r"etiology\s+is\b",
        r"most\s+likely\s+(?:has|have|had|suffers?\s+from)\b",
        r"i['’]\s*(?:d|ll)\s+" + _VERB,
        r"i (?:would\s+|will\s+|am\s+going\s+to\s+)?" + _VERB,
        r"going\s+with\b",
        r"答案(?:应该|应当|应)?(?:是|为|选)?",
        r"选(?!项)择?",
        r"最(?:可能|佳|合适|恰当)的?[^\s,.，。:：]{0,8}?(?:是|为)",
        r"诊断(?:是|为)",
        r"\\boxed\s*\{",
    )
)
_SEP = r"(?:[\s*_#>`$=:\"'(\[{]|\\(?:text|textbf|mathrm|mathbf)\s*\{|\\[(\[]){0,12}"
_SKIP = re.compile(_SEP)
# The letter right after a phrase: uppercase standing alone, or lowercase when enclosed.
_LETTER = re.compile(
    _SEP + r"(?:(?i:option|choice|letter)\b|选项)?" + _SEP
    + r"(?:([A-J])(?![A-Za-z0-9_\-]|['’][A-Za-z]|\.[ \t]*[a-z])|(?<=[(\[{\"'])([a-j])(?=[)\]}\"']))"
    + r"(?![)\]}\"'*]*\s*\?)"  # "what if the answer is B?" asks, it does not commit
)
_ARTICLE = re.compile(r"[ \t]+(?!(?:because|since|as|is|was|which|given|due|for|so|then)\b)[a-z0-9]")
_HEDGE = re.compile(
    r"[)\]}\"'*.]*\s*,?\s*(?:(?i:or|and|vs\.?|versus)\b|/|或|还是|和)\s*[(\[*\"']*[A-J](?![A-Za-z])"
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
_FINAL = re.compile(r"[(\[]?([A-J])[)\].:]?(?:\s+(.*))?", re.S)
_LABEL = re.compile(r"[ \t>*_#-]*[(\[]?([A-J])[)\].:]")
_FULLWIDTH = re.compile("[\uff01-\uff0b\uff0d-\uff5e]")  # all but the full-width comma, the commonest
_MAX_LINE = 300  # a longer final line is prose, not an answer line
_NONWORD = re.compile(r"[\W_]+")
_BRACKETED = re.compile(r"\s*[(\[]([^)\]]*)[)\]]")


def _after_reasoning(response: str) -> str | None:
    """Text after the last closed <think> block; None when a block is left open (cut off)."""
    close = response.rfind("</think>")
    if response.rfind("<think>") > close:
        return None
    return response[close + len("</think>") :] if close >= 0 else response


def _to_ascii(m: re.Match) -> str:
    """Full-width "Ｃ", "：", "（" as their ASCII twins (cheaper than NFKC on CJK text)."""
    return chr(ord(m.group()) - 0xFEE0)


def _norm(text: str) -> str:
    """Fold case, accents and punctuation so option texts compare as words."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NONWORD.sub(" ", text.casefold()).strip()


@lru_cache(maxsize=4096)
def _aliases(items: tuple) -> tuple:
    """(normalised name, letter) pairs per option: full text, without brackets, 3+ char abbreviation."""
    out = set()
    for letter, text in items:
        names = {text, _BRACKETED.sub("", text)}
        names.update(a for a in _BRACKETED.findall(text) if len(_norm(a)) >= 3 and " " not in _norm(a))
        out.update((n, letter) for n in map(_norm, names) if len(n.replace(" ", "")) >= 3)
    return tuple(out)


def _is_word_char(c: str) -> bool:
    """ASCII letters and digits make words; CJK text has no spaces, so it never blocks a match."""
    return c.isascii() and c.isalnum()


def _named_options(span: str, aliases: tuple) -> set:
    """Options named in ``span``, dropping a name found only inside a longer one."""
    span = _norm(span)
    hits = []
    for name, letter in aliases:
        i = span.find(name)
        while i >= 0:
            j = i + len(name)
            if not (i and _is_word_char(span[i - 1])) and not (j < len(span) and _is_word_char(span[j])):
                hits.append((i, j, letter))
            i = span.find(name, j)
    return {c for a, b, c in hits if not any(a2 <= a and b <= b2 and b2 - a2 > b - a for a2, b2, _ in hits)}


def _letter_after(text: str, pos: int):
    """Letter right after a phrase; "" for a hedge ("A or C"), None when there is none."""
    m = _LETTER.match(text, pos)
    if not m or (m.group(1) in ("A", "I") and _ARTICLE.match(text, m.end())):
        return None
    return "" if _HEDGE.match(text, m.end()) else (m.group(1) or m.group(2).upper())


def _candidates(text: str, low: str) -> list:
    """(position, phrase end or None, letter or None, span limit), latest first."""
    phrases = {}
    for rx in _PHRASES:
        for m in rx.finditer(low):
            i = m.start()
            if i and "a" <= low[i - 1] <= "z" and "a" <= low[i] <= "z":
                continue  # inside a word: "unanswered", "hi I'd"
            phrases[m.end()] = min(i, phrases.get(m.end(), i))
    ends = sorted(phrases)
    starts = [phrases[e] for e in ends[1:]] + [len(text)]
    out = [(e, e, None, max(e, min(s, e + 300))) for e, s in zip(ends, starts)]
    for anchor, head in _POSTFIX:
        for m in anchor.finditer(low):
            h = head.search(text, max(0, m.start() - 40), m.start())
            if h:
                out.append((m.start(), None, next(g for g in h.groups() if g), 0))
    return sorted(out, key=lambda c: c[0], reverse=True)


def _commitment(text: str, low: str, valid: set, aliases) -> tuple[bool, str | None]:
    """(found, letter) for the last commitment; found with None means it was ambiguous."""
    for _, end, letter, limit in _candidates(text, low):
        if end is not None:
            letter = _letter_after(text, end)
            if letter == "":
                return True, None
            if letter is None:
                start = _SKIP.match(text, end, limit).end()
                stop = _SPAN_END.search(text, start, limit) if start < limit else None
                named = start < limit and _named_options(text[start : stop.start() if stop else limit], aliases())
                if named:
                    return True, (named.pop() if len(named) == 1 else None)
                continue
        if letter in valid:
            return True, letter
    return False, None


def _answer_line(lines: list, k: int, valid: set, aliases) -> str | None:
    """Letter when line ``k`` (0 or -1) is a bare letter, a letter with its own text, or an option text."""
    line = lines[k]
    others = lines[1:] if k == 0 else lines[:-1]
    if len(line) > _MAX_LINE:
        return None
    m = _FINAL.fullmatch(line)
    if m and m.group(1) in valid:
        letter, rest = m.group(1), m.group(2)
        if not rest:
            return letter
        listed = {x.group(1) for x in map(_LABEL.match, others) if x}  # a restated option list
        return letter if (_norm(rest), letter) in aliases() and listed <= {letter} else None
    line, neighbour = _norm(line), _norm(others[0 if k == 0 else -1]) if others else ""
    named = {c for n, c in aliases() if n == line}
    if len(named) == 1 and not any(n == neighbour for n, _ in aliases()):  # not a list of texts
        return named.pop()
    return None


def _answer_lines(text: str, valid: set, aliases) -> str | None:
    """Fallback without a commitment: the final line, then the first (a vanilla answer, then why)."""
    lines = [s for s in (ln.strip(" \t*_#>`\"'") for ln in text.splitlines()) if s]
    if not lines:
        return None
    last = _answer_line(lines, -1, valid, aliases)
    return last or (_answer_line(lines, 0, valid, aliases) if len(lines) > 1 else None)


def extract_choice(response: str, options: dict[str, str]) -> str | None:
    """The option letter ``response`` finally committed to, or None (see the module docstring)."""
    if not response or not options:
        return None
    valid = {k for k, v in options.items() if v is not None and k in _LETTERS}
    text = _after_reasoning(response)
    if not valid or text is None or not text.strip():
        return None
    text = text if text.isascii() else _FULLWIDTH.sub(_to_ascii, text)
    low = text.replace("\u0130", "i").lower()  # same length as text, so positions agree
    items = tuple(sorted((k, str(options[k])) for k in valid))
    aliases = lambda: _aliases(items)  # noqa: E731 - built only when option texts are needed
    found, letter = _commitment(text, low, valid, aliases)
    return letter if found else _answer_lines(text, valid, aliases)
