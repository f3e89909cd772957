"""One typed, validated settings object. Every default lives here, in the dataclasses below.

Load order, each step overriding the one before:

1. the code defaults (this module);
2. one TOML file: ``--config`` / ``QABOT_CONFIG`` if given, else the checkout's
   ``config/default.toml`` when qabot runs from a source checkout (never when installed);
3. environment variables ``QABOT_<KEY>``. Key names are unique across sections, so the variable
   does not name the section (``QABOT_INDEX``, ``QABOT_TOP_K``), except for the sections in
   `SECTION_ENV_PREFIXES`, whose generic key names read better with it (``QABOT_LLM_ENABLED``).

Relative paths in a TOML file resolve from that file's folder, so a config file means the same
thing from any working directory. Relative paths from the code defaults, the environment or
``--index`` resolve from the current directory, as a user typing them expects.

Every value is checked on load (type, allowed values, range) and every unknown key is refused, each
with a one-line :class:`SettingsError` that names the key and what it accepts: a typo fails at
start-up, not on the first question. ``config/default.toml`` documents every key with its default;
a test keeps it equal to the code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Mapping, get_type_hints

from embeddings.errors import QabotError

from .settings_types import COLLECTION_PATTERN, EVERY_COLLECTION, ChannelMap, coerce, type_name

#: The folder holding ``bot/``: a source checkout's root, or ``site-packages`` when installed.
_CODE_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "QABOT_"
CONFIG_ENV = "QABOT_CONFIG"

RETRIEVAL_MODES = ("hybrid", "dense", "keyword")
FUSIONS = ("score", "rrf", "milvus-rrf", "milvus-weighted")
CHUNK_VECTORS = ("sentences", "text")
ENCODER_BACKENDS = ("torch", "onnx")
# Where the shared state lives (bot/state_store.py opens it; bot/slack/store.py, redis_state.py) and the
# index's vectors and keywords (embeddings/vectors.py, embeddings/milvus.py): docs/scale-out.md.
STATE_BACKENDS = ("sqlite", "redis")
# What the Slack app does with a message when the state store cannot record it (docs/state.md).
ON_UNAVAILABLE = ("answer", "drop")
STORE_BACKENDS = ("faiss", "milvus")
MILVUS_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8")
MAX_PORT = 65535
# Sections whose environment variables name the section: QABOT_LLM_ENABLED, not QABOT_ENABLED.
SECTION_ENV_PREFIXES = {"llm": "LLM_", "report": "REPORT_"}
# An environment variable's name (what [llm] api_key_env holds; never the key itself).
ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
# all-MiniLM-L6-v2 has 512 position embeddings: longer inputs cannot be encoded.
MODEL_MAX_POSITIONS = 512


class SettingsError(QabotError, ValueError):
    """A setting is unknown, of the wrong type or out of range; or the config file is unreadable."""


@dataclass(frozen=True)
class Rule:
    """What one setting accepts beyond its type: a set of values or a numeric range."""

    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    prefixes: tuple[str, ...] = ()  # a string must start with one of these ("http://", ...)
    pattern: str | None = None  # ... or match this regular expression in full, which means `what`
    what: str = ""
    echo: bool = True  # off where a secret may be put by mistake: errors then never quote the value

    def violation(self, value: Any) -> str | None:
        """Why `value` breaks the rule ("must be ..."), or None when it is fine."""
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.prefixes and not str(value).startswith(self.prefixes):
            return f"must start with {' or '.join(self.prefixes)}"
        items = value if isinstance(value, tuple) else (value,)  # a list's rule applies to each item
        if self.pattern is not None and not all(re.fullmatch(self.pattern, str(v)) for v in items):
            return f"must be {self.what or 'of the form ' + self.pattern}"
        if self.minimum is not None and self.maximum is not None:
            if not self.minimum <= value <= self.maximum:
                return f"must be between {_num(self.minimum)} and {_num(self.maximum)}"
        elif self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                return f"must be greater than {_num(self.minimum)}"
            if not self.exclusive_minimum and value < self.minimum:
                return f"must be at least {_num(self.minimum)}"
        return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _setting(default: Any, **rule: Any) -> Any:
    """A dataclass field with its default and its :class:`Rule`."""
    return field(default=default, metadata={"rule": Rule(**rule)})


POSITIVE = {"minimum": 0, "exclusive_minimum": True}
NON_NEGATIVE = {"minimum": 0}
AT_LEAST_ONE = {"minimum": 1}
FRACTION = {"minimum": 0, "maximum": 1}
COLLECTION_NAMES = {"pattern": COLLECTION_PATTERN,
                    "what": 'collection names (lower-case letters, digits, - _ .) or "*" (every collection)'}


@dataclass(frozen=True)
class PathSettings:
    index: Path = Path("data/index")
    sample: Path = Path("data/articles")
    feedback_log: Path = Path("data/feedback.jsonl")
    # Messages already answered and threads the bot answers in (SQLite, shared by every process).
    state_db: Path = Path("data/state.sqlite3")


@dataclass(frozen=True)
class ModelSettings:
    model_name: str = "all-MiniLM-L6-v2"
    # ONNX for ingest too: 1.6x less CPU than torch for the same vectors (cosine > 0.999), and no
    # torch import; measured side by side in `make bench` (bench/README.md, "Ingest encoder").
    ingest_backend: str = _setting("onnx", choices=ENCODER_BACKENDS)
    query_backend: str = _setting("onnx", choices=ENCODER_BACKENDS)
    batch_size: int = _setting(32, **AT_LEAST_ONE)
    max_seq_length: int = _setting(256, minimum=1, maximum=MODEL_MAX_POSITIONS)


@dataclass(frozen=True)
class ChunkingSettings:
    chunk_words: int = _setting(120, **AT_LEAST_ONE)
    sentence_overlap: int = _setting(1, **NON_NEGATIVE)
    # How a new index makes a chunk's vector: "sentences" embeds each sentence once (title before
    # it, as the answer step does) and pools them, weighted by length; "text" embeds the whole
    # chunk. Recorded in the index: an existing index keeps its own (bench/README.md, "Ingest encoder").
    chunk_vectors: str = _setting("sentences", choices=CHUNK_VECTORS)


@dataclass(frozen=True)
class IngestSettings:
    max_document_mb: float = _setting(20.0, **POSITIVE)
    lock_timeout_s: float = _setting(30.0, **NON_NEGATIVE)
    # `/ask add <url>` from Slack may fetch loopback, private, link-local and cloud-metadata
    # addresses (off: refused after DNS resolution and on every redirect). `qabot ingest URL`
    # always may: its operator can reach those anyway.
    allow_private_urls: bool = False


@dataclass(frozen=True)
class RetrievalSettings:
    top_k: int = _setting(5, **AT_LEAST_ONE)
    candidates: int = _setting(40, **AT_LEAST_ONE)
    mode: str = _setting("hybrid", choices=RETRIEVAL_MODES)
    fusion: str = _setting("score", choices=FUSIONS)
    dense_weight: float = _setting(0.6, **FRACTION)
    rrf_k: int = _setting(60, **NON_NEGATIVE)


@dataclass(frozen=True)
class AnswerSettings:
    max_sentences: int = _setting(2, **AT_LEAST_ONE)
    max_question_chars: int = _setting(500, **AT_LEAST_ONE)
    sentence_dense_weight: float = _setting(0.6, **NON_NEGATIVE)
    sentence_keyword_weight: float = _setting(0.4, **NON_NEGATIVE)
    sentence_rank_weight: float = _setting(0.05, **NON_NEGATIVE)
    judge: str = _setting("learned", choices=("learned", "rules"))
    min_sentence_score: float = 0.63
    keyword_bonus: float = _setting(0.5, **NON_NEGATIVE)
    unknown_penalty: float = _setting(0.2, **NON_NEGATIVE)
    missing_name_penalty: float = _setting(0.2, **NON_NEGATIVE)
    min_passage_score: float = _setting(0.1, minimum=-1, maximum=1)
    lexical_answers: bool = True
    show_nearest_on_abstain: bool = True


@dataclass(frozen=True)
class SlackSettings:
    allowed_channels: tuple[str, ...] = ()
    slash_ephemeral: bool = True
    workers: int = _setting(8, **AT_LEAST_ONE)
    answer_timeout_s: float = _setting(30.0, **POSITIVE)
    dedupe_ttl_s: float = _setting(900.0, **POSITIVE)
    dedupe_max_entries: int = _setting(20000, **AT_LEAST_ONE)
    # HTTP mode only. Every interface, as before this setting existed: a container or a proxy on
    # another host must reach the bot, and every request is signature-checked anyway.
    host: str = "0.0.0.0"
    port: int = _setting(3000, minimum=1, maximum=MAX_PORT)
    # Answer people from other organisations in Slack Connect channels (off: they get a one-line refusal).
    answer_external_users: bool = False
    # Q&A channels: every top-level question there is answered without a mention (bot/slack/intent.py).
    qa_channels: tuple[str, ...] = ()
    # User ids who see the feedback tally on the bot's Home tab.
    admin_users: tuple[str, ...] = ()
    # A reply is streamed (chat.startStream) once its text has been arriving this long (seconds).
    stream_after_s: float = _setting(1.0, **NON_NEGATIVE)
    # Document collections each channel answers from (channel id -> names; "*": all), those of
    # channels not listed, and those of DMs and the assistant panel (bot/slack/collections.py).
    channel_collections: ChannelMap = field(default_factory=dict)
    default_collections: tuple[str, ...] = _setting((EVERY_COLLECTION,), **COLLECTION_NAMES)
    dm_collections: tuple[str, ...] = _setting((EVERY_COLLECTION,), **COLLECTION_NAMES)


@dataclass(frozen=True)
class LlmSettings:
    """Composed answers from an OpenAI-compatible server (docs/composed-answers.md). Off by
    default; the key is read from the variable `api_key_env` names, never from a file."""

    enabled: bool = False
    base_url: str = _setting("https://api.openai.com/v1", prefixes=("http://", "https://"))
    model: str = "gpt-4o-mini"
    api_key_env: str = _setting("OPENAI_API_KEY", pattern=ENV_NAME_PATTERN,
                                what="the name of an environment variable (letters, digits, _)",
                                echo=False)
    connect_timeout_s: float = _setting(5.0, **POSITIVE)
    # Per request, and the longest wait for the next streamed piece. With max_retries, chosen so a
    # hung server gives way to the extractive answer within [slack] answer_timeout_s (30 s).
    request_timeout_s: float = _setting(12.0, **POSITIVE)
    # Retries of a timeout, a 5xx or a 429 (with the server's Retry-After), by the openai client.
    max_retries: int = _setting(1, minimum=0, maximum=10)
    max_tokens: int = _setting(400, minimum=16, maximum=8192)
    temperature: float = _setting(0.0, minimum=0, maximum=2)


@dataclass(frozen=True)
class StateSettings:
    # "sqlite": state_db and feedback_log, shared by the processes of one host (the default);
    # "redis": one Redis shared by replicas on several hosts (answered messages, thread memory, votes).
    state_backend: str = _setting("sqlite", choices=STATE_BACKENDS)
    # redis://[:password@]host:port/db (rediss:// for TLS). Never logged with its password.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # When the state store cannot record a message: "answer" it anyway, guarded by its Slack
    # thread (two replicas may race in that window), or "drop" it (logged). docs/state.md.
    on_unavailable: str = _setting("answer", choices=ON_UNAVAILABLE)


@dataclass(frozen=True)
class StoreSettings:
    # "faiss": vectors, chunk texts and BM25 in the index folder, in RAM (the default);
    # "milvus": vectors and BM25 full-text search in a Milvus collection.
    store_backend: str = _setting("faiss", choices=STORE_BACKENDS)
    # Milvus only: "http://host:19530" for a server, or a milvus-lite file (relative: inside the index folder).
    store_uri: str = "milvus.db"
    collection: str = "qabot_chunks"
    # Milvus dense index: FLAT is exact (as FAISS below 50k chunks); HNSW for large collections.
    milvus_index: str = _setting("FLAT", choices=MILVUS_INDEX_TYPES)


@dataclass(frozen=True)
class ReportSettings:
    # `qabot report` (docs/report.md): a question's text and vector are kept only with keep_questions.
    keep_questions: bool = True
    retention_days: float = _setting(30.0, **POSITIVE)  # every record is deleted after this


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    state: StateSettings = field(default_factory=StateSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    def replace(self, section: str, **changes: Any) -> "Settings":
        """A copy with some keys of one section changed (settings objects are immutable)."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


