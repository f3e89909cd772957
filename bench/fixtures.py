"""Fixtures shared by the sections: the SQuAD articles as documents, and the SQuAD and bundled-article
indexes (built once per run, kept in the run's context)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.common import ARTICLES, CONTEXTS, Sizes, load_jsonl


def write_squad_documents(directory: Path, titles: int | None) -> list[Path]:
    """One .txt per SQuAD article (title line, then its paragraphs), as the eval README suggests."""
    by_title: dict[str, list[str]] = defaultdict(list)
    for row in load_jsonl(CONTEXTS):
        by_title[row["title"]].append(row["text"])
    names = list(by_title)[:titles] if titles else list(by_title)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = directory / f"{name}.txt"
        path.write_text(name.replace("_", " ") + "\n\n" + "\n\n".join(by_title[name]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def ensure_squad_index(ctx: dict, sizes: Sizes) -> Path:
    if "squad_index" not in ctx:
        from embeddings.ingest import IngestOptions, ingest

        paths = write_squad_documents(ctx["work"] / "squad", sizes.ingest_titles)
        ingest(paths, ctx["work"] / "squad-index", IngestOptions.from_settings(ctx["settings"]), rebuild=True)
        ctx["squad_index"] = ctx["work"] / "squad-index"
    return ctx["squad_index"]


def ensure_article_index(ctx: dict) -> Path:
    if "article_index" not in ctx:
        from embeddings.ingest import IngestOptions, ingest

        ingest([ARTICLES], ctx["work"] / "article-index", IngestOptions.from_settings(ctx["settings"]), rebuild=True)
        ctx["article_index"] = ctx["work"] / "article-index"
    return ctx["article_index"]
