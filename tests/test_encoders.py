"""The ONNX query encoder's length batching: same vectors whatever the batch, in input order."""

from __future__ import annotations

import numpy as np

from embeddings.encoders import _length_batches, get_encoder


def test_length_batches_cover_every_row_once_in_bounded_similar_batches():
    lengths = np.array([5, 40, 6, 7, 100, 12, 41, 8, 9, 10, 11, 39])
    batches = _length_batches(lengths, batch_size=3)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= 3
        assert lengths[batch].max() <= 1.25 * lengths[batch].min() + 8
    assert _length_batches(np.array([], dtype=int), 32) == []


def test_batched_vectors_equal_one_by_one_and_keep_input_order():
    encoder = get_encoder("onnx", max_seq_length=256)
    texts = ["When are the talks?",
             "A much longer sentence about the Geneva strategic stability dialogue and the security "
             "guarantees that Russia is demanding from the United States and its European allies.",
             "Izvestia.", "",
             "Ryabkov said the U.S. has not specifically indicated what exactly is unacceptable."]
    together = encoder.encode(texts, batch_size=2)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert together.shape == (len(texts), 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(together * alone, axis=1)) > 0.99999