@dataclass(frozen=True)
class Key:
    """One setting: its section, name, declared type and rule."""

    section: str
    name: str
    kind: Any
    rule: Rule

    @property
    def env(self) -> str:
        return ENV_PREFIX + SECTION_ENV_PREFIXES.get(self.section, "") + self.name.upper()


def section_types() -> dict[str, type]:
    """Section name -> its dataclass, in declaration order."""
    return dict(_section_types())


def all_keys() -> Iterator[Key]:
    """Every setting, section by section, in declaration order."""
    return iter(_all_keys())


# Worked out once a process: `get_type_hints` evaluates every annotation of a class (they are
# strings here) each time it is called, and loading the settings asked for them 38 times, about
# half of `load_settings`'s time on every start-up. The classes never change once defined.
@cache
def _section_types() -> tuple[tuple[str, type], ...]:
    hints = get_type_hints(Settings)
    return tuple((f.name, hints[f.name]) for f in fields(Settings))


@cache
def _all_keys() -> tuple[Key, ...]:
    keys = []
    for section, cls in _section_types():
        hints = get_type_hints(cls)
        keys += [Key(section, f.name, hints[f.name], f.metadata.get("rule", Rule())) for f in fields(cls)]
    return tuple(keys)


def checkout_config() -> Path | None:
    """``config/default.toml`` of the source checkout this code runs from; None when installed."""
    candidate = _CODE_ROOT / "config" / "default.toml"
    if (_CODE_ROOT / "pyproject.toml").is_file() and candidate.is_file():
        return candidate
    return None


