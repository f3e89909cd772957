"""qabot's tokenizer (embeddings/keyword.py `tokenize`) gives exactly bm25s's tokens, so indexes
built with either and the answers over them are the same."""

from __future__ import annotations

import bm25s
import numpy as np

from embeddings.keyword import QUESTION_STOPWORDS, STOPWORDS, _stemmer, fold_accents, tokenize

from .conftest import SAMPLE

TEXTS = [
    SAMPLE.read_text(encoding="utf-8"),
    "Who designed the Scottish Parliament building, and when did it open?",
    "Hervé Céloron's expedition reached the Ohio in 1749; I'd say it's the U.S. of A.",
    "a I x 42 don't DON'T Straße naïve café — “quoted” words_with_underscores",
    "",
]


def _bm25s(texts, stopwords, fold=True):
    texts = [fold_accents(t) for t in texts] if fold else list(texts)
    return bm25s.tokenize(texts, stopwords=list(stopwords), stemmer=_stemmer(), return_ids=False,
                          show_progress=False)


def test_tokens_are_exactly_bm25s_tokens():
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    for stopwords in (STOPWORDS, QUESTION_STOPWORDS):
        for fold in (True, False):
            assert tokenize(TEXTS + lines, stopwords, fold=fold) == _bm25s(TEXTS + lines, stopwords, fold)
    assert tokenize(["Hervé"])[0] == ["herv"] and tokenize(["Hervé"], fold=False)[0] == ["hervé"]


def test_search_on_a_loaded_index_is_bm25s_retrieve(tmp_path):
    """The saved matrix scored without bm25s gives bm25s's rows and scores, ties in its order."""
    from embeddings.keyword import KeywordIndex

    lines = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = lines + lines[:3] + ["Geneva talks Geneva", "talks"]  # repeated texts: tied scores
    built = KeywordIndex.build(texts)
    built.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path, len(texts))
    reference = bm25s.BM25.load(str(tmp_path), show_progress=False)
    for query in ("When are the Geneva talks?", "Ryabkov Izvestia interview", "security guarantees NATO",
                  "talks", "nothing matches xyzzy", "Which"):
        for k in (1, 3, len(texts)):
            tokens = loaded.query_tokens(query)
            rows, scores = loaded.search(query, k)
            assert (rows.tolist(), scores.tolist()) == tuple(x.tolist() for x in built.search(query, k))
            if not tokens:
                assert not len(rows)
                continue
            ref_rows, ref_scores = reference.retrieve([tokens], k=k, show_progress=False)
            keep = ref_scores[0] > 0
            assert rows.tolist() == ref_rows[0][keep].tolist()
            assert scores.tolist() == ref_scores[0][keep].astype(np.float32).tolist()
    assert loaded.vocabulary() == built.vocabulary()
    assert loaded.document_frequency("geneva") == built.document_frequency("geneva") > 0
