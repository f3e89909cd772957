"""The report itself, as data: what `qabot report` prints, writes as JSON or HTML, and what the
Home tab's admin section shows.

From the records of a window (`since` .. now, optionally one collection): totals and a timeline
(answered / LLM fallback / declined and 👍/👎, per day, or per hour for a window of two days or
less), the gap groups (declined and down-voted questions grouped by meaning, groups.py), and the
documents cited most and never (the index's document list, read without loading the index).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from embeddings.errors import QabotError

from .groups import examples, group_by_meaning
from .record import ANSWERED, DECLINED, LLM_FALLBACK, QuestionRecord

HOUR_S, DAY_S = 3600.0, 86400.0
UNITS = {"m": 60.0, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}
MOST_CITED = 10
# An admin's Home tab: the top groups of the last week.
HOME_GROUPS, HOME_WINDOW_S = 5, 7 * DAY_S


class SinceError(QabotError, ValueError):
    """--since is not a duration such as 7d."""


def parse_since(text: str) -> float:
    """"7d", "24h", "90m", "2w" as seconds; `SinceError` (one line) otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise SinceError(f"--since must be a duration such as 30m, 24h, 7d or 2w; got {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Bucket:
    """One step of the timeline."""

    start: float
    asked: int = 0
    answered: int = 0
    llm_fallback: int = 0
    declined: int = 0
    up: int = 0
    down: int = 0

    @property
    def answered_rate(self) -> float | None:
        """Answered (with or without the LLM) over asked; None for an empty step."""
        return (self.answered + self.llm_fallback) / self.asked if self.asked else None


@dataclass(frozen=True)
class GapGroup:
    """Declined or down-voted questions that ask for one missing thing."""

    size: int
    name: str  # the question nearest the group's centre
    examples: tuple[str, ...]  # newest first
    declined: int
    down_voted: int
    newest: float


@dataclass(frozen=True)
class DocumentCount:
    short_id: str
    title: str
    cited: int


@dataclass
class Report:
    since: float
    until: float
    collections: tuple[str, ...]  # the --collection filter; () = every question
    step_s: float
    totals: Bucket
    timeline: list[Bucket]
    groups: list[GapGroup]
    gaps: int  # declined or down-voted questions in the window
    gaps_without_text: int  # ... of which no text was kept (not grouped)
    most_cited: list[DocumentCount] = field(default_factory=list)
    never_cited: list[DocumentCount] = field(default_factory=list)
    documents_known: bool = True  # False when the index could not be read

    def to_json(self) -> dict[str, Any]:
        def bucket(b: Bucket) -> dict[str, Any]:
            return {"start": _iso(b.start), "asked": b.asked, "answered": b.answered,
                    "llm_fallback": b.llm_fallback, "declined": b.declined, "up": b.up, "down": b.down,
                    "answered_rate": None if b.answered_rate is None else round(b.answered_rate, 4)}
        return {
            "since": _iso(self.since), "until": _iso(self.until), "collections": list(self.collections),
            "step": "hour" if self.step_s == HOUR_S else "day",
            "totals": bucket(self.totals), "timeline": [bucket(b) for b in self.timeline],
            "gaps": self.gaps, "gaps_without_text": self.gaps_without_text,
            "groups": [{"size": g.size, "name": g.name, "examples": list(g.examples), "declined": g.declined,
                        "down_voted": g.down_voted, "newest": _iso(g.newest)} for g in self.groups],
            "most_cited": [{"id": d.short_id, "title": d.title, "cited": d.cited} for d in self.most_cited],
            "never_cited": None if not self.documents_known else
            [{"id": d.short_id, "title": d.title} for d in self.never_cited],
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def in_collections(record: QuestionRecord, wanted: Sequence[str]) -> bool:
    """Whether `record` was answered from one of `wanted`: it was searched (every collection is,
    when the record names none). No `wanted`: every record."""
    return not wanted or not record.collections or any(c in record.collections for c in wanted)


def timeline(records: Iterable[QuestionRecord], since: float, until: float, step_s: float) -> list[Bucket]:
    first = np.floor(since / step_s) * step_s
    counts: list[Counter[str]] = [Counter() for _ in range(int((until - first) // step_s) + 1)]
    for r in records:
        c = counts[min(len(counts) - 1, max(0, int((r.asked_at - first) // step_s)))]
        c["asked"] += 1
        c[r.outcome] += 1
        c["up"] += r.up
        c["down"] += r.down
    return [Bucket(first + i * step_s, c["asked"], c[ANSWERED], c[LLM_FALLBACK], c[DECLINED], c["up"], c["down"])
            for i, c in enumerate(counts)]


def gap_groups(records: Sequence[QuestionRecord], limit: int | None = None) -> list[GapGroup]:
    """The declined and down-voted questions with a kept text and vector, grouped by meaning
    (records newest first, as the store reads them)."""
    kept = [r for r in records if r.is_gap and r.question and r.vector is not None]
    if not kept:
        return []
    vectors = np.stack([r.vector for r in kept if r.vector is not None])
    texts = [r.question or "" for r in kept]
    found = []
    for g in group_by_meaning(vectors)[:limit]:
        members = [kept[m] for m in g.members]
        found.append(GapGroup(g.size, texts[g.central], tuple(examples(texts, g)),
                              sum(r.outcome == DECLINED for r in members), sum(r.down_voted for r in members),
                              max(r.asked_at for r in members)))
    return found


def cited_counts(records: Iterable[QuestionRecord], documents: Mapping[str, str] | None,
                 collection_of: Mapping[str, tuple[str, ...]] | None = None,
                 wanted: Sequence[str] = ()) -> tuple[list[DocumentCount], list[DocumentCount]]:
    """(most cited, never cited): `documents` maps the index's short ids to titles (None when the
    index could not be read: then only what the records name, without titles)."""
    counts = Counter(doc for r in records for doc in r.documents)
    titles = dict(documents or {})
    most = [DocumentCount(d, titles.get(d, d), n) for d, n in counts.most_common(MOST_CITED)]
    never = []
    if documents is not None:
        # Documents of the wanted collections, when the index records them (else every document).
        listed = [d for d in documents if not wanted or not (collection_of or {}).get(d)
                  or any(c in (collection_of or {})[d] for c in wanted)]
        never = sorted((DocumentCount(d, titles[d], 0) for d in listed if d not in counts),
                       key=lambda d: d.title.casefold())
    return most, never


def index_documents(index_dir: Path) -> tuple[dict[str, str], dict[str, tuple[str, ...]]] | None:
    """Short id → title, and short id → collections (an index saved before collections: default),
    of the index's documents; None when there is no readable index."""
    from embeddings.errors import QabotError
    from embeddings.index_files import stored_documents

    try:
        infos = stored_documents(Path(index_dir))
    except (QabotError, OSError):
        return None
    titles = {info.short_id: info.title or info.short_id for info in infos.values()}
    collections = {info.short_id: tuple(info.collections) for info in infos.values()}
    return titles, collections


def build_report(records: Sequence[QuestionRecord], *, since: float, until: float | None = None,
                 collections: Sequence[str] = (), index_dir: Path | None = None,
                 group_limit: int | None = None) -> Report:
    """The report over `records` (newest first) asked in [since, until]."""
    until = time.time() if until is None else until
    chosen = [r for r in records if since <= r.asked_at <= until and in_collections(r, collections)]
    step = HOUR_S if until - since <= 2 * DAY_S else DAY_S
    steps = timeline(chosen, since, until, step)
    totals = Bucket(since, *(sum(getattr(b, f) for b in steps)
                             for f in ("asked", "answered", "llm_fallback", "declined", "up", "down")))
    gaps = [r for r in chosen if r.is_gap]
    known = index_documents(index_dir) if index_dir is not None else None
    most, never = cited_counts(chosen, known[0] if known else None, known[1] if known else None, collections)
    return Report(since, until, tuple(collections), step, totals, steps, gap_groups(chosen, group_limit), len(gaps),
                  sum(1 for r in gaps if not r.question or r.vector is None), most, never, known is not None)


def home_groups(records: Sequence[QuestionRecord], now: float | None = None) -> list[GapGroup]:
    """The App Home's admin section: the top `HOME_GROUPS` gap groups of the last week."""
    now = time.time() if now is None else now
    recent = [r for r in records if r.asked_at >= now - HOME_WINDOW_S]
    return gap_groups(recent, HOME_GROUPS)
