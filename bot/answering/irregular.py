"""Irregular forms of English words, as stems: "said" is a form of "say", "children" of "child".

Keyword matching compares Snowball stems, which join inflections by their endings ("says",
"saying", "say") but not irregular ones. A sentence's keyword set also holds the lemma's stem of
each irregular form it contains, so a question's "say" is found in "he said" (the judge's keyword
cover and missing-word features, the sentence scorer's keyword share). The table comes from
en_core_web_sm's lemma exceptions (irregular_forms.json; bot/evaluation/build_irregular.py).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Protocol

FORMS_FILE = Path(__file__).with_name("irregular_forms.json")


class TermCounts(Protocol):
    """What the index's keyword side tells of a stem (KeywordIndex, or TermStatistics on Milvus)."""

    def document_frequency(self, term: str) -> int: ...

    def idf(self, term: str, *, min_frequency: int = 0) -> float: ...


@lru_cache(maxsize=1)
def lemma_stems() -> dict[str, str]:
    """Stem of an irregular form -> stem of its lemma (empty when the file is missing)."""
    if not FORMS_FILE.exists():
        return {}
    return dict(json.loads(FORMS_FILE.read_text(encoding="utf-8"))["stems"])


def with_lemmas(stems: Iterable[str]) -> frozenset[str]:
    """`stems` and the lemma stems of the irregular forms among them."""
    table = lemma_stems()
    found = set(stems)
    return frozenset(found | {table[s] for s in found if s in table})


@lru_cache(maxsize=1)
def _forms_by_lemma() -> dict[str, tuple[str, ...]]:
    forms: dict[str, list[str]] = {}
    for form, lemma in lemma_stems().items():
        forms.setdefault(lemma, []).append(form)
    return {lemma: tuple(found) for lemma, found in forms.items()}


def word_forms(stem: str) -> tuple[str, ...]:
    """`stem` and the stems of its irregular forms ("say" -> "say", "said")."""
    return (stem, *_forms_by_lemma().get(stem, ()))


def document_frequency(keyword: TermCounts, stem: str) -> int:
    """Chunks holding the word in any of its forms (its most frequent form's count): a question's
    "say" is as common as the index's "said"."""
    return max(keyword.document_frequency(form) for form in word_forms(stem))


def idf(keyword: TermCounts, stem: str, *, min_frequency: int = 0) -> float:
    """The word's inverse document frequency over its forms (its most frequent form's), so a
    question's "say" weighs what the index's "said" does, not what a word never seen does."""
    return min(keyword.idf(form, min_frequency=min_frequency) for form in word_forms(stem))
