"""Step 5, compose: quote the best sentence (and the ones that complete it) with citations, highlight
the words that answer the question's type, and hand back an `Answer` (or the abstention)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from embeddings.index import Index

from .answer import ABSTAIN_TEXT, Answer, Citation
from .focus import find_focus
from .judge import Verdict
from .lead import Lead
from .question import Question
from .retrieval import Passage
from .sentences import ScoredSentence

# A sentence that opens like this leans on the one before it ("He said ...", "But ...").
_CONTINUES = re.compile(
    r"^(?:\"|'|“|he|she|it|they|this|that|these|those|but|however|although|though|yet|so|also|"
    r"and|or|which|as a result|in addition|still)\b", re.IGNORECASE)
# ... and one that quotes "he said" needs the one naming who speaks, when no lead was found in it
# (the answer may be there: "... within a few weeks." / "..., he said, without a deadline").
_PRONOUN = re.compile(r"\b(?:he|she|they)\s+(?:said|says|added|stated|told|remarked|noted)\b", re.IGNORECASE)
# Whether such a quote attribution brings the sentence before along. On ../shared/train (first
# 2,500 questions, bot/evaluation/tune_lead.py, 25 evidence words), any pronoun anywhere cost 2.1
# words shown for +0.001 "contains a gold answer"; the attribution alone is kept for quotes.
PRONOUN_BRINGS_PREVIOUS = True


@dataclass(frozen=True)
class QuotedSentence:
    """One sentence of the answer: the passage it is quoted from and its number in that chunk."""

    passage: Passage
    index: int
    text: str

    @property
    def key(self) -> tuple[str, int]:
        """Where the sentence starts in its document (chunks overlap: the same sentence may sit in
        two passages)."""
        chunk = self.passage.hit.chunk
        return chunk.doc_id, chunk.start + chunk.sentences[self.index][0]


def _quoted(s: ScoredSentence) -> QuotedSentence:
    return QuotedSentence(s.passage, s.index, s.text)


def completing_sentences(best: ScoredSentence, ranked: Sequence[ScoredSentence]) -> list[QuotedSentence]:
    """The sentence before the best one when the best one leans on it ("But ...", "he said": the
    reader needs the sentence naming who speaks), within its paragraph (across a
    paragraph break starts another thought). Nothing else: the evidence is the sentence that
    holds the answer (on ../shared/train, neighbours and runners-up doubled the words shown for
    1-2 points of "contains a gold answer"; bot/evaluation/tune_lead.py)."""
    chunk = best.passage.hit.chunk
    i = best.index
    leans = _CONTINUES.match(best.text) or PRONOUN_BRINGS_PREVIOUS and _PRONOUN.search(best.text)
    if i == 0 or not leans:
        return []
    if "\n" in chunk.text[chunk.sentences[i - 1][1]:chunk.sentences[i][0]]:
        return []
    return [QuotedSentence(best.passage, i - 1, chunk.sentence_texts()[i - 1])]


def choose_sentences(best: ScoredSentence, ranked: Sequence[ScoredSentence],
                     max_sentences: int, *, has_lead: bool = False) -> list[QuotedSentence]:
    """The best sentence, plus (up to `max_sentences` in all, in reading order) the one before it
    when it leans on it, unless a lead was found in the best sentence: the answer is then whole."""
    chosen = [_quoted(best)]
    if not has_lead:
        chosen = (completing_sentences(best, ranked)[:max(0, max_sentences - 1)]) + chosen
    return chosen


def citation(index: Index, passage: Passage, quote: str) -> Citation:
    """A passage as a citation, with the sentences quoted from it."""
    chunk = passage.hit.chunk
    info = index.document(chunk.doc_id)
    # The page (of a PDF) where the quote starts, or where the passage does.
    at = chunk.text.find(quote[:80]) if quote else -1
    page = info.page_at(chunk.start + max(at, 0))
    return Citation(info.title, info.source, info.url, chunk.chunk_id, chunk.text, passage.dense, quote,
                    page=page)


def compose_answer(index: Index, question: Question, best: ScoredSentence, chosen: Sequence[QuotedSentence],
                   passages: Sequence[Passage], top_k: int, *, lead: Lead | None = None) -> Answer:
    """The quoted answer: the chosen sentences, passage by passage; the quoted passages cited
    first; highlighted: the `lead` (an entity of the question's type in the best sentence, shown
    first as the answer), else the rules' span of the question's type (focus.py, for an index
    that stores no entities), which is bolded but does not lead."""
    quote_by_row: dict[int, list[str]] = {}
    for sentence in chosen:
        quote_by_row.setdefault(sentence.passage.row, []).append(sentence.text)
    text = " ".join(" ".join(parts) for parts in quote_by_row.values())
    cited = sorted(passages, key=lambda p: p.row not in quote_by_row)[:top_k]
    citations = tuple(citation(index, p, " ".join(quote_by_row.get(p.row, []))) for p in cited)
    rows = [p.row for p in cited]
    spans: list[tuple[int, int, int]] = []
    best_at = 0
    at = 0
    for row in quote_by_row:  # the same walk as the join above
        for sentence in (s for s in chosen if s.passage.row == row):
            if sentence.passage is best.passage and sentence.index == best.index:
                best_at = at
            spans.append((at, at + len(sentence.text), rows.index(row) if row in rows else 0))
            at += len(sentence.text) + 1
    if lead is not None:
        return Answer(question.text, text, False, citations, (best_at + lead.start, best_at + lead.end),
                      sentence_spans=tuple(spans), typed=True)
    rules = find_focus(question.text, text, best_text=best.text,
                       context=question.query if question.follow_up else None)
    return Answer(question.text, text, False, citations, rules, sentence_spans=tuple(spans))


def compose_abstention(index: Index, question: Question, verdict: Verdict, passages: Sequence[Passage],
                       show_nearest: bool) -> Answer:
    """The abstention, with the nearest passage when configured and relevant."""
    citations: tuple[Citation, ...] = ()
    if show_nearest and passages and verdict.nearest_is_relevant:
        citations = (citation(index, passages[0], ""),)
    return Answer(question.text, ABSTAIN_TEXT, True, citations, None)
