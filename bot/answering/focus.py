"""Highlight: find the words of an answer that answer the question's type.

"When" wants a date or time, "how many" a number, "who" a name, "where" a place. The rules below
find candidates of that type in the sentence and pick the one standing closest (in words) to the
words the question shares with the sentence; candidates the question itself names are not
answers. Plain regular expressions: no model to load, so `qabot ask` stays fast to start.
"""

from __future__ import annotations

import re

from embeddings.keyword import question_terms as _question_terms
from embeddings.keyword import stem as _stem
from embeddings.keyword import stems as _stems

_MONTH = (r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|Mar(?:ch|\.)?|Apr(?:il|\.)?|May|June?|July?|"
          r"Aug(?:ust|\.)?|Sept?(?:ember|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)")
_SEASON = r"(?:spring|summer|autumn|fall|winter)"
_NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
                r"eighty|ninety|hundred|thousand|million|billion|trillion|dozens?|several|a few|"
                r"half|a half|a third|a quarter)")
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_RANGE = r"\s*(?:–|—|-|to|and)\s*"
_DATE = re.compile(
    # Jan. 10 / January 10, 2022 / March 1974 / early 1973 / the autumn of 1991
    rf"\b(?:(?:early|mid|late)[- ])?{_MONTH}(?:\s+\d{{1,2}}(?!\d)(?:st|nd|rd|th)?)?(?:,?\s+(?:of\s+)?{_YEAR})?(?![\w])"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?(?![\w])"
    rf"|\b(?:(?:early|mid|late)[- ])?{_SEASON}\s+(?:of\s+)?{_YEAR}\b"
    # 1973, the 1970s, 1910–1940, 1995–96
    rf"|\b(?:(?:early|mid|late)[- ])?{_YEAR}s?(?:{_RANGE}(?:{_YEAR}|[0-9]{{2}})s?)?\b(?![-–][0-9])"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)[- ]century\b"
    # within a few weeks / for two years
    rf"|\b(?:within|in|for|after|over)\s+(?:the\s+(?:next|past|last)\s+)?(?:a\s+|\d+\s+|{_NUMBER_WORD}\s+)"
    rf"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries)\b"
    rf"|\b(?:yesterday|today|tomorrow|tonight|(?:next|last|this)\s+(?:week|month|year|spring|summer|"
    rf"autumn|fall|winter|monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b"
    rf"|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
    rf"|\b\d{{1,2}}(?::\d{{2}})?\s*(?:a\.m\.|p\.m\.|am|pm)(?!\w)",
    re.IGNORECASE)
_UNITS = ("percent|per cent|tons?|tonnes?|miles?|kilometres?|kilometers?|km|metres?|meters?|m|feet|ft|"
          "inches|pounds?|lb|kg|kilograms?|grams?|acres?|hectares?|square|degrees?|°[CF]?|years?|months?|"
          "weeks?|days?|hours?|minutes?|seconds?|times|seats|votes|members|people|species|stations|"
          "episodes|barrels|dollars|euros|mph|km/h")
_QUANTITY = re.compile(
    rf"(?:[$€£¥]\s?|US\$\s?)?(?<![\w.,])(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?![\d])"
    rf"(?:\s*(?:%|percent|per cent))?"
    rf"(?:\s*(?:thousand|million|billion|trillion|m|bn|k)\b)?"
    rf"(?:{_RANGE}(?:[$€£¥])?\d[\d,.]*(?:\s*(?:%|thousand|million|billion))?)?"
    rf"|\b{_NUMBER_WORD}(?:[\s-]+{_NUMBER_WORD})*\b",
    re.IGNORECASE)
_UNIT_AFTER = re.compile(rf"\s+(?:{_UNITS})\b", re.IGNORECASE)
_JOINERS = {"of", "the", "de", "von", "van", "der", "la", "le", "and", "for", "&", "du", "da"}
_NAME = re.compile(r"\b(?:[A-Z][\w'’.&-]*|of|the|de|von|van|der|la|le|and|for|&|du|da)"
                   r"(?:\s+(?:[A-Z][\w'’.&-]*|of|the|de|von|van|der|la|le|and|for|&|du|da))*")
_PLACE_LEAD = re.compile(r"\b(?:in|at|from|near|to|into|across|outside|inside|throughout|within)\s+(?:the\s+)?$",
                         re.IGNORECASE)
_NOT_NAMES = {
    # Capitalised because they open a sentence, or calendar words: not the names "who" asks for.
    "in", "the", "a", "an", "on", "at", "as", "but", "and", "after", "before", "when", "while",
    "during", "for", "with", "by", "from", "he", "she", "it", "they", "this", "that", "these",
    "those", "its", "his", "her", "their", "there", "however", "although", "since", "if", "of",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday", "sunday", "i", "we", "you", "mr", "mrs", "ms", "dr", "many", "some", "most",
    "other", "others", "all", "both", "each", "such", "several", "today", "also", "then", "thus",
    "instead", "later", "under", "between", "within", "among", "despite", "following", "until",
    "once", "nonetheless", "nevertheless", "meanwhile", "furthermore", "moreover", "because",
    "unlike", "like", "one", "two", "three", "another", "what", "which", "who", "where",
}
# "Spanish architect", "American television": one capitalised adjective before a lower-case word.
_DEMONYM = re.compile(r"^[A-Z][a-z]+(?:an|ian|ish|ese|ic|i)$")
_DEADLINE = re.compile(r"\b(?:deadline|how soon|how quickly|by when)\b", re.IGNORECASE)
_AGENT_VERB = re.compile(r"^\s*who\s+(?!is\b|was\b|are\b|were\b|did\b|does\b|do\b|has\b|had\b|have\b)\w+",
                         re.IGNORECASE)

