"""Evaluation data: the contexts (documents) and questions of a SQuAD-style set.

Format (the SQuAD subset in ``../shared/eval``; SQuAD v1.1, Rajpurkar et al. 2016, passages from
Wikipedia, CC BY-SA 4.0):

- contexts: JSON lines ``{"context_id", "title", "text"}``; every title becomes one document whose
  paragraphs are its contexts, in file order;
- questions: JSON lines ``{"id", "question", "answers": [str, ...], ...}``;
- unanswerable questions (SQuAD 2.0, ``--unanswerable``): the same, with ``"answers": []``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from embeddings.documents import Document, normalize_text
from embeddings.errors import QabotError
from embeddings.jsonl import JsonLinesError, read_json_lines


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    title: str | None = None


class EvalDataError(QabotError, ValueError):
    """The contexts or questions file is missing or malformed."""


def _read_jsonl(path: Path) -> Iterable[dict]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        try:
            yield from read_json_lines(handle, str(path))
        except JsonLinesError as exc:
            raise EvalDataError(str(exc)) from None


def load_contexts(path: Path, titles: Iterable[str] | None = None) -> list[Document]:
    """One `Document` per title (optionally only `titles`), its paragraphs in file order."""
    wanted = set(titles) if titles is not None else None
    paragraphs: dict[str, list[str]] = {}
    for number, record in enumerate(_read_jsonl(path), 1):
        title, text = record.get("title"), record.get("text")
        if not isinstance(title, str) or not isinstance(text, str):
            raise EvalDataError(f"{path}:{number}: needs string 'title' and 'text'")
        if wanted is None or title in wanted:
            cleaned = normalize_text(text)
            if cleaned:
                paragraphs.setdefault(title, []).append(cleaned)
    if not paragraphs:
        raise EvalDataError(f"{path}: no contexts")
    return [Document(doc_id=f"eval:{title}", title=display_title(title), text="\n\n".join(parts),
                     source=f"{path.name}#{title}") for title, parts in paragraphs.items()]


def display_title(title: str) -> str:
    """A SQuAD title as a document title: "Sky_(United_Kingdom)" -> "Sky (United Kingdom)"."""
    return title.replace("_", " ").strip()


def load_questions(path: Path, limit: int | None = None, *, unanswerable: bool = False) -> list[EvalQuestion]:
    """The questions of `path` (the first `limit`); `unanswerable` ones must have no answers."""
    out = []
    for number, record in enumerate(_read_jsonl(path), 1):
        question, answers = record.get("question"), record.get("answers")
        if unanswerable:
            if not isinstance(question, str) or answers not in (None, []):
                raise EvalDataError(f"{path}:{number}: needs 'question' and an empty 'answers' list "
                                    "(unanswerable questions)")
            answers = []
        elif not isinstance(question, str) or not isinstance(answers, list) or not answers:
            raise EvalDataError(f"{path}:{number}: needs 'question' and a non-empty 'answers' list")
        out.append(EvalQuestion(str(record.get("id", number)), question,
                                tuple(normalize_text(str(a)) for a in answers), record.get("title")))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise EvalDataError(f"{path}: no questions")
    return out
