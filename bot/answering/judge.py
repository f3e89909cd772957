"""Step 4, judge: does the best sentence really answer the question, or should qabot decline?

The rule-based judge measures a few `Signals` (similarities, keyword coverage, names the index
never mentions) and returns a typed `Verdict`: callers branch on `verdict.answer` and
`verdict.kind`, never on the human-readable `verdict.reason`. `AnswerJudge` is the seam another
judge plugs into.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from embeddings.index import Index
from embeddings.keyword import NAME_PREFIX, question_terms
from embeddings.term_stats import TermStatistics

from ..settings import AnswerSettings
from . import irregular
from .answerability import AnswerabilityModel, Evidence, features, load_model
from .focus import find_focus, question_type
from .question import Question, key_terms
from .retrieval import Passage
from .sentences import ScoredSentence, SentenceVectors

# A name missing from the index still counts as present when a word of the index starts with
# its first NAME_PREFIX letters (other forms, typos at the end: "Saharan" / "Sahara") or is one
# letter off ("Krugmen" / "Krugman"). Set by hand with the abstention tests in 809b503; not one
# of the five numbers the abstention grid searched (config/default.toml, [answer]). NAME_PREFIX
# lives in embeddings/keyword.py (a Milvus-backed index precomputes these look-ups).
# Missing names this short or shorter (acronyms such as "SP", "NYC") lower confidence instead of
# vetoing an answer. Set by hand with NAME_PREFIX (809b503), never measured on its own.
SHORT_NAME = 3
# At most this many missing short names are penalised (`missing_name_penalty` each). Set by hand
# in 809b503; not one of the numbers the abstention grid searched, never varied.
MAX_PENALISED_SHORT_NAMES = 2
# "Every known keyword": a cover this close to 1 (float sums of idf weights) counts as complete.
# A tolerance, not a tuning number.
FULL_COVER = 0.999


@dataclass(frozen=True)
class Signals:
    """The evidence an answer is judged on (all from the question, the index and the best hits)."""

    passage: float  # best passage's cosine similarity to the query
    sentence: float  # best sentence's cosine similarity to the question
    keyword: float  # idf-weighted share of the question's keywords in the best sentence
    known: float  # idf-weighted share of the question's keywords that occur anywhere in the index
    missing_names: tuple[str, ...]  # names in the question the index never mentions
    cover: float = 0.0  # idf-weighted share of the question's *known* keywords in the best sentence
    typed: float = 0.0  # 1: the best sentence holds a span of the question's type; -1: it holds none; 0: untyped

    def as_dict(self) -> dict[str, float]:
        return {"passage": self.passage, "sentence": self.sentence, "keyword": self.keyword,
                "known": self.known, "missing_names": float(len(self.missing_names)),
                "short_missing": float(sum(1 for name in self.missing_names if len(name) <= SHORT_NAME)),
                "cover": self.cover, "typed": self.typed}


class VerdictKind(enum.Enum):
    """Why an answer is given or declined."""

    CONFIDENT = "confident"  # answer: confidence reaches min_sentence_score
    LEXICAL = "lexical"  # answer: every known keyword and a span of the asked type, despite low confidence
    NOTHING_RETRIEVED = "nothing_retrieved"  # decline: no candidate sentence at all
    UNKNOWN_NAME = "unknown_name"  # decline: the question names something the index never mentions
    WEAK_PASSAGE = "weak_passage"  # decline: even the best passage is far from the question
    LOW_CONFIDENCE = "low_confidence"  # decline: the best sentence is not a convincing answer
    # decline: a typed question, no entity of its type in the evidence (lead.py): the rules' veto;
    # for the learned judge, a feature, and the reason when its probability also declines
    NO_TYPED_ENTITY = "no_typed_entity"
    LIKELY = "likely"  # answer: the learned judge's probability reaches its threshold (answerability.py)
    UNLIKELY = "unlikely"  # decline: the learned judge's probability is below its threshold


ANSWERING = frozenset({VerdictKind.CONFIDENT, VerdictKind.LEXICAL, VerdictKind.LIKELY})


@dataclass(frozen=True)
class Verdict:
    """The judge's decision: answer or decline, of which kind, and the evidence."""

    kind: VerdictKind
    reason: str  # one human-readable line, for logs and traces only (never parsed)
    signals: Mapping[str, float] = field(default_factory=dict)

    @property
    def answer(self) -> bool:
        """True when the best sentence is given as the answer."""
        return self.kind in ANSWERING

    @property
    def nearest_is_relevant(self) -> bool:
        """Whether the nearest passage is worth showing when declining: not when the question is
        about something the index never mentions."""
        return self.kind is not VerdictKind.UNKNOWN_NAME


def confidence(s: Signals, cfg: AnswerSettings) -> float:
    """How sure the best sentence answers: its cosine to the question, raised by the share of the
    question's known keywords it holds, lowered by keywords and acronyms the index never saw."""
    short = sum(1 for name in s.missing_names if len(name) <= SHORT_NAME)
    return (s.sentence + cfg.keyword_bonus * s.cover - cfg.unknown_penalty * (1.0 - s.known)
            - cfg.missing_name_penalty * min(short, MAX_PENALISED_SHORT_NAMES))


