"""Settings: code defaults, the documented config file, environment overrides, validation."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, all_keys, checkout_config, load_settings

from .conftest import ROOT

DEFAULT_TOML = ROOT / "config" / "default.toml"


def _default(section: str, name: str):
    return getattr(getattr(Settings(), section), name)


def test_config_file_documents_every_key_with_the_code_default():
    raw = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    documented = {(section, name) for section, table in raw.items() for name in table}
    in_code = {(key.section, key.name) for key in all_keys()}
    assert documented == in_code, "config/default.toml and bot/settings.py list different keys"
    for key in all_keys():
        value = raw[key.section][key.name]
        default = _default(key.section, key.name)
        if key.kind is Path:  # relative to config/, so from the project root it is the code default
            assert Path(os.path.normpath(DEFAULT_TOML.parent / value)) == ROOT / default, key.name
        elif key.kind == tuple[str, ...]:
            assert tuple(value) == default, key.name
        else:
            assert value == default and type(value) in (type(default), int), key.name


def test_every_key_has_a_comment_in_the_config_file():
    """A comment line sits between a key and the key or section before it (pairs may share one)."""
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=\[)", text)
    for block in blocks[1:]:
        groups = re.split(r"\n(?:[a-z_]+ = .*\n)+", block + "\n")
        for group in groups[:-1]:
            assert "#" in group, f"undocumented key after: {group!r}"


def test_in_the_checkout_the_config_file_is_read_and_equals_the_code_defaults():
    assert checkout_config() == DEFAULT_TOML
    settings = load_settings(environ={})
    code = Settings()
    assert settings.paths.index == ROOT / "data" / "index"
    assert settings.paths.sample == ROOT / "data" / "articles"
    assert settings.replace("paths", **{f: Path(os.path.relpath(getattr(settings.paths, f), ROOT))
                                        for f in ("index", "sample", "feedback_log", "state_db")}) == code


def test_an_empty_config_file_gives_the_code_defaults(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_settings(empty, environ={}) == Settings()
    assert load_settings(environ={"QABOT_CONFIG": str(empty)}) == Settings()


def test_relative_paths_in_a_config_file_resolve_from_its_folder(tmp_path):
    config = tmp_path / "etc" / "qabot.toml"
    config.parent.mkdir()
    config.write_text('[paths]\nindex = "../var/index"\nsample = "/abs/articles"\n')
    settings = load_settings(config, environ={})
    assert settings.paths.index == tmp_path / "var" / "index"
    assert settings.paths.sample == Path("/abs/articles")
    # Environment paths are the user's own: relative to where they run qabot.
    assert load_settings(config, environ={"QABOT_INDEX": "here"}).paths.index == Path("here")


def test_environment_overrides_by_key_name():
    settings = load_settings(environ={"QABOT_INDEX": "/srv/idx", "QABOT_TOP_K": "9",
                                      "QABOT_ALLOWED_CHANNELS": "C1, C2", "QABOT_SLASH_EPHEMERAL": "no",
                                      "QABOT_HOST": "127.0.0.1", "QABOT_DENSE_WEIGHT": "1"})
    assert settings.paths.index == Path("/srv/idx")
    assert settings.retrieval.top_k == 9
    assert settings.slack.allowed_channels == ("C1", "C2")
    assert settings.slack.slash_ephemeral is False
    assert settings.slack.host == "127.0.0.1"
    assert settings.retrieval.dense_weight == 1.0


@pytest.mark.parametrize("env, message", [
    ({"QABOT_FUSION": "bogus"}, "setting fusion (QABOT_FUSION) must be one of score, rrf, milvus-rrf, milvus-weighted; got 'bogus'"),
    ({"QABOT_MODE": "vector"}, "setting mode (QABOT_MODE) must be one of hybrid, dense, keyword; got 'vector'"),
    ({"QABOT_QUERY_BACKEND": "tf"}, "setting query_backend (QABOT_QUERY_BACKEND) must be one of torch, onnx; got 'tf'"),
    ({"QABOT_DENSE_WEIGHT": "7"}, "setting dense_weight (QABOT_DENSE_WEIGHT) must be between 0 and 1; got 7.0"),
    ({"QABOT_TOP_K": "0"}, "setting top_k (QABOT_TOP_K) must be at least 1; got 0"),
    ({"QABOT_TOP_K": "many"}, "setting top_k (QABOT_TOP_K) must be an integer; got 'many'"),
    ({"QABOT_PORT": "70000"}, "setting port (QABOT_PORT) must be between 1 and 65535; got 70000"),
    ({"QABOT_ANSWER_TIMEOUT_S": "0"}, "setting answer_timeout_s (QABOT_ANSWER_TIMEOUT_S) must be greater than 0; got 0.0"),
    ({"QABOT_LEXICAL_ANSWERS": "maybe"}, "setting lexical_answers (QABOT_LEXICAL_ANSWERS) must be true or false; got 'maybe'"),
    ({"QABOT_HOST": " "}, "setting host (QABOT_HOST) must not be empty"),
    ({"QABOT_TOPK": "3"}, "unknown setting QABOT_TOPK (did you mean QABOT_TOP_K?)"),
    ({"QABOT_LLM_BASE_URL": "localhost:11434"},
     "setting base_url (QABOT_LLM_BASE_URL) must start with http:// or https://; got 'localhost:11434'"),
    ({"QABOT_LLM_ENABLED": "sometimes"}, "setting enabled (QABOT_LLM_ENABLED) must be true or false"),
    ({"QABOT_LLM_TEMPERATURE": "3"}, "setting temperature (QABOT_LLM_TEMPERATURE) must be between 0 and 2"),
    ({"QABOT_LLM_MAX_TOKENS": "4"}, "setting max_tokens (QABOT_LLM_MAX_TOKENS) must be between 16 and 8192"),
    ({"QABOT_LLM_REQUEST_TIMEOUT_S": "0"}, "setting request_timeout_s (QABOT_LLM_REQUEST_TIMEOUT_S) must be greater than 0"),
    ({"QABOT_ENABLED": "1"}, "unknown setting QABOT_ENABLED (did you mean QABOT_LLM_ENABLED?)"),
])
def test_bad_environment_values_fail_in_one_line(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


@pytest.mark.parametrize("content, fragment", [
    ("[retrieval]\ntop_kk = 3\n", "unknown setting top_kk in [retrieval] of"),
    ("[retrieval]\ntop_kk = 3\n", "did you mean top_k?"),
    ("[retreival]\ntop_k = 3\n", "unknown section [retreival]"),
    ("[retrieval]\nfusion = \"bogus\"\n", "setting fusion ([retrieval] in"),
    ("[retrieval]\ntop_k = \"3\"\n", "must be an integer; got '3'"),
    ("[retrieval]\ntop_k = 2.5\n", "must be an integer; got 2.5"),
    ("[slack]\nallowed_channels = \"C1\"\n", "must be a list of strings"),
    ("[retrieval\n", "not valid TOML"),
    ("top_k = 3\n", "must sit under its section [retrieval]"),
])
def test_bad_config_files_fail_in_one_line(tmp_path, content, fragment):
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ={})
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="config file not found: .*nowhere.toml"):
        load_settings(environ={"QABOT_CONFIG": str(tmp_path / "nowhere.toml")})


def test_keys_are_unique_across_sections():
    names = [key.name for key in all_keys()]
    assert len(names) == len(set(names))


def test_allowed_values_are_what_the_code_implements():
    """The settings' enums and the registries that implement them name the same things."""
    from bot.answering import fusion
    from bot.settings import CHUNK_VECTORS, FUSIONS, RETRIEVAL_MODES
    from embeddings import index

    assert set(FUSIONS) == set(fusion.FUSIONS)
    assert set(RETRIEVAL_MODES) == set(fusion.MODES)
    assert set(CHUNK_VECTORS) == set(index.CHUNK_VECTORS)


