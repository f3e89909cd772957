"""The gaps report: what was asked in Slack and `qabot chat`, what the documents did not answer.

- `record`: one question as kept (what became of it, the collections searched, the documents
  cited, the 👍/👎; its text and vector only with ``[report] keep_questions``; never who asked).
- `recorder`: the one call each front end makes per answer (`QuestionRecorder.record`) and per
  vote; opens the store of ``[state] state_backend``.
- `store` (SQLite, the ``state_db`` file) and `redis_store` (Redis): where records live, retention
  enforced on every write.
- `groups`: the declined and down-voted questions grouped by meaning (average linkage on cosine,
  a fixed reference mean of questions removed first: question_space.json).
- `summary`: the report as data (timeline, totals, gap groups, documents cited most and never),
  for ``qabot report`` (bot/cli_report.py), its ``--json`` and the App Home's admin section.
- `html`: ``--html FILE``, one self-contained page with matplotlib charts.
"""
