"""Errors a user can act on. Each carries a one-line message; front ends print it and exit non-zero.

`QabotError` is the one root of every error qabot raises on purpose (settings, documents, index,
Milvus, Slack configuration, the LLM, answer time-outs, evaluation data, the CLI's `Failure`), so a
front end catches that family in one place (`bot.cli_common.run`). It lives here, in a module that
imports nothing, because `embeddings` must not import `bot` and `bot` imports `embeddings`.
"""


class QabotError(Exception):
    """Base of every user-facing error: the message is one line and says what to do."""


class DocumentError(QabotError):
    """A document cannot be read or holds no text (missing, binary, undecodable, empty)."""


class IndexUnusableError(QabotError):
    """The index directory is missing, empty, corrupt or incompatible."""


class IndexNotFoundError(IndexUnusableError):
    """No index has been built at this path yet."""


class IndexMismatchError(IndexUnusableError):
    """The index was built with another model, dimension or format version."""


class IndexCorruptError(IndexUnusableError):
    """A file of the index is missing, truncated or altered."""


class IndexLockedError(IndexUnusableError):
    """Another ingest holds the index lock."""
