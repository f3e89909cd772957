"""What kind of entity a question asks for, from a small table learned on SQuAD (no model).

"When ...?" wants a DATE, "How many ...?" a CARDINAL, "Which newspaper ...?" an ORG. The question
is reduced to keys, most specific first ("which newspaper", "which"), and the first key the table
knows gives the share of gold answers of each entity type (and of answers that are no entity at
all, NONE) among the training questions with that key. The table (answer_types.json) is built by
`python -m bot.evaluation.learn_types` from ../shared/train: the gold answers' entity types under
en_core_web_sm, counted per key. It is derived from SQuAD (CC BY-SA 4.0; Rajpurkar et al., 2016,
2018; the passages are Wikipedia text).

Plain string work and one JSON file: the request path never imports spaCy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from embeddings.keyword import stem

TABLE_FILE = Path(__file__).with_name("answer_types.json")
WH_WORDS = ("what", "which", "who", "whom", "whose", "when", "where", "how", "why")
# Words after "what"/"which" that are no head noun: the question goes on with a verb.
AUXILIARIES = frozenset({"is", "was", "are", "were", "did", "does", "do", "has", "have", "had", "can",
                         "could", "will", "would", "should", "may", "might", "must", "'s"})
ARTICLES = frozenset({"the", "a", "an"})
NONE = "NONE"  # a gold answer that is no entity
# An entity label is expected when at least MIN_LABEL_SHARE of the key's training answers has it.
# When the expected labels together hold at least MIN_LEAD_SHARE of them, an entity of one of
# them in the evidence leads; at least MIN_TYPED_SHARE, and evidence holding none is typed as
# unanswered (the rules judge declines it; the learned judge weighs it as one of its features).
# Chosen on ../shared/train (bot/evaluation/tune_lead.py, first 2,500 questions), never on
# ../shared/eval: leads at 0.4 / 0.5 came with lead exact match 0.546 / 0.564 for 31% / 20% of the
# answers; typed declines at 0.5 / 0.7 / 0.8 cost 10% / 4% / 3% of answerable questions for 9% /
# 8% / 7% of unanswerable ones declined (the typed decline alone catches few SQuAD 2.0 ones).
MIN_LABEL_SHARE = 0.15
# Units of time (Snowball stems): "how many days" asks for a duration, not a count.
TIME_UNITS = frozenset(stem(w) for w in ("second", "minute", "hour", "day", "night", "week", "weekend",
                                         "month", "quarter", "season", "year", "decade", "century",
                                         "millennium"))
TIME_KEY = "(time)"
MIN_LEAD_SHARE = 0.4
MIN_TYPED_SHARE = 0.7


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(question: str) -> list[str]:
    """The question's words, lower-cased ("what's" stays one word)."""
    return _WORD.findall(question.lower())


def _wh_at(words: Sequence[str]) -> int | None:
    """Where the first wh-word stands among `words` (None: the question has none)."""
    return next((i for i, w in enumerate(words) if w in WH_WORDS), None)


def question_keys(question: str) -> list[str]:
    """The question's keys, most specific first: "In what year did ..." -> ["what year", "what"];
    "How many people ..." -> ["how many peopl", "how many", "how"]; "What is the name of ..." ->
    ["what is the name", "what is", "what"]; "Who ...?" -> ["who"]. Empty without a wh-word."""
    words = _words(question)
    at = _wh_at(words)
    if at is None:
        return []
    wh, rest = words[at], words[at + 1:]
    if wh == "how" and rest:
        if rest[0] in {"many", "much"} and len(rest) > 1 and rest[1] not in AUXILIARIES:
            return [f"how {rest[0]} {stem(rest[1])}", f"how {rest[0]}", "how"]
        return [f"how {rest[0]}", "how"]
    if wh in {"what", "which", "whose"} and rest:
        if rest[0] in AUXILIARIES:
            if len(rest) > 2 and rest[1] in ARTICLES and rest[0] in {"is", "was", "are", "were"}:
                return [f"{wh} {rest[0]} the {stem(rest[2])}", f"{wh} {rest[0]}", wh]
            return [f"{wh} {rest[0]}", wh]
        head = rest[1] if rest[0] in ARTICLES and len(rest) > 1 else rest[0]
        return [f"{wh} {stem(head)}", wh]
    return [wh]


def asks_yes_or_no(question: str) -> bool:
    """A polar question ("Is the dialogue dependent on the guarantees?", "Did Russia set a
    deadline?"): it opens with an auxiliary verb, names no wh-word and offers no alternatives
    ("Is it high or low?" asks for one of them). Its answer is a yes or a no that no span of the
    evidence states, so no span leads it (20 of ../shared/train's 6,669 questions open this way;
    15 of them offer alternatives)."""
    words = _words(question)
    return bool(words) and words[0] in AUXILIARIES and _wh_at(words) is None and "or" not in words


def type_keys(question: str) -> list[str]:
    """The keys the answer-type table is learned and looked up under: `question_keys`, with one
    more after a "how many/much" key on a unit of time ("how many days", "how many vacation
    days" -> "how many (time)"):
    each such key alone is too rare to enter the table (19 questions of ../shared/train between
    six units), and the fallback "how many" expects a CARDINAL where OntoNotes labels "25 days"
    a DATE (10 of those 19 answers, 3 a TIME, 2 a CARDINAL)."""
    keys = question_keys(question)
    if len(keys) == 3:  # "how many/much <word> ...": the unit may follow one word ("how many vacation days")
        words = _words(question)
        at = _wh_at(words)
        assert at is not None  # question_keys found "how"
        if any(stem(word) in TIME_UNITS for word in words[at + 2:at + 4]):
            keys.insert(1, f"{keys[1]} {TIME_KEY}")
    return keys


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(TABLE_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class AnswerType:
    """The entity types a question's answer takes, with their learned shares."""

    key: str  # the table key that matched
    shares: dict[str, float]  # entity label (or NONE) -> share of the key's training answers

    @property
    def labels(self) -> frozenset[str]:
        """The expected entity labels: those holding at least `min_label_share` of the answers."""
        return frozenset(label for label, share in self.shares.items()
                         if label != NONE and share >= MIN_LABEL_SHARE)

    @property
    def share(self) -> float:
        """The share of the key's training answers that are an entity of `labels`."""
        return sum(self.shares[label] for label in self.labels)

    @property
    def leads(self) -> bool:
        """The answer is an entity of `labels` often enough to lead with one found."""
        return self.share >= MIN_LEAD_SHARE

    @property
    def typed(self) -> bool:
        """... and often enough to decline when the evidence holds none."""
        return self.share >= MIN_TYPED_SHARE


def answer_type(question: str) -> AnswerType | None:
    """The learned answer type of `question`, from its most specific key the table knows."""
    keys = _table()["keys"]
    for key in type_keys(question):
        entry = keys.get(key)
        if entry is not None:
            return AnswerType(key, dict(entry["shares"]))
    return None