# --- the span-cost weights ----------------------------------------------------------------------
# A candidate span's cost is OUTSIDE_BEST_SENTENCE_COST (0 inside the best sentence) minus its
# closeness to the question's words (per question keyword, 1 / its distance in words: at most one
# per keyword) and the adjustments below. OUTSIDE_BEST_SENTENCE_COST dates from the first version
# (6b88aee), the others from "sharper highlights" (809b503). All were set by hand: docs/quality.md's
# highlight exact match / F1 were measured with these values, but the history records no
# comparison with other values. Treat them as hand-set, not tuned.
# Larger than any closeness score: a span in the best sentence always beats one in its neighbour.
OUTSIDE_BEST_SENTENCE_COST = 1000
# A clause boundary (comma, semicolon, colon, bracket) between a span and a question word counts
# as this many extra words of distance.
CLAUSE_BOUNDARY_WORDS = 2
# "How many ...?" is rarely answered by a bare year ("1973"): its score drops by this much.
BARE_YEAR_PENALTY = 0.5
# "Who designed it?" -> "... was designed by Enric Miralles": a name right after "by" gains this.
AGENT_BY_BONUS = 0.5
# "When ...?" is answered by a year or a full date rather than a weekday: a date with digits gains this.
DATED_SPAN_BONUS = 0.3
# "What deadline ...?" -> "within a few weeks": larger than any closeness score, so a
# "within/in/by/until" span always wins (a rule, not a weight).
DEADLINE_SPAN_BONUS = 100


def question_type(question: str) -> str | None:
    """DATE, NUMBER, PERSON, PLACE, NAME or None (for why/how/what-is questions)."""
    q = question.lower()
    if re.search(r"\b(?:when|what (?:year|date|day|month|time|century|decade|period|season)|which (?:year|date|"
                 r"day|month|century|decade|season)|deadline|how long ago|since when|until when|"
                 r"in what year|by what year)\b", q):
        return "DATE"
    if re.search(r"\bhow (?:many|much|long|old|far|large|big|high|tall|often|fast|heavy|deep|wide)\b|\bwhat "
                 r"(?:percentage|percent|number|amount|proportion|share|fraction|price|cost|size|"
                 r"temperature|distance|speed|rate)\b", q):
        return "NUMBER"
    if re.search(r"\bwhere\b|\b(?:what|which|in which|in what) (?:city|country|state|place|region|"
                 r"town|location|continent|river|island|area|province|county|nation|ocean|sea)\b", q):
        return "PLACE"
    if re.search(r"\bwho(?:m|se)?\b|\b(?:what|which) (?:person|man|woman|president|leader|minister|"
                 r"company|organi[sz]ation|group|agency|newspaper|paper|magazine|network|channel|"
                 r"station|party|team|university|band|body|institution|firm|author|scientist|"
                 r"corporation|studio|court|treaty|program|programme|show|series|mission|spacecraft|"
                 r"rocket|journal|court|committee|commission)\b", q):
        return "PERSON"
    return None


def _opens_sentence(text: str, offset: int) -> bool:
    return offset == 0 or bool(re.search(r"[.!?:\"]\s*$", text[:offset]))


def _name_spans(text: str, place: bool = False) -> list[tuple[int, int]]:
    spans = []
    for m in _NAME.finditer(text):
        words = [(w.start() + m.start(), w.end() + m.start(), w.group())
                 for w in re.finditer(r"\S+", m.group())]
        # Trim joiners at the edges ("of the Senate" -> "Senate") and sentence-opening words.
        while words and (words[0][2].lower() in _JOINERS or words[0][2].lower().strip(".,") in _NOT_NAMES
                         or _opens_sentence(text, words[0][0]) and words[0][2].lower().rstrip(".,").endswith("ly")):
            words = words[1:]
        while words and words[-1][2].lower() in _JOINERS:
            words = words[:-1]
        if not words:
            continue
        start, end = words[0][0], words[-1][1]
        while end > start and text[end - 1] in ".,;:'’-":
            if text[end - 1] == "." and re.search(r"\b[A-Z]\.$|\b(?:Inc|Ltd|Co|Jr|Sr|St)\.$", text[start:end]):
                break
            end -= 1
        if end <= start:
            continue
        if len(words) == 1 and _DEMONYM.match(text[start:end]) and re.match(r"\s+[a-z]", text[end:]):
            continue
        if place and not _PLACE_LEAD.search(text[:start]):
            continue
        spans.append((start, end))
    return spans


