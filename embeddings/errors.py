"""Errors a user can act on. Each carries a one-line message; front ends print it and exit non-zero."""


class QabotError(Exception):
    """Base of every user-facing error: the message is one line and says what to do."""


class DocumentError(QabotError):
    """A document cannot be read or holds no text (missing, binary, undecodable, empty)."""


class IndexError_(QabotError):
    """The index directory is missing, empty, corrupt or incompatible."""


class IndexNotFoundError(IndexError_):
    """No index has been built at this path yet."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, dimension or format version."""


class IndexCorruptError(IndexError_):
    """A file of the index is missing, truncated or altered."""


class IndexLockedError(IndexError_):
    """Another ingest holds the index lock."""
