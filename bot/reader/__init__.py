"""The reader: a small cross-encoder that reads a question with candidate sentences and scores
whether each answers it, plus the answer span (issue 10).

Question time uses only `bot.reader.runtime` (onnxruntime + tokenizers, no torch);
`bot.reader.data`, `bot.reader.train` and `bot.reader.export` rebuild the shipped model
(`make train-reader`).
"""

