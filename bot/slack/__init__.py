"""The Slack transport: a slack-bolt app whose every entry point becomes one `SlackQuestion`.

A request travels top to bottom through these modules:

- `server` runs it: Socket Mode or HTTP (`/slack/events`), signals, shutdown.
- `app` builds the bolt `App` and registers `middleware` (state, de-duplication, non-human
  authors and channels, external users) and `listeners` (mention, message/DM/thread follow-up, assistant panel, ``/ask``,
  👍/👎).
- `listeners` turn each entry point into a `question.SlackQuestion` (in a Q&A channel, `intent`
  decides whether a message is a question at all); `replies` is the one path that answers it
  (through an `question.AnswersQuestions`, in the `workers` pool) and hands the `blocks`
  rendering or an apology to a `streaming` sink: posted whole, or streamed into the thread.
- `sources` puts a Sources button under an answer; `sources_modal` opens the passages it found,
  looked up in the index, in a modal (``views.open``).
- `home` publishes the Home tab (``app_home_opened``): the indexed documents, how to ask, and the
  👍/👎 tally for admins; `home_gaps` adds, for admins, the week's top groups of unanswered questions;
  `home_collections` adds where the viewer's channels answer from, and for admins a control to
  change it.
- `channel_collections` says which document collections a channel answers from (settings, and
  admins' overrides in the state store, SQLite or Redis); every entry point passes them on.
- Shared state lives in `state.BotState`: `store` (messages answered and the bot's threads, durable
  and shared by every process on the data folder), `threads` (conversation memory), `dedupe` (a
  short-lived cache), `feedback`.
  `markup` turns a message's Slack markup into the plain question (inbound; `blocks` renders).
- `admin` adds documents from Slack (``/ask add``, files shared in a DM) for admin users.
- Replicas: `redis_state` keeps that state in Redis for processes on several hosts, and
  `handover` answers what a replica that died had acknowledged; `guard` keeps answers exactly
  once when the store cannot vouch for an event, and never silent when it fails.
- `secrets`, `logfilters` and `client` keep tokens and request bodies out of logs and talk to the
  Web API; `errors` holds the one error the transport raises to its caller.
"""
