"""How a setting's value from a TOML file or the environment becomes its declared type
(settings.py declares the settings; this module converts and names their types)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

# A document collection's name (embeddings/collections.py, NAME_PATTERN), or "*": every collection.
EVERY_COLLECTION = "*"
COLLECTION_PATTERN = r"\*|[a-z0-9][a-z0-9_.-]{0,63}"
# The type of a table of channel id -> collection names ([slack] channel_collections).
ChannelMap = dict[str, tuple[str, ...]]


def type_name(kind: Any) -> str:
    if kind == ChannelMap:
        return ('a table of channel id = [collection names] (in the environment as JSON, {"C123": ["hr"]}; '
                'names: lower-case letters, digits, - _ . or "*")')
    return {bool: "true or false", int: "an integer", float: "a number", Path: "a path",
            str: "a string"}.get(kind, "a list of strings")


def channel_map(value: Any, from_env: bool) -> ChannelMap:
    """A channel -> collections table from TOML, or from JSON text in the environment."""
    table = json.loads(value) if from_env else value
    if not isinstance(table, dict):
        raise ValueError(value)
    checked: ChannelMap = {}
    for channel, names in table.items():
        if not isinstance(channel, str) or not channel.strip() or not isinstance(names, list) or \
                not all(isinstance(n, str) and re.fullmatch(COLLECTION_PATTERN, n) for n in names):
            raise ValueError(value)
        checked[channel.strip()] = tuple(names)
    return checked


def coerce(value: Any, kind: Any, base: Path | None) -> Any:
    """A TOML or environment value as the declared type; ValueError when it is not one.

    Environment values are text, so text converts; a TOML file has types, so there ``"3"`` is not
    an integer. `base` is the folder relative paths resolve from: a config file's, or None for the
    environment."""
    from_env = base is None and isinstance(value, str)
    if kind is bool:
        if isinstance(value, bool):
            return value
        lowered = value.strip().lower() if from_env else None
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(value)
    if kind is int:
        if isinstance(value, (bool, float)) or (isinstance(value, str) and not from_env):
            raise ValueError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool) or (isinstance(value, str) and not from_env):
            raise ValueError(value)
        return float(value)
    if kind is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(value)
        path = Path(value).expanduser()
        return Path(os.path.normpath(base / path)) if base is not None and not path.is_absolute() else path
    if kind == ChannelMap:
        return channel_map(value, from_env)
    if kind == tuple[str, ...]:
        if from_env:
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise ValueError(value)
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError(value)
    return value
