"""Documents in, searchable index out: load, clean, chunk, embed, store and search.

Nothing here knows about Slack or the CLI.
"""