def veto(s: Signals, cfg: AnswerSettings) -> Verdict | None:
    """The declines both judges make first: the question names something the index never
    mentions, or even the best passage is far from it (a question about other documents)."""
    evidence = s.as_dict()
    names = [name for name in s.missing_names if len(name) > SHORT_NAME]
    if names:
        return Verdict(VerdictKind.UNKNOWN_NAME, f"the index never mentions {', '.join(names)}", evidence)
    if s.passage < cfg.min_passage_score:
        return Verdict(VerdictKind.WEAK_PASSAGE,
                       f"best passage similarity {s.passage:.2f} < {cfg.min_passage_score}", evidence)
    return None


def lexical(s: Signals, cfg: AnswerSettings) -> bool:
    """Lexical evidence: the sentence holds every keyword of the question that the index knows,
    and a span of the asked type ("Which newspaper interviewed him?" -> "... with Izvestia"), and
    the question names nothing the index lacks (both judges answer it, `lexical_answers` on)."""
    return cfg.lexical_answers and s.cover >= FULL_COVER and s.typed > 0 and not s.missing_names


def decide(s: Signals, cfg: AnswerSettings) -> Verdict:
    """Answer or decline, from the signals of the best sentence (the rules in config/default.toml)."""
    evidence = s.as_dict()
    vetoed = veto(s, cfg)
    if vetoed is not None:
        return vetoed
    sure = confidence(s, cfg)
    if sure >= cfg.min_sentence_score:
        return Verdict(VerdictKind.CONFIDENT, f"confidence {sure:.2f} >= {cfg.min_sentence_score}", evidence)
    if lexical(s, cfg):
        return Verdict(VerdictKind.LEXICAL, f"every known keyword and a typed span (confidence {sure:.2f})",
                       evidence)
    return Verdict(VerdictKind.LOW_CONFIDENCE,
                   f"confidence {sure:.2f} < {cfg.min_sentence_score} (sentence {s.sentence:.2f}, "
                   f"keywords {s.cover:.2f}, known {s.known:.2f}, missing {', '.join(s.missing_names) or '-'})",
                   evidence)


class AnswerJudge(Protocol):
    """The judge step: a verdict on the best-ranked sentence (None when there is none). `untyped`
    is the typing step's reason when a typed question's best sentences hold no entity of its type
    (lead.py, `LeadChoice.untyped`); None otherwise."""

    def judge(self, question: Question, passages: Sequence[Passage], best: ScoredSentence | None,
              ranked: Sequence[ScoredSentence] = (), untyped: str | None = None) -> Verdict: ...