def _checked(key: Key, value: Any, source: str, base: Path | None = None) -> Any:
    """The coerced, validated value, or a one-line SettingsError naming the key and its source."""
    try:
        value = coerce(value, key.kind, base)
    except (TypeError, ValueError):
        got = f"; got {value!r}" if key.rule.echo else ""
        raise SettingsError(f"setting {key.name} ({source}) must be {type_name(key.kind)}{got}") from None
    _validate(key, value, source)
    return value


def _validate(key: Key, value: Any, source: str) -> None:
    """Apply the key's rule to a value of the right type."""
    if key.kind is str and not value.strip():
        raise SettingsError(f"setting {key.name} ({source}) must not be empty")
    problem = key.rule.violation(value)
    if problem:
        got = f"; got {value!r}" if key.rule.echo else " (the value is not shown: it may be a secret)"
        raise SettingsError(f"setting {key.name} ({source}) {problem}{got}")


def _suggest(name: str, known: list[str]) -> str:
    import difflib  # here: only a mistyped key needs it, not every start-up

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise SettingsError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def _file_values(path: Path) -> dict[tuple[str, str], Any]:
    """(section, key) -> checked value for every key the file sets; unknown ones are refused."""
    raw = _read_file(path)
    sections = section_types()
    keys = {(k.section, k.name): k for k in all_keys()}
    values: dict[tuple[str, str], Any] = {}
    for section, table in raw.items():
        owner = [k.section for k in keys.values() if k.name == section]
        if owner and not isinstance(table, dict):
            raise SettingsError(f"setting {section} in {path} must sit under its section [{owner[0]}]")
        if section not in sections:
            raise SettingsError(f"unknown section [{section}] in {path}{_suggest(section, list(sections))}; "
                                f"sections: {', '.join(sections)}")
        if not isinstance(table, dict):
            raise SettingsError(f"[{section}] in {path} must be a table of settings")
        known = [name for (sec, name) in keys if sec == section]
        for name, value in table.items():
            if (section, name) not in keys:
                raise SettingsError(f"unknown setting {name} in [{section}] of {path}"
                                    f"{_suggest(name, known)}; known: {', '.join(known)}")
            values[section, name] = _checked(keys[section, name], value, f"[{section}] in {path}",
                                             base=path.parent)
    return values


