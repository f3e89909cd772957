"""Settings: TOML defaults, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def test_defaults_come_from_config_file():
    settings = load_settings(environ={})
    assert settings.paths.index == Path("data/index")
    assert settings.model.model_name == "all-MiniLM-L6-v2"
    assert settings.retrieval.top_k >= 1
    assert 0 < settings.answer.min_sentence_score < 1


def test_environment_overrides_by_key_name():
    settings = load_settings(environ={"QABOT_INDEX": "/srv/idx", "QABOT_TOP_K": "9",
                                      "QABOT_ALLOWED_CHANNELS": "C1, C2", "QABOT_SLASH_EPHEMERAL": "no"})
    assert settings.paths.index == Path("/srv/idx")
    assert settings.retrieval.top_k == 9
    assert settings.slack.allowed_channels == ("C1", "C2")
    assert settings.slack.slash_ephemeral is False


def test_bad_values_and_unknown_keys_are_reported(tmp_path):
    with pytest.raises(SettingsError, match="QABOT_TOP_K"):
        load_settings(environ={"QABOT_TOP_K": "many"})
    config = tmp_path / "c.toml"
    config.write_text("[retrieval]\ntop_kk = 3\n")
    with pytest.raises(SettingsError, match="top_kk"):
        load_settings(config, environ={})
    config.write_text("[retrieval\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config, environ={})
