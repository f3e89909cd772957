"""What the reader model sees: one (question, candidate sentence with a little context) input.

Shared by training and question time, so both build exactly the same token sequences:

    [CLS] question [SEP] title [SEP] previous sentence [SEP] sentence [SEP]

The title and the sentence before give a short sentence its subject ("He said ..." needs the
sentence naming who). Only the sentence's own tokens may hold the answer span. Needs `tokenizers`
and numpy only (no torch), so the runtime imports it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

# Token budget per part. The int8 model costs about 0.1 ms per token on this (shared) 2-core
# machine, so a question's candidates must stay a few hundred tokens in all: 96 tokens per
# candidate at most (most are 40-70), the sentence keeping most of it.
MAX_LENGTH = 96
MAX_QUESTION_TOKENS = 28
MAX_TITLE_TOKENS = 8
MAX_BEFORE_TOKENS = 16  # the END of the previous sentence is kept: it is nearest the candidate
MAX_SPAN_TOKENS = 30  # longest highlight, in tokens (SQuAD answers are short; 99% are under 20)


@dataclass(frozen=True)
class Candidate:
    """A sentence the reader judges: `text` may hold the answer; `before` (the previous sentence
    of the same paragraph) and `title` (its document's title) are context only."""

    text: str
    before: str = ""
    title: str = ""


@dataclass
class Batch:
    """Model inputs for one question and its candidates, padded to the longest."""

    input_ids: np.ndarray  # int64 [B, T]
    attention_mask: np.ndarray  # int64 [B, T]
    token_type_ids: np.ndarray  # int64 [B, T]
    sentence_mask: np.ndarray  # bool [B, T]: tokens of the candidate sentence (span may lie here)
    offsets: list[list[tuple[int, int]]]  # per row, per token: char offsets in the sentence text
    first: list[int]  # per row: token position of the sentence's first token

    def inputs(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}


def load_tokenizer(directory: Path):
    """The WordPiece tokenizer of the model directory (tokenizer.json), without its own
    truncation or padding: `encode` here does both."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def before_sentence(chunk_text: str, sentences: Sequence[tuple[int, int]], index: int) -> str:
    """The sentence before sentence `index` of a chunk (offsets within `chunk_text`), or "" when
    it is the first or a paragraph break lies between (then it starts another thought)."""
    if index <= 0 or index >= len(sentences):
        return ""
    previous_end, start = sentences[index - 1][1], sentences[index][0]
    if "\n" in chunk_text[previous_end:start]:
        return ""
    a, b = sentences[index - 1]
    return chunk_text[a:b]


def encode(tokenizer, question: str, candidates: Sequence[Candidate], *, context: bool = True) -> Batch:
    """Token ids for (question, candidate) rows; `context=False` leaves title and previous
    sentence out (the sentence-only design kept for the comparison)."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    texts = [question]
    for c in candidates:
        texts += [c.text, c.title if context else "", c.before if context else ""]
    encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
    q_ids = encoded[0].ids[:MAX_QUESTION_TOKENS]
    rows, types, masks, offsets, firsts = [], [], [], [], []
    for i in range(len(candidates)):
        sentence, title, before = encoded[1 + 3 * i], encoded[2 + 3 * i], encoded[3 + 3 * i]
        ids = [cls_id] + q_ids + [sep_id]
        kinds = [0] * len(ids)
        tail: list[int] = []
        if title.ids:
            tail += title.ids[:MAX_TITLE_TOKENS] + [sep_id]
        if before.ids:
            tail += before.ids[-MAX_BEFORE_TOKENS:] + [sep_id]
        room = MAX_LENGTH - len(ids) - len(tail) - 1
        ids += tail
        first = len(ids)
        ids += sentence.ids[:room] + [sep_id]
        kinds += [1] * (len(ids) - len(kinds))
        mask = [False] * first + [True] * min(room, len(sentence.ids)) + [False]
        rows.append(ids)
        types.append(kinds)
        masks.append(mask)
        offsets.append(list(sentence.offsets[:room]))
        firsts.append(first)
    width = max((len(r) for r in rows), default=0)
    n = len(rows)
    input_ids = np.zeros((n, width), dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    token_types = np.zeros((n, width), dtype=np.int64)
    sentence_mask = np.zeros((n, width), dtype=bool)
    for r, (ids, kinds, mask) in enumerate(zip(rows, types, masks)):
        input_ids[r, :len(ids)] = ids
        attention[r, :len(ids)] = 1
        token_types[r, :len(ids)] = kinds
        sentence_mask[r, :len(mask)] = mask
    return Batch(input_ids, attention, token_types, sentence_mask, offsets, firsts)


def span_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """The (first, last) token indexes (within the sentence) covering chars [start, end), or None
    when the span was cut off by truncation."""
    first = next((i for i, (a, b) in enumerate(offsets) if b > start), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end), None)
    if first is None or last is None or last < first or offsets[-1][1] < end:
        return None
    return first, last


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Sequence[tuple[int, int]],
              first: int) -> tuple[tuple[int, int] | None, float]:
    """The highest-scoring (start <= end, at most MAX_SPAN_TOKENS) span of the sentence's tokens,
    as char offsets in the sentence, with its probability (softmax over the sentence's tokens)."""
    n = len(offsets)
    if n == 0:
        return None, 0.0
    s = start_logits[first:first + n].astype(np.float64)
    e = end_logits[first:first + n].astype(np.float64)
    ps = np.exp(s - s.max())
    ps /= ps.sum()
    pe = np.exp(e - e.max())
    pe /= pe.sum()
    joint = np.triu(np.outer(ps, pe)) - np.triu(np.outer(ps, pe), MAX_SPAN_TOKENS)
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return (int(offsets[i][0]), int(offsets[j][1])), float(joint[i, j])
