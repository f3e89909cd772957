"""The one error the Slack transport raises to its caller (the CLI prints it as one line)."""

from __future__ import annotations

from embeddings.errors import QabotError


class SlackConfigError(QabotError):
    """The Slack connection is not configured or Slack refused it (the message never holds a secret)."""
