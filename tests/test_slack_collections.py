"""Collections on the Home tab, over real HTTP against the Web API stand-in: a person sees what the
channels they are in answer from (``users.conversations``) and only those collections' documents;
an admin changes a channel's collections with a Block Kit select, kept in the state store and
applied to that channel's next question; anyone else's change is refused."""

from __future__ import annotations

import json
from typing import Any

from bot.slack.home_collections import ACTION_ID, BLOCK_PREFIX, RESET
from embeddings.documents import Document
from embeddings.index import Index

from .slack_requests import mention_event
from .slack_standin import USER, new_ts
from .test_slack_home import home_opened

ADMIN = "U0ADMIN"


class ScopeSpy:
    """An answerer over a small index, recording the collections each question was asked with."""

    def __init__(self, index: Index, real: Any) -> None:
        self.index, self.real, self.scopes = index, real, []

    def ask(self, question: str, history: Any = (), **kwargs: Any) -> Any:
        self.scopes.append(kwargs.get("collections"))
        return self.real.ask(question, history, **kwargs)


def _index(fake_encoder) -> Index:
    index = Index(fake_encoder.model_name, fake_encoder.dimension, chunk_words=30, sentence_overlap=0)
    for name, words in (("hr", "Holiday leave is twenty days a year."), ("eng", "Deploys happen on Tuesdays."),
                        ("finance", "Invoices are paid within thirty days.")):
        index.add([Document(f"/d/{name}.txt", f"{name.upper()} handbook", words, f"d/{name}.txt")], fake_encoder, 8,
                  collections=[name])
    return index


def _select(user: str, channel: str, values: list[str]) -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user, "team_id": "T0TEST"}, "team": {"id": "T0TEST"},
            "api_app_id": "A0TEST", "trigger_id": "1.2.3", "view": {"id": "V0HOME", "type": "home"},
            "container": {"type": "view", "view_id": "V0HOME"},
            "actions": [{"type": "multi_static_select", "action_id": ACTION_ID, "block_id": BLOCK_PREFIX + channel,
                         "selected_options": [{"value": v} for v in values], "action_ts": "1"}]}


def _text(view: dict) -> str:
    return json.dumps(view, ensure_ascii=False)


def test_home_shows_a_person_their_channels_collections_and_only_their_documents(
        make_bot, standin, slack_settings, fake_encoder):
    from bot.answering.answerer import Answerer

    index = _index(fake_encoder)
    settings = slack_settings.replace("slack", channel_collections={"C0HR": ("hr",), "C0ENG": ("eng",)},
                                      default_collections=(), dm_collections=("hr",), admin_users=(ADMIN,))
    spy = ScopeSpy(index, Answerer(index, fake_encoder, settings))
    bot = make_bot(spy, settings)
    standin.memberships[USER] = ["C0ENG", "C0RANDOM"]
    bot.send_event(home_opened(USER))
    standin.wait_for("views.publish")
    view = _text(standin.views[USER])
    assert "<#C0ENG>: `eng`" in view and "<#C0RANDOM>: _no collection_" in view
    assert "Direct messages and the assistant panel: `hr`" in view
    assert "ENG handbook" in view and "HR handbook" in view and "FINANCE handbook" not in view
    assert ACTION_ID not in view  # no control for a person who is not an admin

    # An admin sees every mapped channel with a control; choosing collections applies at once.
    bot.send_event(home_opened(ADMIN))
    standin.wait_for("views.publish", 2)
    admin_view = standin.views[ADMIN]
    assert "FINANCE handbook" in _text(admin_view)
    control = next(b for b in admin_view["blocks"] if b.get("block_id") == BLOCK_PREFIX + "C0HR")
    assert [o["value"] for o in control["accessory"]["initial_options"]] == ["hr"]
    assert {o["value"] for o in control["accessory"]["options"]} >= {"*", "eng", "finance", "hr", RESET}

    bot.send_action(_select(USER, "C0HR", ["finance"]))  # not an admin: refused, nothing changes
    bot.wait_idle()
    bot.send_event(mention_event("When are invoices paid?", channel="C0HR"))
    standin.wait_for("chat.postMessage")
    bot.send_action(_select(ADMIN, "C0HR", ["finance", "hr"]))
    standin.wait_for("views.publish", 3)
    assert "`finance`, `hr` (set here)" in _text(standin.views[ADMIN])
    bot.send_event(mention_event("When are invoices paid?", channel="C0HR", ts=new_ts()))
    standin.wait_for("chat.postMessage", 2)
    bot.send_action(_select(ADMIN, "C0HR", [RESET]))
    standin.wait_for("views.publish", 4)
    bot.send_event(mention_event("When are invoices paid?", channel="C0HR", ts=new_ts()))
    standin.wait_for("chat.postMessage", 3)
    bot.wait_idle()
    assert spy.scopes == [("hr",), ("finance", "hr"), ("hr",)]
    assert "(from the settings)" in _text(standin.views[ADMIN])
