"""The two contracts at the heart of the Slack app: what it needs from an answerer, and the one
normalised question every entry point (mention, DM, thread follow-up, assistant panel, ``/ask``)
is turned into before it is answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

from ..answering.answer import Answer
from .blocks import Message


@runtime_checkable
class AnswersQuestions(Protocol):
    """Anything that answers a question given the earlier questions of its conversation.

    `bot.answering.answerer.Answerer` is the real one; tests wrap it to spy on or stall calls.
    An answerer may also expose ``index.documents`` (their titles become the assistant's
    suggested prompts) and ``warm()`` (the CLI calls it once connected); the app needs neither.
    A channel mapped to some document collections calls ``ask(..., collections=names)``
    (channel_collections.py); an answerer that cannot limit its documents so fails that call,
    and the channel gets an apology, never an answer from every document.
    """

    def ask(self, question: str, history: Sequence[str] = ()) -> Answer:
        """The answer to `question`; `history` holds the conversation's earlier questions, oldest first."""
        ...


# Posts one rendered message to wherever the question came from (a thread, a DM, a response_url).
Post = Callable[[Message], None]


@dataclass(frozen=True)
class SlackQuestion:
    """A question from any entry point, ready for `replies.answer_and_post`."""

    text: str  # plain text: Slack markup and the bot's own mention removed
    history: tuple[str, ...]  # earlier questions in the same conversation, oldest first
    post: Post  # where the answer (or apology) goes
    where: str  # channel/thread ids for the logs; never the question itself
    asked_by: str | None = None  # shown as "<@user> asked" when the reply is public (/ask)
    echo_question: bool = False  # repeat the question above the answer (/ask has no visible question)
    # The document collections it may be answered from (channel_collections.py); None: all.
    collections: tuple[str, ...] | None = None