class NameLookup:
    """Does the index mention a name, in some form? Built once, on first need."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._vocab: tuple[list[str], set[str]] | None = None

    def _vocabulary(self) -> tuple[list[str], set[str]]:
        """The index's keyword vocabulary, sorted (for prefix look-ups), and every form of its
        words with one letter deleted (for one-typo look-ups)."""
        if self._vocab is None:
            words = self.index.keyword.vocabulary()
            deleted = {w[:i] + w[i + 1:] for w in words if len(w) >= NAME_PREFIX - 1 for i in range(len(w))}
            self._vocab = (words, deleted)
        return self._vocab

    def _lookups(self) -> tuple[Callable[[str], bool], Callable[[str], bool]]:
        """(has a word with this prefix, is some word less one letter): a Milvus-backed index's
        term table answers both from hashed files (embeddings/term_stats.py); otherwise the
        sorted vocabulary and the deletion set, built here."""
        keyword = self.index.keyword
        if isinstance(keyword, TermStatistics):
            return keyword.has_prefix, keyword.is_deletion
        words, deleted = self._vocabulary()

        def has_prefix(prefix: str) -> bool:
            at = bisect.bisect_left(words, prefix)
            return at < len(words) and words[at].startswith(prefix)

        return has_prefix, deleted.__contains__

    def unknown(self, term: str) -> bool:
        """A name the index never mentions, not even in another form: "Saharan" matches "Sahara"
        (same first five letters), "Krugmen" matches "Krugman" and "Hollwood" "Hollywood" (one
        letter off)."""
        frequency = self.index.keyword.document_frequency
        if frequency(term):
            return False
        if len(term) < NAME_PREFIX:
            return True
        has_prefix, is_deletion = self._lookups()
        if has_prefix(term[:NAME_PREFIX]):
            return False
        # One letter missing, wrong or extra: the term, or it less one letter, is a vocabulary word
        # less one letter, or it less one letter is a vocabulary word.
        variants = {term[:i] + term[i + 1:] for i in range(len(term))}
        return not is_deletion(term) and not any(is_deletion(v) for v in variants) \
            and not any(frequency(v) for v in variants)


class RuleJudge:
    """The judge of config/default.toml's [answer] rules, over measured `Signals`."""

    def __init__(self, index: Index, vectors: SentenceVectors, cfg: AnswerSettings) -> None:
        self.index = index
        self.vectors = vectors
        self.cfg = cfg
        self.names = NameLookup(index)

    def signals(self, question: Question, passages: Sequence[Passage], best: ScoredSentence | None) -> Signals:
        """Measure the evidence for `best` answering `question` (judged with a follow-up's subject)."""
        text = question.judged_text
        keyword = self.index.keyword
        names = tuple(dict.fromkeys(t for t in key_terms(question.query) if self.names.unknown(t)))
        terms = set(question_terms(text))
        # A term the index never saw gets the weight of a term seen once: rare, hence telling.
        weights = {t: irregular.idf(keyword, t, min_frequency=1) for t in terms}
        total = sum(weights.values())
        known_terms = {t: w for t, w in weights.items() if irregular.document_frequency(keyword, t)}
        known = sum(known_terms.values()) / total if total else 1.0
        cover = 0.0
        if best is not None and known_terms:
            present = self.vectors.tokens([best.text])[0]
            cover = sum(w for t, w in known_terms.items() if t in present) / sum(known_terms.values())
        kind = question_type(text)
        typed = 0.0 if kind is None else (1.0 if best is not None and find_focus(text, best.text) else -1.0)
        return Signals(
            cover=cover, typed=typed,
            passage=max((p.dense for p in passages), default=0.0),
            sentence=best.dense if best else 0.0,
            keyword=best.keyword if best else 0.0,
            known=known,
            missing_names=names)

    def judge(self, question: Question, passages: Sequence[Passage], best: ScoredSentence | None,
              ranked: Sequence[ScoredSentence] = (), untyped: str | None = None) -> Verdict:
        """The rules' verdict; a typed question whose evidence holds no entity of its type is
        declined whatever the rules say (the rules have no feature to weigh it with)."""
        s = self.signals(question, passages, best)
        if best is None:
            return Verdict(VerdictKind.NOTHING_RETRIEVED, "nothing retrieved", s.as_dict())
        verdict = decide(s, self.cfg)
        if verdict.answer and untyped is not None:
            return Verdict(VerdictKind.NO_TYPED_ENTITY, untyped, verdict.signals)
        return verdict


class LearnedJudge(RuleJudge):
    """The rules' vetoes first (a name the index never mentions, a far passage: questions about
    other documents), then the learned answerability model (answerability.py) instead of the
    hand-set confidence threshold; the rules' lexical evidence still answers (`lexical`) unless
    the typing step found no entity of a typed question's type. That finding is otherwise one of
    the model's features, not a veto: weighed with the rest it declined more unanswerable and
    out-of-index questions at the same answered share (docs/quality.md, "The typed decline as a
    feature")."""

    def __init__(self, index: Index, vectors: SentenceVectors, cfg: AnswerSettings,
                 model: AnswerabilityModel | None = None) -> None:
        super().__init__(index, vectors, cfg)
        self.model = model or load_model()

    def probability(self, question: Question, passages: Sequence[Passage], best: ScoredSentence,
                    ranked: Sequence[ScoredSentence], s: Signals, untyped: bool = False) -> float:
        """P(`best` answers `question`) under the learned model."""
        values = features(self.index, self.vectors, s.as_dict(),
                          Evidence(question, passages, ranked or [best], best, untyped))
        return self.model.probability(values)

    def judge(self, question: Question, passages: Sequence[Passage], best: ScoredSentence | None,
              ranked: Sequence[ScoredSentence] = (), untyped: str | None = None) -> Verdict:
        s = self.signals(question, passages, best)
        if best is None:
            return Verdict(VerdictKind.NOTHING_RETRIEVED, "nothing retrieved", s.as_dict())
        vetoed = veto(s, self.cfg)
        if vetoed is not None:
            return vetoed
        p = self.probability(question, passages, best, ranked, s, untyped is not None)
        evidence = {**s.as_dict(), "answerability": p}
        if p >= self.model.threshold:
            return Verdict(VerdictKind.LIKELY, f"answerability {p:.2f} >= {self.model.threshold:.2f}", evidence)
        if untyped is not None:
            return Verdict(VerdictKind.NO_TYPED_ENTITY, f"{untyped} (answerability {p:.2f})", evidence)
        if lexical(s, self.cfg):
            return Verdict(VerdictKind.LEXICAL, f"every known keyword and a typed span (answerability {p:.2f})",
                           evidence)
        return Verdict(VerdictKind.UNLIKELY, f"answerability {p:.2f} < {self.model.threshold:.2f}", evidence)


def make_judge(index: Index, vectors: SentenceVectors, cfg: AnswerSettings) -> AnswerJudge:
    """The judge `[answer] judge` names: "learned" (the default) or "rules"."""
    if cfg.judge == "rules":
        return RuleJudge(index, vectors, cfg)
    return LearnedJudge(index, vectors, cfg)
