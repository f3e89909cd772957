"""Step 1, the question: clean it, and give a follow-up the subject of the conversation.

"And when are they?" says nothing alone; searched together with the earlier question that set the
subject ("What did Ryabkov say about the talks in Geneva?") it finds the right passage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from embeddings.keyword import tokenize

# Words that make a question lean on what was asked before ("and when are they?").
_FOLLOW_UP = re.compile(
    r"^\s*(?:and|also|what about|how about|but|so|then)\b|\b(?:he|him|his|she|her|they|them|their|"
    r"it|its|this|that|these|those|there)\b", re.IGNORECASE)
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


def key_terms(question: str) -> list[str]:
    """Names in the question (capitalised words past the first): they must occur in the index."""
    if not re.search(r"[a-z]", question):
        return []  # SHOUTED QUESTIONS capitalise every word: no way to tell names
    words = re.findall(r"[A-Za-z][\w'’.-]*", question)
    names = [w.strip(".'’") for i, w in enumerate(words)
             if i > 0 and w[0].isupper() and w.lower().strip(".'’") not in _QUESTION_WORDS]
    return [t for t in tokenize([" ".join(names)])[0]] if names else []


def is_follow_up(question: str) -> bool:
    """The question leans on an earlier one (opens with "and", says "they", "it", ...)."""
    return bool(_FOLLOW_UP.search(question))


def resolve_follow_up(question: str, history: Sequence[str]) -> str:
    """The text to search with: a follow-up carries the subject of the conversation.

    The subject is the latest earlier question that was not itself a follow-up (so "and when are
    they?" then "where?" both lean on "What did Ryabkov say about the talks in Geneva?").
    """
    if not history or not is_follow_up(question):
        return question
    recent = list(history)[-HISTORY_REACH:]
    anchor = next((h for h in reversed(recent) if not is_follow_up(h)), recent[-1])
    return f"{anchor} {question}"


def prepare_question(text: str, history: Sequence[str], max_chars: int) -> Question:
    """The cleaned question with its search text (the conversation cleaned the same way)."""
    cleaned = clean_question(text, max_chars)
    earlier = [clean_question(h, max_chars) for h in history if h and h.strip()]
    return Question(cleaned, resolve_follow_up(cleaned, earlier))
