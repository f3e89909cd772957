"""The ONNX query encoder's length batching (same vectors whatever the batch, in input order) and
its sessions (a call alone on two threads, the same vectors)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from embeddings.encoders import OnnxEncoder, SessionChoice, _length_batches, get_encoder


def test_length_batches_cover_every_row_once_in_bounded_similar_batches():
    lengths = np.array([5, 40, 6, 7, 100, 12, 41, 8, 9, 10, 11, 39])
    batches = _length_batches(lengths, batch_size=3)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= 3
        assert lengths[batch].max() <= 1.25 * lengths[batch].min() + 8
    assert _length_batches(np.array([], dtype=int), 32) == []


def test_length_batches_stay_within_the_token_budget_but_never_drop_a_row():
    lengths = np.array([130, 120, 300, 125, 128, 20, 22, 21, 126])
    batches = _length_batches(lengths, batch_size=32, max_tokens=512)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * lengths[batch].max() <= 512 or len(batch) == 1
    assert [len(b) for b in batches if lengths[b].max() > 200] == [1]  # longer than the budget: alone
    assert sorted(len(b) for b in batches) == [1, 1, 3, 4]  # 4 x 128 fits 512 tokens, 5 x 130 not


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


def test_batches_run_side_by_side_give_the_same_vectors_in_input_order():
    texts = [" ".join(["word"] * n) + f" number {n}" for n in (3, 150, 40, 90, 7, 120, 60, 130, 20, 110)]
    serial = get_encoder("onnx", max_seq_length=256).encode(texts)
    parallel_encoder = get_encoder("onnx", max_seq_length=256, workers=2)
    assert parallel_encoder is not get_encoder("onnx", max_seq_length=256)
    parallel = parallel_encoder.encode(texts)  # several batches under the token budget
    assert np.min(np.sum(serial * parallel, axis=1)) > 0.99999


@pytest.mark.slow
def test_the_torch_backend_gives_the_same_vectors_as_onnx():
    """`ingest_backend = "torch"` stays a working choice: the same model, vectors within cosine 0.999."""
    texts = ["When are the talks?", "Ryabkov said the U.S. has not specifically indicated what exactly "
             "is unacceptable in the draft agreements Moscow delivered in December.", "Izvestia."]
    torch_vectors = get_encoder("torch", max_seq_length=256).encode(texts)
    onnx_vectors = get_encoder("onnx", max_seq_length=256).encode(texts)
    assert torch_vectors.shape == onnx_vectors.shape == (3, 384)
    assert np.min(np.sum(torch_vectors * onnx_vectors, axis=1)) > 0.999


def test_a_call_alone_runs_on_the_multi_thread_session_with_bit_identical_vectors():
    """Built once a second call shows the process keeps encoding; used only by a call that starts
    while no other runs; its vectors are bit for bit the one-thread session's."""
    encoder = OnnxEncoder(256, alone_threads=2)
    texts = ["When are the talks?", "Izvestia.", " ".join(["word"] * 120),
             "Ryabkov said the U.S. has not specifically indicated what exactly is unacceptable."]
    one_thread = encoder.encode(texts)
    assert encoder._alone_build is None  # one call: nothing built (a one-shot `qabot ask`)
    encoder.encode(texts[:1])
    assert encoder._alone_build is not None
    encoder._alone_build.join()
    assert encoder._alone is not None

    used: list = []
    entered, release = threading.Event(), threading.Event()
    real_run = encoder._run

    def run(session, *args):
        used.append(session)
        if threading.current_thread().name == "first":
            entered.set()
            assert release.wait(60)
        return real_run(session, *args)

    encoder._run = run  # type: ignore[method-assign]
    encoder._choice.cost = {False: 1.0, True: 1e-9}  # measured faster alone: taken (not a probe call)
    alone = encoder.encode(texts)
    assert used and all(s is encoder._alone for s in used)
    assert np.array_equal(alone, one_thread)

    used.clear()
    encoder._choice.cost = {False: 1.0, True: 1e-9}
    first = threading.Thread(target=encoder.encode, args=(texts[:1],), name="first")
    first.start()
    assert entered.wait(60)  # the first call is running: the next one does not run alone
    during = encoder.encode(texts)
    release.set()
    first.join()
    assert used[0] is encoder._alone and all(s is encoder._session for s in used[1:])
    assert np.array_equal(during, one_thread)


def test_a_call_alone_takes_the_session_measured_faster_and_keeps_measuring_the_other():
    choice = SessionChoice()
    assert choice.pick() is True  # each session is tried before either is preferred
    choice.record(True, 0.010, 10)
    assert choice.pick() is False
    choice.record(False, 0.020, 10)
    picks = [choice.pick() for _ in range(2 * SessionChoice.PROBE_EVERY)]
    assert picks.count(False) == 2  # the slower one, once in PROBE_EVERY calls
    for _ in range(20):  # the machine got busy: spinning threads lose their core
        choice.record(True, 0.050, 10)
    picks = [choice.pick() for _ in range(2 * SessionChoice.PROBE_EVERY)]
    assert picks.count(True) == 2
