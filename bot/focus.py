"""Find the words of an answer sentence that answer the question's type.

"When" wants a date or time, "how many" a number, "who" a name, "where" a place. The rules below
find candidates of that type in the sentence and pick the one standing closest to the words the
question shares with the sentence; candidates the question itself names are not answers.
"""

from __future__ import annotations

import re

from embeddings.keyword import question_terms as _question_terms, tokenize

_MONTH = (r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|Mar(?:ch|\.)?|Apr(?:il|\.)?|May|June?|July?|"
          r"Aug(?:ust|\.)?|Sept?(?:ember|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)")
_NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
                r"thirty|forty|fifty|hundred|thousand|million|billion|several|a few|few|dozens?)")
_DATE = re.compile(
    rf"\b(?:(?:early|mid|late)[- ])?{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|\b(?:(?:early|mid|late)[- ]|the end of\s+)?{_MONTH}(?:\s+(?:of\s+)?\d{{4}})?(?![a-z])"
    rf"|\b(?:in\s+|by\s+|since\s+|until\s+)?(?:the\s+)?(?:early\s+|mid-?|late\s+)?\d{{4}}s?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)\s+century\b"
    rf"|\b(?:within|in|for|after|over)\s+(?:the\s+next\s+|the\s+past\s+)?(?:a\s+|\d+\s+|{_NUMBER_WORD}\s+)"
    rf"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?)\b"
    rf"|\b(?:yesterday|today|tomorrow|tonight|(?:next|last|this)\s+(?:week|month|year|spring|summer|"
    rf"autumn|fall|winter|monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b"
    rf"|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
    rf"|\b\d{{1,2}}(?::\d{{2}})?\s*(?:a\.m\.|p\.m\.|am|pm)\b",
    re.IGNORECASE)
_QUANTITY = re.compile(
    rf"(?:[$€£¥]\s?)?\b\d[\d,]*(?:\.\d+)?(?:\s*(?:%|percent|per cent))?"
    rf"(?:\s+(?:thousand|million|billion|trillion))?"
    rf"(?:\s+(?:[a-z]+))?"
    rf"|\b{_NUMBER_WORD}(?:\s+{_NUMBER_WORD})*\b",
    re.IGNORECASE)
_NAME = re.compile(r"\b(?:[A-Z][\w'’.-]*|of|the|de|von|van|and|for)(?:\s+(?:[A-Z][\w'’.-]*|of|the|de|von|van|and|for))*")
_PLACE_LEAD = re.compile(r"\b(?:in|at|from|near|to|into|across|outside|inside)\s+(?:the\s+)?$", re.IGNORECASE)


def question_type(question: str) -> str | None:
    """DATE, NUMBER, PERSON, PLACE, NAME or None (for why/how/what-is questions)."""
    q = question.lower()
    if re.search(r"\b(?:when|what (?:year|date|day|month|time|century|decade|period)|which (?:year|date|"
                 r"day|month|century|decade)|deadline|how long ago|since when|until when)\b", q):
        return "DATE"
    if re.search(r"\bhow (?:many|much|long|old|far|large|big|high|tall|often|fast)\b|\bwhat "
                 r"(?:percentage|percent|number|amount|proportion|share|fraction|price|cost|size)\b", q):
        return "NUMBER"
    if re.search(r"\bwhere\b|\b(?:what|which|in which|in what) (?:city|country|state|place|region|"
                 r"town|location|continent|river|island|area|province|county|nation)\b", q):
        return "PLACE"
    if re.search(r"\bwho(?:m|se)?\b|\b(?:what|which) (?:person|man|woman|president|leader|minister|"
                 r"company|organi[sz]ation|group|agency|newspaper|paper|magazine|network|channel|"
                 r"station|party|team|university|band|body|institution|firm|author|scientist)\b", q):
        return "PERSON"
    return None


def _candidates(kind: str, text: str) -> list[tuple[int, int]]:
    if kind == "DATE":
        return [m.span() for m in _DATE.finditer(text) if m.group().strip()]
    if kind == "NUMBER":
        return [m.span() for m in _QUANTITY.finditer(text) if re.search(r"\w", m.group())]
    spans = []
    for m in _NAME.finditer(text):
        start, end = m.span()
        words = m.group().split()
        # Trim lower-case joiners at the edges ("of the Senate" -> "Senate").
        while words and not words[0][0].isupper():
            start = text.index(words[1], start) if len(words) > 1 else end
            words = words[1:]
        while words and not words[-1][0].isupper():
            words = words[:-1]
        if not words:
            continue
        end = text.index(words[-1], start) + len(words[-1])
        # The first word of a sentence is capitalised anyway: "In" and "The" are not names.
        if start == 0 or re.search(r"[.!?\"]\s*$", text[:start]):
            if words[0].lower() in {"in", "the", "a", "an", "on", "at", "as", "but", "and", "after",
                                    "before", "when", "while", "during", "for", "with", "by", "from",
                                    "he", "she", "it", "they", "this", "that", "these", "those", "its"}:
                if len(words) == 1:
                    continue
                start = text.index(words[1], start)
        if kind == "PLACE" and not _PLACE_LEAD.search(text[:start]):
            continue
        spans.append((start, end))
    return spans


def find_focus(question: str, answer: str, best_text: str | None = None) -> tuple[int, int] | None:
    """Offsets in `answer` of the span that answers the question's type, or None."""
    kind = question_type(question)
    if kind is None:
        return None
    spans = _candidates(kind, answer)
    if not spans and kind == "PLACE":
        spans = _candidates("PERSON", answer)
    question_terms = set(_question_terms(question))
    spans = [s for s in spans if not set(tokenize([answer[s[0]:s[1]]])[0]) & question_terms
             or kind in {"DATE", "NUMBER"} and not set(tokenize([answer[s[0]:s[1]]])[0]) <= question_terms]
    if not spans:
        return None
    # Where the question's own words sit in the answer: the answer is usually next to them.
    anchors = [m.start() for m in re.finditer(r"\w+", answer) if tokenize([m.group()])[0]
               and tokenize([m.group()])[0][0] in question_terms]
    best_region = (answer.find(best_text), answer.find(best_text) + len(best_text)) if best_text and best_text in answer else (0, len(answer))

    def distance(span: tuple[int, int]) -> float:
        inside = 0 if best_region[0] <= span[0] < best_region[1] else 1000
        near = min((abs(a - span[0]) for a in anchors), default=0)
        return inside + near

    if re.search(r"\b(?:deadline|how soon|how quickly|by when)\b", question, re.IGNORECASE):
        durations = [sp for sp in spans if re.match(r"(?:within|in|by|until)\b", answer[sp[0]:sp[1]], re.IGNORECASE)]
        spans = durations or spans
    start, end = min(spans, key=distance)
    while end > start and answer[end - 1] in ",.;: ":
        end -= 1
    return (start, end) if end > start else None
