"""The thread pools behind the Slack app: a fixed pool of daemon threads that can give up on a
stalled task, and the time limit every answer runs under."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, TypeVar

from embeddings.errors import QabotError

log = logging.getLogger(__name__)

T = TypeVar("T")


class AnswerTimeout(QabotError):
    """An answer took longer than ``settings.slack.answer_timeout_s`` and was abandoned."""


class WorkerPool(Executor):
    """A fixed pool of daemon threads (a stuck Answerer call can't block process exit, unlike
    `ThreadPoolExecutor`), counting tasks so tests and shutdown can wait for quiet."""

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False
        self._name = name
        self._serial = max(1, workers)
        # Tasks running now, by future: their thread; threads abandoned to a stalled task.
        self._running: dict[Future, threading.Thread] = {}
        self._abandoned: set[threading.Thread] = set()
        self.max_abandoned = max(1, workers)
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._idle:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._pending += 1
        self._queue.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            me = threading.current_thread()
            try:
                with self._idle:
                    self._running[future] = me
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # handed to whoever waits on the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._idle:
                    self._running.pop(future, None)
                    abandoned = me in self._abandoned
                    if abandoned:
                        self._abandoned.discard(me)  # its task was already counted as done
                    else:
                        self._pending -= 1
                    self._idle.notify_all()
            if abandoned:
                return  # a replacement took this thread's place in the pool

    def abandon(self, future: Future) -> bool:
        """Give up on a stalled task: its thread is left to finish it alone (and then exit) and a
        new thread takes its place, so a stuck call can't hold a worker. At most `max_abandoned`
        threads are abandoned at once (beyond that the task keeps its worker). True if replaced."""
        if future.cancel():
            return True  # it had not started: nothing holds a worker
        with self._idle:
            thread = self._running.get(future)
            if (thread is None or thread in self._abandoned or self._closed
                    or len(self._abandoned) >= self.max_abandoned):
                return False
            self._abandoned.add(thread)
            self._pending -= 1
            self._threads.remove(thread)
            replacement = threading.Thread(target=self._run, name=f"{self._name}-{self._serial}", daemon=True)
            self._serial += 1
            self._threads.append(replacement)
            self._idle.notify_all()
        replacement.start()
        log.warning("abandoned a stalled task in %s; %d thread(s) now stalled", thread.name, len(self._abandoned))
        return True

    @property
    def pending(self) -> int:
        with self._idle:
            return self._pending

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no task is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None) -> None:
        with self._idle:
            if self._closed:
                return
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def call_within(pool: WorkerPool, timeout_s: float, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` run in `pool`; past `timeout_s` the task is abandoned (its worker replaced, so
    a stuck call can't hold one) and `AnswerTimeout` raised."""
    future = pool.submit(fn, *args)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        pool.abandon(future)
        raise AnswerTimeout() from None
