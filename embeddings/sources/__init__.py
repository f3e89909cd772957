"""Where documents come from besides plain-text files: PDF and Word files (pdf.py, word.py), web
pages and sitemaps (web.py), and the expansion of command-line inputs into documents (collect.py).

Each loader turns bytes into a `Document` or raises `DocumentError` with a one-line reason; none
knows about the index, Slack or the CLI, so any front end (a Slack upload, a URL in a message) can
reuse them through `embeddings.documents.parse_bytes` or `collect.collect`.
"""