def test_the_llm_section_is_switched_on_from_the_environment():
    settings = load_settings(environ={"QABOT_LLM_ENABLED": "1", "QABOT_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
                                      "QABOT_LLM_MODEL": "llama3.2:3b", "QABOT_LLM_API_KEY_ENV": "OLLAMA_KEY",
                                      "QABOT_LLM_MAX_RETRIES": "0"})
    llm = settings.llm
    assert (llm.enabled, llm.base_url, llm.model, llm.api_key_env, llm.max_retries) == (
        True, "http://127.0.0.1:11434/v1", "llama3.2:3b", "OLLAMA_KEY", 0)
    assert Settings().llm.enabled is False  # the offline extractive answer stays the default


@pytest.mark.parametrize("where", ["env", "file"])
def test_an_api_key_put_where_its_variable_name_belongs_is_refused_without_echoing_it(tmp_path, where):
    key = "sk-proj-QBsecLLMkeyA1b2C3d4E5f6G7h8"
    if where == "env":
        loading = lambda: load_settings(environ={"QABOT_LLM_API_KEY_ENV": key})
    else:
        config = tmp_path / "c.toml"
        config.write_text(f'[llm]\napi_key_env = "{key}"\n')
        loading = lambda: load_settings(config, environ={})
    with pytest.raises(SettingsError) as caught:
        loading()
    text = str(caught.value)
    assert "api_key_env" in text and "name of an environment variable" in text
    assert key not in text and "QBsecLLM" not in text and "\n" not in text
