"""The one `Answerer` behind every front end: question (+ conversation) in, quoted `Answer` out.

It only runs the steps, each in its own module:
question (resolve a follow-up) -> retrieve (passages) -> read (score their sentences) ->
type (the entity a typed question asks for, from the entities stored at ingest: lead.py) ->
judge (answer or decline, told what the typing step found) -> compose (quote, cite, lead; then,
with ``[llm] enabled``, an LLM's answer composed from the same passages and checked against them,
llm.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from embeddings.encoders import Encoder, get_encoder
from embeddings.index import Index

from ..settings import Settings, load_settings
from .answer import EMPTY_QUESTION_TEXT, Answer
from . import irregular
from .answer_type import answer_type
from .compose import choose_sentences, compose_abstention, compose_answer
from .fusion import FusionStrategy, InStoreFusion, fusion_strategy
from .judge import AnswerJudge, Verdict, make_judge
from .lead import LeadChoice, choose_lead
from .span_scorer import span_model
from .question import (Question, Turn, has_words, means_a_person, prepare_question, question_chars,
                       stands_alone)
from .retrieval import Passage, retrieve
from .sentences import (ScoredSentence, SentenceScorer, SentenceVectors, WeightedSentenceScorer,
                        sentence_embedding_text)

if TYPE_CHECKING:
    from .llm import LlmComposer

log = logging.getLogger(__name__)

# A follow-up with at least this many keywords of its own, and as many as the words it leaves to
# the conversation ("it", "he": question.py, `stands_alone`), is first answered alone (see `ask`): "and when are the
# talks?" names its subject and is read as itself (with the earlier question's words its best
# sentence was the "talk about months" one); "and when are they?" has none. Set by
# hand with the follow-ups of tests/test_answerer.py, test_quality.py and test_slack_http.py: the
# SQuAD evaluation has no conversations to measure it on.
STANDALONE_TERMS = 1
# How many earlier turns `_earlier_turn` remembers (the oldest forgotten first): a few for each
# conversation going on at once; a turn forgotten is found again, the same (a memory size, not
# answer tuning).
EARLIER_TURNS = 512
# `warm()`: sentences per encoder batch (set by hand in 809b503), and batches handed to the cache
# at a time, so a stop request is seen between steps (760fd1f). Speed and shutdown-latency
# numbers, not answer tuning (answers are the same warm or cold); never measured against others.
WARM_BATCH = 64
WARM_BATCHES_PER_STEP = 8


def load_index(settings: Settings, index_dir: Path | None = None) -> Index:
    """The index `settings` name (or the one at `index_dir`), on FAISS or on Milvus ([store])."""
    milvus = settings.store.store_backend == "milvus"
    return Index.load(index_dir or settings.paths.index, model_name=settings.model.model_name,
                      store_uri=settings.store.store_uri if milvus else None)


_said_no_stored_sentences = threading.Event()


def _say_once_no_stored_sentences() -> None:
    """Tell, once a process, that the index keeps no sentence vectors, so first answers embed
    the sentences they read; a rebuilt index stores them (embeddings/sentence_store.py)."""
    if not _said_no_stored_sentences.is_set():
        _said_no_stored_sentences.set()
        log.warning("this index stores no sentence vectors (an older format), so first answers embed "
                    "sentences as they go; re-ingesting with `qabot ingest --rebuild PATH...` "
                    "(chunk_vectors = \"sentences\") makes them faster")


@dataclass
class AnswerTrace:
    """What an answer was made from, for evaluation and debugging (`Answerer.ask(trace=...)`).

    `depth` asks for more ranked passages than the answer uses (the answer still uses the first
    `top_k`, exactly as without a trace).
    """

    depth: int = 0
    query: str = ""
    passages: list[Passage] = field(default_factory=list)
    sentences: list[ScoredSentence] = field(default_factory=list)
    best: ScoredSentence | None = None
    signals: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why it declined ([] when it answered)
    verdict: Verdict | None = None


class Answerer:
    """Retrieves passages, reads their sentences, judges the best one, and quotes it or declines.

    Thread-safe: the index is read-only once loaded and the encoder and caches guard themselves.
    The read and judge steps are replaceable (`scorer`, `judge`). An index that stores no entities
    (saved before they were) still answers, without leads; it says so once, in the log.
    """

    def __init__(self, index: Index, encoder: Encoder, settings: Settings,
                 sentence_vectors: SentenceVectors | None = None, *,
                 scorer: SentenceScorer | None = None, judge: AnswerJudge | None = None,
                 composer: LlmComposer | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self._sentence_vectors = sentence_vectors or SentenceVectors(lambda texts: encoder.encode(texts))
        r = settings.retrieval
        self.fusion: FusionStrategy = fusion_strategy(r.mode, r.fusion, dense_weight=r.dense_weight,
                                                      rrf_k=r.rrf_k)
        if isinstance(self.fusion, InStoreFusion):
            index.store_hybrid_search()  # refused now, in one line, not on the first question
        if index.sentences is None:
            _say_once_no_stored_sentences()
        self.scorer: SentenceScorer = scorer or WeightedSentenceScorer(index, self._sentence_vectors,
                                                                       settings.answer)
        self.judge: AnswerJudge = judge or make_judge(index, self._sentence_vectors, settings.answer)
        # Composed answers ([llm] enabled): the LLM writes the answer from what the steps found.
        if composer is None and settings.llm.enabled:
            from .llm import LlmComposer  # only with [llm] enabled: `ask` imports no LLM code otherwise

            composer = LlmComposer(index, settings.llm)
        self.composer = composer
        # `_earlier_turn`'s memory: (question, earlier questions, collections) -> how it was answered.
        self._turns: dict[tuple[str, tuple[str, ...], tuple[str, ...] | None], Turn] = {}
        self._turns_lock = threading.Lock()
        # Every answer reads these tables (irregular word forms, learned answer types): read now,
        # not on the first question.
        irregular.word_forms("")
        answer_type("")
        self.typed_answers = index.entities is not None
        if self.typed_answers:
            span_model()  # the lead's learned weights
        else:
            log.warning("this index stores no named entities: answers come without a lead and typed "
                        "questions are not checked; re-ingest (qabot ingest --rebuild) to enable them")

    @classmethod
    def from_settings(cls, settings: Settings | None = None, index_dir: Path | None = None) -> "Answerer":
        settings = settings or load_settings()
        encoder = get_encoder(settings.model.query_backend, settings.model.max_seq_length)
        return cls(load_index(settings, index_dir), encoder, settings)

    def warm(self, batch_size: int = WARM_BATCH, stop: "threading.Event | None" = None) -> int:
        """Embed every sentence of the index now (sorted by length, in big batches) instead of on
        first use, and tokenize them; returns how many distinct sentences there are. Optional:
        answers are the same. Sentences whose vectors the index stores are only tokenized.
        Setting `stop` ends it between batches, so a server can shut down promptly. The chunks
        are streamed (a Milvus-backed index fetches them a batch at a time), never all held."""
        step = batch_size * WARM_BATCHES_PER_STEP
        seen: set[int] = set()
        texts: list[str] = []
        sentences: list[str] = []
        done = 0
        for chunk in self.index.chunks:
            title = self.index.document(chunk.doc_id).title
            for sentence in chunk.sentence_texts():
                texts.append(sentence_embedding_text(title, sentence))
                sentences.append(sentence)
            while len(texts) >= step:
                if stop is not None and stop.is_set():
                    return done
                done += self._warm_step(texts[:step], sentences[:step], batch_size, seen)
                del texts[:step], sentences[:step]
        if texts:
            if stop is not None and stop.is_set():
                return done
            self._warm_step(texts, sentences, batch_size, seen)
        if self.composer is not None:
            self.composer.client.warm()  # the openai client's imports (~0.6 s), likewise
        return len(seen)

    def _warm_step(self, texts: list[str], sentences: list[str], batch_size: int, seen: set[int]) -> int:
        """Embed (unless stored with the index) and tokenize one step of `warm`; returns how many
        texts it covered."""
        stored = self.index.sentences
        missing = texts if stored is None else [t for t, f in zip(texts, stored.lookup(texts)[0]) if not f]
        if missing:
            self._sentence_vectors.get(missing, batch_size=batch_size)
        self._sentence_vectors.tokens(sentences)
        seen.update(hash(t) for t in texts)
        return len(texts)

    def ask(self, question: str, history: Sequence[str] = (), *, trace: AnswerTrace | None = None,
            on_text: Callable[[str], None] | None = None, collections: Sequence[str] | None = None) -> Answer:
        """Answer `question` (a follow-up leans on `history`, oldest first), or decline.

        A question that reads like a follow-up but says what it asks about ("Which newspaper
        interviewed him?": `stands_alone`) is first answered as it stands, exactly as
        `qabot ask` answers it without a conversation; only if that declines is it searched again
        with the subject of the conversation (question.py): first, if it means a person ("What
        did he tell Bloomberg?"), with whom the recent turns named or were answered with, then
        with the whole turn it leans on. So chat and ask give the same answer whenever such a
        question is answerable alone, and the conversation fills in what a bare follow-up leaves
        out ("and when are they?", "When?"). The conversation is its questions; what they were
        answered with is found again (`_earlier_turn`), so Slack threads and `qabot chat` agree.

        `trace`, if given, is filled with what the answer was made from; the answer is the same.
        `on_text` receives a composed answer's text piece by piece as the LLM streams it (an
        extractive answer arrives whole, in the returned `Answer`, and never calls it).
        `collections` limits every passage it reads to documents of those collections (None:
        all): a Slack channel's, or `--collection` (embeddings/collections.py).
        """
        return self._ask(question, history, trace=trace, on_text=on_text, collections=collections)

    def _ask(self, question: str, history: Sequence[str] = (), *, trace: AnswerTrace | None = None,
             on_text: Callable[[str], None] | None = None, collections: Sequence[str] | None = None,
             compose: bool = True) -> Answer:
        """`ask`; with `compose` False, the extractive answer alone (no LLM), as `_earlier_turn` needs."""
        started = time.perf_counter()
        cfg = self.settings.answer
        searched = tuple(sorted(set(collections))) if collections is not None else None

        def turn_of(earlier: str, before: Sequence[str]) -> Turn:
            return self._earlier_turn(earlier, before, searched)

        q = prepare_question(question, history, cfg.max_question_chars, turn_of)
        if not has_words(q.text):
            return Answer(q.text, EMPTY_QUESTION_TEXT, True, collections=searched or ())
        # The readings of the question, narrowest first; the first one answered is the answer (the
        # last is answered or declined as it stands). A follow-up that says what it asks is read
        # alone first; if it means a person ("What did he tell Bloomberg?"), then with whom the
        # recent turns named or answered ("Ryabkov"), not what they asked about them ("head the
        # Russian delegation"); last with the whole turn it leans on (question.py). One that says
        # nothing alone ("and when are they?", "When?") is read with that turn only.
        readings = [q]
        if q.follow_up and stands_alone(q.text, STANDALONE_TERMS):
            readings = [Question(q.text, q.text)]
            if means_a_person(q.text):
                readings.append(prepare_question(question, history, cfg.max_question_chars, turn_of,
                                                 referents=True))
            readings = list(dict.fromkeys([*readings, q]))
        timings: dict[str, float] = {}
        t = time.perf_counter()
        texts = list(dict.fromkeys([q.text, *(r.query for r in readings)]))
        vectors = dict(zip(texts, self.encoder.encode(texts)))
        timings["embed_ms"] = (time.perf_counter() - t) * 1000
        answer = None
        for reading in readings:
            answer = self._answer(reading, vectors[q.text], vectors[reading.query], timings, trace, on_text,
                                  searched, compose)
            if reading.follow_up:
                answer = replace(answer, query=reading.query)
            if not answer.abstained:
                break
        assert answer is not None
        if question_chars(question) > cfg.max_question_chars:
            cut = (f"The question was cut to its first {cfg.max_question_chars} characters "
                   f"(of {question_chars(question)}).")
            answer = replace(answer, notice=f"{cut} {answer.notice}" if answer.notice else cut)
        timings.update(answer.timings_ms)
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return replace(answer, timings_ms=timings, collections=searched or (), question_vector=vectors[q.text])

    def _answer(self, q: Question, question_vector: np.ndarray, query_vector: np.ndarray,
                timings: dict[str, float], trace: AnswerTrace | None,
                on_text: Callable[[str], None] | None, collections: Sequence[str] | None = None,
                compose: bool = True) -> Answer:
        """Retrieve, read, type, judge and compose for one search text (`q.query`), from the
        passages of `collections` alone (None: all); with `compose` False, no LLM composes it."""
        cfg, r = self.settings.answer, self.settings.retrieval
        t = time.perf_counter()
        depth = max(r.top_k, trace.depth if trace is not None else 0)
        ranked_passages = retrieve(self.index, q.query, query_vector, top_k=depth,
                                   candidates=r.candidates, fusion=self.fusion, collections=collections)
        passages = ranked_passages[: r.top_k]
        timings["retrieve_ms"] = timings.get("retrieve_ms", 0.0) + (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        # A follow-up ("and when are they?") says little alone: its sentences are read against
        # the question together with the subject it leans on.
        ranked = self.scorer.score(q, query_vector if q.follow_up else question_vector, passages)
        choice = self._typed(q, ranked)
        best = choice.best
        verdict = self.judge.judge(q, passages, best, ranked, choice.untyped)
        timings["select_ms"] = timings.get("select_ms", 0.0) + (time.perf_counter() - t) * 1000
        if trace is not None:
            trace.query, trace.passages, trace.sentences, trace.best = q.query, ranked_passages, ranked, best
            trace.signals, trace.verdict = dict(verdict.signals), verdict
            trace.reasons = [] if verdict.answer else [verdict.reason]

        if not verdict.answer or best is None:
            log.debug("abstained (%s)", verdict.kind.value)
            return compose_abstention(self.index, q, verdict, passages, cfg.show_nearest_on_abstain)
        chosen = choose_sentences(best, ranked, cfg.max_sentences, has_lead=choice.lead is not None)
        answer = compose_answer(self.index, q, best, chosen, passages, r.top_k, lead=choice.lead)
        if self.composer is not None and compose:
            answer = self.composer.compose(q, answer, passages, chosen, on_text)
        return answer

    def _earlier_turn(self, question: str, history: Sequence[str], collections: tuple[str, ...] | None
                      ) -> Turn:
        """How an earlier `question` of the conversation (asked after `history`) was answered:
        the text it was searched with and its lead ("Ryabkov" for "Who will head the Russian
        delegation?"), for the follow-ups that lean on it (question.py). A conversation holds only
        questions (a Slack thread's memory, `qabot chat`'s history), so the answer is found again,
        extractively, from the same index and collections; remembered for the next follow-ups."""
        key = (question, tuple(history), collections)
        with self._turns_lock:
            if key in self._turns:
                return self._turns[key]
        answer = self._ask(question, history, collections=collections, compose=False)
        turn = Turn(answer.query or answer.question, answer.lead)
        with self._turns_lock:
            self._turns[key] = turn
            while len(self._turns) > EARLIER_TURNS:
                self._turns.pop(next(iter(self._turns)))
        return turn

    def _typed(self, q: Question, ranked: Sequence[ScoredSentence]) -> LeadChoice:
        """The sentence to quote, its lead and why a typed question's evidence fails it (lead.py). The
        type is the question's own ("and when are they?": a DATE); the lead stands near the
        words of the question with the subject a follow-up leans on."""
        if not self.typed_answers or not ranked:
            return LeadChoice(ranked[0] if ranked else None)
        return choose_lead(q.text, answer_type(q.text), ranked, q.query if q.follow_up else "")

    def ask_streaming(self, question: str, history: Sequence[str], on_text: Callable[[str], None], *,
                      collections: Sequence[str] | None = None) -> Answer:
        """`ask`, streaming a composed answer's text to `on_text` (`slack.streaming.StreamsAnswers`)."""
        return self.ask(question, history, on_text=on_text, collections=collections)