def _env_values(environ: Mapping[str, str]) -> dict[tuple[str, str], Any]:
    """(section, key) -> checked value for every ``QABOT_<KEY>`` set; unknown names are refused."""
    by_env = {k.env: k for k in all_keys()}
    values: dict[tuple[str, str], Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = by_env.get(name)
        if key is None:
            raise SettingsError(f"unknown setting {name}{_suggest(name, list(by_env))}; every key is "
                                "listed in config/default.toml (README, \"Configuration\")")
        values[key.section, key.name] = _checked(key, value, name)
    return values


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Code defaults, then one config file, then ``QABOT_<KEY>`` variables; all validated.

    The file is `config_file`, else ``QABOT_CONFIG`` from `environ`, else the checkout's
    ``config/default.toml`` (none when installed: the code defaults then stand alone)."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV]).expanduser()
    if config_file is None:
        config_file = checkout_config()
    values = _file_values(Path(config_file)) if config_file is not None else {}
    values.update(_env_values(environ))
    for key in all_keys():  # the code defaults obey the same rules (a test guards edits)
        if (key.section, key.name) not in values:
            _validate(key, getattr(getattr(Settings(), key.section), key.name), "code default")
    sections = {
        section: cls(**{name: value for (sec, name), value in values.items() if sec == section})
        for section, cls in section_types().items()
    }
    return Settings(**sections)
