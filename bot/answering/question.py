"""Step 1, the question: clean it, and give a follow-up the subject of the conversation.

"And when are they?" says nothing alone; searched together with the earlier question that set the
subject ("What did Ryabkov say about the talks in Geneva?") it finds the right passage. The subject
is the latest turn that named something, as a person reads a conversation: with the answer it got
("Who will head the Russian delegation?" -- "Ryabkov"), whom a following "he" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from embeddings.keyword import question_terms, tokenize

# Words that stand for something said before ("it", "he", "there").
_PRONOUNS = "he|him|his|she|her|they|them|their|it|its|this|these|those|there"
_PRONOUN = re.compile(rf"\b(?:{_PRONOUNS})\b", re.IGNORECASE)
# Words that make a question lean on what was asked before ("and when are they?"): an opening
# "and", a pronoun, or "that" (not counted as a pronoun above: it also joins clauses).
_FOLLOW_UP = re.compile(rf"^\s*(?:and|also|what about|how about|but|so|then)\b|\b(?:{_PRONOUNS}|that)\b",
                        re.IGNORECASE)
# The pronouns that stand for a person.
_PERSON_PRONOUN = re.compile(r"\b(?:he|him|his|himself|she|her|hers|herself)\b", re.IGNORECASE)
# Capitalised words that open or frame a question and are not names.
_QUESTION_WORDS = {"what", "who", "whom", "whose", "when", "where", "why", "which", "how", "is",
                   "are", "was", "were", "did", "does", "do", "can", "could", "would", "should",
                   "will", "has", "have", "had", "the", "a", "an", "in", "on", "of", "i", "and",
                   "tell", "give", "list", "name", "please", "according"}
# How many earlier questions a follow-up may reach back through to find its subject. Set by hand
# with the follow-up tests (tests/test_quality.py: a follow-up of a follow-up); never measured on
# a data set (the SQuAD evaluation has no conversations).
HISTORY_REACH = 4


@dataclass(frozen=True)
class Question:
    """A cleaned question and the text to search with (the question itself unless it is a
    follow-up, then the subject it leans on followed by the question)."""

    text: str
    query: str

    @property
    def follow_up(self) -> bool:
        """True when the search text carries an earlier question's subject."""
        return self.query != self.text

    @property
    def judged_text(self) -> str:
        """The text an answer is judged against: a follow-up says too little alone."""
        return self.query if self.follow_up else self.text


def clean_question(text: str, max_chars: int) -> str:
    """Printable, single-spaced, cut to the configured length before anything embeds it."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()[:max_chars].strip()


def question_chars(text: str) -> int:
    """The length of `text` once cleaned, before any cut: more than [answer] max_question_chars
    and the answer says the question was cut."""
    return len(re.sub(r"\s+", " ", "".join(ch if ch.isprintable() else " " for ch in text)).strip())


def has_words(text: str) -> bool:
    """False for "", "???" and the like: nothing to search with."""
    return bool(text) and bool(re.search(r"\w", text))


def names(question: str) -> list[str]:
    """The names of a question as written (capitalised words past the first, not question words)."""
    if not re.search(r"[a-z]", question):
        return []  # SHOUTED QUESTIONS capitalise every word: no way to tell names
    words = re.findall(r"[A-Za-z][\w'’.-]*", question)
    return [w.strip(".'’") for i, w in enumerate(words)
            if i > 0 and w[0].isupper() and w.lower().strip(".'’") not in _QUESTION_WORDS]


def key_terms(question: str) -> list[str]:
    """Names in the question (capitalised words past the first): they must occur in the index."""
    found = names(question)
    return [t for t in tokenize([" ".join(found)])[0]] if found else []


def has_own_words(question: str) -> bool:
    """The question names something of its own (a keyword besides the words that frame a question):
    "When?" and "And when are they?" name nothing, "Which newspaper interviewed him?" does."""
    return bool(question_terms(question))


def is_follow_up(question: str) -> bool:
    """The question leans on an earlier one: it opens with "and", says "they", "it", ..., or names
    nothing of its own ("When?", "Where?": an elliptical question, asked of what was just said)."""
    return bool(_FOLLOW_UP.search(question)) or not has_own_words(question)


def stands_alone(question: str, terms: int) -> bool:
    """The question says what it asks about: at least `terms` keywords of its own, and no fewer
    than the words it leaves to the conversation ("it", "he", "there"). "and when are the talks?"
    (one word, nothing left) and "What did he tell Bloomberg?" (one for one) stand alone; "What
    did he say about it?" (one word, "he" and "it" left) does not."""
    return len(set(question_terms(question))) >= max(terms, len(_PRONOUN.findall(question)))


