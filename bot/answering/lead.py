"""The lead: the answer itself in a few words, an entity of the type the question asks for.

The entities were found at ingest (embeddings/entities.py) and stored with each chunk; here they
are only read. Among the evidence sentence's entities of an expected label (answer_type.py), those
the question already names are no answer ("When are the Geneva talks?" is not answered by
"Geneva"); of the rest, the one standing nearest the question's words wins, its label's learned
share breaking near-ties.

A typed question whose best sentences hold no such entity gets that verdict (`LeadChoice.untyped`)
for the judge to weigh: the rules judge declines it; the learned judge takes it as one of its
features ("How many nuclear warheads does Russia have?" is not answered by a sentence holding no
number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from embeddings.keyword import question_terms, stem, stems

from . import span_scorer
from .answer_type import AnswerType, asks_yes_or_no
from .sentences import ScoredSentence

# A candidate's score is its closeness to the question's keywords (per keyword, 1 / its distance
# in words; a clause boundary between them counts CLAUSE_WORDS more words) plus LABEL_WEIGHT x the
# learned share of its label. Both set by hand (CLAUSE_WORDS as in focus.py); LABEL_WEIGHT was
# not varied in the final grid of bot/evaluation/tune_lead.py.
CLAUSE_WORDS = 2
LABEL_WEIGHT = 0.5
# A typed question takes the best-ranked sentence that holds an entity of its type, among the
# first TYPED_WINDOW sentences scoring at least TYPED_SCORE_RATIO of the best one's score; none
# there: the judge is told (`LeadChoice.untyped`). Chosen on ../shared/train (answerable answered vs SQuAD 2.0
# unanswerable declined), never on ../shared/eval.
TYPED_WINDOW = 3
TYPED_SCORE_RATIO = 0.8

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Lead:
    """The lead found in one sentence: its offsets in the sentence text and its label."""

    start: int
    end: int
    label: str


# Entities that are amounts or times: the question names one only when it says all its words
# ("1973" in "What happened after 1973?", not "10" in "When are the Jan. 10 talks?" for "Jan. 11").
_AMOUNTS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT"})


def _named_by_question(text: str, label: str, question_stems: set[str], terms: set[str]) -> bool:
    """The question already says this entity: all its words ("Geneva" in "When are the Geneva
    talks?"), or, for a name, any of its keywords ("Sergey Ryabkov" in "Who interviewed Ryabkov?")."""
    words = stems(text)
    if not words:
        return False
    return words <= question_stems or label not in _AMOUNTS and bool(words & terms)


def find_lead(question: str, kind: AnswerType, sentence: str,
              entities: Sequence[tuple[int, int, str]], context: str = "") -> Lead | None:
    """The entity of `sentence` (its `entities`, offsets in it) that answers `question`, or None.
    `context` (the earlier question a follow-up leans on) names more of what is no answer, and its
    words place the lead only when the question's own are not in the sentence."""
    labels = kind.labels
    question_stems = stems(question) | stems(context)
    terms = set(question_terms(question)) | set(question_terms(context))
    candidates = [(a, b, label) for a, b, label in entities
                  if label in labels and not _named_by_question(sentence[a:b], label, question_stems, terms)]
    if not candidates:
        return None
    words = list(_WORD.finditer(sentence))
    own = set(question_terms(question))
    anchors = [(i, stem(w.group())) for i, w in enumerate(words) if stem(w.group()) in own] or \
        [(i, stem(w.group())) for i, w in enumerate(words) if stem(w.group()) in terms]

    def position(offset: int) -> int:
        return next((i for i, w in enumerate(words) if w.end() > offset), len(words) - 1)

    def score(candidate: tuple[int, int, str]) -> float:
        a, b, label = candidate
        first, last = position(a), position(max(a, b - 1))
        nearest: dict[str, float] = {}
        for i, term in anchors:
            if first <= i <= last:
                continue
            d = first - i if i < first else i - last
            between = sentence[words[i].end():a] if i < first else sentence[b:words[i].start()]
            d += CLAUSE_WORDS * len(re.findall(r"[,;:()]", between))
            nearest[term] = max(nearest.get(term, 0.0), 1.0 / d)
        return sum(nearest.values()) + LABEL_WEIGHT * kind.shares.get(label, 0.0)

    a, b, label = max(candidates, key=lambda c: (score(c), -c[0]))
    return Lead(a, b, label)


def sentence_entities(sentence: ScoredSentence) -> tuple[tuple[int, int, str], ...] | None:
    """The stored entities of a scored sentence (None: its index stores none)."""
    return sentence.passage.hit.chunk.sentence_entities(sentence.index)


def typed_best(question: str, kind: AnswerType, ranked: Sequence[ScoredSentence], context: str = ""
               ) -> tuple[ScoredSentence, Lead] | None:
    """The best-ranked sentence holding an entity that answers a typed question, with it: among
    the first TYPED_WINDOW sentences scoring at least TYPED_SCORE_RATIO of the best; or None."""
    if not ranked:
        return None
    floor = TYPED_SCORE_RATIO * ranked[0].score
    for sentence in ranked[:TYPED_WINDOW]:
        if sentence.score < floor:
            break
        lead = find_lead(question, kind, sentence.text, sentence_entities(sentence) or (), context)
        if lead is not None:
            return sentence, lead
    return None


# The label of a lead that is no stored entity (a span the learned scorer chose).
SPAN = "SPAN"


@dataclass(frozen=True)
class LeadChoice:
    """What the typing step settled for one question: the sentence the answer quotes, the lead
    in it (if sure enough), and, for a typed question whose evidence holds no entity of its type,
    why (the judge weighs it)."""

    best: ScoredSentence | None
    lead: Lead | None = None
    untyped: str | None = None


def quoted_sentence(question: str, kind: AnswerType | None, ranked: Sequence[ScoredSentence],
                    context: str = "") -> tuple[ScoredSentence | None, str | None]:
    """The sentence the answer quotes, and why a typed question's evidence fails it (else None): a
    typed question (its answer is an entity of a known label often enough) takes the best-ranked
    sentence holding such an entity (typed_best), or the best one with that reason; any other,
    the best one."""
    best = ranked[0] if ranked else None
    if best is None or kind is None or not kind.typed:
        return best, None
    found = typed_best(question, kind, ranked, context)
    if found is None:
        return best, f"a {'/'.join(sorted(kind.labels))} is asked for and the evidence holds none"
    return found[0], None


def choose_lead(question: str, kind: AnswerType | None, ranked: Sequence[ScoredSentence],
                context: str = "") -> LeadChoice:
    """The sentence to quote (quoted_sentence) and its lead: the learned span scorer
    (span_scorer.py) picks the answer span of that sentence, which leads when its probability
    reaches the learned threshold."""
    best, untyped = quoted_sentence(question, kind, ranked, context)
    if best is None or untyped is not None or asks_yes_or_no(question):
        return LeadChoice(best, untyped=untyped)
    scored = span_scorer.best_span(question, kind, best.text, sentence_entities(best) or (), best.score, context)
    if scored is None:
        return LeadChoice(best)
    span, probability = scored
    if probability < span_scorer.span_model().threshold:
        return LeadChoice(best)
    return LeadChoice(best, Lead(span.start, span.end, span.label or SPAN))
