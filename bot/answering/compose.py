"""Step 5, compose: quote the best sentence (and the ones that complete it) with citations, highlight
the words that answer the question's type, and hand back an `Answer` (or the abstention)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from embeddings.index import Index

from .answer import ABSTAIN_TEXT, Answer, Citation, ReaderFigures
from .focus import find_focus
from .judge import Verdict
from .question import Question
from .retrieval import Passage
from .sentences import ScoredSentence

if TYPE_CHECKING:
    from bot.reader.runtime import Reading

# A sentence that opens like this leans on the one before it.
_CONTINUES = re.compile(
    r"^(?:\"|'|he|she|it|they|this|that|these|those|but|however|although|though|yet|so|also|"
    r"and|or|which|as a result|in addition|still)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:he|she|they|him|his|her|their|them)\b", re.IGNORECASE)
# A sentence elsewhere joins the answer when it is among the next RUNNER_UPS best-scored sentences,
# holds at least the best one's keyword share and scores at least ELSEWHERE_SCORE_RATIO of its
# score: the text answers in two places. Both set by hand in the first version (6b88aee) and never
# measured; docs/quality.md's answer length / accuracy figures were measured with them.
RUNNER_UPS = 3
ELSEWHERE_SCORE_RATIO = 0.7


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
    """Sentences that complete or match the best one, in order of preference:

    - the one before, when the best one leans on it (opens with "But"/a quote, or says "he"/"they",
      so the reader needs the sentence naming who speaks);
    - the one after, when it continues the best one;
    - sentences elsewhere that hold as many of the question's keywords and score nearly as well:
      the text answers in two places, and the user should see both.
    A neighbour counts only within the best sentence's paragraph: across a paragraph break starts
    another thought.
    """
    chunk = best.passage.hit.chunk
    texts = chunk.sentence_texts()

    def same_paragraph(first: int, second: int) -> bool:
        return "\n" not in chunk.text[chunk.sentences[first][1]:chunk.sentences[second][0]]

    out: list[QuotedSentence] = []
    i = best.index
    if i > 0 and same_paragraph(i - 1, i) and (_CONTINUES.match(best.text) or _PRONOUN.search(best.text)):
        out.append(QuotedSentence(best.passage, i - 1, texts[i - 1]))
    if i + 1 < len(texts) and same_paragraph(i, i + 1) and _CONTINUES.match(texts[i + 1]):
        out.append(QuotedSentence(best.passage, i + 1, texts[i + 1]))
    runners_up = [s for s in ranked if s is not best][:RUNNER_UPS]
    out += [_quoted(s) for s in runners_up
            if s.keyword >= best.keyword > 0 and s.score >= ELSEWHERE_SCORE_RATIO * best.score]
    return out


def choose_sentences(best: ScoredSentence, ranked: Sequence[ScoredSentence],
                     max_sentences: int) -> list[QuotedSentence]:
    """The best sentence plus up to `max_sentences - 1` that complete it (see
    `completing_sentences`, most preferred first), grouped by passage (the best one's first) and
    in reading order within a passage."""
    chosen = [_quoted(best)]
    seen = {chosen[0].key}
    for extra in completing_sentences(best, ranked):
        if len(chosen) >= max_sentences:
            break
        if extra.key not in seen:
            seen.add(extra.key)
            chosen.append(extra)
    rows = list(dict.fromkeys(s.passage.row for s in chosen))
    return sorted(chosen, key=lambda s: (rows.index(s.passage.row), s.index))


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
                   passages: Sequence[Passage], top_k: int, *, reading: "Reading | None" = None,
                   span_threshold: float = 1.0) -> Answer:
    """The quoted answer: the chosen sentences, passage by passage; the quoted passages cited
    first; the answer span highlighted: the reader's span when the reader read the best sentence
    (shown first when its probability reaches `span_threshold`), else the span of the question's
    type (focus.py)."""
    quote_by_row: dict[int, list[str]] = {}
    for sentence in chosen:
        quote_by_row.setdefault(sentence.passage.row, []).append(sentence.text)
    text = " ".join(" ".join(parts) for parts in quote_by_row.values())
    cited = sorted(passages, key=lambda p: p.row not in quote_by_row)[:top_k]
    citations = tuple(citation(index, p, " ".join(quote_by_row.get(p.row, []))) for p in cited)
    rows = [p.row for p in cited]
    spans: list[tuple[int, int, int]] = []
    at = 0
    for row, parts in quote_by_row.items():  # the same walk as the join above
        for part in parts:
            spans.append((at, at + len(part), rows.index(row) if row in rows else 0))
            at += len(part) + 1
    rules = find_focus(question.text, text, best_text=best.text,
                       context=question.query if question.follow_up else None)
    if reading is None:
        return Answer(question.text, text, False, citations, rules, sentence_spans=tuple(spans))
    focus = reader_focus(text, best, chosen, reading)
    confident = focus is not None and reading.span_score >= span_threshold
    figures = ReaderFigures(reading.score, reading.span_score, confident)
    # An unsure reader span gives way to the rules' span of the question's type, when they find
    # one: on the held-out TRAIN articles those spans matched the gold answer more often (exact
    # match 0.400 against 0.365, 170 questions; `python -m bot.evaluation.calibrate`).
    return Answer(question.text, text, False, citations, focus if confident or rules is None else rules,
                  reader=figures, sentence_spans=tuple(spans))


def reader_focus(text: str, best: ScoredSentence, chosen: Sequence[QuotedSentence],
                 reading: "Reading") -> tuple[int, int] | None:
    """The reader's span (offsets in the best sentence) as offsets in the composed `text`."""
    if reading.span is None:
        return None
    start = 0
    rows = list(dict.fromkeys(s.passage.row for s in chosen))
    for row in rows:  # the same walk as the join in `compose_answer`
        for sentence in (s for s in chosen if s.passage.row == row):
            if sentence.passage is best.passage and sentence.index == best.index:
                a, b = reading.span
                # Trim the edges: a span never starts or ends with a space or a separator.
                while a < b and best.text[a] in " ,;:":
                    a += 1
                while b > a and best.text[b - 1] in " ,;:":
                    b -= 1
                return (start + a, start + b) if b > a else None
            start += len(sentence.text) + 1
    return None


def compose_abstention(index: Index, question: Question, verdict: Verdict, passages: Sequence[Passage],
                       show_nearest: bool) -> Answer:
    """The abstention, with the nearest passage when configured and relevant."""
    citations: tuple[Citation, ...] = ()
    if show_nearest and passages and verdict.nearest_is_relevant:
        citations = (citation(index, passages[0], ""),)
    return Answer(question.text, ABSTAIN_TEXT, True, citations, None)
