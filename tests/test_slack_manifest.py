"""The Slack app manifest asks for exactly what the bot uses, with Socket Mode on."""

from __future__ import annotations

import pytest

from .conftest import ROOT

yaml = pytest.importorskip("yaml")

MANIFEST = ROOT / "config" / "slack-manifest.yaml"


def test_manifest_has_exactly_the_needed_scopes_and_events():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted([
        "app_mentions:read", "assistant:write", "channels:history", "channels:read", "chat:write", "commands",
        "files:read", "groups:history", "groups:read", "im:history", "mpim:history", "reactions:write"])
    settings = manifest["settings"]
    assert sorted(settings["event_subscriptions"]["bot_events"]) == sorted([
        "app_home_opened", "app_mention", "assistant_thread_context_changed", "assistant_thread_started",
        "message.channels", "message.groups", "message.im", "message.mpim"])
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == ["/ask"]
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert "assistant_view" in features


def test_setup_docs_cover_the_whole_path():
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Slack setup", 1)[1]
    for needed in ("slack-manifest.yaml", "connections:write", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                   "SLACK_SIGNING_SECRET", "/slack/events", "make run", "/invite @qabot", "/ask"):
        assert needed in text, needed
