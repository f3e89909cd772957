"""One typed settings object, loaded from ``config/default.toml`` and overridden by the environment.

Every key lives in a section of the TOML file, and every key name is unique across sections, so an
environment variable ``QABOT_<KEY>`` overrides it without naming the section (``QABOT_INDEX``,
``QABOT_TOP_K``). ``QABOT_CONFIG`` names another TOML file to start from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"


class SettingsError(ValueError):
    """A setting is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class PathSettings:
    index: Path = Path("data/index")
    sample: Path = Path("data/articles")
    feedback_log: Path = Path("data/feedback.jsonl")


@dataclass(frozen=True)
class ModelSettings:
    model_name: str = "all-MiniLM-L6-v2"
    ingest_backend: str = "torch"
    query_backend: str = "onnx"
    batch_size: int = 32
    max_seq_length: int = 256


@dataclass(frozen=True)
class ChunkingSettings:
    chunk_words: int = 120
    sentence_overlap: int = 1


@dataclass(frozen=True)
class IngestSettings:
    max_document_mb: float = 20.0
    lock_timeout_s: float = 30.0


@dataclass(frozen=True)
class RetrievalSettings:
    top_k: int = 5
    candidates: int = 40
    mode: str = "hybrid"
    fusion: str = "score"
    dense_weight: float = 0.6
    rrf_k: int = 60


@dataclass(frozen=True)
class AnswerSettings:
    max_sentences: int = 2
    max_question_chars: int = 500
    sentence_dense_weight: float = 0.6
    sentence_keyword_weight: float = 0.4
    sentence_rank_weight: float = 0.05
    min_sentence_score: float = 0.63
    keyword_bonus: float = 0.5
    unknown_penalty: float = 0.2
    missing_name_penalty: float = 0.2
    min_passage_score: float = 0.1
    lexical_answers: bool = True
    show_nearest_on_abstain: bool = True


@dataclass(frozen=True)
class SlackSettings:
    allowed_channels: tuple[str, ...] = ()
    slash_ephemeral: bool = True
    workers: int = 8
    answer_timeout_s: float = 30.0
    dedupe_ttl_s: float = 900.0
    dedupe_max_entries: int = 20000
    port: int = 3000


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)

    def replace(self, section: str, **changes: Any) -> "Settings":
        """A copy with some keys of one section changed (settings objects are immutable)."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Turn a TOML or environment value into the declared type, or say which key is wrong."""
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in {"1", "true", "yes", "on"}:
                    return True
                if lowered in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(value)
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is Path:
            return Path(value)
        if kind == tuple[str, ...]:
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            return tuple(str(part) for part in value)
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key!r} has an invalid value {value!r}") from None


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (``QABOT_CONFIG`` or the default), then apply ``QABOT_<KEY>`` overrides."""
    environ = os.environ if environ is None else environ
    path = config_file or Path(environ.get("QABOT_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None

    sections: dict[str, Any] = {}
    for section_field in fields(Settings):
        section_cls = section_field.type if isinstance(section_field.type, type) else None
        section_cls = section_cls or get_type_hints(Settings)[section_field.name]
        hints = get_type_hints(section_cls)
        given = dict(raw.pop(section_field.name, {}) or {})
        values: dict[str, Any] = {}
        for key_field in fields(section_cls):
            key = key_field.name
            if key in given:
                values[key] = _coerce(given.pop(key), hints[key], key)
            env_value = environ.get(f"QABOT_{key.upper()}")
            if env_value is not None:
                values[key] = _coerce(env_value, hints[key], f"QABOT_{key.upper()}")
        if given:
            raise SettingsError(f"unknown setting(s) in [{section_field.name}]: {', '.join(sorted(given))}")
        sections[section_field.name] = section_cls(**values)
    if raw:
        raise SettingsError(f"unknown section(s) in {path}: {', '.join(sorted(raw))}")
    return Settings(**sections)
