"""4. slack: signed Events API request -> chat.postMessage, against the Slack Web API stand-in."""

from __future__ import annotations

import time

from bench.common import ARTICLE_QUESTIONS, Sizes, ms
from bench.fixtures import ensure_article_index


def bench_slack(ctx: dict, sizes: Sizes) -> dict:
    from bench.slack_path import HttpBot, WebApi

    article = ctx.get("article_answerer")
    if article is None:
        from bot.answering.answerer import Answerer

        article = Answerer.from_settings(ctx["settings"], index_dir=ensure_article_index(ctx))
        for q in ARTICLE_QUESTIONS:
            article.ask(q)
    # The bench's own feedback log and answered-message store, never the checkout's data folder.
    settings = ctx["settings"].replace("paths", feedback_log=ctx["work"] / "feedback.jsonl",
                                       state_db=ctx["work"] / "state.sqlite3")
    latencies, acks = [], []
    api = WebApi()
    bot = HttpBot(api, settings, article)
    try:
        for i in range(sizes.slack_events + 5):
            started = time.monotonic()
            ts, status = bot.mention(ARTICLE_QUESTIONS[i % len(ARTICLE_QUESTIONS)])
            acked = time.monotonic()
            if status != 200:
                raise RuntimeError(f"the bot answered HTTP {status}")
            posted = api.wait_post(ts)
            if i >= 5:  # the first few warm up the HTTP connections and the bot's threads
                latencies.append(posted - started)
                acks.append(acked - started)
            bot.wait_idle()
    finally:
        bot.close()
        api.close()
    return {"events": len(latencies), **ms(latencies), "ack": ms(acks),
            "note": "bundled-article questions; time from sending the signed request to the "
                    "stand-in receiving chat.postMessage (includes the 👀 reaction call)"}