def _candidates(kind: str, text: str, question: str = "") -> list[tuple[int, int]]:
    if kind == "DATE":
        # "may" and "march" are verbs too: a month without a number must be capitalised.
        return [m.span() for m in _DATE.finditer(text)
                if re.search(r"\d", m.group()) or not re.match(r"(?:may|march)\b", m.group())]
    if kind == "NUMBER":
        spans = []
        noun = re.search(r"\bhow (?:many|much)\s+(\w+)", question, re.IGNORECASE)
        noun_stem = _stem(noun.group(1)) if noun else None
        for m in _QUANTITY.finditer(text):
            start, end = m.span()
            if not re.search(r"\w", m.group()):
                continue
            after = _UNIT_AFTER.match(text, end)
            nxt = re.match(r"\s+(\w+)", text[end:])
            if after:
                end = after.end()
            elif noun_stem and nxt and _stem(nxt.group(1)) == noun_stem:
                end += nxt.end()
            spans.append((start, end))
        return spans
    return _name_spans(text, place=(kind == "PLACE"))


def find_focus(question: str, answer: str, best_text: str | None = None,
               context: str | None = None) -> tuple[int, int] | None:
    """Offsets in `answer` of the span that answers the question's type, or None.

    `context` (the earlier question a follow-up leans on) adds words to look for the answer next to.
    """
    kind = question_type(question)
    if kind is None:
        return None
    spans = _candidates(kind, answer, question)
    if not spans and kind == "PLACE":
        spans = _candidates("PERSON", answer)
    question_terms = set(_question_terms(question))
    question_numbers = set(re.findall(r"\d[\d,.]*\d|\d", question))

    def acceptable(span: tuple[int, int]) -> bool:
        text = answer[span[0]:span[1]]
        stems = _stems(text)
        if set(re.findall(r"\d[\d,.]*\d|\d", text)) & question_numbers:
            return False  # the question's own number or year is not its answer
        if kind in {"DATE", "NUMBER"}:
            return not stems <= question_terms
        return not stems & question_terms

    spans = [s for s in spans if acceptable(s)]
    if not spans:
        return None
    # Where the question's words (and a follow-up's subject) sit in the answer: the answer is
    # usually next to them. Distances count words, not characters.
    # The words of the subject a follow-up leans on count only when its own are absent.
    context_terms = set(_question_terms(context)) - question_terms if context else set()
    words = list(re.finditer(r"\w+", answer))
    stems = [_stem(w.group()) for w in words]
    anchor_positions = [(i, t, 1.0) for i, t in enumerate(stems) if t in question_terms] or \
                       [(i, t, 1.0) for i, t in enumerate(stems) if t in context_terms]
    word_index = {w.start(): i for i, w in enumerate(words)}
    best_region = (0, len(answer))
    if best_text and best_text in answer:
        best_region = (answer.find(best_text), answer.find(best_text) + len(best_text))
    agent = kind == "PERSON" and bool(_AGENT_VERB.match(question))

    def position(offset: int) -> int:
        while offset > 0 and offset not in word_index:
            offset -= 1
        return word_index.get(offset, 0)

    def cost(span: tuple[int, int]) -> float:
        """Lower is better: inside the best sentence first, then close to many question words."""
        inside = 0 if best_region[0] <= span[0] < best_region[1] else OUTSIDE_BEST_SENTENCE_COST
        first, last = position(span[0]), position(max(span[0], span[1] - 1))
        nearest: dict[str, float] = {}
        for i, term, weight in anchor_positions:
            d = max(first - i, i - last, 1)
            between = answer[words[i].end():span[0]] if i < first else answer[span[1]:words[i].start()]
            d += CLAUSE_BOUNDARY_WORDS * len(re.findall(r"[,;:()]", between))
            nearest[term] = max(nearest.get(term, 0.0), weight / d)
        score = sum(nearest.values())
        text = answer[span[0]:span[1]]
        if kind == "NUMBER" and re.fullmatch(rf"{_YEAR}s?", text) and not re.search(r"\bhow long\b", question, re.I):
            score -= BARE_YEAR_PENALTY
        if agent and re.search(r"\bby\s+(?:the\s+)?$", answer[:span[0]]):
            score += AGENT_BY_BONUS
        if kind == "DATE" and re.search(r"\d", text) and not re.search(r"\bwhat day\b", question, re.I):
            score += DATED_SPAN_BONUS
        if kind == "DATE" and _DEADLINE.search(question) and re.match(r"(?:within|in|by|until)\b", text, re.I):
            score += DEADLINE_SPAN_BONUS
        return inside - score

    start, end = min(spans, key=lambda s: (cost(s), s[0]))
    while end > start and answer[end - 1] in ",;: ":
        end -= 1
    if end > start and answer[end - 1] == "." and not re.search(r"\b\w\.$|\b[A-Z][a-z]{0,3}\.$", answer[start:end]):
        end -= 1
    return (start, end) if end > start else None