def means_a_person(question: str) -> bool:
    """The question says "he", "she", "him", "his", "her": someone the conversation named."""
    return bool(_PERSON_PRONOUN.search(question))


@dataclass(frozen=True)
class Turn:
    """An earlier turn of the conversation as its asker was answered: the text it was searched
    with (the question, or the question with the subject it leaned on) and its lead ("Ryabkov")."""

    searched: str
    lead: str | None = None


# `turn_of(question, earlier_questions)`: how the conversation answered an earlier question
# (the Answerer finds it again, answerer.py `_earlier_turn`).
TurnOf = Callable[[str, Sequence[str]], Turn]


def resolve_follow_up(question: str, history: Sequence[str], turn_of: TurnOf | None = None, *,
                      referents: bool = False) -> str:
    """The text to search with: a follow-up carries the subject of the conversation.

    The subject is the latest earlier turn that names something of its own (`conversation_subject`):
    the previous question, unless it named nothing ("and when are they?", "When?") and only
    leaned on the one before it. So "and when are they?" then "where?" both lean on "What did
    Ryabkov say about the talks in Geneva?", and "What did he tell Bloomberg?" leans on the
    question just asked, not on the first one of the conversation. With `referents`, it carries
    only who and what the recent turns named (`conversation_referents`).
    """
    if not history or not is_follow_up(question):
        return question
    subject = (conversation_referents(history, turn_of) if referents
               else conversation_subject(history, turn_of))
    return f"{subject} {question}" if subject else question


def _turn(history: Sequence[str], at: int, turn_of: TurnOf | None) -> Turn:
    """Turn `at` of `history` as it was answered (without `turn_of`: as it would be searched)."""
    if turn_of is not None:
        return turn_of(history[at], history[:at])
    return Turn(resolve_follow_up(history[at], history[max(0, at - HISTORY_REACH):at]))


def conversation_subject(history: Sequence[str], turn_of: TurnOf | None = None) -> str:
    """What the conversation is about after `history` (oldest first), as a person reading it
    takes it: the latest turn that names something of its own, among the last HISTORY_REACH,
    read as it was searched (with the subject it leaned on: "Who will head the Russian delegation
    there?" carries the talks its "there" meant) and with the answer it got ("Ryabkov")."""
    history = list(history)
    start = max(0, len(history) - HISTORY_REACH)
    at = next((i for i in range(len(history) - 1, start - 1, -1) if has_own_words(history[i])),
              len(history) - 1)
    turn = _turn(history, at, turn_of)
    if turn.lead and turn.lead.lower() not in turn.searched.lower():
        return f"{turn.searched} {turn.lead}"
    return turn.searched


def conversation_referents(history: Sequence[str], turn_of: TurnOf | None = None) -> str:
    """Who and what the last HISTORY_REACH turns named, the latest first: each turn's answer
    ("Ryabkov" for "Who will head the Russian delegation?") and the names in its question, without
    what they asked about them ("head the delegation"). What "he" in a follow-up that says what
    it asks ("What did he tell Bloomberg?") can stand for. "" when they named nobody."""
    history = list(history)
    found: list[str] = []
    for at in range(len(history) - 1, max(0, len(history) - HISTORY_REACH) - 1, -1):
        lead = _turn(history, at, turn_of).lead if turn_of is not None else None
        found += ([lead] if lead else []) + names(history[at])
    return " ".join(dict.fromkeys(found))


def prepare_question(text: str, history: Sequence[str], max_chars: int,
                     turn_of: TurnOf | None = None, *, referents: bool = False) -> Question:
    """The cleaned question with its search text (the conversation cleaned the same way;
    `turn_of` tells how an earlier question was answered; `referents`: see `resolve_follow_up`)."""
    cleaned = clean_question(text, max_chars)
    earlier = [clean_question(h, max_chars) for h in history if h and h.strip()]
    return Question(cleaned, resolve_follow_up(cleaned, earlier, turn_of, referents=referents))
